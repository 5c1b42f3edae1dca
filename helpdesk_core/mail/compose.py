"""Build outgoing mail (staff replies, acknowledgements): headers, MIME structure, rendered bodies.

Headers of every outgoing mail:

* ``From: "<Department name>" <department sender address>``; ``To`` the requester; ``Cc`` the other
  participants (replies only, unless the staff member drops them);
* ``Subject`` with the ticket reference: ``Re: [Ticket #123] original subject``; an existing
  ``Re:``/``Fwd:``/``AW:``/``SV:`` … chain and an existing reference are removed first, so prefixes
  never stack (:func:`clean_subject`);
* a signed ``Message-ID`` (:func:`helpdesk_core.mail.references.make_message_id`, domain of the sender
  address) that the importer's thread matching recognises when the requester answers;
* ``In-Reply-To``/``References`` pointing at the last inbound message (at most 20 ids);
* ``Auto-Submitted: no`` on human replies, ``auto-replied`` on acknowledgements (RFC 3834);
* ``X-Helpdesk-Loop: <department sender address>``: marks mail the help desk sent itself, so a copy
  coming back into a department mailbox can be recognised and dropped instead of looping;
* names and the subject without control characters (a stored name with CR/LF never breaks or
  adds a header, :func:`helpdesk_core.mail.controls.strip_controls`);
* ``Date``; non-ASCII names and subjects RFC 2047-encoded; bodies quoted-printable UTF-8 as
  ``multipart/alternative`` (text + HTML), inside ``multipart/mixed`` when there are attachments.
"""

from __future__ import annotations

import email.policy
import mimetypes
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from helpdesk_core.crypto import SecretBox
from helpdesk_core.errors import ConfigurationError
from helpdesk_core.mail.controls import strip_controls
from helpdesk_core.mail.message import Address
from helpdesk_core.mail.quotes import REPLY_ABOVE_MARKER
from helpdesk_core.mail.rendering import render_mail
from helpdesk_core.mail.references import DEFAULT_REFERENCE_FORMAT, format_reference, make_message_id, reference_pattern

#: our loop-detection header; its value is the sending department's address
LOOP_HEADER = "X-Helpdesk-Loop"
#: most Message-IDs kept in ``References``
MAX_REFERENCES = 20
#: the policy outgoing mail is serialised with (CRLF line ends, 7-bit safe headers)
SMTP_POLICY = email.policy.SMTP

_PREFIX_RE = re.compile(
    r"^\s*(?:re|fwd?|aw|wg|sv|vs|tr|antw|ref|rif|res|odp|vl|r)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]\s*",
    re.IGNORECASE)


@dataclass(frozen=True)
class MailDepartment:
    """What composing needs of the sending department; templates see it as ``department``."""

    name: str
    #: the address mail is sent From (and the Message-ID domain)
    sender_address: str
    #: the department's own template folder (option ``templates_dir``), searched first
    templates_dir: str | None = None


@dataclass(frozen=True)
class MailTicket:
    """What composing needs of the ticket a mail is about; templates see it as ``ticket``."""

    id: int
    number: int
    subject: str
    status: str = ""
    priority: str = ""
    requester_name: str = ""
    requester_email: str = ""


@dataclass
class Attachment:
    """A file attached to an outgoing mail."""

    filename: str
    data: bytes
    content_type: str = ""

    def __post_init__(self) -> None:
        if not self.content_type:
            self.content_type = mimetypes.guess_type(self.filename)[0] or "application/octet-stream"


@dataclass
class ComposedMail:
    """A rendered outgoing mail: the bytes plus what the ticket message and the outbox store."""

    raw: bytes
    message_id: str
    mail_from: str
    to: list[Address]
    cc: list[Address]
    subject: str
    text: str
    html: str
    date: datetime
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)

    @property
    def recipients(self) -> list[str]:
        return list(dict.fromkeys(a.email.lower() for a in [*self.to, *self.cc]))


def clean_subject(subject: str, fmt: str = DEFAULT_REFERENCE_FORMAT) -> str:
    """``subject`` without reply/forward prefixes (``Re:``, ``Fwd:``, ``AW:``, ``SV:`` … in any
    number and mix) and without ticket references in the format ``fmt``."""
    text = " ".join((subject or "").split())
    head = fmt.partition("{number}")[0]
    pattern = reference_pattern(fmt) if re.sub(r"[\W_]", "", head) else None
    while True:
        before = text
        text = _PREFIX_RE.sub("", text, count=1)
        if pattern is not None:
            text = pattern.sub(lambda m: "" if re.search(r"[\[\(\{<#]", m.group(0)) else m.group(0), text)
        text = " ".join(text.split()).strip(" -:")
        if text == before:
            return text


def reply_subject(subject: str, number: int, fmt: str = DEFAULT_REFERENCE_FORMAT) -> str:
    """``Re: [Ticket #N] subject`` without stacking prefixes (what the default template renders)."""
    clean = clean_subject(subject, fmt)
    return f"Re: {format_reference(number, fmt)} {clean}".rstrip()


