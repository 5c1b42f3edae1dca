"""htmx in a real browser (headless Chromium, as tests/test_web_browser.py): "Test connection"
swaps its result into the Mail Server Configuration form without leaving the page, and neither
htmx nor any page breaks the CSP (no inline script or style)."""

from __future__ import annotations

import pytest

import test_web_browser
from helpdesk_core.services.auth import set_password
from helpdesk_core.services.departments import add_department, get_department
from helpdesk_core.services.permissions import SYSTEM
from helpdesk_core.services.users import add_user

pytestmark = [pytest.mark.browser]

browser_type_launch_args = test_web_browser.browser_type_launch_args
base_url = test_web_browser.base_url
live = test_web_browser.live


def test_test_connection_is_swapped_in_by_htmx_under_the_csp(live, page):
    with live.session() as s:
        add_department(s, actor=SYSTEM, name="Tech", sender="tech@school.test")
        add_user(s, actor=SYSTEM, email=test_web_browser.ADMIN, role="admin")
        set_password(s, actor=SYSTEM, email=test_web_browser.ADMIN, password=test_web_browser.PASSWORD)
        s.commit()
        tech = get_department(s, "Tech").id
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning")
            and not m.text.startswith("Failed to load resource") else None)  # the 404 of /favicon.ico
    page.on("pageerror", lambda e: problems.append(str(e)))
    test_web_browser._sign_in(page, live.url, test_web_browser.ADMIN, test_web_browser.PASSWORD)
    url = f"{live.url}/settings/departments/{tech}?provider=generic"
    page.goto(url)
    page.wait_for_function("() => window.htmx !== undefined")
    page.select_option("select[name=f_protocol]", "imap")
    page.fill("input[name=f_host]", "nonexistent.invalid")
    page.select_option("select[name=f_security]", "ssl")
    page.fill("input[name=f_email]", "tech@school.test")
    page.fill("input[name=f_password]", "pw")
    with page.expect_response(lambda r: r.url.endswith("/mailbox")) as answer:
        page.click("button[value=test]")
    assert answer.value.request.headers.get("hx-request") == "true"
    error = page.locator("#test-result .error")
    error.wait_for()
    assert error.get_attribute("data-kind") == "unknown_host" and "nonexistent.invalid" in error.inner_text(), error.inner_text()
    assert page.url == url and page.input_value("input[name=f_host]") == "nonexistent.invalid"  # not reloaded
    page.goto(f"{live.url}/settings/departments/{tech}/status")
    assert page.locator("#activity svg").count() == 1
    assert not problems, problems  # e.g. "Refused to apply inline style ... Content Security Policy"
