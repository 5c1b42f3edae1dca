"""Sender authentication from ``Authentication-Results`` (RFC 8601), parsed with ``authres``.

Anyone can write an ``Authentication-Results`` header into a mail, so only the headers added by the
receiving server the operator names for the mailbox (its *authserv-id*, the mailbox setting
``authserv_id``, e.g. ``mx.school.test``) are read; without that setting every such header is
ignored and the verdict is ``"none"``.

Verdict (:func:`sender_verdict`): ``"fail"`` when that server says ``dmarc=fail``, or ``dkim=fail``
with no ``dkim=pass``; ``"pass"`` when it says ``dmarc=pass`` or ``dkim=pass``; else ``"none"``.
What a failed sender may do: ``docs/threading.md`` (a ``fail`` follow-up never joins a ticket).
"""

from __future__ import annotations

from collections.abc import Iterable

import authres

__all__ = ["sender_verdict"]


def _results(headers: Iterable[tuple[str, str]], authserv_id: str) -> list[tuple[str, str]]:
    wanted = authserv_id.strip().lower()
    found: list[tuple[str, str]] = []
    for name, value in headers:
        if name.lower() != "authentication-results":
            continue
        try:
            parsed = authres.AuthenticationResultsHeader.parse_value(" ".join(str(value).split()))
        except Exception:  # noqa: BLE001 - a malformed header (anyone can write one) says nothing
            continue
        if str(parsed.authserv_id or "").lower() != wanted:
            continue
        found += [(str(r.method).lower(), str(r.result).lower()) for r in parsed.results]
    return found


def sender_verdict(headers: Iterable[tuple[str, str]], authserv_id: str | None) -> str:
    """``"pass"``, ``"fail"`` or ``"none"`` for the mail with ``headers`` (name, value) as judged by
    the receiving server ``authserv_id`` (None or empty: ``"none"``, nothing is trusted)."""
    if not authserv_id or not authserv_id.strip():
        return "none"
    results = _results(headers, authserv_id)
    dmarc = {res for method, res in results if method == "dmarc"}
    dkim = {res for method, res in results if method == "dkim"}
    if "fail" in dmarc or ("fail" in dkim and "pass" not in dkim):
        return "fail"
    if "pass" in dmarc or "pass" in dkim:
        return "pass"
    return "none"
