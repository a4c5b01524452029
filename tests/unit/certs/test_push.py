"""Unit tests of plugins/module_utils/_push/ (no Ansible involved).

Every certificate and key is generated at run time by lab.pki; nothing is read
from the repository.
"""
from __future__ import annotations

import base64
import datetime as dt
import os
import re
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from ansible_collections.mdmops.apple.plugins.module_utils._push import _facts as fct
from ansible_collections.mdmops.apple.plugins.module_utils._push import _guards as guards
from ansible_collections.mdmops.apple.plugins.module_utils._push import _material as mat
from ansible_collections.mdmops.apple.plugins.module_utils._push import _request as req
from ansible_collections.mdmops.apple.plugins.module_utils._push._material import CertificateError
from lab.pki import AAI2_NAME, ApplePushPKI, ec_key, issue, name, rsa_key

PASSWORD = b"Lab-Pkcs12-Pw!"
FINGERPRINT = re.compile(r"^([0-9A-F]{2}:)+[0-9A-F]{2}$")


def pem_chain(issued, order=("leaf", "chain")):
    parts = {"leaf": issued.cert_pem(), "chain": issued.chain_pem()}
    return b"".join(parts[p] for p in order)


def load_error(data, **kwargs) -> str:
    with pytest.raises(CertificateError) as info:
        mat.load_certificates(data, "path /x/input", **kwargs)
    message = str(info.value)
    assert message.startswith("path /x/input"), message
    assert "Traceback" not in message
    return message


def key_error(data, passphrase=None) -> str:
    with pytest.raises(CertificateError) as info:
        mat.load_private_key(data, "private_key_path /x/key", passphrase)
    message = str(info.value)
    assert message.startswith("private_key_path /x/key"), message
    return message


# ---------------------------------------------------------------------------
# Every input form
# ---------------------------------------------------------------------------

class TestLoadForms:
    def test_pem_certificate_alone(self, push):
        material = mat.load_certificates(push.cert_pem(), "path a.pem")
        assert material.format == "pem"
        assert material.certificate == push.cert
        assert material.chain == [] and material.private_key is None

    def test_pem_certificate_with_key(self, push):
        material = mat.load_certificates(push.cert_pem() + push.key_bytes(), "path a.pem")
        assert material.certificate == push.cert
        assert guards.key_matches(material.certificate, material.private_key).ok

    def test_pem_key_first_then_certificate(self, push):
        material = mat.load_certificates(push.key_bytes("pem", "pkcs1") + push.cert_pem(), "path a.pem")
        assert material.certificate == push.cert and material.private_key is not None

    @pytest.mark.parametrize("order", [("leaf", "chain"), ("chain", "leaf")])
    def test_pem_chain_any_order(self, pki, push, order):
        material = mat.load_certificates(pem_chain(push, order), "path chain.pem")
        assert material.certificate == push.cert
        assert [c.subject for c in material.chain] == [pki.aai2.cert.subject, pki.root.cert.subject]
        assert material.certificates_found == 3
        facts = fct.chain_facts(material)
        assert facts["chain_verified"] is True
        assert "Apple Application Integration 2" in facts["chain_subjects"][0]

    def test_pem_with_crlf_and_surrounding_text(self, push):
        data = b"Bag Attributes\r\n  friendlyName: push\r\n" + push.cert_pem().replace(b"\n", b"\r\n")
        assert mat.load_certificates(data, "content").certificate == push.cert

    def test_der_certificate(self, push):
        material = mat.load_certificates(push.cert_der(), "path a.cer")
        assert material.format == "der" and material.certificate == push.cert

    def test_der_with_trailing_newline(self, push):
        assert mat.load_certificates(push.cert_der() + b"\n", "path a.cer").certificate == push.cert

    def test_base64_der_content(self, push):
        data = base64.encodebytes(push.cert_der())
        assert mat.load_certificates(data, "content").certificate == push.cert

    def test_pkcs12_without_password(self, push):
        material = mat.load_certificates(push.pkcs12(), "path a.p12")
        assert material.format == "pkcs12"
        assert material.certificate == push.cert
        assert len(material.chain) == 2
        assert guards.key_matches(push.cert, material.private_key).ok

    def test_pkcs12_with_password(self, push):
        material = mat.load_certificates(push.pkcs12(PASSWORD), "path a.p12", password=PASSWORD)
        assert material.certificate == push.cert and material.private_key is not None

    def test_pkcs12_password_given_but_not_needed(self, push):
        assert mat.load_certificates(push.pkcs12(), "p", password=b"unused").certificate == push.cert

    def test_pkcs12_base64_content(self, push):
        data = base64.b64encode(push.pkcs12(PASSWORD))
        assert mat.load_certificates(data, "content", password=PASSWORD).format == "pkcs12"

    def test_pkcs12_certificate_only(self, push):
        material = mat.load_certificates(push.pkcs12(PASSWORD, with_key=False), "p", password=PASSWORD)
        assert material.certificate == push.cert and material.private_key is None

    @pytest.mark.parametrize("fmt", ["pem", "der", "pkcs12"])
    def test_explicit_format(self, push, fmt):
        data = {"pem": push.cert_pem(), "der": push.cert_der(), "pkcs12": push.pkcs12()}[fmt]
        assert mat.load_certificates(data, "p", fmt=fmt).certificate == push.cert

    def test_pem_with_encrypted_key_and_no_password_is_noted(self, push):
        material = mat.load_certificates(push.cert_pem() + push.key_bytes(password=PASSWORD), "p")
        assert material.private_key is None and material.private_key_encrypted
        assert "password" in material.notes[0]

    def test_pem_with_encrypted_key_and_password(self, push):
        material = mat.load_certificates(push.cert_pem() + push.key_bytes(password=PASSWORD), "p",
                                         password=PASSWORD)
        assert guards.key_matches(push.cert, material.private_key).ok


