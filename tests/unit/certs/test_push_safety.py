"""Unit tests: what push_certificate_request and the certificate readers refuse (pure; no Ansible, no lab).

Planning never writes, so paths such as /dev/null are safe to plan against.
Every refusal leaves the directory exactly as it was.
"""
from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.mdmops.apple.plugins.module_utils._push import _args as args
from ansible_collections.mdmops.apple.plugins.module_utils._push import _facts as fct
from ansible_collections.mdmops.apple.plugins.module_utils._push import _material as mat
from ansible_collections.mdmops.apple.plugins.module_utils._push import _request as req
from ansible_collections.mdmops.apple.plugins.module_utils._push._material import CertificateError
from tests.lib.hostile import snapshot
from tests.lib.keys import truncated_private_key_pem

ROOT = os.geteuid() == 0


def spec(tmp_path, **kwargs):
    values = dict(privatekey_path=str(tmp_path / "push.key"), csr_path=str(tmp_path / "push.csr"),
                  subject=req.SubjectSpec(common_name="mdm.example.com"))
    values.update(kwargs)
    return req.RequestSpec(**values)


def refused(tmp_path, *fragments, **kwargs):
    before = snapshot(tmp_path)
    with pytest.raises(CertificateError) as info:
        plan = req.plan_request(spec(tmp_path, **kwargs))
        req.apply_request(plan, backup=True)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    assert snapshot(tmp_path) == before
    return message


@pytest.fixture()
def existing(tmp_path):
    """A key and CSR made by the module, returned as their bytes."""
    req.apply_request(req.plan_request(spec(tmp_path)))
    return (tmp_path / "push.key").read_bytes(), (tmp_path / "push.csr").read_bytes()


class TestOutputPaths:
    @pytest.mark.parametrize("option", ["csr_path", "privatekey_path"])
    def test_dev_null_is_refused(self, tmp_path, option):
        refused(tmp_path, option, "/dev/null", "character device", **{option: "/dev/null"})
        assert stat.S_ISCHR(os.stat("/dev/null").st_mode)

    def test_fifo_is_refused_without_blocking(self, tmp_path):
        os.mkfifo(str(tmp_path / "fifo"))
        refused(tmp_path, "privatekey_path", "FIFO", privatekey_path=str(tmp_path / "fifo"))

    def test_directory_is_refused(self, tmp_path):
        (tmp_path / "dir").mkdir()
        refused(tmp_path, "csr_path", "directory", csr_path=str(tmp_path / "dir"))

    def test_missing_directory(self, tmp_path):
        refused(tmp_path, "does not exist: create it first", csr_path=str(tmp_path / "nope" / "push.csr"))

    def test_same_path(self, tmp_path):
        refused(tmp_path, "privatekey_path and csr_path name the same file", csr_path=str(tmp_path / "push.key"))

    def test_same_file_through_dotdot(self, tmp_path):
        (tmp_path / "sub").mkdir()
        refused(tmp_path, "name the same file", csr_path=str(tmp_path / "sub" / ".." / "push.key"))

    def test_same_file_through_symlink(self, tmp_path, existing):
        os.symlink("push.key", str(tmp_path / "link.csr"))
        refused(tmp_path, "name the same file", csr_path=str(tmp_path / "link.csr"))

    def test_same_file_through_hardlink(self, tmp_path, existing):
        os.link(str(tmp_path / "push.key"), str(tmp_path / "hard.csr"))
        refused(tmp_path, "name the same file", csr_path=str(tmp_path / "hard.csr"), force=True)

    def test_output_equal_to_an_input(self, tmp_path, pki):
        vendor = pki.vendor()
        vendor.write(str(tmp_path / "vendor.pem"), str(tmp_path / "vendor.key"))
        refused(tmp_path, "signed_request_path and vendor_private_key_path name the same file",
                signed_request_path=str(tmp_path / "vendor.key"),
                vendor_certificate_path=str(tmp_path / "vendor.pem"),
                vendor_private_key_path=str(tmp_path / "vendor.key"))

    def test_symlink_loop(self, tmp_path):
        os.symlink("loop2", str(tmp_path / "loop1"))
        os.symlink("loop1", str(tmp_path / "loop2"))
        refused(tmp_path, "csr_path", "symbolic links", csr_path=str(tmp_path / "loop1"))

    @pytest.mark.skipif(not ROOT, reason="planting another user's symlink needs root (lchown)")
    def test_symlink_planted_by_another_user(self, tmp_path):
        shared = tmp_path / "shared"
        shared.mkdir()
        os.chmod(str(shared), 0o1777)
        victim = tmp_path / "victim"
        victim.write_bytes(b"root's file\n")
        os.symlink(str(victim), str(shared / "push.csr"))
        os.lchown(str(shared / "push.csr"), 65534, 65534)
        refused(tmp_path, "csr_path", "another user could have planted", csr_path=str(shared / "push.csr"))

    def test_trusted_symlink_is_followed(self, tmp_path):
        (tmp_path / "real").mkdir()
        os.symlink(str(tmp_path / "real" / "push.key"), str(tmp_path / "push.key"))
        plan = req.plan_request(spec(tmp_path))
        req.apply_request(plan)
        assert os.path.islink(str(tmp_path / "push.key"))
        assert stat.S_IMODE(os.stat(str(tmp_path / "real" / "push.key")).st_mode) == 0o600


