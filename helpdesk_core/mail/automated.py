"""Loop and noise detection on parsed inbound mail: bounces (DSNs, and bounce notifications relayed
as JSON by cloud mail services), auto-replies (headers, or a localized subject alone), bulk mail,
feedback/abuse reports (ARF), DMARC failure and aggregate reports, mailing-list manager notices and
mobile-carrier / gateway error notices.

Pure functions of a :class:`~helpdesk_core.mail.message.ParsedMessage`; the default classifier
(:mod:`helpdesk_core.defaults.classify`) turns them into a
:class:`~helpdesk_core.hooktypes.Classification`. The rules are documented in ``docs/threading.md``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

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


# --------------------------------------------------------------------------- JSON notifications

#: events of cloud mail services' JSON notifications, by what they mean
_JSON_BOUNCE_EVENTS = {"bounce", "bounced", "dropped", "deferred", "blocked", "failed", "rejected", "reject",
                       "deliverydelay", "hardbounce", "softbounce", "delayed", "permanent_fail", "temporary_fail"}
_JSON_COMPLAINT_EVENTS = {"complaint", "spamreport", "complained", "spamcomplaint", "spam_complaint", "abuse"}
_JSON_EVENT_KEYS = ("notificationType", "eventType", "event", "RecordType", "type", "Type")


@dataclass
class JsonNotification:
    """A cloud mail service's event relayed by mail (Amazon SES via SNS, SendGrid, Mailgun, Postmark,
    SparkPost …): the event (lower-case), the service, the recipient and our Message-IDs it names."""

    service: str
    event: str
    recipient: str = ""
    message_ids: list[str] = field(default_factory=list)

    @property
    def is_bounce(self) -> bool:
        return self.event in _JSON_BOUNCE_EVENTS

    @property
    def is_complaint(self) -> bool:
        return self.event in _JSON_COMPLAINT_EVENTS


def _json_payloads(message: ParsedMessage) -> list[Any]:
    """JSON documents the mail consists of: the body text (a JSON document at its start, as Amazon
    SNS sends it before its unsubscribe footer), or an ``application/json`` attachment."""
    candidates = [(message.body_text or "").strip()]
    candidates += [a.data[:1_000_000].decode("utf-8", "replace").strip() for a in message.attachments
                   if a.content_type == "application/json" or a.filename.lower().endswith(".json")]
    found: list[Any] = []
    for text in candidates:
        if len(text) > 1_000_000 or text[:1] not in ("{", "["):
            continue
        try:
            found.append(json.JSONDecoder().raw_decode(text)[0])
        except ValueError:
            continue
    return found


def _json_event(doc: Any, depth: int = 0) -> tuple[str, str, dict[str, Any]] | None:
    """(service, event, the event's object) of one decoded JSON document, or None."""
    if depth > 3:
        return None
    if isinstance(doc, list):
        for item in doc[:50]:
            found = _json_event(item, depth + 1)
            if found is not None:
                return found
        return None
    if not isinstance(doc, dict):
        return None
    if doc.get("Type") == "Notification" and isinstance(doc.get("Message"), str):  # Amazon SNS envelope
        try:
            inner = json.loads(doc["Message"])
        except ValueError:
            inner = None
        return _json_event(inner, depth + 1) if inner is not None else None
    for wrapper in ("event-data", "msys", "message_event", "mandrill_events"):
        if isinstance(doc.get(wrapper), (dict, list)):
            found = _json_event(doc[wrapper], depth + 1)
            if found is not None:
                return found
    service = ("Amazon SES" if "notificationType" in doc or "eventType" in doc
               else "Mailgun" if "recipient-domain" in doc or "delivery-status" in doc
               else "Postmark" if "RecordType" in doc else "SendGrid" if "sg_event_id" in doc else "a mail service")
    for key in _JSON_EVENT_KEYS:
        value = doc.get(key)
        if isinstance(value, dict):  # SparkPost: {"msys": {"message_event": {"type": "bounce"}}}
            continue
        event = str(value or "").strip().lower().replace(" ", "")
        if event in _JSON_BOUNCE_EVENTS | _JSON_COMPLAINT_EVENTS | {"delivery", "delivered", "send", "open",
                                                                       "click", "processed", "accepted"}:
            if event in ("delivery", "delivered", "send", "open", "click", "processed", "accepted") \
                    and not any(k in doc for k in ("mail", "email", "recipient", "sg_message_id", "message")):
                continue
            return service, event, doc
    return None


def json_notification(message: ParsedMessage) -> JsonNotification | None:
    """The cloud mail service event this mail relays as JSON, or None (see :class:`JsonNotification`)."""
    for doc in _json_payloads(message):
        found = _json_event(doc)
        if found is None:
            continue
        service, event, obj = found
        text = json.dumps(obj)
        recipients = re.findall(r'"(?:emailAddress|email|recipient|Email)"\s*:\s*"([^"]+@[^"]+)"', text)
        ids = re.findall(r'"(?:messageId|Message-ID|message-id|MessageID|smtp-id)"\s*:\s*"<?([^"<>\s]+@[^"<>\s]+)>?"',
                         text, re.IGNORECASE)
        ids += re.findall(r'"name"\s*:\s*"Message-ID"\s*,\s*"value"\s*:\s*"<?([^"<>\s]+)>?"', text, re.IGNORECASE)
        return JsonNotification(service, event, recipients[0].lower() if recipients else "",
                                list(dict.fromkeys(ids)))
    return None


def bounce_reason(message: ParsedMessage) -> str | None:
    """Why ``message`` is a delivery failure / delay notice (a bounce, DSN, or a JSON bounce
    notification of a cloud mail service), or None. Feedback and DMARC reports are not bounces
    (:func:`automated_reason` names them), even from ``postmaster@``. Computed once per message
    (``ParsedMessage.bounce_verdict``)."""
    if message.bounce_verdict is None:
        message.bounce_verdict = (_bounce_reason(message),)
    return message.bounce_verdict[0]


def _bounce_reason(message: ParsedMessage) -> str | None:
    ctype = message.content_type
    if _report_kind(message) is not None:
        return None
    relayed = json_notification(message)
    if relayed is not None and relayed.is_bounce:
        return f"bounce notification relayed as JSON ({relayed.service}: {relayed.event})"
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
    local, _at, domain = (message.from_.email if message.from_ else "").partition("@")
    carrier = bool(_CARRIER_DOMAINS.search(domain) or _SMS_LOCALPART.search(local))
    if (carrier or not subject_says) and (gateway_notice_reason(message) or list_notice_reason(message)):
        return None  # named by automated_reason with its own kind; an SMTP gateway's bounce stays a bounce
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
    relayed = json_notification(message)
    if relayed is not None:
        info.recipient = relayed.recipient or info.recipient
        info.status = relayed.event
        ids = relayed.message_ids + ids
    info.returned_message_ids = list(dict.fromkeys(ids))
    return info


_BULK_PRECEDENCE = ("bulk", "junk", "list")

# --------------------------------------------------------------------------- reports and notices

_FEEDBACK_TYPE = re.compile(r"(?im)^\s*feedback-type:\s*([\w-]+)")
_ARF_VERSION = re.compile(r"(?im)^\s*version:\s*1(?:\.0)?\s*$")
#: Microsoft's JMRP and similar provider forwards of a complaint
_PROVIDER_COMPLAINT = re.compile(r"^\s*complaint about message from\s+[\d.:a-f]+", re.IGNORECASE)
_DMARC_SUBJECT = re.compile(r"^\s*(?:\[[^\]]*\]\s*)?report\s+domain\s*:\s*\S+", re.IGNORECASE)
#: RFC 7489 aggregate report file names: receiver!policy-domain!begin!end[!id].xml[.gz|.zip]
_DMARC_FILE = re.compile(r"^[^!\s]+![^!\s]+!\d{9,}!\d{9,}(?:![^.\s]+)?\.(?:xml|zip|gz|xml\.gz|xml\.zip)$",
                         re.IGNORECASE)
_DMARC_TYPES = ("application/zip", "application/gzip", "application/x-gzip", "application/x-zip-compressed",
                "text/xml", "application/xml")


def _report_kind(message: ParsedMessage) -> tuple[str, str] | None:
    """``("feedback_report" | "dmarc_report", reason)`` for ARF feedback reports (RFC 5965, also
    when forwarded by a mailbox provider), DMARC failure (RFC 6591) and aggregate reports."""
    report = _report_type(message)
    arf_parts = [a for a in message.attachments if a.content_type == "message/feedback-report"]
    texts = [a.data[:20_000].decode("utf-8", "replace") for a in arf_parts]
    body = (message.body_text or "")[:20_000]
    inline_arf = bool(_FEEDBACK_TYPE.search(body) and _ARF_VERSION.search(body))
    if report == "feedback-report" or arf_parts or inline_arf:
        m = _FEEDBACK_TYPE.search("\n".join(texts) + "\n" + body)
        feedback = (m.group(1).lower() if m else "abuse")
        if feedback == "auth-failure":
            return "dmarc_report", "DMARC failure report (RFC 6591, Feedback-Type: auth-failure)"
        return "feedback_report", f"feedback/abuse report (ARF, RFC 5965, Feedback-Type: {feedback})"
    subject = message.subject or ""
    if _PROVIDER_COMPLAINT.match(subject) and any(a.content_type == "message/rfc822" for a in message.attachments):
        return "feedback_report", f"complaint forwarded by a mailbox provider (subject {subject[:60]!r})"
    reports = [a for a in message.attachments
               if _DMARC_FILE.match(a.filename) or (a.content_type in _DMARC_TYPES and b"<report_metadata" in a.data[:4096])]
    if reports or (_DMARC_SUBJECT.match(subject) and any(a.content_type in _DMARC_TYPES for a in message.attachments)):
        return "dmarc_report", f"DMARC aggregate report (subject {subject[:60]!r})"
    return None


#: local parts of mailing-list managers (Mailman, LISTSERV, Sympa, Majordomo, ezmlm …): their mail
#: is always a notice
LIST_MANAGER_LOCALPARTS = re.compile(
    r"^(?:mailman|mailman-owner|listserv|listproc|sympa|sympa-request|majordomo|majordomo-owner|ezmlm|lyris|"
    r"list-?manager|listmaster|[\w.-]+-bounces(?:\+[^@]*)?)$", re.IGNORECASE)
#: list addresses that people may also use (``it-request@``): a notice only with a notice's words
_LIST_ROLE_LOCALPARTS = re.compile(r"^(?:owner-[\w.-]+|[\w.-]+-owner|[\w.-]+-request|[\w.-]+-admin)$", re.IGNORECASE)
_LIST_NOTICE = re.compile(
    r"you are not (?:a )?(?:member|subscribed)|not a member of|non-?member (?:submission|post)|loop alert|"
    r"mail loop detected|loop detected|awaits moderator approval|requires? (?:moderator )?approval|held for moderation|"
    r"(?:post|posting|message) (?:to [^\n]{1,80} )?(?:was |has been )?rejected|rejected posting|"
    r"uncaught bounce notification|confirm your subscription|subscription (?:request|confirmation)|"
    r"unknown (?:list|command)|no such list|list does not exist|your message to [^\n]{1,80} (?:awaits|was|has been)",
    re.IGNORECASE)


def list_notice_reason(message: ParsedMessage) -> str | None:
    """Why ``message`` is a notice of a mailing-list manager (not a member, loop alert, held for
    moderation …), or None."""
    local = _sender_local(message)
    sender = message.from_.email if message.from_ else ""
    if local and LIST_MANAGER_LOCALPARTS.match(local):
        return f"mailing-list manager notice (from {sender})"
    if (message.header("X-List-Administrivia") or "").strip().lower() == "yes":
        return "mailing-list manager notice (X-List-Administrivia: yes)"
    text = (message.subject or "") + "\n" + (message.body_text or "")[:5000]
    domain = sender.rpartition("@")[2]
    listish = bool(domain.startswith(("lists.", "list.")) or domain.endswith("googlegroups.com")
                   or message.header("X-Mailman-Version") or NOREPLY_LOCALPARTS.match(local or "")
                   or _LIST_ROLE_LOCALPARTS.match(local or "")
                   or (message.header("Auto-Submitted") or "no").strip().lower() != "no")
    if listish and _LIST_NOTICE.search(text):
        return f"mailing-list manager notice (from {sender})"
    return None


#: mobile-carrier e-mail gateways (SMS/MMS to mail) and their error notices
_CARRIER_DOMAINS = re.compile(
    r"(?:^|\.)(?:vtext\.com|vzwpix\.com|txt\.att\.net|mms\.att\.net|tmomail\.net|messaging\.sprintpcs\.com|"
    r"pm\.sprint\.com|mymetropcs\.com|sms\.[\w.-]+|mms\.[\w.-]+|mmsc\.[\w.-]+|[\w.-]+\.sms\.[\w.-]+|"
    r"vmobl\.com|msg\.fi\.google\.com|email\.uscc\.net|sms\.myboostmobile\.com|text\.republicwireless\.com)$",
    re.IGNORECASE)
_GATEWAY_LOCALPARTS = re.compile(
    r"^(?:[\w.-]*gateway[\w.-]*|mmsc|mms|sms|smsc|sms-?relay|mms-?relay|fax-?server|faxmaster|ipgw)$", re.IGNORECASE)
#: senders of SMS/MMS gateways (as opposed to SMTP gateways, whose failure notices are bounces)
_SMS_LOCALPART = re.compile(r"(?:^|[-_.])(?:sms|mms|mmsc|smsc|text)(?:$|[-_.])", re.IGNORECASE)
_GATEWAY_ERROR = re.compile(
    r"could not be delivered|couldn't be delivered|not be delivered to the (?:phone|handset|mobile|device)|"
    r"is not a valid (?:mobile|wireless|cell|phone)|not a valid (?:subscriber|number|recipient)|invalid (?:mobile|phone|destination) number|"
    r"unable to deliver|delivery (?:has )?failed|message (?:was )?rejected|gateway (?:error|failure)|"
    r"(?:sms|mms|text) (?:message )?(?:delivery )?(?:failed|failure|error)|error sending (?:the )?message|"
    r"message could not be sent|not (?:a )?(?:reachable|supported)|subscriber (?:unknown|not found)|"
    r"\berror\b[^\n]{0,40}\b(?:code|occurred)\b|undeliverable|failure notice",
    re.IGNORECASE)


def gateway_notice_reason(message: ParsedMessage) -> str | None:
    """Why ``message`` is an error notice of a mobile carrier or another mail gateway, or None.
    A person texting from a phone through a carrier's gateway is ordinary mail: only a notice
    that says something failed counts."""
    sender = message.from_.email if message.from_ else ""
    local, _at, domain = sender.partition("@")
    if not (_CARRIER_DOMAINS.search(domain) or _GATEWAY_LOCALPARTS.match(local)):
        return None
    text = (message.subject or "") + "\n" + (message.body_text or "")[:5000]
    if _GATEWAY_ERROR.search(text):
        return f"carrier/gateway error notice (from {sender})"
    return None


#: subjects that alone mark an automatic reply (out of office, vacation, autoresponder), by language
AUTO_REPLY_SUBJECT = re.compile(
    r"^\s*(?:\[[^\]]{0,40}\]\s*)?(?:"
    r"auto(?:matic)?[- ]?(?:reply|response|answer)|autoreply|autoresponse|auto[- ]?responder|"
    r"out of (?:the )?office(?: auto ?reply| autoresponse| reply)?|ooo|away from (?:the )?office|"
    r"vacation (?:reply|notice|message|response)|i am (?:currently )?(?:out of|away from) the office|"
    r"automatische antwort|abwesenheitsnotiz|abwesenheit|automatische abwesenheitsnotiz|"
    r"r[ée]ponse automatique|absence du bureau|absent du bureau|message d'absence|"
    r"respuesta autom[áa]tica|fuera de la oficina|ausente de la oficina|"
    r"risposta automatica|fuori (?:sede|ufficio)|"
    r"automatisch antwoord|afwezigheidsbericht|niet aanwezig|buiten kantoor|"
    r"resposta autom[áa]tica|fora do escrit[óo]rio|aus[êe]ncia|"
    r"odpowied[źz] automatyczna|automatyczna odpowied[źz]|poza biurem|"
    r"autosvar|automatisk svar|frånvaro|fravær|automaattinen vastaus|poissa|"
    r"automatick[áa] odpov[ěe]d|automatikus v[áa]lasz|"
    r"αυτόματη απάντηση|автоответ|автоматический ответ|otomatik (?:yanıt|cevap)|"
    r"自動応答|自動返信|不在通知|自动回复|自動回覆|自动答复|자동 ?응답|부재중"
    r")\s*(?:[:：\-–—(]|$)", re.IGNORECASE)
#: local parts of senders that never read replies (used with Precedence: bulk/junk/list)
NOREPLY_LOCALPARTS = re.compile(
    r"^(?:no-?reply|do-?not-?reply|donotreply|noreply[\w.+-]*|no_reply|bounces?|mailer|daemon|"
    r"auto-?mailer|automailer|notifications?|alerts?)$", re.IGNORECASE)


def automated_reason(message: ParsedMessage) -> tuple[str, str] | None:
    """``(kind, reason)`` for automated mail that is neither a bounce nor a plain auto-reply header
    case: ``feedback_report``, ``dmarc_report``, ``list_notice``, ``gateway_notice``, a JSON
    complaint (``feedback_report``) or other JSON event (``service_notification``)."""
    report = _report_kind(message)
    if report is not None:
        return report
    relayed = json_notification(message)
    if relayed is not None and relayed.is_complaint:
        return "feedback_report", f"complaint notification relayed as JSON ({relayed.service}: {relayed.event})"
    if relayed is not None and not relayed.is_bounce:
        return "service_notification", f"mail service event relayed as JSON ({relayed.service}: {relayed.event})"
    reason = list_notice_reason(message)
    if reason is not None:
        return "list_notice", reason
    reason = gateway_notice_reason(message)
    if reason is not None:
        return "gateway_notice", reason
    return None


def auto_reply_reason(message: ParsedMessage) -> tuple[str, str] | None:
    """``(kind, reason)`` when ``message`` was sent automatically (RFC 3834 and common practice):
    ``auto_reply`` (out-of-office, autoresponders, read receipts, or a localized auto-reply
    subject alone), ``bulk`` (lists, newsletters), or one of the kinds of :func:`automated_reason`
    (reports, list-manager and gateway notices), which are checked first."""
    specific = automated_reason(message)
    if specific is not None:
        return specific
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
        local = _sender_local(message)
        if local and (NOREPLY_LOCALPARTS.match(local) or DAEMON_LOCALPARTS.match(local)):
            return "bulk", f"automatic mail from a system address ({local}@…, Precedence: {precedence})"
        return "bulk", f"bulk mail (Precedence: {precedence})"
    for name in ("List-Id", "List-Unsubscribe"):
        if message.header(name) is not None:
            return "bulk", f"mailing-list mail ({name} header)"
    subject = message.subject or ""
    if AUTO_REPLY_SUBJECT.match(subject):
        return "auto_reply", f"automatic reply (subject {subject[:60]!r})"
    return None
