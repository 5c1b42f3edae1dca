"""Quoted-reply stripping (:mod:`helpdesk_core.mail.quotes`) on hand-written cases and public corpora."""

from __future__ import annotations

import json
import re
import time
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from helpdesk_core.mail.quotes import REPLY_ABOVE_MARKER, strip_quoted

CORPORA = Path(__file__).parent / "corpora"
TALON = CORPORA / "talon" / "standard_replies"
ERP = CORPORA / "email_reply_parser"


# --------------------------------------------------------------------------- hand-written cases


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Thanks!\n\n> old\n> stuff\n", "Thanks!"),
        ("Thanks!\n\nOn Mon, 3 Jun 2024 at 10:00, Bob <bob@example.com> wrote:\n> Hi\n", "Thanks!"),
        ("Thanks!\n\nOn Mon, 3 Jun 2024 at 10:00, Bob Builder\n<bob@example.com> wrote:\n\n> Hi\n", "Thanks!"),
        ("Danke!\n\nAm 03.06.2024 um 10:00 schrieb Bob <bob@example.com>:\n> Hallo\n", "Danke!"),
        ("Merci !\n\nLe lun. 3 juin 2024 à 10:00, Bob <bob@example.com> a écrit :\n> Salut\n", "Merci !"),
        ("Gracias\n\nEl lun, 3 jun 2024 a las 10:00, Bob (<bob@example.com>) escribió:\n> Hola\n", "Gracias"),
        ("Bedankt\n\nOp ma 3 jun. 2024 om 10:00 schreef Bob <bob@example.com>:\n> Hoi\n", "Bedankt"),
        ("Fine.\n\n-----Original Message-----\nFrom: Bob\nSent: Monday\nTo: me\nSubject: x\n\nold", "Fine."),
        ("Fine.\n\nFrom: Bob <bob@example.com>\nSent: Monday, June 3, 2024 10:00\nTo: Me\nSubject: x\n\nold", "Fine."),
        ("Fine.\n\nVon: Bob\nGesendet: Montag\nAn: Ich\nBetreff: x\n\nalt", "Fine."),
        ("Fine.\n\n________________________________\nFrom: Bob\nold text", "Fine."),
        ("Regards\nAlice\n\n-- \nAlice Example\nACME Corp", "Regards\nAlice"),
        ("Yes please.\n\nSent from my iPhone\n\n> earlier", "Yes please."),
        ("Yes please.\n\nSent from my Verizon Wireless BlackBerry", "Yes please."),
        ("Here.\n\nSent from my desk, is much easier then my mobile phone.", None),
        ("A fix -- this is not a signature.\nbye", None),
        ("One outstanding question I had:\nwhy?", None),
        ("On your remote host run:\n\n  telnet\n\nThat's it.", None),
    ],
)
def test_strip_quoted_cases(text: str, expected: str | None) -> None:
    assert strip_quoted(text) == (text.strip() if expected is None else expected)


def test_marker_cuts_history_and_attribution() -> None:
    text = (
        "I restarted the router, works now.\n\n"
        "On Mon, Jun 3, 2024 at 10:00 AM ACME Support <support@example.com> wrote:\n\n"
        f"> {REPLY_ABOVE_MARKER}\n>\n> Hello, did you try restarting?\n> -- \n> ACME\n"
    )
    assert strip_quoted(text) == "I restarted the router, works now."
    unquoted = f"Ok\n\n{REPLY_ABOVE_MARKER}\nTicket #12 updated\n> more"
    assert strip_quoted(unquoted) == "Ok"


def test_bottom_posted_reply_and_inline_reply() -> None:
    assert strip_quoted("On 04/02/2012 06:26 PM, Megan wrote:\n> Hi\nHello") == "Hello"
    inline = "Hi,\nOn Tue, Bob wrote:\n> question one?\n\nanswer one\n\n> old footer\n"
    assert strip_quoted(inline) == "Hi,\nOn Tue, Bob wrote:\n> question one?\n\nanswer one"


def test_never_empty_when_content() -> None:
    assert strip_quoted("> only quoted\n> text") == "> only quoted\n> text"
    assert strip_quoted("-- \nsig only") == "-- \nsig only"
    assert strip_quoted("") == ""
    assert strip_quoted("   \n\n") == ""


