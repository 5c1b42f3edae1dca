"""The microsoft provider passes the provider conformance suite: the local identity platform as
Entra ID (MSAL signs in through it), the test Dovecot as Exchange Online, the SMTP sink for replies."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import msal
import pytest
import requests

from helpdesk_core.testing.conformance import ConformanceMailbox, ProviderConformance, closed_port, oauth_client
from helpdesk_mail_microsoft_oauth.tokens import DELEGATED_SCOPES, msal_app
from ms_helpers import identity  # noqa: F401 - fixture


class TestMicrosoftConformance(ProviderConformance):
    @pytest.fixture
    def conformance_mailbox(self, dovecot, mail_user, identity, smtp_sink):
        client_id, client_secret = oauth_client(identity, smtp_sink, app=True)
        config = {"email": mail_user.email, "client_id": client_id, "tenant": "contoso.test",
                  "authority_host": identity.https_url, "graph_url": identity.https_url, "host": "127.0.0.1",
                  "port": dovecot.imaps_port, "ca_file": str(dovecot.ca_file), "smtp_host": "127.0.0.1",
                  "smtp_port": smtp_sink.port_starttls}
        cache = msal.SerializableTokenCache()
        app = msal_app(config, client_secret, cache)
        flow = app.initiate_auth_code_flow(DELEGATED_SCOPES, redirect_uri="http://localhost",
                                           login_hint=mail_user.email)
        answer = requests.get(flow["auth_uri"], allow_redirects=False, verify=str(dovecot.ca_file), timeout=10)
        query = dict(parse_qsl(urlsplit(answer.headers["Location"]).query))
        assert "access_token" in app.acquire_token_by_auth_code_flow(flow, query)
        return ConformanceMailbox(
            provider="microsoft", email=mail_user.email, config=config,
            secrets={"client_secret": client_secret, "token_cache": cache.serialize()},
            deliver=mail_user.deliver, count=mail_user.count,
            failures={"needs_reauthorization": ({}, {"token_cache": ""}),
                      "connection_refused": ({"port": closed_port()}, {}),
                      "certificate": ({"ca_file": None}, {}),
                      "auth_failed": ({"mode": "app_only"}, {})},  # no FullAccess granted to the app
            sent=lambda: [m.raw for m in smtp_sink.messages],
            fail_next_send=lambda: smtp_sink.fail_next(451, "4.3.0 Try again later", stage="MAIL"),
            secret_values=lambda: identity.refresh_tokens_of(mail_user.email))