class TestLoadPrivateKeys:
    @pytest.mark.parametrize("encoding,fmt,encrypted", [
        ("pem", "pkcs1", False), ("pem", "pkcs1", True),
        ("pem", "pkcs8", False), ("pem", "pkcs8", True),
        ("der", "pkcs1", False),
        ("der", "pkcs8", False), ("der", "pkcs8", True),
    ])
    def test_rsa_key_forms(self, push, encoding, fmt, encrypted):
        password = PASSWORD if encrypted else None
        key = mat.load_private_key(push.key_bytes(encoding, fmt, password), "private_key_path k", password)
        assert guards.key_matches(push.cert, key).ok

    def test_ec_key_loads_but_is_not_rsa(self):
        ec = ec_key()
        pem = ec.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                               serialization.NoEncryption())
        key = mat.load_private_key(pem, "k")
        assert mat.key_description(key) == "EC secp256r1"
        with pytest.raises(CertificateError) as info:
            guards.require_rsa(key, "privatekey_path /x/push.key")
        message = str(info.value)
        assert "privatekey_path /x/push.key" in message and "EC secp256r1" in message and "RSA" in message

    def test_small_rsa_key_refused_for_csr(self):
        with pytest.raises(CertificateError, match="1024 bits.*at least 2048"):
            guards.require_rsa(rsa_key(1024), "privatekey_path k")

    def test_key_from_pkcs12(self, push):
        key = mat.load_private_key(push.pkcs12(PASSWORD), "k", PASSWORD)
        assert guards.key_matches(push.cert, key).ok

    def test_passphrase_given_for_plain_key_is_accepted(self, push):
        assert mat.load_private_key(push.key_bytes(), "k", b"unused") is not None

    def test_base64_der_key_content(self, push):
        data = base64.b64encode(push.key_bytes("der"))
        assert guards.key_matches(push.cert, mat.load_private_key(data, "private_key_content")).ok


# ---------------------------------------------------------------------------
# Every malformed input: one exception class, a message naming the input
# ---------------------------------------------------------------------------

