"""Sender authentication from ``Authentication-Results`` (RFC 8601), parsed with ``authres``.

Anyone can write an ``Authentication-Results`` header into a mail, so only the headers added by the
receiving server the operator names for the mailbox (its *authserv-id*, the mailbox setting
``authserv_id``, e.g. ``mx.school.test``) are read; without that setting every such header is
ignored and the verdict is ``"none"``.

Verdict (:func:`sender_verdict`): ``"fail"`` when that server says ``dmarc=fail``, or ``dkim=fail``
with no ``dkim=pass``; ``"pass"`` when it says ``dmarc=pass`` or ``dkim=pass``; else ``"none"``.
What a failed sender may do: ``docs/threading.md`` (a ``fail`` follow-up never joins a ticket).

Where no receiving server added results (Maildir, ``helpdesk ingest``), the General setting
``mail.verify_dkim`` (off by default) has us check the ``DKIM-Signature`` headers ourselves with
``dkimpy`` (:func:`dkim_verdict`): ``"pass"`` when a signature verifies and its ``d=`` aligns with the
From domain (the same domain or a parent of it), ``"fail"`` when signatures are present and none
verifies, ``"none"`` without a signature (or with only valid ones of other domains, or when the
key could not be looked up because DNS timed out: a temporary error proves nothing either way).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import authres

__all__ = ["dkim_verdict", "sender_verdict"]

log = logging.getLogger("helpdesk.authentication")

#: ``dnsfunc(name: bytes, timeout=5) -> bytes | None``: the TXT record of a DNS name (dkimpy's
#: interface, raising ``dkim.DnsTimeoutError`` on a timeout)
DnsFunc = Callable[..., "bytes | None"]

#: the lookup :func:`dkim_verdict` uses when given none (None: dkimpy's resolver, dnspython); read
#: at call time, so a test may replace it to serve its own keys
default_dnsfunc: DnsFunc | None = None


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


def aligned(signing_domain: str, from_domain: str) -> bool:
    """Relaxed alignment (RFC 7489 in spirit): ``d=`` is the From domain or a parent domain of it."""
    d = signing_domain.strip().rstrip(".").lower()
    f = from_domain.strip().rstrip(".").lower()
    return bool(d) and "." in d and (f == d or f.endswith("." + d))


def dkim_verdict(raw: bytes, from_domain: str | None, *, dnsfunc: DnsFunc | None = None) -> str:
    """Our own DKIM check of ``raw`` (the message as received): ``"pass"``, ``"fail"`` or ``"none"``
    (see the module doc). ``dnsfunc`` looks up the key's TXT record (default: dkimpy's resolver)."""
    # imported here, not with the module: dkimpy and dnspython add ~14 MB to every process's RSS,
    # and only a department with ``mail.verify_dkim`` on (off by default) ever needs them
    import dkim

    lookup: DnsFunc = dnsfunc or default_dnsfunc or dkim.get_txt
    timed_out: list[bytes] = []

    def txt(name: bytes, timeout: float = 5) -> bytes | None:
        try:
            return lookup(name, timeout=timeout)
        except dkim.DnsTimeoutError:
            timed_out.append(name)
            raise

    try:
        checker = dkim.DKIM(raw)
    except Exception:  # noqa: BLE001 - a message dkimpy cannot even parse carries no usable signature
        return "none"
    count = sum(1 for name, _value in checker.headers if name.lower() == b"dkim-signature")
    if count == 0:
        return "none"
    failed = 0
    for idx in range(count):
        before = len(timed_out)
        checker.domain = None
        try:
            ok = checker.verify(idx=idx, dnsfunc=txt)
        except dkim.DKIMException as exc:  # a malformed signature or key: it does not verify
            log.info("DKIM signature %d does not verify: %s", idx + 1, exc)
            ok = False
        domain = bytes(checker.domain or b"").decode("ascii", "replace")
        if ok:
            if from_domain and aligned(domain, from_domain):
                return "pass"
            continue  # a valid signature of another domain (a mailing list, a relay) says nothing here
        if len(timed_out) > before:
            log.info("DKIM key of %s could not be looked up (DNS timeout); signature ignored", domain)
            continue
        failed += 1
    return "fail" if failed == count else "none"
