"""Loop and noise detection on parsed inbound mail: bounces (DSNs), auto-replies, bulk mail.

Pure functions of a :class:`~helpdesk_core.mail.message.ParsedMessage`; the default classifier
(:mod:`helpdesk_core.defaults.classify`) turns them into a
:class:`~helpdesk_core.hooktypes.Classification`. The rules are documented in ``docs/threading.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from helpdesk_core.mail.message import ParsedMessage

#: local parts of senders that are mail systems, not people
DAEMON_LOCALPARTS = re.compile(
    r"^(?:mailer-daemon|mailer_daemon|mail-daemon|maildaemon|mdaemon|postmaster|mail\.delivery\.system|"
    r"mailadm|ndr|smtp-gateway|mail-?system|mailerdaemon)$", re.IGNORECASE)

#: subjects of delivery failure / delay notices (any language seen in real bounces)
BOUNCE_SUBJECT = re.compile(
    r"undeliver|non[- ]?delivery|delivery (?:status )?notification|delivery (?:has )?fail|delivery failure|"
    r"delivery problem|delivery report|delivery warning|returned mail|returning message|failure notice|"
    r"failure delivery|mail delivery|not delivered|could not be delivered|failed mail|mail error|"
    r"mail system error|processing error|delayed mail|message delayed|not yet been delivered|"
    r"mail not delivered|undelivered|delivery failed|nicht zustellbar|non remis|"
    r"non recens|automatically rejected|mail failure|delivery status|warning: message", re.IGNORECASE)

#: phrases of delivery failure in bounce bodies
BOUNCE_BODY = re.compile(
    r"could not be delivered|couldn't be delivered|was not delivered|undeliverable|undelivered|"
    r"delivery (?:to the following recipients? )?(?:has )?failed|delivery failure|permanent(?: fatal)? error|"
    r"user unknown|unknown user|no such user|mailbox (?:is )?(?:full|unavailable)|over quota|"
    r"recipient address rejected|returned to sender|following addresses? had (?:permanent|transient)|"
    r"message (?:has been |was )?(?:delayed|postponed)|has not yet been delivered|^diagnostic-code:|"
    r"^final-recipient:|wasn't able to deliver|was not able to deliver|unable to deliver|could not deliver|"
    r"failed to deliver|this is the mail system at host|delivery status notification|host unknown|"
    r"returned mail|mail delivery failed|message could not be delivered|non remis|nicht zugestellt|"
    r"could not be sent|addressee unknown|unknown recipient|no mailbox|does not exist|"
    r"temporary failure|retry timeout exceeded|delivery attempts will continue",
    re.IGNORECASE | re.MULTILINE)

#: forward prefixes: a person forwarding a bounce ("Fwd: Undelivered Mail") is asking for help
_FORWARDED = re.compile(r"^\s*(?:fwd?|wg|tr|rv|enc|doorst|vs|vb|i)\s*(?:\[\d+\])?\s*:", re.IGNORECASE)
_STATUS = re.compile(r"(?im)^\s*status:\s*([245]\.\d{1,3}\.\d{1,3})")
_FINAL_RECIPIENT = re.compile(r"(?im)^\s*(?:final|original)-recipient:\s*(?:rfc822\s*;)?\s*<?([^\s<>;]+@[^\s<>;]+?)>?\s*$")
_ACTION = re.compile(r"(?im)^\s*action:\s*(failed|delayed|delivered|relayed|expanded)")
_MID_LINE = re.compile(r"(?im)^\s*message-id:\s*<?([^\s<>]+@[^\s<>]+?)>?\s*$")
_EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63})+")


@dataclass
class BounceInfo:
    """What a bounce says: the failed recipient, the status (DSN code or failed/delayed), the
    Message-IDs of the returned mail."""

    reason: str
    recipient: str = ""
    status: str = ""
    returned_message_ids: list[str] = field(default_factory=list)


def _sender_local(message: ParsedMessage) -> str:
    return message.from_.email.partition("@")[0] if message.from_ else ""


def _report_type(message: ParsedMessage) -> str:
    raw = message.header("Content-Type") or ""
    m = re.search(r"report-type\s*=\s*\"?([\w-]+)", raw, re.IGNORECASE)
    return m.group(1).lower() if m else ""


def _report_texts(message: ParsedMessage) -> list[str]:
    """Body text plus the text of delivery-status and returned-message attachments."""
    texts = [message.body_text or ""]
    for att in message.attachments:
        if att.content_type in ("message/delivery-status", "text/rfc822-headers", "message/rfc822",
                                "message/global-delivery-status", "message/global-headers") \
                or att.filename.lower().endswith((".eml", ".dsn")):
            texts.append(att.data[:200_000].decode("utf-8", "replace"))
    return texts


def bounce_reason(message: ParsedMessage) -> str | None:
    """Why ``message`` is a delivery failure / delay notice (a bounce, DSN), or None."""
    ctype = message.content_type
    if ctype == "multipart/report" and _report_type(message) in ("delivery-status", "global-delivery-status"):
        return "delivery status notification (multipart/report; report-type=delivery-status)"
    local = _sender_local(message)
    if local and DAEMON_LOCALPARTS.match(local):
        return f"sent by the mail system ({message.from_.email if message.from_ else ''})"
    if any(a.content_type in ("message/delivery-status", "message/global-delivery-status")
           for a in message.attachments):
        return "contains a delivery status report"
    subject = message.subject or ""
    forwarded = bool(_FORWARDED.match(subject))
    return_path = (message.header("Return-Path") or "").strip()
    subject_says = bool(BOUNCE_SUBJECT.search(subject))
    body_says = bool(BOUNCE_BODY.search((message.body_text or "")[:20_000]))
    if forwarded:
        return None
    if return_path in ("<>", "") and message.header("Return-Path") is not None and (subject_says or body_says):
        return "null sender (Return-Path: <>) with a delivery failure notice"
    if re.search(r"mailer-daemon|postmaster", return_path, re.IGNORECASE) and (subject_says or body_says):
        return f"returned by the mail system (Return-Path: {return_path})"
    if subject_says and (body_says or not re.match(r"^\s*re\s*:", subject, re.IGNORECASE)):
        return f"delivery failure notice (subject {subject[:60]!r})"
    return None


def bounce_info(message: ParsedMessage, reason: str) -> BounceInfo:
    """Details of a bounce: failed recipient, status and the returned Message-IDs."""
    texts = _report_texts(message)
    joined = "\n".join(texts)
    info = BounceInfo(reason=reason)
    m = _FINAL_RECIPIENT.search(joined)
    if m:
        info.recipient = m.group(1).lower()
    else:
        ours = {message.from_.email} if message.from_ else set()
        ours |= {a.email for a in message.to}
        for email in _EMAIL.findall(message.body_text or ""):
            if email.lower() not in ours and not DAEMON_LOCALPARTS.match(email.partition("@")[0]):
                info.recipient = email.lower()
                break
    status = _STATUS.search(joined)
    action = _ACTION.search(joined)
    if status:
        info.status = status.group(1)
    elif action:
        info.status = action.group(1).lower()
    else:
        delayed = re.search(r"delay|postpone|not yet been delivered|will continue", joined, re.IGNORECASE)
        info.status = "delayed" if delayed else "failed"
    own_id = message.message_id
    ids = [mid for mid in _MID_LINE.findall(joined) if mid != own_id]
    info.returned_message_ids = list(dict.fromkeys(ids))
    return info


_BULK_PRECEDENCE = ("bulk", "junk", "list")


def auto_reply_reason(message: ParsedMessage) -> tuple[str, str] | None:
    """``(kind, reason)`` when ``message`` was sent automatically (RFC 3834 and common practice):
    ``auto_reply`` (out-of-office, autoresponders, read receipts) or ``bulk`` (lists, newsletters)."""
    auto = (message.header("Auto-Submitted") or "").strip()
    if auto and auto.split(";")[0].strip().lower() != "no":
        return "auto_reply", f"automatic mail (Auto-Submitted: {auto[:40]})"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Auto-Response-Suppress"):
        if message.header(name) is not None:
            return "auto_reply", f"automatic mail ({name} header)"
    precedence = (message.header("Precedence") or message.header("X-Precedence") or "").strip().lower()
    if precedence == "auto_reply":
        return "auto_reply", "automatic mail (Precedence: auto_reply)"
    if message.content_type == "multipart/report" and _report_type(message) == "disposition-notification":
        return "auto_reply", "read receipt (disposition notification)"
    if precedence in _BULK_PRECEDENCE:
        return "bulk", f"bulk mail (Precedence: {precedence})"
    for name in ("List-Id", "List-Unsubscribe"):
        if message.header(name) is not None:
            return "bulk", f"mailing-list mail ({name} header)"
    return None
