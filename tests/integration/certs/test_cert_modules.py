"""push_certificate_info and push_certificate_request run for real: their own code through
tests/lib/module_runner.py (files, modes, keys, idempotence, failures), and through ansible-playbook
where Ansible's part is checked (the diff it shows in check mode; a failure under ignore_errors).

Certificates, keys and vendor material are generated at run time in tmp_path.
"""
from __future__ import annotations

import base64
import json
import os
import plistlib
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from tests.lib.ansible_run import run_module, task
from tests.lib.module_runner import run_module_cases

INFO = "mdmops.apple.push_certificate_info"
REQUEST = "mdmops.apple.push_certificate_request"
P12_PASSWORD = "Lab-Pkcs12-Pw!"


def _no_crash(result):
    """No exception escaped the module (see tests/lib/ansible_run.py); where Ansible was not asked to keep
    tracebacks (run_module), none may show in the output either."""
    assert result["_crash"] is None, result["_crash"]
    if not result.get("_tracebacks"):
        assert "Traceback" not in result["_stdout"]


def ok(result):
    assert result["failed"] is False, result["_stdout"]
    _no_crash(result)
    assert "PRIVATE KEY" not in json.dumps({k: v for k, v in result.items() if k not in ("_stdout", "_crash")})
    assert "PRIVATE KEY-----\n" not in result["_stdout"]
    return result


def failed(result, *fragments):
    """A clean failure: a failed task, a message naming the problem, no crash, no key text."""
    assert result["failed"] is True, result
    assert "FAILED!" in result["_stdout"] or result.get("_runner") == "direct"     # Ansible's display
    _no_crash(result)
    assert "module_stderr" not in result and "exception" not in result
    assert "PRIVATE KEY" not in json.dumps({k: v for k, v in result.items() if k not in ("_stdout", "_crash")})
    for fragment in fragments:
        assert fragment in result["msg"], result["msg"]
    return result


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# ---------------------------------------------------------------------------
# push_certificate_info
# ---------------------------------------------------------------------------

