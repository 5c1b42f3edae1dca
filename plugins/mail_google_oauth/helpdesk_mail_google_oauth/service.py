"""Admin flow for Google mailboxes, free of CLI concerns (the web admin calls the same functions).

Instance-wide settings (``settings`` table, secrets encrypted with the instance key):

* ``google.client`` -- the OAuth client: ``client_id``, encrypted ``client_secret``, endpoints;
* ``google.service_account`` -- a service account key for domain-wide delegation (encrypted);
* ``google.pending.<department id>`` -- a started consent (state, encrypted PKCE verifier,
  redirect URI), so a code pasted later (``--code``) can still be exchanged.

Connecting a department (:func:`start_consent` + :func:`finish_consent`, or
:func:`connect_service_account`) gets tokens, checks **whose** they are (token-info endpoint or
``id_token``) against the department's address, then saves through the core's ``set_mailbox``,
which first logs into IMAP with XOAUTH2 as that address: nothing is saved unless both checks pass.
Functions flush but never commit; the caller commits.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy.orm import Session

from helpdesk_core.app import Helpdesk
from helpdesk_core.errors import ConfigurationError
from helpdesk_core.models import Department, Setting
from helpdesk_core.services.departments import get_department, set_mailbox
from helpdesk_core.services.permissions import Actor, require_manage_settings

from .oauth import (
    GOOGLE_ENDPOINTS, Consent, ServiceAccountKey, consent_request, exchange_code, revoke,
    service_account_token, token_email,
)

__all__ = ["CLIENT_KEY", "SERVICE_ACCOUNT_KEY", "MAIL_OPTIONS", "set_client", "client_info", "set_service_account",
           "service_account_info", "start_consent", "finish_consent", "connect_service_account",
           "parse_pasted_code"]

CLIENT_KEY = "google.client"
SERVICE_ACCOUNT_KEY = "google.service_account"
PENDING_PREFIX = "google.pending."
#: a started consent can be finished with a pasted code for this long (seconds)
PENDING_TTL = 1800
#: mailbox settings an admin may override when connecting (tests point them at local servers)
MAIL_OPTIONS = ("imap_host", "imap_port", "imap_security", "folder", "smtp_host", "smtp_port",
                "smtp_security", "ca_file", "timeout")
ENDPOINT_OPTIONS = tuple(GOOGLE_ENDPOINTS)


def _get(session: Session, key: str) -> Any:
    row = session.get(Setting, key)
    return None if row is None else row.value


def _put(session: Session, key: str, value: Any) -> None:
    row = session.get(Setting, key)
    if row is None:
        session.add(Setting(key=key, value=value))
    else:
        row.value = value
    session.flush()


def _drop(session: Session, key: str) -> None:
    row = session.get(Setting, key)
    if row is not None:
        session.delete(row)
        session.flush()


def _clean(values: Mapping[str, Any] | None, allowed: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in (values or {}).items() if k in allowed and v not in (None, "")}


# ------------------------------------------------------------------------------ instance settings

def set_client(app: Helpdesk, session: Session, *, actor: Actor, client_id: str, client_secret: str,
               endpoints: Mapping[str, str | None] | None = None) -> None:
    """Store the instance's OAuth client (secret encrypted) and optional endpoint overrides."""
    require_manage_settings(actor)
    client_id, client_secret = client_id.strip(), client_secret.strip()
    if not client_id or not client_secret:
        raise ConfigurationError("Both --client-id and the client secret (on standard input) are needed: copy "
                                 "them from the OAuth client in the Google Cloud console.")
    encrypted = app.secrets.encrypt({"client_secret": client_secret}).decode()
    _put(session, CLIENT_KEY, {"client_id": client_id, "client_secret": encrypted,
                               "endpoints": _clean(endpoints, ENDPOINT_OPTIONS)})


def _client(app: Helpdesk, session: Session) -> tuple[str, str, dict[str, str]]:
    value = _get(session, CLIENT_KEY)
    if not value:
        raise ConfigurationError("No Google OAuth client is set: run 'helpdesk google set-client --client-id ID "
                                 "--client-secret-stdin' first (see the plugin README).")
    secret = app.secrets.decrypt(value["client_secret"].encode())["client_secret"]
    return value["client_id"], secret, {**GOOGLE_ENDPOINTS, **value.get("endpoints", {})}


