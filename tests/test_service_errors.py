"""Services raise errors with a kind and structured details, worded by nobody's command line; the
CLI words the hint (which command to run next, which option was wrong) for itself."""

from __future__ import annotations

import pytest

from helpdesk_core.errors import ConfigurationError, NotFoundError, PermissionDenied
from helpdesk_core.services.departments import add_department, get_department
from helpdesk_core.services.outbox import list_outbox
from helpdesk_core.services.permissions import SYSTEM
from helpdesk_core.services.users import add_user
from helpdesk_core.testing.apps import memory_app


def test_service_errors_carry_details_and_name_no_command():
    app = memory_app()
    with app.session() as session:
        with pytest.raises(NotFoundError) as missing:
            get_department(session, "Tech")
        assert missing.value.kind == "not_found"
        assert missing.value.details == {"hint": "add_department", "department": "Tech"}
        with pytest.raises(ConfigurationError) as bad:
            add_department(session, actor=SYSTEM, name="Tech", sender="not-an-address")
        assert bad.value.details == {"field": "sender"}
        add_department(session, actor=SYSTEM, name="Tech", sender="tech@district.test")
        agent = add_user(session, actor=SYSTEM, email="agent@district.test", role="agent", department="Tech")
        with pytest.raises(PermissionDenied) as denied:
            list_outbox(session, actor=agent)
        assert denied.value.details["hint"] == "ask_admin"
        for exc in (missing.value, bad.value, denied.value):
            assert "helpdesk " not in exc.message and "--" not in exc.message


def test_the_cli_words_the_hint_and_the_option(cli):
    missing = cli("department", "status", "Nope", ok=False)
    assert missing.exit_code == 1
    assert "No department named 'Nope'" in missing.output
    assert "Create it with 'helpdesk department add 'Nope' --sender ADDRESS'." in missing.output
    bad = cli("department", "add", "Tech", "--sender", "nobody", ok=False)
    assert bad.exit_code == 1 and "(option --sender)" in bad.output


def test_listings_print_a_nothing_line_or_json(cli):
    assert cli("outbox", "list").output.strip() == "The outbox is empty."
    assert cli.json("outbox", "list", "--json") == []
    assert cli("failed", "list").output.strip() == "No failed imports."
    assert cli("department", "list").output == ""  # no 'nothing' line for departments (as before)
