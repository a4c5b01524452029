"""Hostile and malformed inputs to the console options (push_certificate, push_certificate_info's
``console``), run for real against a NanoMDM emulator that already holds a push certificate.

Framework: tests/lib/hostile.py (one playbook run per group, each case judged on its own: a clean
failure naming the option, no traceback, no secret, its directory unchanged). On top of that the
emulator must have received no write at all: every case fails before the upload.
"""
from __future__ import annotations

import os
import stat

import pytest

from lab.consoles import Emulator
from tests.lib.hostile import Suite, wrong

PUT = "mdmops.apple.push_certificate"
INFO = "mdmops.apple.push_certificate_info"
API_KEY = "hostile-suite-api-key-7f3e"
SUITE = Suite(timeout=90, secrets=(API_KEY, "hostile-suite-client-secret"))
case = SUITE.case


class Ctx(object):
    def __init__(self, c, shared):
        self.c = c
        self.shared = shared

    def args(self, **extra):
        """A renewal for the emulator's topic: every option right but what the case changes."""
        s = self.shared
        args = {"console": "nanomdm", "url": s["url"], "api_key": API_KEY, "ca_path": s["ca_path"], "timeout": 10,
                "certificate_path": s["renewal"] + ".pem", "privatekey_path": s["renewal"] + ".key"}
        args.update(extra)
        return {k: v for k, v in args.items() if v is not None}

    def info_args(self, **extra):
        s = self.shared
        args = {"console": "nanomdm", "url": s["url"], "api_key": API_KEY, "ca_path": s["ca_path"], "timeout": 10,
                "path": s["renewal"] + ".pem"}
        args.update(extra)
        return {k: v for k, v in args.items() if v is not None}


def _fifo(c, name="fifo"):
    os.mkfifo(str(c.d / name))
    return str(c.d / name)


def _device(c, name="zero"):
    """A character device in the case directory (/dev/zero's numbers): endless bytes."""
    os.mknod(str(c.d / name), stat.S_IFCHR | 0o666, os.makedev(1, 5))
    return str(c.d / name)


# ---------------------------------------------------------------------------
# backup_dir: checked before anything is read from or sent to the console
# ---------------------------------------------------------------------------
BACKUP = "backup_dir"


@case(BACKUP, "regular_file", PUT, "backup_dir", "not a directory")
def _backup_file(c, ctx):
    (c.d / "file").write_text("x")
    return ctx.args(backup_dir=str(c.d / "file"))


@case(BACKUP, "fifo", PUT, "backup_dir", "not a directory")
def _backup_fifo(c, ctx):
    return ctx.args(backup_dir=_fifo(c))


@case(BACKUP, "device", PUT, "backup_dir", "not a directory", root=True)
def _backup_device(c, ctx):
    return ctx.args(backup_dir=_device(c))


@case(BACKUP, "missing", PUT, "backup_dir", "create it")
def _backup_missing(c, ctx):
    return ctx.args(backup_dir=str(c.d / "missing"))


@case(BACKUP, "writable_by_others", PUT, "backup_dir", "writable by")
def _backup_open(c, ctx):
    (c.d / "open").mkdir()
    os.chmod(str(c.d / "open"), 0o777)
    return ctx.args(backup_dir=str(c.d / "open"))


@case(BACKUP, "symlink_in_a_directory_others_can_write", PUT, "backup_dir", "symlink")
def _backup_planted(c, ctx):
    (c.d / "shared").mkdir()
    os.chmod(str(c.d / "shared"), 0o777)
    (c.d / "target").mkdir(mode=0o700)
    os.symlink(str(c.d / "target"), str(c.d / "shared" / "backups"))
    return ctx.args(backup_dir=str(c.d / "shared" / "backups"))


@case(BACKUP, "check_mode_too", PUT, "backup_dir", "does not exist", check=True)
def _backup_check(c, ctx):
    return ctx.args(backup_dir=str(c.d / "missing"))


