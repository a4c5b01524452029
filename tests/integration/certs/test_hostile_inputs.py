"""Hostile and malformed inputs to push_certificate_info and push_certificate_request, run for real.

Every case runs the module through ansible and must end in a clean failure: a failed
task within its deadline (no hang), a ``msg`` that names the option and says what to
do, no crash (no traceback escaped the module; see tests/lib/ansible_run.py), no
``exception``, no module stderr, no key material, and the case's directory exactly as
before (types, modes, owners and bytes). The few accepted inputs are checked for doing
exactly what was asked (no wrong success).

The cases of a group are the tasks of ONE playbook run (one Ansible start-up for tens
of cases; cases that need the module to have made a key first get it from one earlier
playbook run); each case has a directory of its own and is judged on its own, and a
failure names the case.

Device nodes are made in the case directory with mknod (root; the real /dev/null is only
used in check mode, which never writes).
"""
from __future__ import annotations

import base64
import os
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from tests.lib.hostile import Suite, wrong
from tests.lib.keys import truncated_private_key_pem

INFO = "mdmops.apple.push_certificate_info"
REQUEST = "mdmops.apple.push_certificate_request"
# seconds per case: a hang (FIFO, /dev/zero, a huge key) fails its case instead of blocking the run
SUITE = Suite(timeout=120)
case = SUITE.case
_wrong = wrong


class Ctx(object):
    """What a case's ``make`` gets: the lab PKI, a push certificate, and helpers for its directory."""

    def __init__(self, c, shared):
        self.c, self.pki, self.push = c, shared["pki"], shared["push"]
        self.shared = shared

    def vendor(self):
        """The vendor certificate and key (made once for the group), written into the case's ``vendor/``."""
        if "vendor" not in self.shared:
            self.shared["vendor"] = self.pki.vendor()
        directory = self.c.d / "vendor"
        if not directory.exists():
            directory.mkdir()
            self.shared["vendor"].write(str(directory / "mdm.pem"), str(directory / "vendor.key"))
        return directory

    def request_args(self, d=None, **extra):
        d = d or self.c.d
        args = {"privatekey_path": str(d / "push.key"), "csr_path": str(d / "push.csr"),
                "common_name": "mdm.example.com"}
        args.update(extra)
        return args

    def signed_args(self, **extra):
        vendor = self.vendor()
        args = self.request_args(signed_request_path=str(self.c.d / "request.b64"),
                                 vendor_certificate_path=str(vendor / "mdm.pem"),
                                 vendor_private_key_path=str(vendor / "vendor.key"))
        args.update(extra)
        return args

    def made(self, **extra):
        """A key and CSR made by the module itself before the case runs."""
        self.c.prepare.append((REQUEST, self.request_args(**extra)))


# ---------------------------------------------------------------------------
# push_certificate_request: output paths
# ---------------------------------------------------------------------------

OUT = "request-outputs"

for _option in ("csr_path", "privatekey_path", "signed_request_path"):
    @case(OUT, "device_node_stays_a_device/" + _option, REQUEST, _option, "character device", "regular file",
          root=True)
    def _device(c, ctx, option=_option):
        device = c.d / "null"
        os.mknod(str(device), stat.S_IFCHR | 0o666, os.makedev(1, 3))
        c.verify.append(lambda _r: stat.S_ISCHR(os.lstat(str(device)).st_mode) or _wrong("no longer a device"))
        return ctx.signed_args(**{option: str(device)})


@case(OUT, "dev_null_in_check_mode", REQUEST, "csr_path /dev/null", "character device", check=True)
def _dev_null(c, ctx):
    c.verify.append(lambda _r: stat.S_ISCHR(os.stat("/dev/null").st_mode) or _wrong("/dev/null replaced"))
    return ctx.request_args(csr_path="/dev/null")


@case(OUT, "fifo_does_not_hang", REQUEST, "privatekey_path", "FIFO")
def _fifo(c, ctx):
    os.mkfifo(str(c.d / "fifo"))
    return ctx.request_args(privatekey_path=str(c.d / "fifo"))


