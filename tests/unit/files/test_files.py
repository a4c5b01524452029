"""The shared file helper against hostile paths: FIFOs, devices, symlinks, same files, modes."""
from __future__ import annotations

import os
import stat
import threading

import pytest

from ansible_collections.mdmops.apple.plugins.module_utils import _files
from ansible_collections.mdmops.apple.plugins.module_utils._files import FileError


def test_read_regular_reads_a_file(tmp_path):
    path = tmp_path / "a.pem"
    path.write_bytes(b"data")
    assert _files.read_regular(str(path), "certificate_path") == b"data"


def test_read_regular_follows_a_symlink_to_a_regular_file(tmp_path):
    (tmp_path / "real").write_bytes(b"x")
    os.symlink("real", tmp_path / "link")
    assert _files.read_regular(str(tmp_path / "link")) == b"x"


def test_read_regular_refuses_a_fifo_without_blocking(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    result = {}

    def read():
        try:
            _files.read_regular(str(fifo), "certificate_path")
        except FileError as exc:
            result["msg"] = str(exc)

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "read_regular blocked on a FIFO"
    assert "FIFO" in result["msg"] and "certificate_path" in result["msg"]


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_read_regular_refuses_devices(device):
    with pytest.raises(FileError, match="character device"):
        _files.read_regular(device, "path")


def test_read_regular_refuses_directories(tmp_path):
    with pytest.raises(FileError, match="directory"):
        _files.read_regular(str(tmp_path), "path")


def test_read_regular_bounds_the_size(tmp_path):
    path = tmp_path / "big"
    path.write_bytes(b"x" * 2048)
    with pytest.raises(FileError, match="larger than 1024 bytes"):
        _files.read_regular(str(path), "path", limit=1024)
    assert len(_files.read_regular(str(path), "path", limit=2048)) == 2048


def test_read_regular_reports_missing_and_loops(tmp_path):
    with pytest.raises(FileError, match="not found"):
        _files.read_regular(str(tmp_path / "missing"), "path")
    os.symlink("loop", tmp_path / "loop")
    with pytest.raises(FileError, match="symbolic links"):
        _files.read_regular(str(tmp_path / "loop"), "path")


@pytest.mark.parametrize("bad", ["", "a\x00b", None, 3])
def test_read_regular_refuses_unusable_paths(bad):
    with pytest.raises(FileError, match="not a usable file path"):
        _files.read_regular(bad, "path")


def test_check_output_path_refuses_devices_and_directories(tmp_path):
    with pytest.raises(FileError, match="character device"):
        _files.check_output_path("/dev/null", "csr_path")
    with pytest.raises(FileError, match="directory"):
        _files.check_output_path(str(tmp_path), "csr_path")
    with pytest.raises(FileError, match="does not exist"):
        _files.check_output_path(str(tmp_path / "no" / "file"), "csr_path")


def test_check_output_path_refuses_a_fifo(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(FileError, match="FIFO"):
        _files.check_output_path(str(tmp_path / "fifo"), "csr_path")


def test_check_output_path_follows_only_trusted_symlinks(tmp_path):
    (tmp_path / "real").write_bytes(b"")
    os.symlink("real", tmp_path / "link")
    assert _files.check_output_path(str(tmp_path / "link")) == str(tmp_path / "real")
    # the same link in a directory anyone can write to (no sticky bit) is refused
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    os.symlink(str(tmp_path / "real"), open_dir / "link")
    os.chmod(open_dir, 0o777)
    with pytest.raises(FileError, match="another user could have planted"):
        _files.check_output_path(str(open_dir / "link"), "csr_path")


def test_check_output_path_refuses_a_link_owned_by_another_user(tmp_path):
    (tmp_path / "real").write_bytes(b"")
    os.symlink(str(tmp_path / "real"), tmp_path / "link")
    if os.geteuid() != 0:
        pytest.skip("needs root to give the symlink to another user")
    os.lchown(tmp_path / "link", 65534, 65534)
    with pytest.raises(FileError, match="uid 65534"):
        _files.check_output_path(str(tmp_path / "link"), "csr_path")


def test_same_files_through_symlinks_hard_links_and_dots(tmp_path):
    key = tmp_path / "key.pem"
    key.write_bytes(b"k")
    os.link(key, tmp_path / "hard.pem")
    os.symlink("key.pem", tmp_path / "soft.pem")
    paths = {
        "privatekey_path": str(key),
        "csr_path": str(tmp_path / "soft.pem"),
        "signed_request_path": str(tmp_path / "hard.pem"),
        "other": str(tmp_path / "sub" / ".." / "new.csr"),
        "again": str(tmp_path / "new.csr"),
    }
    assert _files.same_files(paths) == [("privatekey_path", "csr_path"), ("privatekey_path", "signed_request_path"),
                                        ("other", "again")]
    with pytest.raises(FileError, match="privatekey_path and csr_path name the same file"):
        _files.refuse_same_files(paths)
    _files.refuse_same_files({"a": str(key), "b": str(tmp_path / "other"), "c": None})


def test_write_atomic_sets_the_mode_before_writing(tmp_path, monkeypatch):
    seen = []
    real_fdopen = os.fdopen

    def spy(fd, *args, **kwargs):
        seen.append(stat.S_IMODE(os.fstat(fd).st_mode))
        return real_fdopen(fd, *args, **kwargs)

    monkeypatch.setattr(_files.os, "fdopen", spy)
    path = tmp_path / "key.pem"
    _files.write_atomic(str(path), b"secret", 0o600, "privatekey_path")
    assert seen == [0o600]
    assert path.read_bytes() == b"secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["key.pem"]


def test_write_atomic_does_not_replace_a_device(tmp_path):
    with pytest.raises(FileError):
        _files.write_atomic("/dev/null", b"x", 0o644, "csr_path")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_create_exclusive_never_follows_or_overwrites(tmp_path):
    target = tmp_path / "victim"
    target.write_bytes(b"keep")
    os.symlink(str(target), tmp_path / "planted")
    with pytest.raises(FileError, match="already exists"):
        _files.create_exclusive(str(tmp_path / "planted"), b"evil")
    with pytest.raises(FileError, match="already exists"):
        _files.create_exclusive(str(target), b"evil")
    assert target.read_bytes() == b"keep"
    made = _files.create_exclusive(str(tmp_path / "new"), b"v", 0o600)
    assert stat.S_IMODE(os.stat(made).st_mode) == 0o600


def test_backup_file_is_private_from_creation(tmp_path, monkeypatch):
    key = tmp_path / "push.key"
    key.write_bytes(b"stands for a private key")
    os.chmod(key, 0o644)
    modes = []
    real_write = os.write

    def spy(fd, data):
        modes.append(stat.S_IMODE(os.fstat(fd).st_mode))
        return real_write(fd, data)

    monkeypatch.setattr(_files.os, "write", spy)
    backup = _files.backup_file(str(key))
    assert modes and set(modes) == {0o600}
    assert open(backup, "rb").read() == key.read_bytes()
    second = _files.backup_file(str(key))
    assert second != backup and os.path.exists(backup)
    assert _files.backup_file(str(tmp_path / "missing")) is None


def test_secure_state_dir(tmp_path):
    made = _files.secure_state_dir(str(tmp_path / "state"))
    assert stat.S_IMODE(os.stat(made).st_mode) == 0o700
    assert _files.secure_state_dir(made) == made
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o777)
    os.chmod(loose, 0o777)
    with pytest.raises(FileError, match="writable by group or others"):
        _files.secure_state_dir(str(loose))
    os.symlink(made, tmp_path / "link")
    with pytest.raises(FileError, match="symbolic link"):
        _files.secure_state_dir(str(tmp_path / "link"))
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(FileError, match="give a directory"):
        _files.secure_state_dir(str(tmp_path / "file"))
    # a private directory inside a directory others can write to (without sticky bit)
    with pytest.raises(FileError, match="can be changed by another user"):
        _files.secure_state_dir(str(loose / "inner"))


def test_secure_state_dir_refuses_another_owner(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to chown")
    other = tmp_path / "other"
    other.mkdir(mode=0o700)
    os.chown(other, 65534, 65534)
    with pytest.raises(FileError, match="owned by uid 65534"):
        _files.secure_state_dir(str(other))


def test_write_atomic_keeps_the_owner_of_the_file_it_replaces(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to chown")
    path = tmp_path / "push.key"
    path.write_bytes(b"old")
    os.chown(path, 65534, 65534)
    _files.write_atomic(str(path), b"new", 0o600)
    info = os.stat(path)
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (65534, 65534, 0o600)
    assert path.read_bytes() == b"new"


# -- check_output_dir (push_certificate's backup_dir) ---------------------------------------------

def test_output_dir_accepts_a_private_and_a_sticky_directory(tmp_path):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    assert _files.check_output_dir(str(private), "backup_dir") == str(private)
    shared = tmp_path / "tmp"
    shared.mkdir()
    os.chmod(str(shared), 0o1777)
    assert _files.check_output_dir(str(shared) + "/", "backup_dir") == str(shared)


@pytest.mark.parametrize("kind,words", [("missing", "does not exist"), ("file", "not a directory"),
                                        ("fifo", "FIFO"), ("open", "writable by group or others"),
                                        ("planted", "symbolic link that another user could have planted"),
                                        ("empty", "not a usable directory path")])
def test_output_dir_refuses_what_others_control(tmp_path, kind, words):
    path = tmp_path / kind
    if kind == "file":
        path.write_text("x")
    elif kind == "fifo":
        os.mkfifo(str(path))
    elif kind == "open":
        path.mkdir()
        os.chmod(str(path), 0o777)
    elif kind == "planted":          # a link in a world-writable (not sticky) directory
        (tmp_path / "real").mkdir(mode=0o700)
        shared = tmp_path / "shared"
        shared.mkdir()
        os.chmod(str(shared), 0o777)
        path = shared / "backups"
        os.symlink(str(tmp_path / "real"), str(path))
    before = sorted(os.listdir(str(tmp_path)))
    with pytest.raises(FileError) as err:
        _files.check_output_dir("" if kind == "empty" else str(path), "backup_dir")
    assert "backup_dir" in str(err.value) and words in str(err.value)
    assert sorted(os.listdir(str(tmp_path))) == before