class TestMalformed:
    def test_empty(self):
        assert "is empty" in load_error(b"")
        assert "is empty" in load_error(b"  \n")

    def test_missing_file(self, tmp_path):
        with pytest.raises(CertificateError, match=r"^path .*missing\.pem: file not found$"):
            mat.read_file(str(tmp_path / "missing.pem"))

    def test_directory(self, tmp_path):
        with pytest.raises(CertificateError, match="is a directory"):
            mat.read_file(str(tmp_path))

    def test_wrong_pkcs12_password(self, push):
        message = load_error(push.pkcs12(PASSWORD), password=b"wrong")
        assert "password" in message and "wrong" in message

    def test_missing_pkcs12_password(self, push):
        assert "password protected" in load_error(push.pkcs12(PASSWORD))

    def test_truncated_pem_without_end(self, push):
        message = load_error(push.cert_pem()[:300])
        assert "truncated PEM" in message and "BEGIN CERTIFICATE" in message and "line 1" in message

    def test_pem_damaged_in_the_middle(self, push):
        pem = push.cert_pem()
        lines = pem.splitlines(True)
        damaged = b"".join(lines[:5] + lines[-1:])  # body cut, END line kept
        message = load_error(damaged)
        assert "PEM block 1 (CERTIFICATE) is damaged" in message

    def test_truncated_der(self, push):
        message = load_error(push.cert_der()[:200])
        assert "truncated DER" in message and "only 200" in message

    def test_truncated_pkcs12(self, push):
        message = load_error(push.pkcs12(PASSWORD)[:500], password=PASSWORD)
        assert "truncated DER" in message

    def test_random_bytes(self):
        message = load_error(b"\x8f\x01\xfe" + os.urandom(300))
        assert "neither PEM" in message

    def test_random_sequence_bytes(self):
        message = load_error(b"\x30\x10" + os.urandom(16))
        assert "not a certificate" in message

    def test_plain_text(self):
        assert "text without any '-----BEGIN'" in load_error(b"hello, this is not a certificate at all\n" * 3)

    def test_private_key_where_certificate_expected_pem(self, push):
        message = load_error(push.key_bytes())
        assert "no certificate found: the input holds a private key only; pass it as privatekey_path" in message

    @pytest.mark.parametrize("password", [None, PASSWORD])
    def test_private_key_where_certificate_expected_der(self, push, password):
        message = load_error(push.key_bytes("der", "pkcs8", password))
        assert "private key only" in message

    def test_csr_where_certificate_expected(self, push):
        csr = req.build_csr(push.key, x509.Name([]))
        assert "certificate signing request" in load_error(req.csr_pem(csr))
        assert "certificate signing request" in load_error(req.csr_der(csr))

    def test_certificate_where_key_expected(self, push):
        assert "holds a certificate only" in key_error(push.cert_pem())
        assert "DER certificate" in key_error(push.cert_der())

    def test_wrong_key_passphrase(self, push):
        assert "passphrase (option privatekey_passphrase) is wrong" in key_error(
            push.key_bytes(password=PASSWORD), b"nope")

    def test_missing_key_passphrase(self, push):
        assert "is encrypted: give its passphrase" in key_error(push.key_bytes("der", "pkcs8", PASSWORD))

    def test_truncated_key(self, push):
        assert "truncated PEM" in key_error(push.key_bytes()[:400])
        assert "truncated DER" in key_error(push.key_bytes("der")[:400])

    def test_empty_key(self):
        assert "is empty" in key_error(b"")

    def test_random_key_bytes(self):
        assert "not a private key" in key_error(b"\x01\x02" + os.urandom(64))

    def test_format_mismatch(self, push):
        assert "format der was requested but the input is PEM" in load_error(push.cert_pem(), fmt="der")
        assert "format pem was requested" in load_error(push.cert_der(), fmt="pem")
        assert "not a PKCS#12 file" in load_error(push.cert_der(), fmt="pkcs12")

    def test_read_input_requires_something(self):
        with pytest.raises(CertificateError, match="give path or content"):
            mat.read_input(None, "", "path", "content")


# ---------------------------------------------------------------------------
# Inspection and comparison
# ---------------------------------------------------------------------------