@case(OUT, "directory", REQUEST, "csr_path", "directory")
def _directory(c, ctx):
    (c.d / "dir").mkdir()
    return ctx.request_args(csr_path=str(c.d / "dir"))


@case(OUT, "csr_path_is_the_key_path", REQUEST, "privatekey_path and csr_path name the same file",
      "path of its own")
def _csr_is_key(c, ctx):
    ctx.made()
    return ctx.request_args(csr_path=str(c.d / "push.key"))


@case(OUT, "signed_request_path_is_the_key_path", REQUEST,
      "privatekey_path and signed_request_path name the same file")
def _signed_is_key(c, ctx):
    ctx.made()
    return ctx.signed_args(signed_request_path=str(c.d / "push.key"))


for _link in ("symlink", "hardlink"):
    @case(OUT, "same_file_through/" + _link, REQUEST, "name the same file")
    def _same_file(c, ctx, link=_link):
        ctx.made()
        target = str(c.d / "push.key")
        if link == "symlink":
            c.then.append(lambda: os.symlink("push.key", str(c.d / "link.csr")))
        else:
            c.then.append(lambda: os.link(target, str(c.d / "link.csr")))
        return ctx.request_args(csr_path=str(c.d / "link.csr"), force=True)


@case(OUT, "output_is_the_vendor_key", REQUEST, "signed_request_path and vendor_private_key_path name the same file")
def _vendor_key_out(c, ctx):
    return ctx.signed_args(signed_request_path=str(ctx.vendor() / "vendor.key"))


@case(OUT, "symlink_planted_by_another_user", REQUEST, "csr_path", "another user could have planted", root=True)
def _planted(c, ctx):
    shared = c.d / "shared"
    shared.mkdir()
    os.chmod(str(shared), 0o1777)
    (c.d / "victim").write_bytes(b"a file root owns\n")
    os.symlink(str(c.d / "victim"), str(shared / "push.csr"))
    os.lchown(str(shared / "push.csr"), 65534, 65534)
    return ctx.request_args(csr_path=str(shared / "push.csr"))


@case(OUT, "symlink_loop", REQUEST, "csr_path", "symbolic links")
def _loop(c, ctx):
    os.symlink("b", str(c.d / "a"))
    os.symlink("a", str(c.d / "b"))
    return ctx.request_args(csr_path=str(c.d / "a"))


@case(OUT, "missing_directory", REQUEST, "does not exist: create it first")
def _missing_dir(c, ctx):
    return ctx.request_args(csr_path=str(c.d / "nope" / "x.csr"))


# ---------------------------------------------------------------------------
# push_certificate_request: keys are never replaced without force
# ---------------------------------------------------------------------------

@case(OUT, "csr_path_holding_a_key", REQUEST, "holds a private key", "force: true")
def _csr_holds_key(c, ctx):
    (c.d / "server.key").write_bytes(ctx.push.key_bytes())
    os.chmod(str(c.d / "server.key"), 0o600)
    return ctx.request_args(csr_path=str(c.d / "server.key"))


@case(OUT, "csr_path_holding_a_certificate", REQUEST, "not a certificate signing request", "force: true")
def _csr_holds_cert(c, ctx):
    (c.d / "push.pem").write_bytes(ctx.push.cert_pem())
    return ctx.request_args(csr_path=str(c.d / "push.pem"))


for _n, _content in enumerate([b"", b"garbage\n", "truncated PEM", b"\x30\x82\x01\x00\x02\x01\x00"]):
    @case(OUT, "existing_key_that_cannot_be_read/%d" % _n, REQUEST, "privatekey_path", "kept untouched",
          "force: true")
    def _unreadable_key(c, ctx, content=_content):
        if content == "truncated PEM":
            content = truncated_private_key_pem()
        (c.d / "push.key").write_bytes(content)
        return ctx.request_args()


