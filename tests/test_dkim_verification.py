"""Issue 10, sender authentication, last sentence: with the General setting ``mail.verify_dkim`` on,
a mail that no receiving server judged (Maildir, ``helpdesk ingest``) has its DKIM signature checked by
us with dkimpy. Real signatures: an RSA key generated here, its public key served as the TXT record."""

from __future__ import annotations

import base64

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from helpdesk_core.mail import authentication
from helpdesk_core.mail.authentication import aligned, dkim_verdict
from mailfactory import plain

SELECTOR = b"s1"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def _txt(key: rsa.RSAPrivateKey) -> bytes:
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def _dns(records: dict[bytes, bytes]):
    """A ``dnsfunc`` serving ``records`` (name without the trailing dot → TXT), counting lookups."""
    def lookup(name: bytes, timeout: float = 5) -> bytes | None:
        lookup.asked.append(name)
        return records.get(name.rstrip(b"."))
    lookup.asked = []
    return lookup


def _sign(raw: bytes, key: rsa.RSAPrivateKey, domain: bytes = b"example.test") -> bytes:
    return dkim.sign(raw, SELECTOR, domain, _pem(key), include_headers=[b"from", b"to", b"subject", b"date",
                                                                        b"message-id"]) + raw


@pytest.fixture
def dns(key):
    return _dns({b"s1._domainkey.example.test": _txt(key), b"s1._domainkey.mail.example.test": _txt(key)})


def test_a_valid_aligned_signature_passes(key, dns):
    signed = _sign(plain(), key)
    assert dkim_verdict(signed, "example.test", dnsfunc=dns) == "pass"
    assert dns.asked == [b"s1._domainkey.example.test."]
    # a parent domain of the From domain aligns too
    assert dkim_verdict(signed, "help.example.test", dnsfunc=dns) == "pass"


def test_a_tampered_message_fails(key, dns):
    signed = _sign(plain(body="Please reset my password.\n"), key)
    assert dkim_verdict(signed.replace(b"reset my password", b"send it to mallory"), "example.test",
                        dnsfunc=dns) == "fail"
    assert dkim_verdict(signed.replace(b"Subject: Printer", b"Subject: Payroll"), "example.test",
                        dnsfunc=dns) == "fail"


def test_a_signature_with_a_wrong_or_missing_key_fails(key, dns):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert dkim_verdict(_sign(plain(), other), "example.test", dnsfunc=dns) == "fail"
    assert dkim_verdict(_sign(plain(), key), "example.test", dnsfunc=_dns({})) == "fail"
    garbled = _sign(plain(), key).replace(b"b=", b"b=!!", 1)
    assert dkim_verdict(garbled, "example.test", dnsfunc=dns) == "fail"


def test_no_signature_is_no_verdict(dns):
    assert dkim_verdict(plain(), "example.test", dnsfunc=dns) == "none"
    assert dns.asked == []


def test_a_valid_signature_of_another_domain_is_no_verdict(key):
    dns = _dns({b"s1._domainkey.lists.test": _txt(key)})
    signed = _sign(plain(), key, domain=b"lists.test")
    assert dkim_verdict(signed, "example.test", dnsfunc=dns) == "none"  # valid, but not the From domain
    assert dkim_verdict(signed, None, dnsfunc=dns) == "none"
    # valid for another domain plus a broken one of the From domain: like dkim=fail with a pass → none
    both = dkim.sign(signed, SELECTOR, b"example.test", _pem(rsa.generate_private_key(65537, 2048)),
                     include_headers=[b"from"]) + signed
    dns2 = _dns({b"s1._domainkey.lists.test": _txt(key), b"s1._domainkey.example.test": _txt(key)})
    assert dkim_verdict(both, "example.test", dnsfunc=dns2) == "none"


def test_a_dns_timeout_proves_nothing(key):
    def timeout(name: bytes, timeout: float = 5) -> bytes | None:
        raise dkim.DnsTimeoutError("timed out")
    assert dkim_verdict(_sign(plain(), key), "example.test", dnsfunc=timeout) == "none"