class TestDescribe:
    def test_push_certificate_facts(self, push):
        info = fct.describe_certificate(push.cert)
        uuid = push.uuid
        assert info["topic"] == "com.apple.mgmt.External." + uuid
        assert info["common_name"] == "APSP:" + uuid
        assert info["issuer_common_name"] == AAI2_NAME
        assert info["subject_ordered"][0] == ["UID", push.topic]
        assert info["serial_number"] == str(push.cert.serial_number)
        assert int(info["serial_number_hex"], 16) == push.cert.serial_number
        assert info["fingerprint_sha256"].replace(":", "") == push.cert.fingerprint(hashes.SHA256()).hex().upper()
        assert FINGERPRINT.match(info["fingerprint_sha1"]) and len(info["fingerprint_sha1"]) == 59
        assert info["not_after"] == push.cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert info["public_key_type"] == "RSA" and info["public_key_size"] == 2048
        assert info["is_mdm_push"] is True and info["mdm_push_reasons"] == []
        assert info["expired"] is False and info["not_yet_valid"] is False and info["expires_soon"] is False
        assert 362 <= info["days_remaining"] <= 364

    def test_expiry_flags_at_given_moments(self, push):
        end = push.cert.not_valid_after_utc
        assert fct.describe_certificate(push.cert, at=end - dt.timedelta(days=10))["expires_soon"] is True
        assert fct.describe_certificate(push.cert, at=end - dt.timedelta(days=10),
                                        expires_within_days=5)["expires_soon"] is False
        after = fct.describe_certificate(push.cert, at=end + dt.timedelta(days=2))
        assert after["expired"] and after["expires_soon"] and after["days_remaining"] == -2
        before = fct.describe_certificate(push.cert, at=push.cert.not_valid_before_utc - dt.timedelta(hours=1))
        assert before["not_yet_valid"] is True and before["expired"] is False

    def test_naive_datetime_means_utc(self, push):
        end = push.cert.not_valid_after_utc
        naive = (end + dt.timedelta(seconds=1)).replace(tzinfo=None)
        assert fct.describe_certificate(push.cert, at=naive)["expired"] is True

    def test_generated_expired_and_future(self, pki):
        assert fct.describe_certificate(pki.expired().cert)["expired"] is True
        assert fct.describe_certificate(pki.not_yet_valid().cert)["not_yet_valid"] is True

    def test_not_apple(self, pki):
        info = fct.describe_certificate(pki.not_apple().cert)
        assert info["is_mdm_push"] is False
        assert "not by 'Apple Application Integration 2" in info["mdm_push_reasons"][0]

    def test_app_push_certificate(self, pki):
        info = fct.describe_certificate(pki.app_push().cert)
        assert info["is_mdm_push"] is False and "app push certificate" in info["mdm_push_reasons"][0]

    def test_no_uid(self):
        plain = issue(name("server.example"))
        info = fct.describe_certificate(plain.cert)
        assert info["topic"] is None
        assert any("no UID attribute" in r for r in info["mdm_push_reasons"])

    def test_compare_renewal(self, pki, push):
        renewed = pki.renewal(push)
        facts = fct.compare_certificates(renewed.cert, push.cert)
        assert facts["same_topic_as_compared"] and facts["is_renewal_of_compared"]
        assert not facts["same_certificate_as_compared"]
        assert facts["compared"]["topic"] == push.topic
        # the older one is not a renewal of the newer one
        assert not fct.compare_certificates(push.cert, renewed.cert)["is_renewal_of_compared"]

    def test_compare_same_and_other_account(self, pki, push):
        same = fct.compare_certificates(push.cert, push.cert)
        assert same["same_certificate_as_compared"] and not same["is_renewal_of_compared"]
        other = fct.compare_certificates(pki.other_account().cert, push.cert)
        assert not other["same_topic_as_compared"] and not other["is_renewal_of_compared"]

    def test_certificate_info_end_to_end(self, tmp_path, pki, push):
        cert_path, key_path = tmp_path / "push.pem", tmp_path / "push.key"
        push.write(str(cert_path), str(key_path), with_chain=True)
        old = pki.expired(push.topic)
        result, warnings = fct.certificate_info(
            mat.CertificateInput(path=str(cert_path), privatekey_path=str(key_path)),
            mat.CertificateInput(content=old.cert_pem().decode(), prefix="compare_to_"))
        assert result["key_matches"] is True and result["topic"] == push.topic
        assert result["is_renewal_of_compared"] is True and warnings == []
        other_key = pki.mismatched_key()
        pem = other_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()).decode()
        result, _warnings = fct.certificate_info(
            mat.CertificateInput(content=push.cert_pem().decode(), privatekey_content=pem))
        assert result["key_matches"] is False
        assert "PRIVATE KEY" not in repr(result)

    def test_certificate_info_rejects_negative_window(self, push):
        with pytest.raises(CertificateError, match="expires_within_days"):
            fct.certificate_info(mat.CertificateInput(content=push.cert_pem()), expires_within_days=-1)