def info_cases(tmp_path, pki, push):
    """(name, args, check mode, judge(result)) for push_certificate_info; files are written to tmp_path."""
    cases = []

    def add(name, args, check=False):
        def register(judge):
            cases.append((name, args, check, judge))
            return judge
        return register

    cert_path, key_path = str(tmp_path / "push.pem"), str(tmp_path / "push.key")
    push.write(cert_path, key_path, with_chain=True)

    @add("results_match_the_certificate", {"path": cert_path, "privatekey_path": key_path})
    def _matches(result):
        result = ok(result)
        cert = push.cert
        assert result["changed"] is False
        assert result["topic"] == push.topic and result["topic"].startswith("com.apple.mgmt.External.")
        assert result["common_name"] == "APSP:" + push.uuid
        assert result["issuer_common_name"] == "Apple Application Integration 2 Certification Authority"
        assert result["serial_number"] == str(cert.serial_number)
        assert result["fingerprint_sha256"] == ":".join("%02X" % b for b in cert.fingerprint(hashes.SHA256()))
        assert result["not_after"] == cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert result["not_before"] == cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert result["expired"] is False and result["expires_soon"] is False and result["not_yet_valid"] is False
        assert result["is_mdm_push"] is True and result["mdm_push_reasons"] == []
        assert result["key_matches"] is True
        assert result["certificates_found"] == 3 and result["chain_verified"] is True

    (tmp_path / "push.cer").write_bytes(push.cert_der())

    @add("check_mode", {"path": str(tmp_path / "push.cer")}, check=True)
    def _check(result):
        result = ok(result)
        assert result["changed"] is False and result["input_format"] == "der" and result["topic"] == push.topic
        assert "key_matches" not in result

    @add("pkcs12_inline_with_password", {"content": base64.b64encode(push.pkcs12(P12_PASSWORD.encode())).decode(),
                                         "certificate_password": P12_PASSWORD})
    def _p12(result):
        result = ok(result)
        assert result["input_format"] == "pkcs12" and result["key_matches"] is True
        assert result["contains_private_key"] is True
        assert P12_PASSWORD not in json.dumps(result)

    # password and compare_to_password (deprecated), private_key_* (aliases) keep working
    former = tmp_path / "former"
    former.mkdir()
    (former / "push.p12").write_bytes(push.pkcs12(P12_PASSWORD.encode(), with_key=False))
    (former / "push.key").write_bytes(push.key_bytes(password=b"Key-Pw-1"))
    (former / "current.p12").write_bytes(push.pkcs12(b"Other-Pw-2"))

    @add("former_option_names_still_work", {
        "path": str(former / "push.p12"), "password": P12_PASSWORD, "private_key_path": str(former / "push.key"),
        "private_key_passphrase": "Key-Pw-1", "compare_to_path": str(former / "current.p12"),
        "compare_to_password": "Other-Pw-2"})
    def _former(result):
        result = ok(result)
        assert result["key_matches"] is True and result["same_certificate_as_compared"] is True

    other = pki.mismatched_key().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption())

    @add("mismatched_key", {"content": push.cert_pem().decode(), "private_key_content": other.decode()})
    def _mismatch(result):
        assert ok(result)["key_matches"] is False

    @add("expired", {"content": pki.expired().cert_pem().decode()})
    def _expired(result):
        expired = ok(result)
        assert expired["expired"] is True and expired["expires_soon"] is True and expired["days_remaining"] < 0

    @add("not_apple", {"content": pki.not_apple().cert_pem().decode()})
    def _impostor(result):
        impostor = ok(result)
        assert impostor["is_mdm_push"] is False and impostor["mdm_push_reasons"]

    expiring = pki.expiring(days_left=20).cert_pem().decode()

    @add("expires_within_days default", {"content": expiring})
    def _soon(result):
        assert ok(result)["expires_soon"] is True

    @add("expires_within_days 7", {"content": expiring, "expires_within_days": 7})
    def _not_soon(result):
        assert ok(result)["expires_soon"] is False

    current = tmp_path / "current.pem"
    current.write_bytes(push.cert_pem())

    @add("compare renewal", {"content": pki.renewal(push).cert_pem().decode(), "compare_to_path": str(current)})
    def _renewal(result):
        renewal = ok(result)
        assert renewal["same_topic_as_compared"] is True and renewal["is_renewal_of_compared"] is True
        assert renewal["same_certificate_as_compared"] is False

    @add("compare other account", {"content": pki.other_account().cert_pem().decode(),
                                   "compare_to_path": str(current)})
    def _other(result):
        other = ok(result)
        assert other["same_topic_as_compared"] is False and other["is_renewal_of_compared"] is False
        assert other["compared"]["topic"] == push.topic

    for case in ("key_only", "missing", "wrong_password", "truncated", "random", "empty"):
        path = tmp_path / ("input-" + case)
        args = {"path": str(path)}
        if case == "key_only":
            path.write_bytes(push.key_bytes())
            expected = ["no certificate found", "private key only", "privatekey_path"]
        elif case == "missing":
            expected = ["file not found"]
        elif case == "wrong_password":
            path.write_bytes(push.pkcs12(P12_PASSWORD.encode()))
            args["certificate_password"] = "not-the-password"
            expected = ["certificate_password", "wrong"]
        elif case == "truncated":
            path.write_bytes(push.cert_pem()[:500])
            expected = ["truncated PEM"]
        elif case == "random":
            path.write_bytes(b"\xff" + os.urandom(256))
            expected = ["not a certificate"]
        else:
            path.write_bytes(b"")
            expected = ["is empty"]

        @add("clean_failure " + case, args)
        def _clean(result, path=path, expected=tuple(expected)):
            result = failed(result, str(path), *expected)
            assert "not-the-password" not in json.dumps(result)

    @add("path_and_content_are_exclusive", {"path": "/nonexistent", "content": push.cert_pem().decode()})
    def _exclusive(result):
        failed(result, "mutually exclusive")

    return cases


def test_push_certificate_info(tmp_path, pki, push):
    """Every push_certificate_info case, the module's own code (tests/lib/module_runner.py: a fork per case),
    each judged on its own result. Through Ansible: test_return_docs.py, test_compat.py."""
    cases = info_cases(tmp_path, pki, push)
    results = run_module_cases([task(name, INFO, args, check=check) for name, args, check, _j in cases], timeout=120)
    problems = []
    for name, _args, _check, judge in cases:
        try:
            judge(results[name])
        except AssertionError as exc:
            problems.append("%s: %s" % (name, exc))
    assert not problems, "%d of %d cases went wrong:\n%s" % (len(problems), len(cases), "\n".join(problems))


# ---------------------------------------------------------------------------
# push_certificate_request
# ---------------------------------------------------------------------------

def request_args(tmp_path, **extra):
    args = {"privatekey_path": str(tmp_path / "push.key"), "csr_path": str(tmp_path / "push.csr"),
            "common_name": "mdm.example.com", "email_address": "mdm@example.com", "country": "US"}
    args.update(extra)
    return args


