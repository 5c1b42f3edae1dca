"""Thread matching and its trust rules: strategies and their order (``helpdesk_register_thread_matchers``,
``mail.thread_matchers``), department scope, sender verification, closed tickets, signed Message-IDs."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from helpdesk_core import hookimpl
from helpdesk_core.errors import ConfigurationError
from helpdesk_core.models import Department, Membership, Role, Ticket, TicketMessage, TicketStatus, User
from helpdesk_core.settings import set_setting
from helpdesk_core.mail.references import find_references, make_message_id

from helpdesk_core.testing.apps import ingest as ingest_into
from helpdesk_core.testing.apps import installation
from mailfactory import plain


def setup(env, *plugins):
    return installation(env, *plugins, departments={"Tech": "techhelp@district.test", "Library": "library@district.test"})


def ingest(app, raw, department="Tech"):
    return ingest_into(app, raw, department=department)


def ticket(app, ticket_id):
    with app.session() as s:
        t = s.get(Ticket, ticket_id)
        s.expunge(t)
        return t


def test_reference_forms_that_count_and_those_that_do_not():
    assert find_references("Re: [Ticket #123] printer") == [123]
    assert find_references("AW: WG: (ticket 7) x") == [7]
    assert find_references("Re: ［Ticket ＃42］ full width") == [42]
    assert find_references("Re:[TICKET#9]") == [9]
    for text in ["Room 123", "#123 in the queue", "Ticket 123 was great", "Ticket #123 was great",
                 "[Tickets #3]", "[MyTicket #3]", "Re: printer", ""]:
        assert find_references(text) == [], text


def test_subject_reference_from_the_requester_threads(hd_env):
    app = setup(hd_env)
    first = ingest(app, plain(subject="Printer"))
    reply = ingest(app, plain(subject="RE: AW: [Ticket #1] Printer"))
    assert reply.status == "updated" and reply.ticket_id == first.ticket_id


def test_stranger_with_a_valid_reference_gets_a_new_ticket_that_mentions_it(hd_env):
    app = setup(hd_env)
    first = ingest(app, plain(subject="Printer"))
    other = ingest(app, plain(subject="Re: [Ticket #1] Printer", sender="mallory@evil.test"))
    assert other.status == "created" and other.ticket_id != first.ticket_id
    assert ticket(app, other.ticket_id).mentions == "#1"
    with app.session() as s:
        assert len(s.get(Ticket, first.ticket_id).messages) == 1


def test_participants_and_staff_may_use_the_reference(hd_env):
    app = setup(hd_env)
    first = ingest(app, plain(subject="Printer", to="techhelp@district.test, Bob <bob@example.test>"))
    assert ingest(app, plain(subject="Re: [Ticket #1]", sender="bob@example.test")).ticket_id == first.ticket_id
    with app.session() as s:
        agent = User(email="agent@district.test", role=Role.AGENT)
        s.add(agent)
        s.flush()
        s.add(Membership(user_id=agent.id, department_id=s.scalar(select(Department.id).where(Department.name == "Tech"))))
        s.commit()
    assert ingest(app, plain(subject="Re: [Ticket #1]", sender="agent@district.test")).ticket_id == first.ticket_id


def test_references_never_cross_departments(hd_env):
    app = setup(hd_env)
    tech = ingest(app, plain(subject="Printer"))
    mid = make_message_id(app.secrets, tech.ticket_id, "district.test")
    other = ingest(app, plain(subject="Re: something", In_Reply_To=f"<{mid}>"), department="Library")
    assert other.status == "created"
    with app.session() as s:
        assert s.get(Ticket, other.ticket_id).department.name == "Library"
    same = ingest(app, plain(subject="Re: something", In_Reply_To=f"<{mid}>"))
    assert same.ticket_id == tech.ticket_id


def test_signed_message_id_threads_even_from_a_forwardee_and_a_forged_one_does_not(hd_env):
    app = setup(hd_env)
    first = ingest(app, plain(subject="Printer"))
    mid = make_message_id(app.secrets, first.ticket_id, "district.test")
    ok = ingest(app, plain(subject="no ref", sender="colleague@example.test", References=f"<{mid}>"))
    assert ok.ticket_id == first.ticket_id
    forged = mid[:-20] + ("a" if mid[-20] != "a" else "b") + mid[-19:]
    bad = ingest(app, plain(subject="no ref", sender="colleague@example.test", References=f"<{forged}>"))
    assert bad.status == "created"


def test_imported_message_ids_thread(hd_env):
    app = setup(hd_env)
    first = ingest(app, plain(subject="Printer", msgid="<orig-1@example.test>"))
    reply = ingest(app, plain(subject="other words", In_Reply_To="<orig-1@example.test>"))
    assert reply.ticket_id == first.ticket_id


def test_closed_ticket_reopens_by_default(hd_env):
    app = setup(hd_env)
    first = ingest(app, plain(subject="Printer"))
    with app.session() as s:
        s.get(Ticket, first.ticket_id).status = TicketStatus.CLOSED
        s.commit()
    assert ingest(app, plain(subject="Re: [Ticket #1] again")).ticket_id == first.ticket_id
    assert ticket(app, first.ticket_id).status == TicketStatus.OPEN


def test_closed_ticket_with_reopen_off_opens_a_linked_ticket(hd_env):
    app = setup(hd_env)
    first = ingest(app, plain(subject="Printer"))
    with app.session() as s:
        s.get(Ticket, first.ticket_id).status = TicketStatus.CLOSED
        dept = s.scalar(select(Department).where(Department.name == "Tech"))
        dept.options = {**dept.options, "reopen_closed": False}
        s.commit()
    new = ingest(app, plain(subject="Re: [Ticket #1] again"))
    assert new.status == "created" and ticket(app, new.ticket_id).linked_ticket_id == first.ticket_id
    assert ticket(app, first.ticket_id).status == TicketStatus.CLOSED
    # an out-of-office reply still lands on the closed ticket as a note, without reopening it
    auto = ingest(app, plain(subject="Re: [Ticket #1] away", Auto_Submitted="auto-replied"))
    assert auto.ticket_id == first.ticket_id and ticket(app, first.ticket_id).status == TicketStatus.CLOSED


class PlusAddressing:
    """A strategy plugin: ``techhelp+<number>@`` continues ticket <number>."""

    @staticmethod
    def match(message, department, context, **_):
        for addr in message.to:
            local = addr.email.split("@")[0]
            if "+" in local and local.split("+")[1].isdigit():
                return context.session.scalar(select(Ticket).where(
                    Ticket.department_id == department.id, Ticket.number == int(local.split("+")[1])))
        return None

    @hookimpl
    def helpdesk_register_thread_matchers(self, register):
        register("plus_address", self.match)


def test_plugin_strategy_runs_only_when_configured_and_in_order(hd_env):
    app = setup(hd_env, PlusAddressing())
    first = ingest(app, plain(subject="Printer"))
    second = ingest(app, plain(subject="Projector"))
    assert ingest(app, plain(subject="plain", to="techhelp+1@district.test")).status == "created"
    with app.session() as s:
        set_setting(s, "mail.thread_matchers", "plus_address,message_id,subject_reference", hooks=app.hooks)
        s.commit()
    hit = ingest(app, plain(subject="plain", to="techhelp+1@district.test"))
    assert hit.ticket_id == first.ticket_id
    # the order decides: plus-address (#1) wins over the subject reference (#2)
    both = ingest(app, plain(subject="Re: [Ticket #2]", to="techhelp+1@district.test"))
    assert both.ticket_id == first.ticket_id
    with app.session() as s:
        set_setting(s, "mail.thread_matchers", "subject_reference,plus_address", hooks=app.hooks)
        s.commit()
    assert ingest(app, plain(subject="Re: [Ticket #2]", to="techhelp+1@district.test")).ticket_id == second.ticket_id
    # an untrusted plugin strategy is subject to sender verification too
    stranger = ingest(app, plain(subject="x", sender="mallory@evil.test", to="techhelp+1@district.test"))
    assert stranger.status == "created"


def test_unknown_strategy_names_are_refused(hd_env):
    app = setup(hd_env)
    with app.session() as s, pytest.raises(ConfigurationError, match="Unknown thread matcher.*plus_address"):
        set_setting(s, "mail.thread_matchers", "message_id,plus_address", hooks=app.hooks)


def test_settings_set_refuses_unknown_strategy(cli):
    result = cli("settings", "set", "mail.thread_matchers", "message_id,nonsense", ok=False)
    assert result.exit_code != 0 and "Unknown thread matcher(s) nonsense" in result.output
    assert "subject_reference" in cli("settings", "set", "mail.thread_matchers", "subject_reference").output


def test_duplicate_strategy_is_refused(hd_env):
    from helpdesk_core.errors import PluginError

    app = setup(hd_env, PlusAddressing(), PlusAddressing())
    with pytest.raises(PluginError, match="registered twice"):
        app.hooks.thread_matchers


def test_thread_matched_message_is_stored_on_the_ticket(hd_env):
    app = setup(hd_env)
    first = ingest(app, plain(subject="Printer"))
    ingest(app, plain(subject="Re: [Ticket #1] Printer", body="Still broken\n"))
    with app.session() as s:
        bodies = [m.body_text for m in s.scalars(select(TicketMessage).where(TicketMessage.ticket_id == first.ticket_id))]
    assert len(bodies) == 2 and bodies[1].startswith("Still broken")


# ---- issue 10 case 4: only our signed Message-IDs are proof on their own -------------------------


def test_stranger_replying_to_the_requesters_own_message_id_gets_a_new_ticket(hd_env):
    app = setup(hd_env)
    first = ingest(app, plain(subject="Printer", msgid="<alice-1@example.test>",
                              to="techhelp@district.test, Bob <bob@example.test>"))
    hijack = ingest(app, plain(subject="Re: Printer", sender="mallory@evil.test",
                               cc="eve@evil.test", In_Reply_To="<alice-1@example.test>"))
    assert hijack.status == "created" and hijack.ticket_id != first.ticket_id
    assert ticket(app, hijack.ticket_id).mentions == "#1"
    original = ticket(app, first.ticket_id)
    assert "mallory@evil.test" not in original.participants and "eve@evil.test" not in original.participants
    # the requester and a participant still thread by the same stored id, and so does staff
    assert ingest(app, plain(subject="Re: Printer", In_Reply_To="<alice-1@example.test>")).ticket_id == first.ticket_id
    assert ingest(app, plain(subject="x", sender="bob@example.test",
                             References="<alice-1@example.test>")).ticket_id == first.ticket_id


def test_new_participants_come_only_from_trusted_follow_ups(hd_env):
    app = setup(hd_env)
    first = ingest(app, plain(subject="Printer", msgid="<alice-2@example.test>"))
    ingest(app, plain(subject="Re: [Ticket #1]", sender="mallory@evil.test", cc="eve@evil.test"))
    ingest(app, plain(subject="Re", sender="mallory@evil.test", cc="eve@evil.test",
                      References="<alice-2@example.test>"))
    assert ticket(app, first.ticket_id).participants == ["alice@example.test"]
    ingest(app, plain(subject="Re: [Ticket #1]", cc="Carol <carol@example.test>"))
    assert "carol@example.test" in ticket(app, first.ticket_id).participants


@pytest.mark.parametrize("sender", ["Alice <alice@example.test>, mallory@evil.test",
                                    "alice@example.test <mallory@evil.test>"])
def test_a_suspicious_from_is_unverified_for_threading(hd_env, sender):
    """issue 10 case 5: several From addresses, or a display name that is another address."""
    app = setup(hd_env)
    first = ingest(app, plain(subject="Printer", sender="Alice <alice@example.test>"))
    other = ingest(app, plain(subject="Re: [Ticket #1] Printer", sender=sender))
    assert other.status == "created" and other.ticket_id != first.ticket_id
    assert ticket(app, other.ticket_id).mentions == "#1"
