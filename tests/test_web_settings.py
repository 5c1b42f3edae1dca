"""Settings → Departments beyond the mail server form (rename, sender, interval; status with its
30-day chart; Verify end to end against the test Dovecot and SMTP sink) and the filtered, paged
lists of failed, held and logged mail, through Starlette's TestClient."""

from __future__ import annotations

import pytest

from test_web import _keep, csrf, hd, signed_in  # noqa: F401 - hd is the fixture of test_web

pytestmark = pytest.mark.usefixtures("hd")


@pytest.mark.parametrize("kind,other", [("failed", "held"), ("held", "failed")])
def test_kept_mail_is_found_only_under_its_own_kind(hd, kind, other):
    """A held mail is not shown (nor retried, released, discarded) through the failed-mail URL,
    and a failed one not through the held-mail URL."""
    kept = _keep(hd, kind)
    c = signed_in(hd, "root@school.test")
    assert c.get(f"/admin/{kind}/{kept}").status_code == 200
    for url in (f"/admin/{other}/{kept}", f"/admin/{other}/{kept}/raw", f"/admin/{other}/{kept}/discard"):
        r = c.get(url)
        assert r.status_code == 404 and "Not found." in r.text, url