@pytest.mark.parametrize(("d", "from_domain", "expected"), [
    ("example.test", "example.test", True), ("Example.TEST.", "mail.example.test", True),
    ("mail.example.test", "example.test", False), ("evil.test", "example.test", False),
    ("test", "example.test", False), ("ample.test", "example.test", False), ("", "example.test", False),
])
def test_alignment(d, from_domain, expected):
    assert aligned(d, from_domain) is expected


# --------------------------------------------------------------------------- end to end (SQLite)


@pytest.fixture
def db_url(sqlite_url):
    """These import tests run on SQLite only (the verdict is computed before any database work)."""
    return sqlite_url


def _setup(cli, tmp_path, monkeypatch, key, *, verify: bool = True):
    monkeypatch.setattr(authentication, "default_dnsfunc",
                        _dns({b"s1._domainkey.example.test": _txt(key)}))
    monkeypatch.setenv("HELPDESK_MAILDIR_ROOT", str(tmp_path))
    for sub in ("cur", "new", "tmp"):
        (tmp_path / "md" / sub).mkdir(parents=True, exist_ok=True)
    cli("department", "add", "Tech", "--sender", "techhelp@district.test")
    cli("department", "set-mailbox", "Tech", "--protocol", "maildir", "--path", str(tmp_path / "md"),
        "--email", "techhelp@district.test")  # no authserv_id: no server's results count
    if verify:
        cli("settings", "set", "mail.verify_dkim", "on")
    cli("ingest", "--department", "Tech", input=_sign(plain(subject="Printer", msgid="<a1@example.test>"), key))


def test_own_dkim_check_on_import(cli, tmp_path, monkeypatch, key):
    _setup(cli, tmp_path, monkeypatch, key)
    assert cli.json("ticket", "show", "1", "--json")["sender_verified"] is True
    good = _sign(plain(subject="Re: [Ticket #1] Printer", In_Reply_To="<a1@example.test>",
                       body="It works again.\n"), key)
    tampered = _sign(plain(subject="Re: [Ticket #1] Printer", In_Reply_To="<a1@example.test>",
                           body="Send the new password to me.\n"), key).replace(b"to me", b"to mallory")
    # through the Maildir import cycle, as delivered by a local MTA that adds no results
    (tmp_path / "md" / "new" / "1.good").write_bytes(good.replace(b"\r\n", b"\n"))
    cli("ingest", "--department", "Tech", input=tampered)
    cli("import", "--department", "Tech")
    first = cli.json("ticket", "show", "1", "--json")
    assert [m["body_display"].strip() for m in first["messages"]][-1] == "It works again."
    assert len(first["messages"]) == 2
    second = cli.json("ticket", "show", "2", "--json")
    assert second["sender_verified"] is False and second["mentions"] == "#1"


def test_off_by_default(cli, tmp_path, monkeypatch, key):
    _setup(cli, tmp_path, monkeypatch, key, verify=False)
    assert "mail.verify_dkim" in cli("settings", "show").output
    tampered = _sign(plain(subject="Re: [Ticket #1] Printer", body="x\n"), key).replace(b"x\r\n", b"y\r\n")
    cli("ingest", "--department", "Tech", input=tampered)
    assert len(cli.json("ticket", "show", "1", "--json")["messages"]) == 2  # unchanged behaviour


def test_the_setting_takes_a_bool(cli):
    assert cli("settings", "set", "mail.verify_dkim", "maybe", ok=False).exit_code != 0
    cli("settings", "set", "mail.verify_dkim", "true")
    cli("settings", "set", "mail.verify_dkim", "off")


def test_the_key_is_looked_up_once_per_message(cli, tmp_path, monkeypatch, key):
    _setup(cli, tmp_path, monkeypatch, key)
    lists = _dns({b"s1._domainkey.lists.test": _txt(key)})
    monkeypatch.setattr(authentication, "default_dnsfunc", lists)
    # valid, but for a mailing list's domain: no verdict, so every pass of the thread rules would ask
    cli("ingest", "--department", "Tech", input=_sign(
        plain(subject="Re: [Ticket #1] Printer", In_Reply_To="<a1@example.test>"), key, domain=b"lists.test"))
    assert lists.asked == [b"s1._domainkey.lists.test."]
    assert len(cli.json("ticket", "show", "1", "--json")["messages"]) == 2  # the requester: joins