@case(OUT, "wrong_passphrase_for_existing_key", REQUEST, "privatekey_passphrase", "wrong", "kept untouched")
def _wrong_passphrase(c, ctx):
    ctx.made(privatekey_passphrase="Right-Pw-1")
    c.verify.append(lambda r: ("Wrong-Pw-2" not in r["msg"] and "Right-Pw-1" not in r["msg"])
                    or _wrong("a passphrase in the message"))
    return ctx.request_args(privatekey_passphrase="Wrong-Pw-2")


@case(OUT, "force_with_backup_keeps_a_private_copy", REQUEST, accepted=True)
def _force_backup(c, ctx):
    key = ctx.push.key_bytes()
    (c.d / "server.key").write_bytes(key)
    os.chmod(str(c.d / "server.key"), 0o644)

    def backed_up(result):
        (backup,) = result["backup_files"]
        assert stat.S_IMODE(os.stat(backup).st_mode) == 0o600
        assert open(backup, "rb").read() == key
        assert x509.load_pem_x509_csr((c.d / "server.key").read_bytes()).is_signature_valid
    c.verify.append(backed_up)
    return ctx.request_args(csr_path=str(c.d / "server.key"), force=True, backup=True)


# ---------------------------------------------------------------------------
# push_certificate_request: values
# ---------------------------------------------------------------------------

VALUES = "request-values-inputs"

for _size in [0, 1024, 100000, -2048, "abc", "2048bits", True]:
    @case(VALUES, "key_size/%s" % _size, REQUEST, "key_size")
    def _key_size(c, ctx, size=_size):
        return ctx.request_args(key_size=size)


@case(VALUES, "key_size_4096_is_accepted", REQUEST, accepted=True)
def _key_4096(c, ctx):
    def is_4096(result):
        key = serialization.load_pem_private_key((c.d / "push.key").read_bytes(), None)
        assert key.key_size == 4096 and result["changed"] is True
    c.verify.append(is_4096)
    return ctx.request_args(key_size=4096)


for _option in ("privatekey_passphrase", "private_key_passphrase"):
    @case(VALUES, "empty_passphrase_writes_no_clear_key/" + _option, REQUEST, "privatekey_passphrase is empty",
          "leave the option out")
    def _empty_passphrase(c, ctx, option=_option):
        return ctx.request_args(**{option: ""})


@case(VALUES, "empty_vendor_passphrase", REQUEST, "vendor_private_key_passphrase is empty")
def _empty_vendor_passphrase(c, ctx):
    return ctx.signed_args(vendor_private_key_passphrase="")


for _n, (_extra, _fragment) in enumerate([
        ({"country": "USA"}, "country"), ({"country": "\u00e9\u00e9"}, "country"),
        ({"email_address": "nobody"}, "email_address"), ({"email_address": "r\u00e9mi@example.com"}, "email_address"),
        ({"common_name": "x" * 65}, "common_name"), ({"force": "maybe"}, "force"),
        ({"privatekey_format": "pkcs12"}, "privatekey_format"), ({"csr_path": ""}, "csr_path"),
        ({"unknown_option": 1}, "unknown_option")]):
    @case(VALUES, "bad_values_and_types/%d-%s" % (_n, _fragment), REQUEST, _fragment)
    def _bad_value(c, ctx, extra=_extra):
        return ctx.request_args(**extra)


# ---------------------------------------------------------------------------
# push_certificate_request: input files
# ---------------------------------------------------------------------------

@case(VALUES, "vendor_certificate_fifo", REQUEST, "vendor_certificate_path", "FIFO")
def _vendor_fifo(c, ctx):
    os.mkfifo(str(c.d / "fifo"))
    return ctx.signed_args(vendor_certificate_path=str(c.d / "fifo"))


@case(VALUES, "vendor_key_dev_zero", REQUEST, "vendor_private_key_path /dev/zero", "character device")
def _vendor_zero(c, ctx):
    return ctx.signed_args(vendor_private_key_path="/dev/zero")