def requests(*named):
    """Run each (name, args) with push_certificate_request, in order: the module's own code
    (tests/lib/module_runner.py, a fork per run of one process that imported it)."""
    return run_module_cases([task(name, REQUEST, args) for name, args in named], timeout=120)


def request(args, check=False, diff=False):
    """One run of push_certificate_request's own code (see ``requests``); the tests that check what Ansible
    shows (the diff) use tests/lib/ansible_run.py's run_module."""
    return run_module_cases([task("run", REQUEST, args, check=check, diff=diff)], timeout=120)["run"]


def load_csr(path):
    with open(path, "rb") as handle:
        return x509.load_pem_x509_csr(handle.read())


def load_key(path, password=None):
    with open(path, "rb") as handle:
        return serialization.load_pem_private_key(handle.read(), password)


class TestRequest:
    def test_create_is_idempotent_with_safe_modes(self, tmp_path):
        args = request_args(tmp_path)
        runs = requests(("first", args), ("second", args))          # the second run finds nothing to do
        first, second = ok(runs["first"]), ok(runs["second"])
        assert first["changed"] is True
        assert first["changed_files"] == [args["privatekey_path"], args["csr_path"]]
        assert mode(args["privatekey_path"]) == 0o600 and mode(args["csr_path"]) == 0o644
        key, csr = load_key(args["privatekey_path"]), load_csr(args["csr_path"])
        assert csr.is_signature_valid
        assert csr.public_key().public_numbers() == key.public_key().public_numbers()
        assert key.key_size == 2048
        assert first["csr_subject"] == "emailAddress=mdm@example.com,CN=mdm.example.com,C=US"
        der = key.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
        digest = hashes.Hash(hashes.SHA256())
        digest.update(der)
        assert first["public_key_fingerprint_sha256"] == ":".join("%02X" % b for b in digest.finalize())
        assert sorted(os.listdir(tmp_path)) == ["push.csr", "push.key"]  # no temporary files left

        assert second["changed"] is False and second["changed_files"] == []
        assert second["actions"] == {"privatekey": "keep", "csr": "keep", "signed_request": "none"}
        assert second["public_key_fingerprint_sha256"] == first["public_key_fingerprint_sha256"]

    def test_check_mode_writes_nothing(self, tmp_path):
        result = ok(run_module(REQUEST, request_args(tmp_path), check=True, diff=True))
        assert result["changed"] is True and result["actions"]["privatekey"] == "create"
        assert os.listdir(tmp_path) == []
        assert "--- before" in result["_stdout"] and '"subject": "emailAddress=mdm@example.com' in result["_stdout"]

    def test_check_mode_on_existing_files_reports_csr_change(self, tmp_path):
        ok(request(request_args(tmp_path)))
        before = (tmp_path / "push.csr").read_bytes()
        result = ok(run_module(REQUEST, request_args(tmp_path, common_name="renamed"), check=True, diff=True))
        assert result["changed"] is True and result["actions"] == {
            "privatekey": "keep", "csr": "regenerate", "signed_request": "none"}
        assert (tmp_path / "push.csr").read_bytes() == before
        assert "CN=renamed" in result["_stdout"]

    def test_subject_change_keeps_key(self, tmp_path):
        first = ok(request(request_args(tmp_path)))
        key_before = (tmp_path / "push.key").read_bytes()
        second = ok(request(request_args(tmp_path, organization="Example Corp"), diff=True))
        assert second["changed"] is True and second["changed_files"] == [str(tmp_path / "push.csr")]
        assert (tmp_path / "push.key").read_bytes() == key_before
        assert second["public_key_fingerprint_sha256"] == first["public_key_fingerprint_sha256"]
        assert "O=Example Corp" in load_csr(str(tmp_path / "push.csr")).subject.rfc4514_string()
        assert "PRIVATE KEY" not in second["_stdout"]

    def test_force_regenerates_with_backup(self, tmp_path):
        runs = requests(("first", request_args(tmp_path)), ("forced", request_args(tmp_path, force=True, backup=True)))
        first, forced = ok(runs["first"]), ok(runs["forced"])
        assert forced["changed"] is True
        assert forced["actions"] == {"privatekey": "regenerate", "csr": "regenerate", "signed_request": "none"}
        assert forced["public_key_fingerprint_sha256"] != first["public_key_fingerprint_sha256"]
        assert len(forced["backup_files"]) == 2
        key_backup = [p for p in forced["backup_files"] if os.path.basename(p).startswith("push.key")][0]
        assert all(mode(backup) == 0o600 for backup in forced["backup_files"])
        assert (tmp_path / os.path.basename(key_backup)).read_bytes() != (tmp_path / "push.key").read_bytes()
        assert mode(str(tmp_path / "push.key")) == 0o600

    def test_encrypted_key_and_loose_mode_fixed(self, tmp_path):
        args = request_args(tmp_path, privatekey_passphrase="Key-Passphrase-1")
        ok(request(args))
        assert b"ENCRYPTED PRIVATE KEY" in (tmp_path / "push.key").read_bytes()
        os.chmod(tmp_path / "push.key", 0o644)
        # the loose mode fixed, then nothing left to do, then a wrong passphrase (one playbook run)
        key = (tmp_path / "push.key").read_bytes()
        runs = requests(("fixed", args), ("again", args),
                        ("bad", request_args(tmp_path, privatekey_passphrase="Bad-Passphrase-9")))
        fixed = ok(runs["fixed"])
        assert fixed["changed"] is True and fixed["actions"]["privatekey"] == "fix_mode"
        assert mode(str(tmp_path / "push.key")) == 0o600 and (tmp_path / "push.key").read_bytes() == key
        assert ok(runs["again"])["changed"] is False
        result = failed(runs["bad"], "passphrase", "wrong", "kept untouched")
        assert "Key-Passphrase-1" not in json.dumps(result) and "Bad-Passphrase-9" not in result["msg"]

    def test_existing_ec_key_fails_cleanly(self, tmp_path):
        from lab.pki import ec_key
        pem = ec_key().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
        (tmp_path / "push.key").write_bytes(pem)
        failed(request(request_args(tmp_path)), "EC secp256r1", "RSA", "force: true")
        assert os.listdir(tmp_path) == ["push.key"]

    def test_missing_directory_fails_cleanly(self, tmp_path):
        failed(request(request_args(tmp_path / "nope")), "does not exist")

    def test_key_size_minimum(self, tmp_path):
        failed(request(request_args(tmp_path, key_size=1024)), "key_size", "2048, 3072, 4096")
        assert os.listdir(tmp_path) == []


