"""Hostile and malformed inputs to push_certificate_info and push_certificate_request, run for real.

Every case runs the module through ansible (tests/lib/ansible_run.py) and must end
in a clean failure: a non-zero exit within the subprocess timeout (no hang), a
``msg`` that names the option and says what to do, no traceback or
``exception``, no module stderr, and the working directory exactly as before
(types, modes and bytes). The few accepted inputs are checked for doing exactly
what was asked (no wrong success).

Device nodes are made in tmp_path with mknod (root; the real /dev/null is only
used in check mode, which never writes).
"""
from __future__ import annotations

import base64
import json
import os
import re
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from tests.lib.ansible_run import run_module
from tests.lib.keys import truncated_private_key_pem

INFO = "mdmops.apple.push_certificate_info"
REQUEST = "mdmops.apple.push_certificate_request"
TIMEOUT = 120  # seconds: a hang (FIFO, /dev/zero, a huge key) fails the test instead of blocking the run
ROOT = os.geteuid() == 0
KEY_MATERIAL = re.compile(r"PRIVATE KEY-----(\\n|\n)[A-Za-z0-9+/]{16}")
needs_root = pytest.mark.skipif(not ROOT, reason="device nodes and foreign symlinks need root")


def snapshot(directory):
    state = {}
    for base, dirs, files in os.walk(str(directory)):
        for name in dirs + files:
            path = os.path.join(base, name)
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode):
                with open(path, "rb") as handle:
                    content = handle.read()
            elif stat.S_ISLNK(info.st_mode):
                content = os.readlink(path)
            elif stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode):
                content = info.st_rdev
            else:
                content = None
            state[os.path.relpath(path, str(directory))] = (stat.S_IFMT(info.st_mode), stat.S_IMODE(info.st_mode),
                                                            info.st_uid, content)
    return state


def clean_failure(module, args, tmp_path, *fragments, check=False):
    """Run ``module``; it must fail cleanly, say ``fragments``, and leave tmp_path untouched."""
    before = snapshot(tmp_path)
    result = run_module(module, args, check=check, timeout=TIMEOUT)
    text = json.dumps(result)
    assert result["_rc"] != 0, "wrong success: %s" % text
    assert result.get("failed", True) is True
    assert "Traceback" not in result["_stdout"] and "Traceback" not in text
    assert "exception" not in result and "module_stderr" not in result and "module_stdout" not in result, text
    assert isinstance(result.get("msg"), str) and result["msg"], text
    for fragment in fragments:
        assert fragment in result["msg"], result["msg"]
    assert not KEY_MATERIAL.search(text), "key material in the result"
    assert snapshot(tmp_path) == before, "files changed on failure"
    return result["msg"]


def ok(result):
    assert result["_rc"] == 0, result["_stdout"]
    assert "Traceback" not in result["_stdout"]
    return result


@pytest.fixture()
def vendor(tmp_path, pki):
    issued = pki.vendor()
    directory = tmp_path / "vendor"
    directory.mkdir()
    issued.write(str(directory / "mdm.pem"), str(directory / "vendor.key"))
    return directory


def request_args(tmp_path, **extra):
    args = {"privatekey_path": str(tmp_path / "push.key"), "csr_path": str(tmp_path / "push.csr"),
            "common_name": "mdm.example.com"}
    args.update(extra)
    return args


def signed_args(tmp_path, vendor, **extra):
    args = request_args(tmp_path, signed_request_path=str(tmp_path / "request.b64"),
                        vendor_certificate_path=str(vendor / "mdm.pem"),
                        vendor_private_key_path=str(vendor / "vendor.key"))
    args.update(extra)
    return args


@pytest.fixture()
def made(tmp_path):
    """A key and CSR made by the module itself."""
    ok(run_module(REQUEST, request_args(tmp_path), timeout=TIMEOUT))
    return tmp_path


# ---------------------------------------------------------------------------
# push_certificate_request: output paths
# ---------------------------------------------------------------------------