def client_info(session: Session) -> dict[str, Any] | None:
    """The stored client without its secret (for ``helpdesk google show``), or None."""
    value = _get(session, CLIENT_KEY)
    sa = _get(session, SERVICE_ACCOUNT_KEY)
    return {"client_id": value["client_id"] if value else None,
            "endpoints": {**GOOGLE_ENDPOINTS, **(value or {}).get("endpoints", {})},
            "service_account": sa["client_email"] if sa else None}


def set_service_account(app: Helpdesk, session: Session, *, actor: Actor, key_json: str | bytes,
                        token_url: str | None = None) -> str:
    """Store a service account key file (encrypted); return its ``client_email``."""
    require_manage_settings(actor)
    try:
        key = ServiceAccountKey.from_json(key_json)
    except ValueError as exc:
        raise ConfigurationError(f"The key file cannot be used ({exc}): download a JSON key of the service "
                                 "account in the Google Cloud console (IAM > Service accounts > Keys).") from None
    raw = key_json.decode() if isinstance(key_json, bytes) else key_json
    _put(session, SERVICE_ACCOUNT_KEY, {
        "client_email": key.client_email, "token_url": token_url or key.token_uri,
        "key": app.secrets.encrypt({"key": raw}).decode()})
    return key.client_email


def service_account_info(app: Helpdesk, session: Session) -> tuple[ServiceAccountKey, str, str]:
    """``(key, raw JSON, token_url)`` of the stored service account."""
    value = _get(session, SERVICE_ACCOUNT_KEY)
    if not value:
        raise ConfigurationError("No service account is set: run 'helpdesk google set-service-account "
                                 "--key-file KEY.json' first (see the plugin README).")
    raw = app.secrets.decrypt(value["key"].encode())["key"]
    return ServiceAccountKey.from_json(raw), raw, value["token_url"]


# ------------------------------------------------------------------------------ connecting

def _address(dept: Department, email: str | None) -> str:
    address = (email or dept.sender_address or "").strip().lower()
    if "@" not in address.strip("@"):
        raise ConfigurationError(f"Give the mailbox address with --email (department {dept.name!r} has none).")
    return address


def start_consent(app: Helpdesk, session: Session, *, actor: Actor, department: str, redirect_uri: str,
                  email: str | None = None, endpoints: Mapping[str, str | None] | None = None) -> Consent:
    """Build the consent URL for the department's address and remember state and PKCE verifier."""
    dept = get_department(session, department)
    require_manage_settings(actor, dept)
    client_id, _secret, urls = _client(app, session)
    urls.update(_clean(endpoints, ENDPOINT_OPTIONS))
    address = _address(dept, email)
    consent = consent_request(client_id, redirect_uri, auth_url=urls["auth_url"], login_hint=address)
    _put(session, f"{PENDING_PREFIX}{dept.id}", {
        "state": consent.state, "redirect_uri": redirect_uri, "email": address, "created_at": int(time.time()),
        "verifier": app.secrets.encrypt({"v": consent.code_verifier}).decode()})
    return consent


def parse_pasted_code(text: str) -> tuple[str, str | None]:
    """``(code, state)`` from a pasted code or a whole redirect URL (``...?state=..&code=..``)."""
    text = text.strip()
    if "code=" in text or "error=" in text:
        query = {k: v[-1] for k, v in parse_qs(urlsplit(text).query or text.split("?", 1)[-1]).items()}
        if "error" in query:
            raise ConfigurationError(f"The redirect says access was not granted ({query['error']}): run "
                                     "'helpdesk department connect-google' again and approve access.")
        return query["code"], query.get("state")
    return text, None