class TestVendorSignedRequest:
    @pytest.fixture()
    def vendor_files(self, tmp_path, pki):
        vendor = pki.vendor()
        vendor_dir = tmp_path / "vendor"
        vendor_dir.mkdir()
        vendor.write(str(vendor_dir / "mdm.pem"))
        (vendor_dir / "vendor.key").write_bytes(vendor.key_bytes(password=b"Vendor-Pw-1"))
        os.chmod(vendor_dir / "vendor.key", 0o600)
        (vendor_dir / "chain.pem").write_bytes(pki.apple_chain_pem())
        return vendor, vendor_dir

    def args(self, tmp_path, vendor_dir, **extra):
        return request_args(tmp_path, signed_request_path=str(tmp_path / "PushCertificateRequest.b64"),
                            vendor_certificate_path=str(vendor_dir / "mdm.pem"),
                            vendor_private_key_path=str(vendor_dir / "vendor.key"),
                            vendor_private_key_passphrase="Vendor-Pw-1",
                            vendor_chain_path=str(vendor_dir / "chain.pem"), **extra)

    def test_signed_request_verifies(self, tmp_path, pki, vendor_files):
        vendor, vendor_dir = vendor_files
        args = self.args(tmp_path, vendor_dir)
        runs = requests(("first", args), ("again", args))          # the second run finds nothing to do
        result, again = ok(runs["first"]), ok(runs["again"])
        assert result["changed"] is True and result["actions"]["signed_request"] == "create"
        assert result["signed_request_path"] == args["signed_request_path"]
        assert mode(args["signed_request_path"]) == 0o644

        with open(args["signed_request_path"], "rb") as handle:
            plist = plistlib.loads(base64.b64decode(handle.read()))
        assert set(plist) == {"PushCertRequestCSR", "PushCertCertificateChain", "PushCertSignature"}
        csr_der = base64.b64decode(plist["PushCertRequestCSR"])
        on_disk = load_csr(args["csr_path"])
        assert csr_der == on_disk.public_bytes(serialization.Encoding.DER)
        pem_body = b"".join((tmp_path / "push.csr").read_bytes().splitlines()[1:-1])
        assert plist["PushCertRequestCSR"].encode() == pem_body  # the text between the CSR's PEM markers
        vendor.cert.public_key().verify(base64.b64decode(plist["PushCertSignature"]), csr_der,
                                        padding.PKCS1v15(), hashes.SHA256())
        chain = x509.load_pem_x509_certificates(plist["PushCertCertificateChain"].encode())
        assert chain == [vendor.cert, pki.wwdr.cert, pki.root.cert]
        assert again["changed"] is False and again["actions"]["signed_request"] == "keep"

    def test_signed_request_follows_csr(self, tmp_path, vendor_files):
        _vendor, vendor_dir = vendor_files
        runs = requests(("first", self.args(tmp_path, vendor_dir)),
                        ("renamed", self.args(tmp_path, vendor_dir, common_name="renamed")))
        ok(runs["first"])
        result = ok(runs["renamed"])
        assert result["actions"] == {"privatekey": "keep", "csr": "regenerate", "signed_request": "regenerate"}
        with open(str(tmp_path / "PushCertificateRequest.b64"), "rb") as handle:
            plist = plistlib.loads(base64.b64decode(handle.read()))
        assert base64.b64decode(plist["PushCertRequestCSR"]) == load_csr(str(tmp_path / "push.csr")).public_bytes(
            serialization.Encoding.DER)

    def test_another_vendor_certificate_resigns(self, tmp_path, pki, vendor_files):
        _vendor, vendor_dir = vendor_files
        ok(request(self.args(tmp_path, vendor_dir)))
        other = pki.vendor("Other Vendor")
        other.write(str(vendor_dir / "mdm.pem"), str(vendor_dir / "vendor.key"))
        args = self.args(tmp_path, vendor_dir)
        del args["vendor_private_key_passphrase"]
        result = ok(request(args))
        assert result["actions"] == {"privatekey": "keep", "csr": "keep", "signed_request": "regenerate"}

    def test_vendor_key_mismatch_writes_nothing(self, tmp_path, pki, vendor_files):
        _vendor, vendor_dir = vendor_files
        stranger = pki.vendor("Stranger")
        (vendor_dir / "vendor.key").write_bytes(stranger.key_bytes())
        args = self.args(tmp_path, vendor_dir)
        del args["vendor_private_key_passphrase"]
        failed(request(args), "vendor_private_key_path", "does not belong to the vendor certificate",
               "nothing was written")
        assert sorted(os.listdir(tmp_path)) == ["vendor"]

    def test_vendor_options_go_together(self, tmp_path, vendor_files):
        _vendor, vendor_dir = vendor_files
        args = request_args(tmp_path, signed_request_path=str(tmp_path / "r.b64"))
        failed(request(args), "vendor_certificate_path")
        assert sorted(os.listdir(tmp_path)) == ["vendor"]