@case(BACKUP, "sticky_shared_directory_is_accepted", PUT, accepted=True, check=True)
def _backup_sticky(c, ctx):
    """/tmp-like (1777): others cannot remove or replace what we write there."""
    (c.d / "tmp").mkdir()
    os.chmod(str(c.d / "tmp"), 0o1777)
    return ctx.args(backup_dir=str(c.d / "tmp"))


# ---------------------------------------------------------------------------
# the certificate and key inputs
# ---------------------------------------------------------------------------
CERT = "certificate"


@case(CERT, "certificate_fifo", PUT, "certificate_path", "FIFO")
def _cert_fifo(c, ctx):
    return ctx.args(certificate_path=_fifo(c))


@case(CERT, "certificate_endless_device", PUT, "certificate_path", "character device", root=True)
def _cert_zero(c, ctx):
    return ctx.args(certificate_path=_device(c))


@case(CERT, "certificate_directory", PUT, "certificate_path", "directory")
def _cert_dir(c, ctx):
    return ctx.args(certificate_path=str(c.d))


@case(CERT, "certificate_empty_file", PUT, "certificate_path")
def _cert_empty(c, ctx):
    (c.d / "empty.pem").write_bytes(b"")
    return ctx.args(certificate_path=str(c.d / "empty.pem"))


@case(CERT, "certificate_content_empty", PUT, "certificate_content")
def _cert_content_empty(c, ctx):
    return ctx.args(certificate_path=None, certificate_content="")


@case(CERT, "privatekey_fifo", PUT, "privatekey_path", "FIFO")
def _key_fifo(c, ctx):
    return ctx.args(privatekey_path=_fifo(c))


@case(CERT, "privatekey_of_another_certificate", PUT, "does not belong")
def _key_other(c, ctx):
    return ctx.args(privatekey_path=ctx.shared["other"] + ".key")


@case(CERT, "both_path_and_content", PUT, "mutually exclusive")
def _cert_both(c, ctx):
    return ctx.args(certificate_content="-----BEGIN CERTIFICATE-----")


@case(CERT, "state_absent_unsupported", PUT, "state=absent is not supported")
def _absent(c, ctx):
    return ctx.args(state="absent", certificate_path=None, privatekey_path=None)


@case(CERT, "intune_without_apple_id", PUT, "apple_id is required with console intune", "nothing was read or sent")
def _intune_apple_id(c, ctx):
    return ctx.args(console="intune", tenant_id="t", client_id="c", client_secret="hostile-suite-client-secret",
                    api_key=None)


@case(CERT, "min_days_valid_negative", PUT, "min_days_valid")
def _min_days(c, ctx):
    return ctx.args(min_days_valid=-1)


@case(CERT, "expected_topic_blank", PUT, "expected_topic")
def _topic_blank(c, ctx):
    return ctx.args(expected_topic="  ")


# ---------------------------------------------------------------------------
# connection options (push_certificate and push_certificate_info)
# ---------------------------------------------------------------------------
CONN = "connection"

for _n, (_url, _fragment) in enumerate([
        ("ftp://127.0.0.1:21", "not an http(s) URL"), ("mdm.example.com", "not an http(s) URL"),
        ("https://", "not an http(s) URL"), ("https://127.0.0.1:99999", "url"),
        ("https://admin:s3cret-in-url@127.0.0.1:1", "holds credentials")]):
    for _module in (PUT, INFO):
        @case(CONN, "url/%d/%s" % (_n, _module.rsplit(".", 1)[-1]), _module, _fragment)
        def _bad_url(c, ctx, url=_url, module=_module):
            c.verify.append(lambda r: "s3cret-in-url" not in r["_stdout"] + str(r) or wrong("the URL's password shown"))
            return (ctx.args if module == PUT else ctx.info_args)(url=url)