def finish_consent(app: Helpdesk, session: Session, *, actor: Actor, department: str, code: str,
                   state: str | None = None, mail: Mapping[str, Any] | None = None,
                   endpoints: Mapping[str, str | None] | None = None) -> dict[str, Any]:
    """Exchange the code of the consent started last for this department, verify and save.

    ``state`` (when the redirect is at hand) must match the started consent. Returns the facts of
    the IMAP check (``waiting``) plus ``email``.
    """
    dept = get_department(session, department)
    require_manage_settings(actor, dept)
    pending = _get(session, f"{PENDING_PREFIX}{dept.id}")
    if not pending or pending["created_at"] + PENDING_TTL < time.time():
        raise ConfigurationError(f"No sign-in for {dept.name!r} was started in the last {PENDING_TTL // 60} "
                                 f"minutes: run 'helpdesk department connect-google {dept.name}' and use its URL.")
    if state is not None and state != pending["state"]:
        raise ConfigurationError("The redirect belongs to another sign-in (state mismatch): use the URL of the "
                                 f"latest 'helpdesk department connect-google {dept.name}'.")
    client_id, client_secret, urls = _client(app, session)
    urls.update(_clean(endpoints, ENDPOINT_OPTIONS))
    verifier = app.secrets.decrypt(pending["verifier"].encode())["v"]
    token = exchange_code(client_id, client_secret, token_url=urls["token_url"], code=code,
                          redirect_uri=pending["redirect_uri"], code_verifier=verifier)
    _drop(session, f"{PENDING_PREFIX}{dept.id}")  # a code works once: a retry needs a new sign-in
    address = pending["email"]
    if not token.get("refresh_token"):
        raise ConfigurationError("Google sent no refresh token, so the help desk could not keep access: remove "
                                 "the app's access in the Google account (Security > Third-party access) and "
                                 f"run 'helpdesk department connect-google {dept.name}' again.")
    _check_owner(token, address, dept, urls)
    config = {**_clean(mail, MAIL_OPTIONS), **urls, "email": address, "auth": "consent", "client_id": client_id}
    secrets = {"refresh_token": str(token["refresh_token"]), "client_secret": client_secret,
               "access_token": str(token["access_token"]), "access_token_expires_at": str(int(token["expires_at"])),
               "service_account_key": ""}
    facts = set_mailbox(app, session, actor=actor, department=dept.name, provider="google",
                        config=config, secrets=secrets, validate=True)
    return {**facts, "email": address}


def connect_service_account(app: Helpdesk, session: Session, *, actor: Actor, department: str,
                            email: str | None = None, mail: Mapping[str, Any] | None = None,
                            endpoints: Mapping[str, str | None] | None = None) -> dict[str, Any]:
    """Connect the department's mailbox through the stored service account (no consent screen)."""
    dept = get_department(session, department)
    require_manage_settings(actor, dept)
    key, raw, token_url = service_account_info(app, session)
    client = _get(session, CLIENT_KEY) or {}
    urls = {**GOOGLE_ENDPOINTS, **client.get("endpoints", {}), "token_url": token_url,
            **_clean(endpoints, ENDPOINT_OPTIONS)}
    address = _address(dept, email)
    token = service_account_token(key, subject=address, token_url=urls["token_url"])
    _check_owner(token, address, dept, urls)
    config = {**_clean(mail, MAIL_OPTIONS), **urls, "email": address, "auth": "service_account",
              "service_account": key.client_email}
    secrets = {"service_account_key": raw, "access_token": str(token["access_token"]),
               "access_token_expires_at": str(int(token["expires_at"])), "refresh_token": "", "client_secret": ""}
    facts = set_mailbox(app, session, actor=actor, department=dept.name, provider="google",
                        config=config, secrets=secrets, validate=True)
    return {**facts, "email": address}


def _check_owner(token: Mapping[str, Any], address: str, dept: Department, urls: Mapping[str, str]) -> None:
    """Refuse (and revoke) a token of another account, naming both addresses."""
    owner = token_email(token, tokeninfo_url=urls["tokeninfo_url"])
    if owner is None or owner == address:
        return  # unknown owner: the XOAUTH2 IMAP login as the address decides
    revoke(str(token.get("refresh_token") or token["access_token"]), revoke_url=urls["revoke_url"])
    raise ConfigurationError(
        f"The Google account that granted access is {owner}, but department {dept.name!r} uses {address}: "
        f"sign in as {address} in the consent screen and run 'helpdesk department connect-google "
        f"{dept.name}' again (or pass --email if the department's mailbox is another address). Nothing was saved.")