class TestRequestOutputs:
    @needs_root
    @pytest.mark.parametrize("option", ["csr_path", "privatekey_path", "signed_request_path"])
    def test_device_node_stays_a_device(self, tmp_path, vendor, option):
        device = tmp_path / "null"
        os.mknod(str(device), stat.S_IFCHR | 0o666, os.makedev(1, 3))
        clean_failure(REQUEST, signed_args(tmp_path, vendor, **{option: str(device)}), tmp_path,
                      option, "character device", "regular file")
        assert stat.S_ISCHR(os.lstat(str(device)).st_mode)

    def test_dev_null_in_check_mode(self, tmp_path):
        clean_failure(REQUEST, request_args(tmp_path, csr_path="/dev/null"), tmp_path, "csr_path /dev/null",
                      "character device", check=True)
        assert stat.S_ISCHR(os.stat("/dev/null").st_mode)

    def test_fifo_does_not_hang(self, tmp_path):
        os.mkfifo(str(tmp_path / "fifo"))
        clean_failure(REQUEST, request_args(tmp_path, privatekey_path=str(tmp_path / "fifo")), tmp_path,
                      "privatekey_path", "FIFO")

    def test_directory(self, tmp_path):
        (tmp_path / "dir").mkdir()
        clean_failure(REQUEST, request_args(tmp_path, csr_path=str(tmp_path / "dir")), tmp_path,
                      "csr_path", "directory")

    def test_csr_path_is_the_key_path(self, tmp_path, made):
        clean_failure(REQUEST, request_args(tmp_path, csr_path=str(tmp_path / "push.key")), tmp_path,
                      "privatekey_path and csr_path name the same file", "path of its own")

    def test_signed_request_path_is_the_key_path(self, tmp_path, made, vendor):
        clean_failure(REQUEST, signed_args(tmp_path, vendor, signed_request_path=str(tmp_path / "push.key")),
                      tmp_path, "privatekey_path and signed_request_path name the same file")

    def test_same_file_through_symlink_and_hardlink(self, tmp_path, made):
        os.symlink("push.key", str(tmp_path / "sym.csr"))
        os.link(str(tmp_path / "push.key"), str(tmp_path / "hard.csr"))
        for name in ("sym.csr", "hard.csr"):
            clean_failure(REQUEST, request_args(tmp_path, csr_path=str(tmp_path / name), force=True), tmp_path,
                          "name the same file")

    def test_output_is_the_vendor_key(self, tmp_path, vendor):
        clean_failure(REQUEST, signed_args(tmp_path, vendor, signed_request_path=str(vendor / "vendor.key")),
                      tmp_path, "signed_request_path and vendor_private_key_path name the same file")

    @needs_root
    def test_symlink_planted_by_another_user(self, tmp_path):
        shared = tmp_path / "shared"
        shared.mkdir()
        os.chmod(str(shared), 0o1777)
        (tmp_path / "victim").write_bytes(b"a file root owns\n")
        os.symlink(str(tmp_path / "victim"), str(shared / "push.csr"))
        os.lchown(str(shared / "push.csr"), 65534, 65534)
        clean_failure(REQUEST, request_args(tmp_path, csr_path=str(shared / "push.csr")), tmp_path,
                      "csr_path", "another user could have planted")

    def test_symlink_loop(self, tmp_path):
        os.symlink("b", str(tmp_path / "a"))
        os.symlink("a", str(tmp_path / "b"))
        clean_failure(REQUEST, request_args(tmp_path, csr_path=str(tmp_path / "a")), tmp_path,
                      "csr_path", "symbolic links")

    def test_missing_directory(self, tmp_path):
        clean_failure(REQUEST, request_args(tmp_path, csr_path=str(tmp_path / "nope" / "x.csr")), tmp_path,
                      "does not exist: create it first")


# ---------------------------------------------------------------------------
# push_certificate_request: keys are never replaced without force
# ---------------------------------------------------------------------------