# ---------------------------------------------------------------------------
# Guards
# ---------------------------------------------------------------------------

class TestGuards:
    def test_same_topic(self, pki, push):
        assert guards.same_topic(push.cert, pki.renewal(push).cert).ok
        other = pki.other_account()
        result = guards.same_topic(push.cert, other.cert)
        assert not result and result.guard == "same_topic"
        assert other.topic in result.reason and push.topic in result.reason
        assert "another Apple Account" in result.reason and "re-enroll" in result.reason
        assert result.reason.index(other.topic) < result.reason.index(push.topic)

    def test_same_topic_without_topic(self, push):
        plain = issue(name("server.example")).cert
        assert "new certificate has no push topic" in guards.same_topic(push.cert, plain).reason
        assert "current certificate has no push topic" in guards.same_topic(plain, push.cert).reason

    def test_key_matches(self, pki, push):
        assert guards.key_matches(push.cert, push.key)
        result = guards.key_matches(push.cert, pki.mismatched_key())
        assert not result.ok and "does not belong to the certificate" in result.reason
        assert "PRIVATE KEY" not in result.reason

    def test_not_expired(self, pki, push):
        assert guards.not_expired(push.cert).ok
        result = guards.not_expired(pki.expired(days_ago=10).cert)
        assert not result.ok and "expired on" in result.reason and "10 days ago" in result.reason
        end = push.cert.not_valid_after_utc
        assert not guards.not_expired(push.cert, at=end + dt.timedelta(seconds=1))
        assert guards.not_expired(push.cert, at=end)

    def test_already_valid(self, pki, push):
        assert guards.already_valid(push.cert)
        assert "clock" in guards.already_valid(pki.not_yet_valid().cert).reason

    def test_valid_for_at_least(self, pki, push):
        assert guards.valid_for_at_least(push.cert, 30)
        result = guards.valid_for_at_least(pki.expiring(days_left=10).cert, 30)
        assert not result.ok and "at least 30 days" in result.reason and "in 9 days" in result.reason
        assert "it expired on" in guards.valid_for_at_least(pki.expired().cert, 1).reason
        end = push.cert.not_valid_after_utc
        assert guards.valid_for_at_least(push.cert, 30, at=end - dt.timedelta(days=31))
        assert not guards.valid_for_at_least(push.cert, 30, at=end - dt.timedelta(days=29))

    def test_looks_like_mdm_push(self, pki, push):
        assert guards.looks_like_mdm_push(push.cert)
        assert "not an MDM push certificate" in guards.looks_like_mdm_push(pki.not_apple().cert).reason
        assert "com.example.app" in guards.looks_like_mdm_push(pki.app_push().cert).reason

    def test_failed_guards(self, pki, push):
        results = [guards.same_topic(push.cert, pki.renewal(push).cert), guards.not_expired(pki.expired().cert)]
        assert [r.guard for r in guards.failed_guards(results)] == ["not_expired"]


# ---------------------------------------------------------------------------
# CSR, signed request, files
# ---------------------------------------------------------------------------

