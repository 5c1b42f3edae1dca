"""The Microsoft identity-platform + Graph stand-in behaves as the provider's tests assume: OpenID
discovery, RS256 id tokens verifiable with the JWKS, client credentials, AADSTS7000222, and the
audience rule (Graph tokens do not log into mailboxes, Exchange tokens do not send via Graph)."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlsplit

import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ms_helpers import identity  # noqa: F401 - fixture


def b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_discovery_id_token_and_audience(identity, dovecot):
    ca = str(dovecot.ca_file)
    base = f"{identity.https_url}/contoso.test"
    config = requests.get(f"{base}/v2.0/.well-known/openid-configuration", verify=ca, timeout=10).json()
    assert config["token_endpoint"] == f"{base}/oauth2/v2.0/token"
    client_id, secret = identity.add_client()
    redirect = "http://localhost"
    answer = requests.get(config["authorization_endpoint"], allow_redirects=False, verify=ca, timeout=10, params={
        "client_id": client_id, "redirect_uri": redirect, "response_type": "code", "login_hint": "a@district.test",
        "nonce": "n-1", "scope": "https://outlook.office.com/IMAP.AccessAsUser.All offline_access"})
    code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
    token = requests.post(config["token_endpoint"], verify=ca, timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect, "client_id": client_id,
        "client_secret": secret}).json()
    header, payload, signature = token["id_token"].split(".")
    claims = json.loads(b64(payload))
    assert (claims["preferred_username"], claims["nonce"], claims["aud"]) == ("a@district.test", "n-1", client_id)
    [key] = requests.get(config["jwks_uri"], verify=ca, timeout=10).json()["keys"]
    numbers = rsa.RSAPublicNumbers(int.from_bytes(b64(key["e"]), "big"), int.from_bytes(b64(key["n"]), "big"))
    public = numbers.public_key()
    public.verify(b64(signature), f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    assert identity.token_owner(token["access_token"]) == "a@district.test"

    graph = requests.post(config["token_endpoint"], verify=ca, timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": token["refresh_token"], "client_id": client_id,
        "client_secret": secret, "scope": "https://graph.microsoft.com/Mail.Send offline_access"}).json()
    assert identity.token_owner(graph["access_token"]) is None  # a Graph token does not open a mailbox
    sent = requests.post(f"{identity.https_url}/v1.0/users/a@district.test/sendMail", verify=ca, timeout=10,
                         data=base64.b64encode(b"From: a@district.test\r\n\r\nHi\r\n"),
                         headers={"Authorization": f"Bearer {token['access_token']}"})
    assert sent.status_code == 401  # an Exchange token does not send via Graph
    sent = requests.post(f"{identity.https_url}/v1.0/users/a@district.test/sendMail", verify=ca, timeout=10,
                         data=base64.b64encode(b"From: a@district.test\r\n\r\nHi\r\n"),
                         headers={"Authorization": f"Bearer {graph['access_token']}"})
    assert sent.status_code == 202
    assert identity.graph_sent == [("a@district.test", b"From: a@district.test\r\n\r\nHi\r\n")]


def test_client_credentials_and_expired_secret(identity, dovecot):
    token_url = f"{identity.https_url}/contoso.test/oauth2/v2.0/token"
    client_id, secret = identity.add_app()
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret,
            "scope": "https://outlook.office365.com/.default"}
    token = requests.post(token_url, data=form, verify=str(dovecot.ca_file), timeout=10).json()["access_token"]
    assert identity.token_owner(token) is None  # no mailbox permission yet
    identity.grant_mailbox(client_id, "shared@district.test")
    assert identity.token_owner(token) == "shared@district.test"
    identity.expired_secrets.add(client_id)
    refused = requests.post(token_url, data=form, verify=str(dovecot.ca_file), timeout=10)
    assert refused.status_code == 401 and refused.json()["error_codes"] == [7000222]