def _header_address(addr: Address) -> HeaderAddress:
    """``addr`` for an outgoing header. The display name is stored text from mail (or an admin) and
    must never make a reply fail: it loses control characters (CR/LF could start a header of its
    own), and a name the header library still refuses is left out. Only a bad address raises."""
    name = strip_controls(addr.name or "")
    try:
        return HeaderAddress(display_name=name, addr_spec=addr.email)
    except (ValueError, IndexError):
        if not name:
            raise ConfigurationError(f"Cannot send to {addr.email!r}: not a valid address.") from None
    try:
        return HeaderAddress(display_name="", addr_spec=addr.email)
    except (ValueError, IndexError) as exc:
        raise ConfigurationError(f"Cannot send to {addr.email!r}: not a valid address ({exc}).") from exc


def build_message(*, mail_from: Address, to: Sequence[Address], cc: Sequence[Address], subject: str,
                  text: str, html: str, message_id: str, date: datetime, in_reply_to: Sequence[str] = (),
                  references: Sequence[str] = (), auto_submitted: str = "no",
                  attachments: Sequence[Attachment] = (),
                  extra_headers: Sequence[tuple[str, str]] = ()) -> EmailMessage:
    """Assemble the MIME message (see the module docs for the headers)."""
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = _header_address(mail_from)
    msg["To"] = [_header_address(a) for a in to]
    if cc:
        msg["Cc"] = [_header_address(a) for a in cc]
    msg["Subject"] = strip_controls(subject)
    msg["Date"] = format_datetime(date.astimezone(UTC))
    msg["Message-ID"] = f"<{message_id}>"
    if in_reply_to:
        msg["In-Reply-To"] = " ".join(f"<{m}>" for m in in_reply_to)
    if references:
        msg["References"] = " ".join(f"<{m}>" for m in references)
    msg["Auto-Submitted"] = auto_submitted
    msg[LOOP_HEADER] = mail_from.email
    for name, value in extra_headers:
        msg[name] = value
    msg.set_content(text, cte="quoted-printable")
    msg.add_alternative(html, subtype="html", cte="quoted-printable")
    for att in attachments:
        maintype, _, subtype = att.content_type.partition("/")
        msg.add_attachment(att.data, maintype=maintype or "application", subtype=subtype or "octet-stream",
                           filename=att.filename)
    return msg


def compose_mail(*, kind: str, department: MailDepartment, ticket: MailTicket, secrets: SecretBox,
                 template_folders: Sequence[Path], reference_format: str, to: Sequence[Address],
                 cc: Sequence[Address] = (), body: str = "", author_name: str = "",
                 in_reply_to: str | None = None, references: Sequence[str] = (),
                 attachments: Sequence[Attachment] = (), now: datetime | None = None,
                 variables: dict[str, Any] | None = None) -> ComposedMail:
    """Render ``kind``'s templates (``reply`` or ``acknowledgement``) and build the message.

    Template variables: ``department`` (:class:`MailDepartment`), ``ticket`` (:class:`MailTicket`),
    ``reference`` (``[Ticket #N]``), ``subject``
    (the ticket subject without prefixes and reference), ``body`` and ``body_html`` (the staff
    member's text), ``author_name``, ``requester_name``, ``marker``, plus ``variables``.
    ``template_folders`` are the plugins' folders (``app.hooks.template_folders``).
    """
    now = now or datetime.now(UTC)
    sender = department.sender_address
    domain = sender.rpartition("@")[2] or "localhost"
    message_id = make_message_id(secrets, ticket.id, domain)
    refs = [r for r in dict.fromkeys([*references, *([in_reply_to] if in_reply_to else [])]) if r]
    refs = refs[-MAX_REFERENCES:]
    values: dict[str, Any] = {
        "department": department, "ticket": ticket,
        "reference": format_reference(ticket.number, reference_format),
        "subject": clean_subject(ticket.subject, reference_format), "body": body.strip("\n"),
        "author_name": author_name, "requester_name": ticket.requester_name,
        "marker": REPLY_ABOVE_MARKER, **(variables or {}),
    }
    rendered = render_mail(template_folders, department.templates_dir, kind, values)
    mail_from = Address(sender, department.name)
    extra: list[tuple[str, str]] = []
    if kind == "acknowledgement":
        extra.append(("X-Auto-Response-Suppress", "All"))  # ask Exchange & co. not to answer it
    msg = build_message(mail_from=mail_from, to=to, cc=cc, subject=rendered.subject, text=rendered.text,
                        html=rendered.html, message_id=message_id, date=now,
                        in_reply_to=[in_reply_to] if in_reply_to else [], references=refs,
                        auto_submitted="no" if kind == "reply" else "auto-replied",
                        attachments=attachments, extra_headers=extra)
    return ComposedMail(raw=msg.as_bytes(policy=SMTP_POLICY), message_id=message_id, mail_from=sender,
                        to=list(to), cc=list(cc), subject=rendered.subject, text=rendered.text,
                        html=rendered.html, date=now, in_reply_to=[in_reply_to] if in_reply_to else [],
                        references=refs)
