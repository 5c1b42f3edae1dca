"""Hypothesis strategies for fuzzing parsing and thread matching (needs ``hypothesis``).

Plugin authors can fuzz their own thread-matching strategies with them::

    from hypothesis import given
    from helpdesk_core.testing import strategies as hs

    @given(subject=hs.client_subjects(number=42), header=hs.encodings())
    def test_my_matcher(subject, header): ...

* :func:`subjects` -- ordinary subjects (any script) that contain no ticket reference;
* :func:`prefix_chains` -- what mail clients put in front: ``Re: AW: RE[2]: Fwd:`` … with odd spacing;
* :func:`mangled_reference` -- a ``[Ticket #N]`` reference as clients leave it (brackets changed,
  case, spaces, full-width forms);
* :func:`client_subjects` -- a reply subject for ticket N after a client's prefixes and mangling;
* :func:`encoded_subject_headers` -- a raw ``Subject:`` header line for a subject: plain, RFC 2047
  encoded words in several charsets (``email.header``), or ``email.policy`` folding;
* :func:`addresses` -- plausible mail addresses; :func:`raw_messages` -- whole raw messages.
"""

from __future__ import annotations

import email.policy
from email.header import Header
from email.message import EmailMessage

from hypothesis import strategies as st

from helpdesk_core.mail.references import DEFAULT_REFERENCE_FORMAT, find_references, format_reference

__all__ = ["PREFIXES", "CHARSETS", "subjects", "prefix_chains", "mangled_reference", "client_subjects",
           "encoded_subject_headers", "addresses", "raw_messages"]

#: reply/forward prefixes of real mail clients (English, German, Nordic, Dutch, Polish, counters)
PREFIXES: tuple[str, ...] = ("Re:", "RE:", "re:", "Fwd:", "FWD:", "Fw:", "FW:", "AW:", "Aw:", "WG:", "SV:",
                             "VS:", "Antw:", "Odp:", "RE[2]:", "Re[3]:", "Re(2):", "Tr:", "R:", "Réf:")
#: charsets the encoded-word strategy tries (those that cannot encode a subject are skipped)
CHARSETS: tuple[str, ...] = ("utf-8", "iso-8859-1", "iso-8859-15", "windows-1252", "iso-8859-2", "koi8-r",
                             "shift_jis", "gb2312", "big5")

_SPACES = st.sampled_from([" ", "  ", "", "\t", " \u00a0"])
_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Co", "Cn", "Zl", "Zp")),
    max_size=60)


def subjects() -> st.SearchStrategy[str]:
    """Ordinary subjects without a ticket reference: words, numbers, ``#123``, ``Room 123`` …"""
    pieces = st.one_of(_TEXT, st.sampled_from(["Room 123", "#123 in the queue", "Ticket 123 was great",
                                                "printer", "Überprüfung", "日本語", "Re", "[ANN]", "(2)"]))
    return st.lists(pieces, max_size=4).map(" ".join).filter(lambda s: not find_references(s))


def prefix_chains() -> st.SearchStrategy[str]:
    """A chain of client prefixes with irregular spacing, e.g. ``"RE:  AW:Fwd: "``."""
    return st.lists(st.tuples(st.sampled_from(PREFIXES), _SPACES), max_size=6).map(
        lambda items: "".join(p + s for p, s in items))


@st.composite
def mangled_reference(draw: st.DrawFn, number: int, fmt: str = DEFAULT_REFERENCE_FORMAT) -> str:
    """``format_reference(number)`` as a client may leave it: other brackets, case, spacing,
    full-width characters (for the default format; other formats are returned with case changes)."""
    ref = format_reference(number, fmt)
    if fmt == DEFAULT_REFERENCE_FORMAT:
        opening, closing = draw(st.sampled_from([("[", "]"), ("(", ")"), ("{", "}"), ("<", ">"),
                                                 ("［", "］"), ("【", "】")]))
        label = draw(st.sampled_from(["Ticket", "TICKET", "ticket", "Ticket"]))
        mark = draw(st.sampled_from(["#", "# ", "＃", " #", ""]))
        ref = f"{opening}{draw(_SPACES)}{label}{draw(st.sampled_from([' ', '  ', '']))}{mark}{number}{draw(_SPACES)}{closing}"
    elif draw(st.booleans()):
        ref = ref.upper()
    return ref


