"""General settings (attachments, message size, rate limits) stored in the ``settings`` table."""

from __future__ import annotations

import logging
import math
import string
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk_core.errors import ConfigurationError
from helpdesk_core.mail.parsing import MAX_PARTS
from helpdesk_core.models import Setting

if TYPE_CHECKING:
    from helpdesk_core.plugins import Hooks

log = logging.getLogger("helpdesk.settings")


@dataclass(frozen=True)
class SettingDef:
    key: str
    type: str
    default: Any
    help: str


SETTINGS: dict[str, SettingDef] = {s.key: s for s in [
    SettingDef("attachments.allowed_extensions", "list",
               ["pdf", "png", "jpg", "jpeg", "gif", "txt", "doc", "docx", "xls", "xlsx", "ppt", "pptx",
                "odt", "ods", "csv", "zip", "eml", "heic", "webp", "rtf"],
               "File extensions kept as attachments (comma-separated); others are removed and noted."),
    SettingDef("attachments.max_size_mb", "float", 10.0,
               "Largest attachment kept, in MB; larger ones are removed and noted."),
    SettingDef("mail.max_message_size_mb", "float", 50.0,
               "Largest message imported, in MB; larger ones are recorded as skipped and left a note."),
    SettingDef("mail.max_parts", "int", MAX_PARTS,
               "Most MIME parts decoded per message (0: no limit); the parts beyond it stay in the kept "
               "original and are listed as removed."),
    SettingDef("mail.ticket_reference_format", "str", "[Ticket #{number}]",
               "How the ticket reference is written in subjects; {number} is the ticket number."),
    SettingDef("mail.rate_limit_per_hour", "int", 20,
               "New tickets per sender per department per hour; beyond it mail is held (0: no limit)."),
    SettingDef("mail.unverified_followups", "str", "new_ticket",
               "A follow-up whose sender failed DKIM/DMARC at the receiving server: new_ticket (flagged "
               "sender_verified false) or hold (see docs/threading.md)."),
    SettingDef("mail.verify_dkim", "bool", False,
               "Check DKIM signatures ourselves (dkimpy, DNS lookups) when no receiving server's "
               "Authentication-Results (mailbox authserv_id) judged the mail, e.g. Maildir or ingest: "
               "a valid signature of the From domain verifies the sender, a failing one counts as "
               "dkim=fail (see docs/threading.md)."),
    SettingDef("mail.thread_matchers", "list", ["message_id", "subject_reference"],
               "Thread-matching strategies in the order they run (see docs/threading.md)."),
    SettingDef("mail.acknowledgements_per_hour", "int", 3,
               "Most automatic acknowledgements sent to one address per hour (all departments)."),
    SettingDef("mail.acknowledge_max_age_days", "int", 7,
               "Mail older than this many days (by its Date, or its arrival when the Date is missing or "
               "implausible) still becomes a ticket but gets no acknowledgement and no staff notification; "
               "nor does mail dated before its mailbox was configured (0: no age limit, only that rule)."),
]}


#: the placeholders ``mail.ticket_reference_format`` may use
REFERENCE_PLACEHOLDERS = ("number",)
#: largest value of a size setting in MB (1 TB: anything beyond is a typo)
MAX_MB = 1024 * 1024


#: how a bool setting may be written (``helpdesk settings set mail.verify_dkim on``)
_BOOLS = {"true": True, "on": True, "yes": True, "1": True, "false": False, "off": False, "no": False, "0": False}


def _coerce(defn: SettingDef, value: Any) -> Any:
    try:
        if defn.type == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            if isinstance(value, str) and value.strip().lower() in _BOOLS:
                return _BOOLS[value.strip().lower()]
            raise ValueError
        if defn.type == "list":
            if isinstance(value, str):
                value = [v.strip().lower().lstrip(".") for v in value.split(",") if v.strip()]
            return [str(v).lower().lstrip(".") for v in value]
        if defn.type == "float":
            if isinstance(value, bool):
                raise ValueError
            result = float(value)
            if not math.isfinite(result) or not 0 <= result <= MAX_MB:
                raise ValueError
            return result
        if defn.type == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            result = int(value)
            if result < 0:
                raise ValueError
            return result
        return str(value)
    except (TypeError, ValueError, OverflowError):
        meaning = {"float": f": a finite number from 0 to {MAX_MB}", "int": ": a whole number, 0 or more",
                   "list": ": a comma-separated list",
                   "bool": ": on or off (true/false, yes/no, 1/0)"}.get(defn.type, "")
        raise ConfigurationError(f"Setting {defn.key} takes a {defn.type}{meaning} (got {value!r}).") from None


