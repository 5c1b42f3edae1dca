"""Verify end to end: a test mail through a department's whole mail path, reported leg by leg.

:func:`verify_end_to_end` sends a test mail From the department's sender address to that same
address through its outgoing settings (``helpdesk_deliver_reply``, then the provider's
``deliver``: the path of every reply), then runs import cycles of the department until the
import has seen that mail, recognised by its unique Message-ID. The test mail carries
``X-Helpdesk-Loop`` (and comes from the department's own address), so the importer's loop
protection skips it: it is deleted from the mailbox like any handled mail and never becomes a
ticket or an acknowledgement. Each leg (``sent``, ``seen``, ``removed``) is reported with the
specific error where it fails.

The import cycles are ordinary ones (as "Import now"): other mail waiting in the mailbox is
imported by them too. When another worker holds the mailbox's lease, its cycle imports the
test mail instead, and the ledger still shows it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from helpdesk_core.app import Helpdesk
from helpdesk_core.errors import ConfigurationError, NotFoundError
from helpdesk_core.hooktypes import OutgoingMail
from helpdesk_core.inbound.cycle import run_cycle
from helpdesk_core.mail.compose import build_message
from helpdesk_core.mail.message import Address
from helpdesk_core.models import Department, LedgerEntry
from helpdesk_core.models.imports import ledger_key
from helpdesk_core.outbound.delivery import deliver
from helpdesk_core.services.permissions import Actor, require_manage_settings

#: header naming the check a test mail belongs to
VERIFY_HEADER = "X-Helpdesk-Verify"
#: how long the import looks for the test mail by default (seconds)
DEFAULT_TIMEOUT = 30.0


def _leg(name: str, ok: bool | None, detail: str) -> dict[str, Any]:
    return {"leg": name, "ok": ok, "detail": detail}


def verify_end_to_end(app: Helpdesk, *, actor: Actor, department_id: int, timeout: float = DEFAULT_TIMEOUT,
                      interval: float = 2.0, sleep: Callable[[float], None] = time.sleep,
                      clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Send a test mail to the department's own address and import until it is seen (see the
    module doc). Opens and commits its own sessions; needs Manage Settings for the department.

    Returns ``{"department", "message_id", "ok", "legs": [{"leg", "ok", "detail"}, ...]}`` with
    the legs ``sent``, ``seen`` and ``removed`` in order; ``ok`` of a leg not reached is None.
    Raises ConfigurationError when the department has no mailbox.
    """
    with app.session() as session:
        dept = session.get(Department, department_id)
        if dept is None:
            raise NotFoundError(f"No department with id {department_id}.")
        require_manage_settings(actor, dept)
        if dept.mailbox is None:
            raise ConfigurationError(f"Department {dept.name!r} has no mailbox: configure it first.",
                                     details={"hint": "set_mailbox", "department": dept.name})
        name, address = dept.name, dept.sender_address
        token = secrets.token_hex(8)
        message_id = f"verify.{token}@{address.rpartition('@')[2] or 'helpdesk.invalid'}"
        text = (f"This is a test mail of the help desk for department {name}: it checks that mail sent "
                "from the department comes back into its mailbox. It is deleted by the import and "
                "never becomes a ticket.\n")
        msg = build_message(mail_from=Address(email=address, name=name), to=[Address(email=address)], cc=[],
                            subject=f"Help desk end-to-end check {token}", text=text, html=f"<p>{text}</p>",
                            message_id=message_id, date=datetime.now(UTC), auto_submitted="auto-generated",
                            extra_headers=[(VERIFY_HEADER, token)])
        mail = OutgoingMail(id=0, mail_from=address, recipients=[address], raw=msg.as_bytes(),
                            message_id=f"<{message_id}>")
        [error] = deliver(app, dept, [mail])
        session.commit()  # a provider may have stored rotated secrets
    report: dict[str, Any] = {"department": name, "message_id": f"<{message_id}>", "ok": False, "legs": []}
    legs: list[dict[str, Any]] = report["legs"]
    if error is not None:
        legs += [_leg("sent", False, f"Not sent: {error.message}"), _leg("seen", None, "not tried"),
                 _leg("removed", None, "not tried")]
        return report
    legs.append(_leg("sent", True, f"Sent from {address} to {address} through the outgoing mail settings."))

    key = ledger_key(message_id, "")
    deadline = clock() + timeout
    while True:
        result = run_cycle(app, department_id)
        with app.session() as session:
            entry = session.scalar(select(LedgerEntry).where(LedgerEntry.department_id == department_id,
                                                             LedgerEntry.key == key))
            outcome, reason = (entry.outcome, entry.reason or "") if entry is not None else (None, "")
        if outcome is not None:
            break
        if result.error and result.error_kind != "leased":
            legs += [_leg("seen", False, f"The import failed: {result.error}"), _leg("removed", None, "not tried")]
            return report
        if clock() >= deadline:
            legs += [_leg("seen", False, f"Not seen within {timeout:g} s: the mail was sent but has not arrived "
                                         f"in the mailbox; check that mail to {address} is delivered into "
                                         "the mailbox the department imports."),
                     _leg("removed", None, "not tried")]
            return report
        sleep(interval)
    legs.append(_leg("seen", True, "Seen by the import."))
    if outcome != "skipped":
        what = "became a ticket message" if outcome == "imported" else f"was {outcome}"
        legs.append(_leg("removed", False, f"The test mail {what} ({reason or 'no reason given'}): a plugin's "
                                           "classification did not recognise the help desk's own mail."))
        return report
    if result.ran and result.error:
        legs.append(_leg("removed", False, f"Not deleted from the mailbox: {result.error}"))
        return report
    legs.append(_leg("removed", True, "Deleted from the mailbox without making a ticket."))
    report["ok"] = True
    return report