class TestRequestKeys:
    def test_csr_path_holding_a_key(self, tmp_path, push):
        (tmp_path / "server.key").write_bytes(push.key_bytes())
        os.chmod(str(tmp_path / "server.key"), 0o600)
        clean_failure(REQUEST, request_args(tmp_path, csr_path=str(tmp_path / "server.key")), tmp_path,
                      "holds a private key", "force: true")

    def test_csr_path_holding_a_certificate(self, tmp_path, push):
        (tmp_path / "push.pem").write_bytes(push.cert_pem())
        clean_failure(REQUEST, request_args(tmp_path, csr_path=str(tmp_path / "push.pem")), tmp_path,
                      "not a certificate signing request", "force: true")

    @pytest.mark.parametrize("content", [b"", b"garbage\n", "truncated PEM", b"\x30\x82\x01\x00\x02\x01\x00"])
    def test_existing_key_that_cannot_be_read(self, tmp_path, content):
        if content == "truncated PEM":
            content = truncated_private_key_pem()
        (tmp_path / "push.key").write_bytes(content)
        clean_failure(REQUEST, request_args(tmp_path), tmp_path, "privatekey_path", "kept untouched",
                      "force: true")

    def test_wrong_passphrase_for_existing_key(self, tmp_path):
        ok(run_module(REQUEST, request_args(tmp_path, privatekey_passphrase="Right-Pw-1"), timeout=TIMEOUT))
        msg = clean_failure(REQUEST, request_args(tmp_path, privatekey_passphrase="Wrong-Pw-2"), tmp_path,
                            "privatekey_passphrase", "wrong", "kept untouched")
        assert "Wrong-Pw-2" not in msg and "Right-Pw-1" not in msg

    def test_force_with_backup_keeps_a_private_copy(self, tmp_path, push):
        (tmp_path / "server.key").write_bytes(push.key_bytes())
        os.chmod(str(tmp_path / "server.key"), 0o644)
        result = ok(run_module(REQUEST, request_args(tmp_path, csr_path=str(tmp_path / "server.key"), force=True,
                                                     backup=True), timeout=TIMEOUT))
        (backup,) = result["backup_files"]
        assert stat.S_IMODE(os.stat(backup).st_mode) == 0o600
        assert open(backup, "rb").read() == push.key_bytes()
        assert x509.load_pem_x509_csr((tmp_path / "server.key").read_bytes()).is_signature_valid


# ---------------------------------------------------------------------------
# push_certificate_request: values
# ---------------------------------------------------------------------------

class TestRequestValues:
    @pytest.mark.parametrize("size", [0, 1024, 100000, -2048, "abc", "2048bits", True])
    def test_key_size(self, tmp_path, size):
        clean_failure(REQUEST, request_args(tmp_path, key_size=size), tmp_path, "key_size")

    def test_key_size_4096_is_accepted(self, tmp_path):
        result = ok(run_module(REQUEST, request_args(tmp_path, key_size=4096), timeout=TIMEOUT))
        key = serialization.load_pem_private_key((tmp_path / "push.key").read_bytes(), None)
        assert key.key_size == 4096 and result["changed"] is True

    @pytest.mark.parametrize("option", ["privatekey_passphrase", "private_key_passphrase"])
    def test_empty_passphrase_writes_no_clear_key(self, tmp_path, option):
        clean_failure(REQUEST, request_args(tmp_path, **{option: ""}), tmp_path, "privatekey_passphrase is empty",
                      "leave the option out")

    def test_empty_vendor_passphrase(self, tmp_path, vendor):
        clean_failure(REQUEST, signed_args(tmp_path, vendor, vendor_private_key_passphrase=""), tmp_path,
                      "vendor_private_key_passphrase is empty")

    @pytest.mark.parametrize("extra,fragment", [
        ({"country": "USA"}, "country"), ({"country": "\u00e9\u00e9"}, "country"),
        ({"email_address": "nobody"}, "email_address"), ({"email_address": "r\u00e9mi@example.com"}, "email_address"),
        ({"common_name": "x" * 65}, "common_name"), ({"force": "maybe"}, "force"),
        ({"privatekey_format": "pkcs12"}, "privatekey_format"), ({"csr_path": ""}, "csr_path"),
        ({"unknown_option": 1}, "unknown_option"),
    ])
    def test_bad_values_and_types(self, tmp_path, extra, fragment):
        clean_failure(REQUEST, request_args(tmp_path, **extra), tmp_path, fragment)


