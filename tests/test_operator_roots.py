"""Issue 10 case 7: a department admin does not reach the server through its settings.

Maildir paths and templates folders set by anyone but the local operator must lie under the roots
the operator configured (``HELPDESK_MAILDIR_ROOT``, ``HELPDESK_TEMPLATE_ROOT``; unset: none), and
templates render in Jinja2's sandbox, so a template cannot call into Python.
"""

from __future__ import annotations

import pytest

from helpdesk_core.errors import ConfigurationError, PermissionDenied
from helpdesk_core.mail.rendering import render_mail
from helpdesk_core.services import departments as dsvc
from helpdesk_core.services.permissions import SYSTEM
from helpdesk_core.services.users import add_user
from sqlalchemy import select

from helpdesk_core.models import User


def _maildir(path):
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return str(path)


@pytest.fixture
def itadmin(app):
    with app.session() as s:
        dsvc.add_department(s, actor=SYSTEM, name="IT", sender="it@district.test")
        add_user(s, actor=SYSTEM, email="itadmin@district.test", role="admin", department="IT")
        s.commit()
    return "itadmin@district.test"


def _set_maildir(app, email, path):
    with app.session() as s:
        actor = SYSTEM if email is None else s.scalar(select(User).where(User.email == email))
        dsvc.set_mailbox(app, s, actor=actor, department="IT", provider="generic",
                         config={"protocol": "maildir", "path": path, "email": "it@district.test"}, secrets={})
        s.rollback()


def _set_templates(app, email, path):
    with app.session() as s:
        actor = SYSTEM if email is None else s.scalar(select(User).where(User.email == email))
        dsvc.set_department_options(s, actor=actor, department="IT", templates_dir=path)
        s.rollback()


def test_department_admin_may_name_no_maildir_without_an_operator_root(app, itadmin, tmp_path, monkeypatch):
    monkeypatch.delenv("HELPDESK_MAILDIR_ROOT", raising=False)
    anywhere = _maildir(tmp_path / "someone-elses")
    with pytest.raises(PermissionDenied, match="HELPDESK_MAILDIR_ROOT"):
        _set_maildir(app, itadmin, anywhere)
    _set_maildir(app, None, anywhere)  # the operator may name any folder


def test_department_admin_maildir_only_under_the_root(app, itadmin, tmp_path, monkeypatch):
    root = tmp_path / "mail"
    monkeypatch.setenv("HELPDESK_MAILDIR_ROOT", str(root))
    _set_maildir(app, itadmin, _maildir(root / "it"))
    outside = _maildir(tmp_path / "other")
    (root / "link").symlink_to(tmp_path / "other")
    for path in (outside, str(root / ".." / "other"), str(root / "link"), str(tmp_path / "mail-evil")):
        with pytest.raises(PermissionDenied, match="outside the folders the operator allows"):
            _set_maildir(app, itadmin, path)


def test_cli_department_admin_set_mailbox_outside_the_root_is_refused(cli, tmp_path):
    cli("department", "add", "IT", "--sender", "it@district.test")
    cli("user", "add", "itadmin@district.test", "--role", "admin", "--department", "IT")
    target = _maildir(tmp_path / "victim")
    result = cli("--as", "itadmin@district.test", "department", "set-mailbox", "IT", "--protocol", "maildir",
                 "--path", target, "--email", "it@district.test", ok=False)
    assert result.exit_code != 0 and "HELPDESK_MAILDIR_ROOT" in result.stderr
    result = cli("--as", "itadmin@district.test", "department", "set", "IT", "--templates-dir", str(tmp_path),
                 ok=False)
    assert result.exit_code != 0 and "HELPDESK_TEMPLATE_ROOT" in result.stderr


def test_templates_dir_only_under_the_template_root(app, itadmin, tmp_path, monkeypatch):
    root = tmp_path / "templates"
    (root / "it").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.delenv("HELPDESK_TEMPLATE_ROOT", raising=False)
    with pytest.raises(PermissionDenied, match="HELPDESK_TEMPLATE_ROOT"):
        _set_templates(app, itadmin, str(root / "it"))
    monkeypatch.setenv("HELPDESK_TEMPLATE_ROOT", str(root))
    _set_templates(app, itadmin, str(root / "it"))
    with pytest.raises(PermissionDenied):
        _set_templates(app, itadmin, str(tmp_path / "elsewhere"))
    _set_templates(app, None, str(tmp_path / "elsewhere"))


def test_templates_cannot_reach_python(tmp_path):
    marker = tmp_path / "owned"
    folder = tmp_path / "t"
    (folder / "reply").mkdir(parents=True)
    (folder / "reply" / "subject.txt").write_text(
        '{{ self.__init__.__globals__.__builtins__.__import__("os").system("touch ' + str(marker) + '") }}')
    (folder / "reply" / "body.txt").write_text("{{ body }}")
    (folder / "reply" / "body.html").write_text("{{ body_html }}")
    with pytest.raises(ConfigurationError, match="SecurityError|is broken"):
        render_mail([], str(folder), "reply", {"body": "hi"})
    assert not marker.exists()
    (folder / "reply" / "subject.txt").write_text("{{ ''.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(ConfigurationError):
        render_mail([], str(folder), "reply", {"body": "hi"})
    (folder / "reply" / "subject.txt").write_text("Re: {{ body | upper }}")
    assert render_mail([], str(folder), "reply", {"body": "hi"}).subject == "Re: HI"
