"""The OAuth pieces without a mail server: the local OAuth server's contract, token caching and
refresh, the loopback listener, configuration checks."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from helpdesk_core.errors import ConfigurationError, MailboxError
from helpdesk_core.providers.base import StoredSecrets
from helpdesk_core.testing.servers.oauth import OAuthServer
from helpdesk_mail_google_oauth.loopback import LoopbackReceiver
from helpdesk_mail_google_oauth.oauth import AccessTokens, consent_request, exchange_code
from helpdesk_mail_google_oauth.provider import GoogleProvider
from helpdesk_mail_google_oauth.service import parse_pasted_code


@pytest.fixture
def server() -> Iterator[OAuthServer]:
    with OAuthServer() as srv:
        yield srv


def consent_code(server: OAuthServer, client_id: str, email: str) -> tuple[str, str, str]:
    """(code, verifier, redirect_uri) after an approved consent, without following the redirect."""
    redirect_uri = "http://127.0.0.1:9/"
    consent = consent_request(client_id, redirect_uri, auth_url=server.endpoints["auth_url"], login_hint=email)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.build_opener(NoRedirect).open(consent.url, timeout=10)
    code, state = parse_pasted_code(info.value.headers["Location"])
    assert state == consent.state
    return code, consent.code_verifier, redirect_uri


def test_tokeninfo_answers_like_google(server):
    client_id, secret = server.add_client()
    code, verifier, redirect_uri = consent_code(server, client_id, "Boss@District.test")
    token = exchange_code(client_id, secret, token_url=server.endpoints["token_url"], code=code,
                          redirect_uri=redirect_uri, code_verifier=verifier)
    with urllib.request.urlopen(f"{server.url}/tokeninfo?access_token={token['access_token']}") as resp:
        assert json.load(resp)["email"] == "boss@district.test"
    server.expire_access_tokens()
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{server.url}/tokeninfo?access_token={token['access_token']}")
    assert info.value.code == 400 and json.load(info.value) == {"error": "invalid_token", "error_description": "Invalid Value"}


def test_pkce_verifier_is_checked_and_codes_work_once(server):
    client_id, secret = server.add_client()
    code, verifier, redirect_uri = consent_code(server, client_id, "a@district.test")
    with pytest.raises(MailboxError, match="invalid_grant"):
        exchange_code(client_id, secret, token_url=server.endpoints["token_url"], code=code,
                      redirect_uri=redirect_uri, code_verifier=verifier + "x")
    with pytest.raises(MailboxError, match="invalid_grant"):  # the code was spent by the failed try
        exchange_code(client_id, secret, token_url=server.endpoints["token_url"], code=code,
                      redirect_uri=redirect_uri, code_verifier=verifier)


def test_access_token_cache_refresh_ahead_rotation_and_revocation(server):
    client_id, secret = server.add_client()
    code, verifier, redirect_uri = consent_code(server, client_id, "a@district.test")
    token = exchange_code(client_id, secret, token_url=server.endpoints["token_url"], code=code,
                          redirect_uri=redirect_uri, code_verifier=verifier)
    saved: list[dict[str, str]] = []
    secrets = StoredSecrets({"refresh_token": token["refresh_token"], "client_secret": secret,
                             "access_token": token["access_token"],
                             "access_token_expires_at": str(int(time.time()) + 3600)}, saver=saved.append)
    config = {"email": "a@district.test", "auth": "consent", "client_id": client_id,
              "token_url": server.endpoints["token_url"]}
    tokens = AccessTokens(config, secrets)
    assert tokens.get() == token["access_token"] and tokens.from_cache and saved == []
    secrets["access_token_expires_at"] = str(int(time.time()) + 30)  # less than 60 s left: refresh now
    fresh = tokens.get()
    assert fresh != token["access_token"] and not tokens.from_cache
    [rotated] = server.refresh_tokens_of("a@district.test")
    assert saved[-1]["refresh_token"] == rotated != token["refresh_token"]
    assert server.token_owner(fresh) == "a@district.test"
    server.revoke_user("a@district.test")
    with pytest.raises(MailboxError) as info:
        tokens.get(force=True)
    assert info.value.kind == "needs_reauthorization" and "connect-google" in info.value.message
    assert secrets["refresh_token"] not in info.value.message


def test_loopback_checks_state():
    with LoopbackReceiver() as receiver:
        url = receiver.redirect_uri + "?state=forged&code=c"
        threading.Thread(target=lambda: _get(url), daemon=True).start()
        with pytest.raises(ConfigurationError, match="different state"):
            receiver.wait("expected", timeout=10)
    with LoopbackReceiver() as receiver:
        for path in ("favicon.ico", "?state=s&code=the-code"):
            threading.Thread(target=lambda p=path: _get(receiver.redirect_uri + p), daemon=True).start()
        assert receiver.wait("s", timeout=10) == "the-code"


def _get(url: str) -> None:
    try:  # the "browser": the single-use listener may close before a stray request is answered
        urllib.request.urlopen(url, timeout=10).read()
    except OSError:  # URLError, ConnectionResetError …
        pass


def test_config_defaults_to_gmail_and_checks_modes():
    cfg = GoogleProvider().normalize_config({"email": "Help@School.test", "client_id": "id"})
    assert (cfg["imap_host"], cfg["imap_port"], cfg["smtp_host"], cfg["smtp_port"]) == \
        ("imap.gmail.com", 993, "smtp.gmail.com", 465)
    assert cfg["token_url"] == "https://oauth2.googleapis.com/token" and cfg["email"] == "help@school.test"
    assert GoogleProvider().identity(cfg) == "help@school.test@imap.gmail.com/INBOX"
    with pytest.raises(ConfigurationError, match="client_id"):
        GoogleProvider().normalize_config({"email": "help@school.test"})
    with pytest.raises(ConfigurationError, match="service_account"):
        GoogleProvider().normalize_config({"email": "help@school.test", "auth": "service_account"})