# ---------------------------------------------------------------------------
# push_certificate_request: input files
# ---------------------------------------------------------------------------

class TestRequestInputs:
    def test_vendor_certificate_fifo(self, tmp_path, vendor):
        os.mkfifo(str(tmp_path / "fifo"))
        clean_failure(REQUEST, signed_args(tmp_path, vendor, vendor_certificate_path=str(tmp_path / "fifo")),
                      tmp_path, "vendor_certificate_path", "FIFO")

    def test_vendor_key_dev_zero(self, tmp_path, vendor):
        clean_failure(REQUEST, signed_args(tmp_path, vendor, vendor_private_key_path="/dev/zero"), tmp_path,
                      "vendor_private_key_path /dev/zero", "character device")

    def test_vendor_chain_too_large(self, tmp_path, vendor):
        with open(str(tmp_path / "huge.pem"), "wb") as handle:
            handle.truncate(2 * 1024 * 1024)
        clean_failure(REQUEST, signed_args(tmp_path, vendor, vendor_chain_path=str(tmp_path / "huge.pem")),
                      tmp_path, "vendor_chain_path", "larger than")

    def test_vendor_certificate_is_a_csr(self, tmp_path, vendor, push):
        ok(run_module(REQUEST, request_args(tmp_path / "vendor"), timeout=TIMEOUT))
        der = x509.load_pem_x509_csr((tmp_path / "vendor" / "push.csr").read_bytes()).public_bytes(
            serialization.Encoding.DER)
        (tmp_path / "csr.der").write_bytes(der)
        clean_failure(REQUEST, signed_args(tmp_path, vendor, vendor_certificate_path=str(tmp_path / "csr.der")),
                      tmp_path, "vendor_certificate_path", "certificate signing request")

    def test_vendor_key_is_a_certificate(self, tmp_path, vendor, push):
        (tmp_path / "cert.der").write_bytes(push.cert_der())
        clean_failure(REQUEST, signed_args(tmp_path, vendor, vendor_private_key_path=str(tmp_path / "cert.der")),
                      tmp_path, "vendor_private_key_path", "no private key found")

    def test_vendor_key_is_ec(self, tmp_path, vendor):
        from lab.pki import ec_key
        (tmp_path / "ec.key").write_bytes(ec_key().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        clean_failure(REQUEST, signed_args(tmp_path, vendor, vendor_private_key_path=str(tmp_path / "ec.key")),
                      tmp_path, "vendor_private_key_path", "RSA")


# ---------------------------------------------------------------------------
# push_certificate_info
# ---------------------------------------------------------------------------

class TestInfo:
    def test_fifo_does_not_hang(self, tmp_path):
        os.mkfifo(str(tmp_path / "fifo"))
        clean_failure(INFO, {"path": str(tmp_path / "fifo")}, tmp_path, "path", "FIFO", "regular file")

    @pytest.mark.parametrize("option", ["path", "privatekey_path", "compare_to_path"])
    def test_dev_zero_is_bounded(self, tmp_path, push, option):
        args = {"content": push.cert_pem().decode()} if option != "path" else {}
        args[option] = "/dev/zero"
        clean_failure(INFO, args, tmp_path, "%s /dev/zero" % option, "character device")

    def test_directory(self, tmp_path):
        clean_failure(INFO, {"path": str(tmp_path)}, tmp_path, "directory")

    def test_large_regular_file(self, tmp_path):
        with open(str(tmp_path / "big.pem"), "wb") as handle:
            handle.truncate(2 * 1024 * 1024)
        clean_failure(INFO, {"path": str(tmp_path / "big.pem")}, tmp_path, "larger than")

    def test_symlink_loop(self, tmp_path):
        os.symlink("b", str(tmp_path / "a"))
        os.symlink("a", str(tmp_path / "b"))
        clean_failure(INFO, {"path": str(tmp_path / "a")}, tmp_path, "symbolic links")

    def test_unreadable_file(self, tmp_path):
        # /proc/self/mem is a regular file that even root cannot read from offset 0
        clean_failure(INFO, {"path": "/proc/self/mem"}, tmp_path, "path /proc/self/mem", "cannot be read")

    @pytest.mark.parametrize("case", ["garbage", "truncated_pem", "truncated_der", "pem_without_end", "empty",
                                      "csr_der", "key_der", "pkcs7_garbage", "base64_garbage", "nul_bytes"])
    def test_malformed_certificate(self, tmp_path, push, case):
        data = {
            "garbage": b"\xff\xfe" + bytes(range(256)),
            "truncated_pem": push.cert_pem()[:300],
            "truncated_der": push.cert_der()[:200],
            "pem_without_end": push.cert_pem().split(b"-----END")[0],
            "empty": b"",
            "csr_der": x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(
                push.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER),
            "key_der": push.key_bytes("der"),
            "pkcs7_garbage": b"-----BEGIN PKCS7-----\nMIIB\n-----END PKCS7-----\n",
            "base64_garbage": base64.b64encode(b"\x30\x82\x10\x00" + b"\x00" * 40),
            "nul_bytes": b"\x00" * 1024,
        }[case]
        (tmp_path / "input").write_bytes(data)
        clean_failure(INFO, {"path": str(tmp_path / "input")}, tmp_path, "path %s" % (tmp_path / "input"))

    def test_key_of_the_wrong_kind(self, tmp_path, push):
        (tmp_path / "cert.pem").write_bytes(push.cert_pem())
        clean_failure(INFO, {"content": push.cert_pem().decode(), "privatekey_path": str(tmp_path / "cert.pem")},
                      tmp_path, "privatekey_path", "no private key found")

    def test_compare_to_wrong_password_names_its_option(self, tmp_path, push):
        (tmp_path / "current.p12").write_bytes(push.pkcs12(b"Right-Pw-1"))
        msg = clean_failure(INFO, {"content": push.cert_pem().decode(), "compare_to_path": str(tmp_path / "current.p12"),
                                   "compare_to_certificate_password": "Wrong-Pw-2"}, tmp_path,
                            "compare_to_path", "option compare_to_certificate_password", "wrong")
        assert "Wrong-Pw-2" not in msg
        clean_failure(INFO, {"content": push.cert_pem().decode(), "compare_to_path": str(tmp_path / "current.p12")},
                      tmp_path, "password protected", "option compare_to_certificate_password")

    def test_certificate_password_names_its_option(self, tmp_path, push):
        (tmp_path / "push.p12").write_bytes(push.pkcs12(b"Right-Pw-1"))
        clean_failure(INFO, {"path": str(tmp_path / "push.p12"), "certificate_password": "Wrong"}, tmp_path,
                      "option certificate_password", "wrong")

    def test_empty_key_passphrase(self, tmp_path, push):
        clean_failure(INFO, {"content": push.cert_pem().decode(),
                             "privatekey_content": push.key_bytes(password=b"pw").decode(),
                             "privatekey_passphrase": ""}, tmp_path, "privatekey_passphrase is empty")

    @pytest.mark.parametrize("extra,fragment", [
        ({"expires_within_days": -1}, "expires_within_days"), ({"expires_within_days": "soon"}, "expires_within_days"),
        ({"format": "pkcs12"}, "format pkcs12"), ({"format": "xml"}, "format"),
        ({"privatekey_path": "/nonexistent/key", "privatekey_content": "not-a-key-at-all"}, "mutually exclusive"),
    ])
    def test_bad_values_and_types(self, tmp_path, push, extra, fragment):
        args = {"content": push.cert_pem().decode()}
        args.update(extra)
        clean_failure(INFO, args, tmp_path, fragment)

    def test_nothing_given(self, tmp_path):
        clean_failure(INFO, {"format": "auto"}, tmp_path, "path", "content")