@case(VALUES, "vendor_chain_too_large", REQUEST, "vendor_chain_path", "larger than")
def _vendor_huge(c, ctx):
    with open(str(c.d / "huge.pem"), "wb") as handle:
        handle.truncate(2 * 1024 * 1024)
    return ctx.signed_args(vendor_chain_path=str(c.d / "huge.pem"))


@case(VALUES, "vendor_certificate_is_a_csr", REQUEST, "vendor_certificate_path", "certificate signing request")
def _vendor_csr(c, ctx):
    ctx.c.prepare.append((REQUEST, ctx.request_args(d=ctx.vendor())))      # a CSR made by the module itself

    def der():
        csr = x509.load_pem_x509_csr((c.d / "vendor" / "push.csr").read_bytes())
        (c.d / "csr.der").write_bytes(csr.public_bytes(serialization.Encoding.DER))
    c.then.append(der)
    return ctx.signed_args(vendor_certificate_path=str(c.d / "csr.der"))


@case(VALUES, "vendor_key_is_a_certificate", REQUEST, "vendor_private_key_path", "no private key found")
def _vendor_key_cert(c, ctx):
    (c.d / "cert.der").write_bytes(ctx.push.cert_der())
    return ctx.signed_args(vendor_private_key_path=str(c.d / "cert.der"))


