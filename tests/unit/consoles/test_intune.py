"""The Intune adapter's pure parts: Graph's serial, the CSR's encodings, the entity's shapes, the
upload status, and the connection options' refusals (no network: nothing is sent)."""
from __future__ import annotations

import base64

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from ansible_collections.mdmops.apple.plugins.module_utils._consoles import _base as c
from ansible_collections.mdmops.apple.plugins.module_utils._consoles import intune
from ansible_collections.mdmops.apple.plugins.module_utils._consoles._common import certificate_facts
from lab.pki import ApplePushPKI


@pytest.fixture(scope="module")
def push():
    return ApplePushPKI().push()


@pytest.mark.parametrize("value,decimal", [
    ("0A1B", "2587"), ("0a:1b", "2587"), ("0x0A1B", "2587"), ("12", "18"),
    ("", None), (None, None), (12, None), ("not hex", None),
])
def test_serial_from_graph_reads_hex(value, decimal):
    assert intune.serial_from_graph(value) == decimal


@pytest.mark.parametrize("value,readings", [
    ("0A1B", ("2587",)), ("12", ("18", "12")), (" 12 ", ("18", "12")), ("10", ("16", "10")), ("0", ("0",)),
    ("0x12", ("18",)), ("01:02", ("258",)), ("01 02", ("258",)),     # written as hex: hex only
    ("not hex", ()), (None, ()),
])
def test_a_serial_of_digits_only_is_read_both_ways(value, readings):
    assert intune.serials_from_graph(value) == readings


@pytest.mark.parametrize("form", ["%X", "%d"])
def test_either_form_of_the_serial_names_the_certificate(push, form):
    """Microsoft does not document the form of certificateSerialNumber: hex (as .NET writes it) or
    decimal give the same verdicts, and the serial reported is the certificate's."""
    facts = certificate_facts(push.cert)
    entity = {"topicIdentifier": push.topic, "expirationDateTime": facts["not_after"],
              "certificateSerialNumber": form % push.cert.serial_number}
    held = intune.held_from_entity(entity)
    assert c.compare(held, facts, "serial") == ("same", "serial number and topic")
    assert held.serial == facts["serial_number"] and held.as_dict()["serial_number"] == facts["serial_number"]
    other = certificate_facts(ApplePushPKI().push(push.topic).cert)
    assert c.compare(intune.held_from_entity(entity), other, "serial")[0] == "different"


def test_csr_in_each_encoding(push):
    csr = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t")])).sign(push.key, hashes.SHA256())
    pem = csr.public_bytes(serialization.Encoding.PEM)
    der = csr.public_bytes(serialization.Encoding.DER)
    for value in (pem.decode(), base64.b64encode(pem).decode(), base64.b64encode(der).decode(),
                  "\n" + pem.decode().replace("\n", "\r\n")):
        assert intune.csr_pem_from_value(value) == pem.decode()
    for bad in ("", None, "bm90IGEgY3Ny", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----"):
        with pytest.raises(ValueError):
            intune.csr_pem_from_value(bad)


def test_entity_shapes(push):
    facts = certificate_facts(push.cert)
    entity = {"id": "x", "appleIdentifier": "a@example.com", "topicIdentifier": push.topic,
              "expirationDateTime": facts["not_after"].replace("Z", ".1234567Z"),
              "certificateSerialNumber": "%X" % push.cert.serial_number, "certificateUploadStatus": "Succeeded",
              "certificateUploadFailureReason": None, "certificate": None, "lastModifiedDateTime": None}
    held = intune.held_from_entity(entity)
    assert (held.topic, held.serial, held.not_after, held.apple_id) == (
        push.topic, facts["serial_number"], facts["not_after"], "a@example.com")
    assert c.compare(held, facts, intune.Intune.capabilities.identity)[0] == "same"
    assert intune.Intune._entity({"value": entity}) == entity            # the documentation's wrapped example
    empty = dict(entity, topicIdentifier=None, certificateSerialNumber=None, expirationDateTime=None)
    assert intune.held_from_entity(empty) is None                        # holds none
    odd = dict(entity, certificateSerialNumber="serial?")
    assert c.compare(intune.held_from_entity(odd), facts, "serial")[0] == "unknown"   # never a guess
    with_cert = dict(empty, certificate=push.cert_pem().decode())        # if Graph ever returns it
    full = intune.held_from_entity(with_cert)
    assert full.fingerprint_sha256 == facts["fingerprint_sha256"] and full.topic == push.topic
    assert "certificate" not in full.facts


@pytest.mark.parametrize("entity,failure", [
    ({"certificateUploadStatus": "Succeeded", "certificateUploadFailureReason": None}, ""),
    ({"certificateUploadStatus": "Failed", "certificateUploadFailureReason": ""}, "no reason given"),
    ({"certificateUploadStatus": "Unknown", "certificateUploadFailureReason": "CSR mismatch"}, "CSR mismatch"),
    ({}, ""),
])
def test_upload_failure(entity, failure):
    assert intune.upload_failure(entity) == failure


def test_connection_options_are_checked_before_anything_is_sent():
    good = dict(tenant_id="contoso.onmicrosoft.com", client_id="id", client_secret="s3cret-value")
    console = c.connect("intune", None, **good)
    assert console.session.base_url == intune.DEFAULT_URL
    assert console.token_session.base_url == intune.DEFAULT_TOKEN_URL
    assert console.scope == "https://graph.microsoft.com/.default"
    us = c.connect("intune", "https://graph.microsoft.us/", token_url="https://login.microsoftonline.us", **good)
    assert us.scope == "https://graph.microsoft.us/.default"                # the scope follows url
    assert us.token_session.base_url == "https://login.microsoftonline.us"
    cases = [
        (dict(good, client_secret=None), "client_secret is required"),
        (dict(tenant_id="t"), "client_id and client_secret are required"),
        (dict(good, tenant_id="a/b"), "neither a tenant ID"),
        (dict(good, token_url="login.microsoftonline.com"), "token_url"),
    ]
    for options, words in cases:
        with pytest.raises(c.ConsoleError, match=words) as err:
            c.connect("intune", None, **options)
        assert err.value.kind == "input" and err.value.step == "connect"
    with pytest.raises(c.ConsoleError, match="without a path"):
        c.connect("intune", "https://graph.microsoft.com/v1.0", **good)


def test_upload_refuses_without_apple_id_before_sending(push):
    console = c.connect("intune", "https://127.0.0.1:9", tenant_id="t", client_id="i", client_secret="s3cret-value")
    with pytest.raises(c.ConsoleError, match="apple_id is required") as err:
        console.upload(push.cert_pem(), push.key_pem(), None)
    assert err.value.kind == "input" and console.session.history == [] and console.token_session.history == []
    assert console.capabilities == c.Capabilities(holds_private_key=True, can_read=True, can_remove=False,
                                                  can_csr=True, per_topic=False, identity="serial")
    with pytest.raises(c.ConsoleError, match="no API to remove") as err:
        console.remove()
    assert err.value.kind == "unsupported"


def test_signature_names_the_credentials_intune_uses():
    import inspect
    names = set(inspect.signature(intune.Intune.from_options).parameters)
    assert {"tenant_id", "client_id", "client_secret", "token_url"} <= names
    assert not names & {"api_key", "username", "password"}              # connect passes them: dropped
    console = c.connect("intune", None, tenant_id="t", client_id="i", client_secret="s3cret-value",
                        api_key=None, secrets=["another-secret-1"], timeout=3)
    assert "another-secret-1" in console.session.secrets and "s3cret-value" in console.token_session.secrets
