"""The google provider passes the provider conformance suite: the local OAuth server as Google, the
test Dovecot as Gmail (XOAUTH2 checked at the same server), the SMTP sink for replies."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from helpdesk_core.testing.conformance import ConformanceMailbox, ProviderConformance, closed_port, oauth_client


class TestGoogleConformance(ProviderConformance):
    @pytest.fixture
    def conformance_mailbox(self, dovecot, mail_user, oauth_server, smtp_sink):
        client_id, client_secret = oauth_client(oauth_server, smtp_sink)
        _status, headers = oauth_server.authorize({"client_id": client_id, "redirect_uri": "http://127.0.0.1/",
                                                   "login_hint": mail_user.email, "response_type": "code"})
        code = parse_qs(urlsplit(headers["Location"]).query)["code"][0]
        _status, token = oauth_server.token({"grant_type": "authorization_code", "code": code,
                                             "redirect_uri": "http://127.0.0.1/"}, (client_id, client_secret))
        config = {"email": mail_user.email, "auth": "consent", "client_id": client_id, "imap_host": "127.0.0.1",
                  "imap_port": dovecot.imaps_port, "ca_file": str(dovecot.ca_file), "smtp_host": "127.0.0.1",
                  "smtp_port": smtp_sink.port_ssl, "smtp_security": "ssl", **oauth_server.endpoints}
        return ConformanceMailbox(
            provider="google", email=mail_user.email, config=config,
            secrets={"refresh_token": token["refresh_token"], "client_secret": client_secret},
            deliver=mail_user.deliver, count=mail_user.count,
            failures={"needs_reauthorization": ({}, {"refresh_token": "1//revoked-refresh-token"}),
                      "connection_refused": ({"imap_port": closed_port()}, {}),
                      "certificate": ({"ca_file": None}, {})},
            sent=lambda: [m.raw for m in smtp_sink.messages],
            fail_next_send=lambda: smtp_sink.fail_next(451, "4.3.0 Try again later", stage="MAIL"),
            secret_values=lambda: oauth_server.refresh_tokens_of(mail_user.email))