def check_reference_format(value: str) -> str:
    """``mail.ticket_reference_format`` must hold ``{number}`` and no other placeholder (a
    literal brace is written ``{{`` or ``}}``), so that every reply can be given a reference."""
    key = "mail.ticket_reference_format"
    example = "write the ticket number as {number}, e.g. '[Ticket #{number}]'"
    try:
        fields = [(f, spec, conv) for _text, f, spec, conv in string.Formatter().parse(value) if f is not None]
    except ValueError as exc:
        raise ConfigurationError(f"Setting {key}: {value!r} is not a valid format ({exc}); {example} "
                                 "(a literal brace is written {{ or }}).") from None
    unknown = sorted({"{" + f + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"
                      for f, spec, conv in fields if (f, spec, conv) != ("number", "", None)})
    if unknown:
        raise ConfigurationError(f"Setting {key}: unknown placeholder(s) {', '.join(unknown)}; the only one is "
                                 f"{{number}}: {example} (a literal brace is written {{{{ or }}}}).")
    if not fields:
        raise ConfigurationError(f"Setting {key} must contain {{number}} (got {value!r}): {example}.")
    if not value.format(number=1).replace("1", "", 1).strip():
        raise ConfigurationError(f"Setting {key} must write something besides the number: {example}.")
    return value


def _stored(defn: SettingDef, value: Any) -> Any:
    """A stored value, or the default when it is no longer valid (stored before validation):
    a bad setting must not make every import cycle fail."""
    try:
        coerced = _coerce(defn, value)
        return check_reference_format(coerced) if defn.key == "mail.ticket_reference_format" else coerced
    except ConfigurationError as exc:
        log.warning("%s; using the default %r until it is set again", exc.message, defn.default)
        return defn.default


class GeneralSettings:
    """Read-mostly view of the settings table with defaults."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    @classmethod
    def load(cls, session: Session) -> GeneralSettings:
        stored = {row.key: row.value for row in session.scalars(select(Setting))}
        values = {k: _stored(d, stored[k]) if k in stored else d.default for k, d in SETTINGS.items()}
        values.update({k: v for k, v in stored.items() if k not in SETTINGS})
        return cls(values)

    def get(self, key: str, default: Any = None) -> Any:
        return self._values.get(key, default)

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    @property
    def allowed_extensions(self) -> set[str]:
        return set(self._values["attachments.allowed_extensions"])

    @property
    def max_attachment_bytes(self) -> int:
        return int(float(self._values["attachments.max_size_mb"]) * 1024 * 1024)

    @property
    def max_message_bytes(self) -> int:
        return int(float(self._values["mail.max_message_size_mb"]) * 1024 * 1024)

    @property
    def max_parts(self) -> int:
        """``mail.max_parts``: leaf MIME parts decoded per message, 0 for no limit."""
        return int(self._values["mail.max_parts"])

    @property
    def verify_dkim(self) -> bool:
        """``mail.verify_dkim``: check DKIM signatures ourselves where no server's results count."""
        return bool(self._values["mail.verify_dkim"])


def set_setting(session: Session, key: str, value: Any, *, hooks: Hooks | None = None) -> Any:
    """Validate and store one setting; return the stored value. Caller commits.

    ``hooks`` (the application's ``app.hooks``) validates plugin-provided names: the strategies of
    ``mail.thread_matchers`` must be registered thread matchers, so that key needs it.
    """
    defn = SETTINGS.get(key)
    if defn is None:
        raise ConfigurationError(f"Unknown setting {key!r}; known settings: {', '.join(sorted(SETTINGS))}.")
    coerced = _coerce(defn, value)
    if key == "mail.ticket_reference_format":
        coerced = check_reference_format(coerced)
    if key == "mail.unverified_followups" and coerced not in ("new_ticket", "hold"):
        raise ConfigurationError("mail.unverified_followups is new_ticket (a new ticket flagged "
                                 "sender_verified false) or hold (kept in 'helpdesk held list').")
    if key == "mail.thread_matchers":
        from helpdesk_core.inbound.matching import check_matcher_names

        if hooks is None:
            raise TypeError("set_setting('mail.thread_matchers', ...) needs hooks=app.hooks to know "
                            "the installed thread matchers.")
        coerced = check_matcher_names(hooks.thread_matchers, coerced)
    row = session.get(Setting, key)
    if row is None:
        session.add(Setting(key=key, value=coerced))
    else:
        row.value = coerced
    return coerced