@case(VALUES, "vendor_key_is_ec", REQUEST, "vendor_private_key_path", "RSA")
def _vendor_ec(c, ctx):
    from lab.pki import ec_key
    (c.d / "ec.key").write_bytes(ec_key().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return ctx.signed_args(vendor_private_key_path=str(c.d / "ec.key"))


# ---------------------------------------------------------------------------
# push_certificate_info
# ---------------------------------------------------------------------------

INFO_GROUP = "info"


@case(INFO_GROUP, "fifo_does_not_hang", INFO, "path", "FIFO", "regular file")
def _info_fifo(c, ctx):
    os.mkfifo(str(c.d / "fifo"))
    return {"path": str(c.d / "fifo")}


for _option in ("path", "privatekey_path", "compare_to_path"):
    @case(INFO_GROUP, "dev_zero_is_bounded/" + _option, INFO, "%s /dev/zero" % _option, "character device")
    def _info_zero(c, ctx, option=_option):
        args = {"content": ctx.push.cert_pem().decode()} if option != "path" else {}
        args[option] = "/dev/zero"
        return args


@case(INFO_GROUP, "directory", INFO, "directory")
def _info_directory(c, ctx):
    return {"path": str(c.d)}


@case(INFO_GROUP, "large_regular_file", INFO, "larger than")
def _info_large(c, ctx):
    with open(str(c.d / "big.pem"), "wb") as handle:
        handle.truncate(2 * 1024 * 1024)
    return {"path": str(c.d / "big.pem")}


@case(INFO_GROUP, "symlink_loop", INFO, "symbolic links")
def _info_loop(c, ctx):
    os.symlink("b", str(c.d / "a"))
    os.symlink("a", str(c.d / "b"))
    return {"path": str(c.d / "a")}


@case(INFO_GROUP, "unreadable_file", INFO, "path /proc/self/mem", "cannot be read")
def _info_unreadable(c, ctx):
    # /proc/self/mem is a regular file that even root cannot read from offset 0
    return {"path": "/proc/self/mem"}


def _malformed(push, kind):
    return {
        "garbage": lambda: b"\xff\xfe" + bytes(range(256)),
        "truncated_pem": lambda: push.cert_pem()[:300],
        "truncated_der": lambda: push.cert_der()[:200],
        "pem_without_end": lambda: push.cert_pem().split(b"-----END")[0],
        "empty": lambda: b"",
        "csr_der": lambda: x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(
            push.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER),
        "key_der": lambda: push.key_bytes("der"),
        "pkcs7_garbage": lambda: b"-----BEGIN PKCS7-----\nMIIB\n-----END PKCS7-----\n",
        "base64_garbage": lambda: base64.b64encode(b"\x30\x82\x10\x00" + b"\x00" * 40),
        "nul_bytes": lambda: b"\x00" * 1024,
    }[kind]()


for _kind in ("garbage", "truncated_pem", "truncated_der", "pem_without_end", "empty", "csr_der", "key_der",
              "pkcs7_garbage", "base64_garbage", "nul_bytes"):
    @case(INFO_GROUP, "malformed_certificate/" + _kind, INFO)
    def _info_malformed(c, ctx, kind=_kind):
        (c.d / "input").write_bytes(_malformed(ctx.push, kind))
        c.fragments = ("path %s" % (c.d / "input"),)
        return {"path": str(c.d / "input")}


@case(INFO_GROUP, "key_of_the_wrong_kind", INFO, "privatekey_path", "no private key found")
def _info_wrong_key(c, ctx):
    (c.d / "cert.pem").write_bytes(ctx.push.cert_pem())
    return {"content": ctx.push.cert_pem().decode(), "privatekey_path": str(c.d / "cert.pem")}


@case(INFO_GROUP, "compare_to_wrong_password_names_its_option", INFO, "compare_to_path",
      "option compare_to_certificate_password", "wrong")
def _info_compare_wrong(c, ctx):
    (c.d / "current.p12").write_bytes(ctx.push.pkcs12(b"Right-Pw-1"))
    c.verify.append(lambda r: "Wrong-Pw-2" not in r["msg"] or _wrong("the password in the message"))
    return {"content": ctx.push.cert_pem().decode(), "compare_to_path": str(c.d / "current.p12"),
            "compare_to_certificate_password": "Wrong-Pw-2"}


@case(INFO_GROUP, "compare_to_without_password_names_its_option", INFO, "password protected",
      "option compare_to_certificate_password")
def _info_compare_none(c, ctx):
    (c.d / "current.p12").write_bytes(ctx.push.pkcs12(b"Right-Pw-1"))
    return {"content": ctx.push.cert_pem().decode(), "compare_to_path": str(c.d / "current.p12")}


@case(INFO_GROUP, "certificate_password_names_its_option", INFO, "option certificate_password", "wrong")
def _info_password(c, ctx):
    (c.d / "push.p12").write_bytes(ctx.push.pkcs12(b"Right-Pw-1"))
    return {"path": str(c.d / "push.p12"), "certificate_password": "Wrong"}


@case(INFO_GROUP, "empty_key_passphrase", INFO, "privatekey_passphrase is empty")
def _info_empty_passphrase(c, ctx):
    return {"content": ctx.push.cert_pem().decode(), "privatekey_content": ctx.push.key_bytes(password=b"pw").decode(),
            "privatekey_passphrase": ""}


for _n, (_extra, _fragment) in enumerate([
        ({"expires_within_days": -1}, "expires_within_days"), ({"expires_within_days": "soon"}, "expires_within_days"),
        ({"format": "pkcs12"}, "format pkcs12"), ({"format": "xml"}, "format"),
        ({"privatekey_path": "/nonexistent/key", "privatekey_content": "not-a-key-at-all"}, "mutually exclusive")]):
    @case(INFO_GROUP, "bad_values_and_types/%d-%s" % (_n, _fragment.split()[0]), INFO, _fragment)
    def _info_bad(c, ctx, extra=_extra):
        args = {"content": ctx.push.cert_pem().decode()}
        args.update(extra)
        return args


@case(INFO_GROUP, "nothing_given", INFO, "path", "content")
def _info_nothing(c, ctx):
    return {"format": "auto"}


@pytest.mark.parametrize("group", SUITE.groups)
def test_hostile_inputs_fail_cleanly_and_change_nothing(tmp_path, pki, push, group):
    """Every case of ``group`` in one playbook run; the assertion lists each case that went wrong."""
    shared = {"pki": pki, "push": push}
    ran = SUITE.run(group, tmp_path, lambda c: Ctx(c, shared))
    assert ran == len(SUITE.selected(group))