def test_failure_under_ignore_errors_carries_msg_only(tmp_path):
    """Registered under ignore_errors, a failure of ours has the keys of ansible.builtin.fail, and no more.

    ansible-core 2.19 itself attaches ``exception: "(traceback unavailable)"`` to every failed result
    (ansible.builtin.fail included) unless tracebacks are enabled; the modules add nothing to it.
    """
    import sys
    from tests.lib.ansible_run import run_playbook
    out = tmp_path / "results.json"
    playbook = tmp_path / "play.yml"
    playbook.write_text("""
- hosts: localhost
  gather_facts: false
  tasks:
    - mdmops.apple.push_certificate_info:
        path: %(missing)s
      ignore_errors: true
      register: info
    - mdmops.apple.push_certificate_request:
        privatekey_path: %(key)s
        csr_path: %(key)s
      ignore_errors: true
      register: request
    - ansible.builtin.fail:
        msg: reference failure
      ignore_errors: true
      register: reference
    - ansible.builtin.copy:
        content: "{{ {'info': info, 'request': request, 'reference': reference} | to_json }}"
        dest: %(out)s
        mode: "0600"
""" % {"missing": tmp_path / "missing.pem", "key": tmp_path / "push.key", "out": out})
    proc = run_playbook(str(playbook), inventory="localhost,",
                        extra_vars={"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
                        timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    results = json.loads(out.read_text())
    reference = results["reference"]
    for name in ("info", "request"):
        result = results[name]
        assert set(result) - {"warnings", "deprecations"} == set(reference), (name, result)
        # ansible-core 2.19 adds "exception" to every failure (ours and ansible.builtin.fail alike); 2.17/2.18 do not
        assert result.get("exception") == reference.get("exception")
        assert result["failed"] is True and result["msg"]
    assert "file not found" in results["info"]["msg"]
    assert "name the same file" in results["request"]["msg"]
    assert not os.path.exists(str(tmp_path / "push.key"))