for _n, _timeout in enumerate([0, -1, "nan", "inf", 100000]):
    @case(CONN, "timeout/%d" % _n, PUT, "timeout")
    def _bad_timeout(c, ctx, timeout=_timeout):
        return ctx.args(timeout=timeout)


@case(CONN, "ca_path_fifo", PUT, "ca_path", "FIFO")
def _ca_fifo(c, ctx):
    return ctx.args(ca_path=_fifo(c))


@case(CONN, "ca_path_endless_device", INFO, "ca_path", "character device", root=True)
def _ca_zero(c, ctx):
    return ctx.info_args(ca_path=_device(c))


@case(CONN, "ca_path_missing", PUT, "ca_path", "does not exist")
def _ca_missing(c, ctx):
    return ctx.args(ca_path=str(c.d / "missing.pem"))


@case(CONN, "ca_path_without_certificates", INFO, "ca_path", "no usable trust anchors")
def _ca_empty(c, ctx):
    (c.d / "ca.pem").write_text("not a certificate\n")
    return ctx.info_args(ca_path=str(c.d / "ca.pem"))


@case(CONN, "api_key_empty", PUT, "api_key")
def _api_key_empty(c, ctx):
    return ctx.args(api_key="")


@case(CONN, "api_key_wrong", PUT, "401")
def _api_key_wrong(c, ctx):
    return ctx.args(api_key="not-the-" + API_KEY)


@case(CONN, "console_unknown", PUT, "console")
def _console_unknown(c, ctx):
    return ctx.args(console="jamf")


@case(CONN, "console_csr_from_a_console_that_makes_none", INFO, "console_csr", "push_certificate_request",
      "nothing was read")
def _csr_nanomdm(c, ctx):
    return ctx.info_args(console_csr=True)


@case(CONN, "console_csr_without_console", INFO, "console_csr", "give console")
def _csr_alone(c, ctx):
    return {"path": ctx.shared["renewal"] + ".pem", "console_csr": True}


@case(CONN, "console_csr_not_a_bool", INFO, "console_csr")
def _csr_type(c, ctx):
    return ctx.info_args(console_csr="perhaps")


@case(CONN, "nanomdm_without_url", INFO, "url is required")
def _no_url(c, ctx):
    return ctx.info_args(url=None)


@pytest.fixture(scope="module")
def shared(push_pki, tls_files, tmp_path_factory):
    directory = tmp_path_factory.mktemp("hostile-console")
    first = push_pki.push(days=360)
    made = {"first": first, "renewal": push_pki.renewal(first, days=370), "other": push_pki.other_account(days=380)}
    for stem, issued in made.items():
        issued.write(str(directory / (stem + ".pem")), str(directory / (stem + ".key")))
    with Emulator("nanomdm", directory / "state", api_key=API_KEY, tls_files=tls_files) as emu:
        from tests.lib.ansible_run import task
        from tests.lib.module_runner import run_module_cases
        first_args = {"console": "nanomdm", "url": emu.url, "api_key": API_KEY, "ca_path": tls_files[2],
                      "certificate_path": str(directory / "first.pem"), "privatekey_path": str(directory / "first.key"),
                      "allow_new_topic": True}
        done = run_module_cases([task("first setup", PUT, first_args)])["first setup"]
        assert done["failed"] is False and done["changed"] is True, done["_stdout"]
        yield {"url": emu.url, "ca_path": tls_files[2], "emulator": emu,
               **{stem: str(directory / stem) for stem in made}}


@pytest.mark.parametrize("group", SUITE.groups)
def test_hostile_console_inputs_fail_cleanly_and_send_nothing(tmp_path, shared, group):
    writes = len(shared["emulator"].control.writes())
    ran = SUITE.run(group, tmp_path, lambda c: Ctx(c, shared))
    assert ran == len(SUITE.selected(group))
    assert len(shared["emulator"].control.writes()) == writes, "a case wrote to the console"