class TestRequests:
    def test_subject_spec(self):
        subject = req.SubjectSpec(common_name="mdm.example.com", email_address="a@example.com", country="de")
        built = subject.to_name()
        assert built.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "DE"
        assert mat.format_name(built) == "emailAddress=a@example.com,CN=mdm.example.com,C=DE"
        assert req.SubjectSpec().to_name() == x509.Name([])

    @pytest.mark.parametrize("kwargs,match", [
        ({"country": "USA"}, "two-letter"),
        ({"email_address": "nobody"}, "not an e-mail"),
        ({"common_name": "x" * 65}, "1 to 64"),
    ])
    def test_subject_validation(self, kwargs, match):
        with pytest.raises(CertificateError, match=match):
            req.SubjectSpec(**kwargs).to_name()

    def test_csr_matches(self, push):
        subject = req.SubjectSpec(common_name="mdm", country="US").to_name()
        csr = req.build_csr(push.key, subject)
        assert req.csr_matches(csr, push.key, subject)[0]
        reordered = x509.Name(list(reversed(list(subject))))
        assert req.csr_matches(csr, push.key, reordered)[0]
        ok, why = req.csr_matches(csr, rsa_key(), subject)
        assert not ok and "another private key" in why
        ok, why = req.csr_matches(csr, push.key, req.SubjectSpec(common_name="other").to_name())
        assert not ok and "differs from the requested CN=other" in why

    def test_load_csr(self, push):
        csr = req.build_csr(push.key, x509.Name([]))
        assert mat.load_csr(req.csr_pem(csr)) == csr
        assert mat.load_csr(req.csr_der(csr)) == csr
        with pytest.raises(CertificateError, match="no certificate signing request"):
            mat.load_csr(push.cert_pem(), "csr_path x")
        with pytest.raises(CertificateError, match="damaged"):
            mat.load_csr(b"\x30\x03\x02\x01\x00", "csr_path x")

    def test_generate_key_minimum(self):
        for bits in (0, 1024, 2047, 8192, 100000, True, "2048"):
            with pytest.raises(CertificateError, match="key_size must be one of 2048, 3072, 4096"):
                req.generate_rsa_key(bits)

    def test_signed_request_roundtrip(self, pki, push):
        vendor = pki.vendor()
        csr = req.build_csr(push.key, req.SubjectSpec(common_name="mdm").to_name())
        blob = req.build_signed_request(csr, vendor.cert, vendor.key, [pki.wwdr.cert, pki.root.cert])
        parsed = req.parse_signed_request(blob)
        assert parsed.csr_der == req.csr_der(csr)
        assert parsed.chain_pem.count("BEGIN CERTIFICATE") == 3
        assert parsed.chain_pem.startswith(vendor.cert_pem().decode())
        vendor.cert.public_key().verify(parsed.signature, parsed.csr_der, padding.PKCS1v15(), hashes.SHA256())
        assert req.verify_signed_request(parsed, vendor.cert).ok
        assert not req.verify_signed_request(parsed, pki.vendor("Other").cert).ok
        tampered = req.SignedRequest(parsed.csr_der + b"x", parsed.chain_pem, parsed.signature)
        assert not req.verify_signed_request(tampered, vendor.cert).ok

    def test_signed_request_refuses_wrong_vendor_key(self, pki, push):
        vendor = pki.vendor()
        csr = req.build_csr(push.key, x509.Name([]))
        with pytest.raises(CertificateError, match="does not belong to the vendor certificate"):
            req.build_signed_request(csr, vendor.cert, rsa_key())

    def test_parse_signed_request_garbage(self):
        bad_plist = base64.b64encode(b"<?xml version='1.0'?><plist><dict/></plist>")
        for data in (b"not base64 !!", base64.b64encode(b"<plist>"), bad_plist):
            with pytest.raises(CertificateError, match="not a signed push certificate request"):
                req.parse_signed_request(data)