def test_linear_time_on_pathological_input() -> None:
    text = ("On " + "x" * 5000 + "\n") * 200 + ("> " + "a " * 3000 + "\n") * 200
    start = time.perf_counter()
    strip_quoted(text)
    assert time.perf_counter() - start < 2.0


# --------------------------------------------------------------------------- talon corpus


def _first_plain(path: Path) -> str:
    msg = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    body = msg.get_body(("plain",))
    assert body is not None
    return body.get_content()


def _normalise(text: str) -> str:
    """Expected text with what we strip on purpose (signatures, "Sent from my …") removed."""
    text = re.split(r"(?m)^-- ?$", text)[0]
    text = re.sub(r"(?m)^Sent from my \w+$", "", text)
    return "\n".join(line.rstrip() for line in text.strip().splitlines()).strip()


def test_talon_standard_replies() -> None:
    rows = [json.loads(line) for line in (TALON / "expected.jsonl").read_text().splitlines() if line]
    assert len(rows) == 12
    exact = normalised = 0
    for row in rows:
        got = strip_quoted(_first_plain(TALON / Path(row["file"]).name))
        expected = row["expected_reply_text"].strip()
        exact += got == expected
        normalised += got == _normalise(expected)
    # talon keeps signatures ("-- " blocks, "Sent from my iPhone"); we strip them on purpose,
    # so iphone.eml and sparrow.eml only match once the expected text is normalised the same way.
    assert exact >= 10
    assert normalised == 12


# --------------------------------------------------------------------------- email_reply_parser


@pytest.mark.parametrize(
    ("name", "starts", "absent"),
    [
        ("email_1_2.txt", "Hi,\nOn Tue, 2011-03-01", "riak-users mailing list"),
        ("email_1_3.txt", "Oh thanks.\n\nHaving the function would be great.\n\n-Abhishek Kona", "Russell Brown"),
        ("email_1_4.txt", "Awesome! I haven't had another problem with it.", "Loader"),
        ("email_1_6.txt", "I get proper rendering as well.", "Corey Donohoe"),
        ("email_1_7.txt", ":+1:", "Chris Wanstrath"),
        ("email_1_8.txt", "I will reply under this one", "Hey there, this is my signature"),
        ("email_2_1.txt", "Outlook with a reply", "Google Apps Sync"),
        ("email_2_2.txt", "Outlook with a reply directly above line", "CRM Comments"),
        ("email_2_3.txt", "Outlook with a reply above headers using unusual format", "Kim via Site"),
        ("email_BlackBerry.txt", "Here is another email", "BlackBerry"),
        ("email_iPhone.txt", "Here is another email", "iPhone"),
        ("email_gmail.txt", "This is a test for inbox replying to a github message.", "Steven Scott"),
        ("email_headers_no_delimiter.txt", "And another reply!", "Dan Watson"),
        ("email_bullets.txt", "test 2 this should list second", "Joe Smith"),
        ("greedy_on.txt", "On your remote host you can run:", "George Plymale"),
        ("email_one_is_not_on.txt", "Thank, this is really helpful.", "Dave Tapley"),
        ("correct_sig.txt", "this is an email with a correct -- signature.", "rick"),
        ("email_sig_delimiter_in_middle_of_line.txt", "Hi there!", None),
        ("email_sent_from_my_not_signature.txt", "Here is another email", None),
        ("pathological.txt", "I think you're onto something.", "John Sullivan"),
    ],
)
def test_email_reply_parser_visible_text(name: str, starts: str, absent: str | None) -> None:
    got = strip_quoted((ERP / name).read_text(encoding="utf-8"))
    assert got.startswith(starts)
    if absent is not None:
        assert absent not in got


def test_email_reply_parser_keeps_non_signatures() -> None:
    got = strip_quoted((ERP / "email_sent_from_my_not_signature.txt").read_text())
    assert got.endswith("Sent from my desk, is much easier then my mobile phone.")
    got = strip_quoted((ERP / "email_sig_delimiter_in_middle_of_line.txt").read_text())
    assert got.endswith("kthxbai")
    got = strip_quoted((ERP / "email_1_5.txt").read_text())
    assert got.endswith("for a while.")