@st.composite
def client_subjects(draw: st.DrawFn, number: int, fmt: str = DEFAULT_REFERENCE_FORMAT,
                    sent: str | None = None) -> str:
    """The subject of a reply to ticket ``number``: ``sent`` (default ``Re: [Ticket #N] <subject>``)
    with a prefix chain in front, the reference possibly mangled, whitespace changed."""
    if sent is None:
        sent = f"Re: {format_reference(number, fmt)} {draw(subjects())}"
    ref = format_reference(number, fmt)
    if ref in sent and draw(st.booleans()):
        sent = sent.replace(ref, draw(mangled_reference(number, fmt)), 1)
    return f"{draw(prefix_chains())}{draw(_SPACES)}{sent}{draw(_SPACES)}"


def _encoded_words(subject: str, charset: str, maxlinelen: int) -> bytes | None:
    try:
        subject.encode(charset)
    except (UnicodeEncodeError, LookupError):
        return None
    try:
        value = Header(subject, charset, maxlinelen=maxlinelen, header_name="Subject").encode(
            linesep="\r\n")
    except Exception:  # noqa: BLE001 - charsets email.header cannot handle: skip
        return None
    return b"Subject: " + value.encode("ascii") + b"\r\n"


def _policy_folded(subject: str, max_line_length: int) -> bytes | None:
    msg = EmailMessage(policy=email.policy.SMTP.clone(max_line_length=max_line_length))
    try:
        msg["Subject"] = subject
        return msg.as_bytes().split(b"\r\n\r\n", 1)[0] + b"\r\n"
    except Exception:  # noqa: BLE001 - e.g. surrogates; the strategy then falls back to encoded words
        return None


@st.composite
def encoded_subject_headers(draw: st.DrawFn, subject: str) -> bytes:
    """A raw ``Subject:`` header line (CRLF-terminated, possibly folded) that decodes to ``subject``
    (modulo whitespace): RFC 2047 encoded words in one of :data:`CHARSETS`, ``email.policy.SMTP``
    folding, or plain ASCII."""
    how = draw(st.sampled_from(["words", "policy", "plain"]))
    if how == "plain" and subject.isascii() and "\n" not in subject and "=?" not in subject:
        return b"Subject: " + subject.encode("ascii") + b"\r\n"
    if how == "policy":
        # not below 78: CPython's folder splits an encoded word inside its "?=" at short line
        # lengths and emits an invalid header (a generator bug, not what mail clients send)
        out = _policy_folded(subject, draw(st.sampled_from([78, 200])))
        if out is not None:
            return out
    for charset in draw(st.permutations(CHARSETS)):
        out = _encoded_words(subject, charset, draw(st.sampled_from([40, 76, 998])))
        if out is not None:
            return out
    return _policy_folded(subject, 78) or b"Subject: " + subject.encode("utf-8", "replace") + b"\r\n"


def addresses() -> st.SearchStrategy[str]:
    """Plausible lower-case addresses on a few domains (so generated senders collide sometimes)."""
    local = st.from_regex(r"[a-z][a-z0-9._+-]{0,12}[a-z0-9]", fullmatch=True)
    domain = st.sampled_from(["example.test", "example.org", "mail.example.test", "customers.test"])
    return st.builds(lambda loc, dom: f"{loc}@{dom}", local, domain)


@st.composite
def raw_messages(draw: st.DrawFn, *, subject_header: bytes | None = None, sender: str | None = None,
                 to: str = "techhelp@district.test", headers: dict[str, str] | None = None) -> bytes:
    """A raw RFC 5322 message with a generated (or given) subject header, sender and body."""
    sender = sender or draw(addresses())
    if subject_header is None:
        subject_header = draw(encoded_subject_headers(draw(subjects())))
    mid = f"<{draw(st.uuids()).hex}@example.test>"
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    body = draw(st.text(alphabet=st.characters(codec="ascii", blacklist_categories=("Cc",)), max_size=200))
    head = (f"From: {sender}\r\nTo: {to}\r\nMessage-ID: {mid}\r\nDate: Fri, 20 Nov 2026 09:30:00 +0000\r\n"
            f"{extra}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n").encode()
    return head + subject_header + b"\r\n" + body.encode() + b"\r\n"