class TestNeverReplaceAKey:
    def test_csr_path_holding_a_key_is_kept(self, tmp_path, existing, push):
        (tmp_path / "other.key").write_bytes(push.key_bytes())
        refused(tmp_path, "csr_path", "holds a private key", "force: true", csr_path=str(tmp_path / "other.key"))

    def test_der_key_and_pkcs12_count_as_keys(self, tmp_path, push):
        for data in (push.key_bytes("der"), push.pkcs12(b"pw")):
            (tmp_path / "other").write_bytes(data)
            refused(tmp_path, "holds a private key", csr_path=str(tmp_path / "other"))

    def test_csr_path_holding_something_else_is_kept(self, tmp_path, push):
        (tmp_path / "cert.pem").write_bytes(push.cert_pem())
        refused(tmp_path, "not a certificate signing request", "force: true", csr_path=str(tmp_path / "cert.pem"))

    def test_signed_request_path_holding_a_key_is_kept(self, tmp_path, pki, push):
        vendor = pki.vendor()
        vendor.write(str(tmp_path / "vendor.pem"), str(tmp_path / "vendor.key"))
        (tmp_path / "k.pem").write_bytes(push.key_bytes())
        refused(tmp_path, "signed_request_path", "holds a private key", signed_request_path=str(tmp_path / "k.pem"),
                vendor_certificate_path=str(tmp_path / "vendor.pem"),
                vendor_private_key_path=str(tmp_path / "vendor.key"))

    def test_force_replaces_it_with_a_private_backup(self, tmp_path, push):
        (tmp_path / "other.key").write_bytes(push.key_bytes())
        os.chmod(str(tmp_path / "other.key"), 0o644)
        plan = req.plan_request(spec(tmp_path, csr_path=str(tmp_path / "other.key"), force=True))
        backups = req.apply_request(plan, backup=True)
        assert len(backups) == 1 and open(backups[0], "rb").read() == push.key_bytes()
        assert stat.S_IMODE(os.stat(backups[0]).st_mode) == 0o600

    def test_unreadable_existing_key_is_kept(self, tmp_path):
        for data in (b"", b"garbage", truncated_private_key_pem(4)):
            (tmp_path / "push.key").write_bytes(data)
            refused(tmp_path, "privatekey_path", "kept untouched", "force: true")

    def test_loose_mode_on_a_hard_linked_key_is_not_changed(self, tmp_path, existing):
        os.chmod(str(tmp_path / "push.key"), 0o644)
        os.link(str(tmp_path / "push.key"), str(tmp_path / "other-name"))
        refused(tmp_path, "hard links", "file of its own")
        assert stat.S_IMODE(os.stat(str(tmp_path / "other-name")).st_mode) == 0o644

    def test_damaged_csr_is_still_regenerated(self, tmp_path, existing):
        (tmp_path / "push.csr").write_bytes(b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n")
        plan = req.plan_request(spec(tmp_path))
        assert plan.actions["csr"] == "regenerate"


class TestBackups:
    def test_backups_are_0600_from_the_first_byte(self, tmp_path, existing):
        os.chmod(str(tmp_path / "push.csr"), 0o644)
        old = os.umask(0)
        try:
            backups = req.apply_request(req.plan_request(spec(tmp_path, force=True)), backup=True)
        finally:
            os.umask(old)
        assert len(backups) == 2
        for path in backups:
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert existing[0] in [open(path, "rb").read() for path in backups]

    def test_no_backup_no_write_when_backup_fails(self, tmp_path, existing, monkeypatch):
        from ansible_collections.mdmops.apple.plugins.module_utils import _files
        calls = []

        def failing(path, mode=0o600, option=None, suffix_time=None):
            calls.append(path)
            if len(calls) == 2:
                raise _files.FileError("%s %s: disk full" % (option, path))
            return _files.backup_file(path, mode, option, suffix_time)

        monkeypatch.setattr(req, "backup_file", failing)
        before = snapshot(tmp_path)
        with pytest.raises(CertificateError, match="no backup was kept and nothing was written"):
            req.apply_request(req.plan_request(spec(tmp_path, force=True)), backup=True)
        assert snapshot(tmp_path) == before


class TestValues:
    @pytest.mark.parametrize("size", [0, -1, 1024, 2047, 2049, 8192, 100000])
    def test_key_size_outside_the_accepted_set(self, tmp_path, size):
        refused(tmp_path, "key_size must be one of 2048, 3072, 4096, not %d" % size, key_size=size)

    def test_key_size_from_params_is_not_defaulted(self, tmp_path):
        params = dict(privatekey_path=str(tmp_path / "k"), csr_path=str(tmp_path / "c"), key_size=0)
        assert req.RequestSpec.from_params(params).key_size == 0

    @pytest.mark.parametrize("option", ["privatekey_passphrase", "vendor_private_key_passphrase"])
    def test_empty_passphrase(self, tmp_path, option):
        params = dict(privatekey_path=str(tmp_path / "k"), csr_path=str(tmp_path / "c"), **{option: ""})
        with pytest.raises(CertificateError, match="%s is empty" % option):
            req.RequestSpec.from_params(params)
        refused(tmp_path, "%s is empty" % option, **{option: b""})

    def test_subject_values(self, tmp_path):
        refused(tmp_path, "country", subject=req.SubjectSpec(country="USA"))
        refused(tmp_path, "email_address", subject=req.SubjectSpec(email_address="r\u00e9mi@example.com"))
        refused(tmp_path, "common_name", subject=req.SubjectSpec(common_name="x" * 65))


class TestInputs:
    def test_fifo_device_directory_and_size(self, tmp_path):
        os.mkfifo(str(tmp_path / "fifo"))
        (tmp_path / "dir").mkdir()
        with open(str(tmp_path / "big"), "wb") as handle:
            handle.truncate(mat.MAX_INPUT_BYTES + 1)
        for path, fragment in ((tmp_path / "fifo", "FIFO"), ("/dev/zero", "character device"),
                               (tmp_path / "dir", "directory"), (tmp_path / "big", "larger than")):
            with pytest.raises(CertificateError, match=fragment):
                mat.read_file(str(path), "path")

    def test_oversized_content(self):
        with pytest.raises(CertificateError, match="content: larger than"):
            mat.read_input(None, "A" * (mat.MAX_INPUT_BYTES + 1), "path", "content")

    def test_compare_to_password_names_its_option(self, tmp_path, push):
        (tmp_path / "cur.p12").write_bytes(push.pkcs12(b"Right-Pw"))
        source = mat.CertificateInput(content=push.cert_pem())
        for password, fragment in (("wrong", "cannot be opened with the given password (option "
                                             "compare_to_certificate_password)"),
                                   (None, "password protected: give its password (option "
                                          "compare_to_certificate_password)")):
            compare = mat.CertificateInput(path=str(tmp_path / "cur.p12"), certificate_password=password,
                                           prefix="compare_to_")
            with pytest.raises(CertificateError, match=r"^compare_to_path .*%s" % fragment.replace("(", r"\(")
                               .replace(")", r"\)")):
                fct.certificate_info(source, compare)

    def test_empty_key_passphrase_is_an_error(self, push):
        source = mat.CertificateInput(content=push.cert_pem(), privatekey_content=push.key_bytes(password=b"pw"),
                                      privatekey_passphrase="")
        with pytest.raises(CertificateError, match="privatekey_passphrase is empty"):
            fct.certificate_info(source)

    def test_passphrase_opens_a_key_inside_the_pem_input(self, push):
        source = mat.CertificateInput(content=push.cert_pem() + push.key_bytes(password=b"pw"),
                                      privatekey_passphrase="pw")
        result, _warnings = fct.certificate_info(source)
        assert result["key_matches"] is True


class TestArgs:
    def test_certificate_input_spec(self):
        spec = args.certificate_input_spec(deprecated_aliases={"certificate_password": ["password"]})
        assert set(spec) == {"path", "content", "format", "certificate_password", "privatekey_path",
                             "privatekey_content", "privatekey_passphrase"}
        assert spec["privatekey_path"]["aliases"] == ["private_key_path"]
        assert spec["certificate_password"]["aliases"] == ["password"]
        assert spec["certificate_password"]["deprecated_aliases"][0]["name"] == "password"
        assert all(spec[name].get("no_log") for name in ("content", "certificate_password", "privatekey_content",
                                                         "privatekey_passphrase"))

    def test_prefixed_and_constraints(self):
        spec = args.certificate_input_spec("compare_to_", key=False, fmt=False)
        assert set(spec) == {"compare_to_path", "compare_to_content", "compare_to_certificate_password"}
        merged = args.merge_constraints(args.certificate_input_constraints(),
                                        args.certificate_input_constraints("compare_to_", key=False, required=False))
        assert merged == {"mutually_exclusive": [("path", "content"), ("privatekey_path", "privatekey_content"),
                                                 ("compare_to_path", "compare_to_content")],
                          "required_one_of": [("path", "content")]}

    def test_doc_fragment_matches_the_spec(self):
        """The fragment documents exactly what certificate_input_spec() builds (names, types, aliases, choices)."""
        import yaml
        from ansible_collections.mdmops.apple.plugins.doc_fragments.push_certificate_input import ModuleDocFragment
        documented = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
        spec = args.certificate_input_spec()
        assert set(documented) == set(spec)
        for name, option in spec.items():
            doc = documented[name]
            assert doc["type"] == option["type"], name
            assert doc.get("aliases", []) == option.get("aliases", []), name
            assert doc.get("choices") == option.get("choices"), name
            assert doc.get("default") == option.get("default"), name