class TestPlan:
    def spec(self, tmp_path, **kwargs):
        values = dict(privatekey_path=str(tmp_path / "push.key"), csr_path=str(tmp_path / "push.csr"),
                      subject=req.SubjectSpec(common_name="mdm.example.com", country="US"))
        values.update(kwargs)
        return req.RequestSpec(**values)

    def run(self, spec):
        plan = req.plan_request(spec)
        req.apply_request(plan)
        return plan

    def test_create_then_keep(self, tmp_path):
        first = self.run(self.spec(tmp_path))
        assert first.actions == {"privatekey": "create", "csr": "create", "signed_request": "none"}
        second = req.plan_request(self.spec(tmp_path))
        assert not second.changed and second.actions["csr"] == "keep"
        result = req.request_result(second, applied=False)
        assert result["public_key_fingerprint_sha256"] == mat.public_key_fingerprint(first.key)
        assert "PRIVATE KEY" not in repr(result)

    def test_subject_change_regenerates_csr_only(self, tmp_path):
        first = self.run(self.spec(tmp_path))
        plan = self.run(self.spec(tmp_path, subject=req.SubjectSpec(common_name="other")))
        assert plan.actions == {"privatekey": "keep", "csr": "regenerate", "signed_request": "none"}
        assert mat.public_key_fingerprint(plan.key) == mat.public_key_fingerprint(first.key)
        assert "differs from the requested" in " ".join(plan.reasons)

    def test_loose_key_mode_is_fixed(self, tmp_path):
        spec = self.spec(tmp_path)
        self.run(spec)
        os.chmod(spec.privatekey_path, 0o644)
        plan = self.run(spec)
        assert plan.actions["privatekey"] == "fix_mode" and plan.changed_files == [spec.privatekey_path]
        assert stat.S_IMODE(os.stat(spec.privatekey_path).st_mode) == 0o600

    def test_existing_ec_key_is_refused_and_kept(self, tmp_path):
        spec = self.spec(tmp_path)
        pem = ec_key().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
        with open(spec.privatekey_path, "wb") as handle:
            handle.write(pem)
        with pytest.raises(CertificateError, match="EC secp256r1 key.*needs an RSA key.*kept untouched"):
            req.plan_request(spec)
        assert open(spec.privatekey_path, "rb").read() == pem
        assert not os.path.exists(spec.csr_path)
        assert self.run(self.spec(tmp_path, force=True)).actions["privatekey"] == "regenerate"

    def test_encrypted_key(self, tmp_path):
        spec = self.spec(tmp_path, privatekey_passphrase=PASSWORD)
        self.run(spec)
        assert b"ENCRYPTED PRIVATE KEY" in open(spec.privatekey_path, "rb").read()
        assert not req.plan_request(spec).changed
        with pytest.raises(CertificateError, match="is encrypted: give its passphrase \\(option privatekey_passphrase"):
            req.plan_request(self.spec(tmp_path))

    def test_pkcs1_format(self, tmp_path):
        spec = self.spec(tmp_path, privatekey_format="pkcs1")
        self.run(spec)
        assert open(spec.privatekey_path, "rb").read().startswith(b"-----BEGIN RSA PRIVATE KEY-----")

    def test_vendor_key_mismatch_writes_nothing(self, tmp_path, pki):
        vendor = pki.vendor()
        vendor.write(str(tmp_path / "vendor.pem"))
        other = ApplePushPKI.mismatched_key()
        (tmp_path / "vendor.key").write_bytes(other.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        spec = self.spec(tmp_path, signed_request_path=str(tmp_path / "req.b64"),
                         vendor_certificate_path=str(tmp_path / "vendor.pem"),
                         vendor_private_key_path=str(tmp_path / "vendor.key"))
        with pytest.raises(CertificateError, match="does not belong to the vendor certificate.*nothing was written"):
            req.plan_request(spec)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["vendor.key", "vendor.pem"]

    def test_incomplete_vendor_options(self, tmp_path):
        with pytest.raises(CertificateError, match="together"):
            req.plan_request(self.spec(tmp_path, signed_request_path=str(tmp_path / "r")))

    def test_small_key_size_refused(self, tmp_path):
        with pytest.raises(CertificateError, match="key_size must be one of 2048, 3072, 4096, not 1024"):
            req.plan_request(self.spec(tmp_path, key_size=1024))

    def test_damaged_csr_is_regenerated(self, tmp_path):
        spec = self.spec(tmp_path)
        self.run(spec)
        with open(spec.csr_path, "wb") as handle:
            handle.write(b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n")
        plan = self.run(spec)
        assert plan.actions["csr"] == "regenerate" and "truncated PEM" in plan.reasons[0]
        assert isinstance(mat.load_csr(open(spec.csr_path, "rb").read()).public_key(), rsa.RSAPublicKey)
