# -*- coding: utf-8 -*-
# Copyright (c) mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files the collection reads and writes, treated as hostile input.

Pure Python (no Ansible imports), shared by every module that touches files:

* :func:`read_regular` reads an input file: only a regular file (a FIFO, a
  device, a socket or a directory is refused without blocking), at most
  ``limit`` bytes (no MemoryError on ``/dev/zero``).
* :func:`check_output_path` decides, before anything is written, whether an
  output path may be (re)written: absent or a regular file, in an existing
  directory, not a symlink an untrusted user could have planted.
* :func:`check_output_dir` does the same for a directory new files are
  created in (backups): a real or trusted directory nobody else can write.
* :func:`same_files` finds options that name the same file (through symlinks,
  hard links or ``..``), existing or not.
* :func:`write_atomic` writes through a temporary file created with the final
  mode from its first byte (``O_EXCL``, 0600 umask-proof), ``fsync``, rename.
* :func:`backup_file` copies a file to a new, exclusive backup file whose
  mode is set at creation (0600 by default), never readable by others while
  it is written.
* :func:`secure_state_dir` creates or checks a directory that holds state the
  collection later acts on (snapshots a watcher restores): a real directory,
  owned by the effective user (root), not writable by group or others.
* :func:`create_exclusive` creates a new file in such a directory with
  ``O_EXCL | O_NOFOLLOW``: never through a planted symlink, never over a file.

Every failure raises :class:`FileError` whose message names the option, the
path, what is wrong and what to do.
"""
from __future__ import annotations

import datetime
import errno
import os
import stat
import tempfile
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

# Inputs are certificates, keys, CSRs, saved web pages: 16 MiB is far above any of them.
DEFAULT_READ_LIMIT = 16 * 1024 * 1024
SECRET_MODE = 0o600

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class FileError(Exception):
    """A file cannot be used as asked; the message says why and what to do."""


def _label(option: Optional[str], path: str) -> str:
    return "%s %s" % (option, path) if option else path


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "not a regular file"


def file_kind(mode: int) -> str:
    """What a non-regular file is, for messages: "a FIFO (named pipe)", "a character device", ..."""
    return _kind(mode)


def _os_message(exc: OSError) -> str:
    if exc.errno == errno.EACCES or exc.errno == errno.EPERM:
        return "permission denied: run the task with become, or make it accessible to the remote user"
    if exc.errno == errno.ELOOP:
        return "too many levels of symbolic links (a symlink loop?)"
    if exc.errno == errno.ENOENT:
        return "file not found"
    if exc.errno == errno.ENOTDIR:
        return "a component of the path is not a directory"
    if exc.errno == errno.ENAMETOOLONG:
        return "the path is too long"
    return exc.strerror or str(exc)


def read_regular(path: str, option: Optional[str] = None, limit: int = DEFAULT_READ_LIMIT) -> bytes:
    """Return the bytes of the regular file ``path`` (symlinks to one are followed).

    Opened non-blocking, so a FIFO is refused at once instead of waiting for a
    writer; checked with ``fstat`` on the open descriptor (no race between the
    check and the read); read up to ``limit`` bytes, more is an error.
    """
    label = _label(option, path)
    if not isinstance(path, str) or not path or "\x00" in path:
        raise FileError("%s: not a usable file path" % (option or "path"))
    try:
        fd = os.open(path, os.O_RDONLY | _O_NONBLOCK | _O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.EISDIR:
            raise FileError("%s: is a directory; give the path of a file" % label)
        raise FileError("%s: %s" % (label, _os_message(exc)))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileError("%s: is %s; give the path of a regular file" % (label, _kind(info.st_mode)))
        chunks: List[bytes] = []
        size = 0
        while True:
            chunk = os.read(fd, min(1024 * 1024, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise FileError("%s: larger than %d bytes; this is not the file the option expects"
                                % (label, limit))
        return b"".join(chunks)
    except OSError as exc:
        raise FileError("%s: cannot be read: %s" % (label, _os_message(exc)))
    finally:
        os.close(fd)


def _trusted_owner(info: os.stat_result) -> bool:
    return info.st_uid in (0, os.geteuid())


def _dir_is_safe(info: os.stat_result) -> bool:
    """A directory nobody but its (trusted) owner can add entries to (or sticky, as /tmp)."""
    if not _trusted_owner(info):
        return False
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not info.st_mode & stat.S_ISVTX:
        return False
    return True


def _resolve_trusted_symlink(path: str, label: str) -> str:
    """Follow ``path`` if it is a symlink that only a trusted user could have made.

    A symlink is followed when the link itself is owned by root or the effective
    user and the directory holding it is not writable by anyone else (or is
    sticky, so only the link's owner can replace it). Anything else is refused:
    in a world-writable directory a link is how another user redirects our write.
    """
    seen = 0
    current = os.path.abspath(path)
    while True:
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            return current
        except OSError as exc:
            raise FileError("%s: %s" % (label, _os_message(exc)))
        if not stat.S_ISLNK(info.st_mode):
            return current
        seen += 1
        if seen > 8:
            raise FileError("%s: too many levels of symbolic links" % label)
        parent = os.path.dirname(current)
        try:
            parent_info = os.stat(parent)
        except OSError as exc:
            raise FileError("%s: %s" % (label, _os_message(exc)))
        if not _trusted_owner(info) or not _dir_is_safe(parent_info):
            raise FileError("%s: is a symbolic link that another user could have planted (owner uid %d in %s); "
                            "give the real path of the file" % (label, info.st_uid, parent))
        target = os.readlink(current)
        current = os.path.normpath(os.path.join(parent, target))


def check_output_path(path: str, option: Optional[str] = None) -> str:
    """Check that ``path`` may be written and return the real path to write.

    Allowed: an absent file in an existing, writable directory, or an existing
    regular file. Refused: directories, devices, FIFOs, sockets, symlinks
    another user could have planted, missing or unwritable directories.
    Nothing is created or changed.
    """
    label = _label(option, path)
    if not isinstance(path, str) or not path or "\x00" in path:
        raise FileError("%s: not a usable file path" % (option or "path"))
    if path.endswith("/"):
        raise FileError("%s: ends with '/'; give the path of a file, not a directory" % label)
    real = _resolve_trusted_symlink(path, label)
    directory = os.path.dirname(real) or "."
    try:
        dir_info = os.stat(directory)
    except FileNotFoundError:
        raise FileError("%s: the directory %s does not exist: create it first" % (label, directory))
    except OSError as exc:
        raise FileError("%s: the directory %s: %s" % (label, directory, _os_message(exc)))
    if not stat.S_ISDIR(dir_info.st_mode):
        raise FileError("%s: %s is not a directory" % (label, directory))
    if not os.access(directory, os.W_OK | os.X_OK):
        raise FileError("%s: the directory %s is not writable by the remote user (use become?)" % (label, directory))
    try:
        info = os.lstat(real)
    except FileNotFoundError:
        return real
    except OSError as exc:
        raise FileError("%s: %s" % (label, _os_message(exc)))
    if not stat.S_ISREG(info.st_mode):
        raise FileError("%s: is %s; it will not be replaced: give the path of a regular file" % (label, _kind(info.st_mode)))
    return real


def check_output_dir(path: str, option: Optional[str] = None) -> str:
    """Check that ``path`` is a directory new files (backups) may be created in; return its real path.

    It must exist and be a directory (a symlink to one only when a trusted user made it, see
    :func:`_resolve_trusted_symlink`), owned by root or the effective user, writable by it, and not
    writable by group or others unless sticky (as /tmp): nobody else may remove or replace what is
    written there. Nothing is created or changed.
    """
    label = _label(option, path)
    if not isinstance(path, str) or not path.strip() or "\x00" in path:
        raise FileError("%s: not a usable directory path" % (option or "path"))
    real = _resolve_trusted_symlink(path.rstrip("/") or "/", label)
    try:
        info = os.stat(real)
    except FileNotFoundError:
        raise FileError("%s: does not exist: create it (mode 0700) or correct the option" % label)
    except OSError as exc:
        raise FileError("%s: %s" % (label, _os_message(exc)))
    if not stat.S_ISDIR(info.st_mode):
        raise FileError("%s: is %s, not a directory: give a directory (mode 0700)" % (label, _kind(info.st_mode)))
    if not _dir_is_safe(info):
        raise FileError("%s: is owned by uid %d with mode %04o: it is writable by group or others (or owned by "
                        "another user), who could remove or replace the files written there; run chmod go-w "
                        "(or chmod +t) on it, or give a directory owned by the user running the task"
                        % (label, info.st_uid, info.st_mode & 0o7777))
    if not os.access(real, os.W_OK | os.X_OK):
        raise FileError("%s: is not writable by the remote user (use become?)" % label)
    return real


def _identity(path: str) -> Tuple[str, object]:
    """What ``path`` names: ("inode", (dev, ino)) when it exists, else ("path", its real path)."""
    try:
        info = os.stat(path)
        return "inode", (info.st_dev, info.st_ino)
    except OSError:
        return "path", os.path.realpath(os.path.abspath(path))


def same_files(paths: Mapping[str, Optional[str]]) -> List[Tuple[str, str]]:
    """Pairs of option names whose paths name the same file (symlinks, hard links, ``..``)."""
    seen: Dict[Tuple[str, object], str] = {}
    real_seen: Dict[str, str] = {}
    pairs: List[Tuple[str, str]] = []
    for option, path in paths.items():
        if not path or not isinstance(path, str):
            continue
        key = _identity(path)
        real = os.path.realpath(os.path.abspath(path))
        other = seen.get(key) or real_seen.get(real)
        if other:
            pairs.append((other, option))
            continue
        seen[key] = option
        real_seen[real] = option
    return pairs


def refuse_same_files(paths: Mapping[str, Optional[str]]) -> None:
    """Raise :class:`FileError` when two options name the same file."""
    pairs = same_files(paths)
    if pairs:
        first, second = pairs[0]
        raise FileError("%s and %s name the same file (%s): give each its own path"
                        % (first, second, paths[second]))


def file_mode(path: str) -> Optional[int]:
    """Permission bits of ``path`` (not following a final symlink), or None when absent."""
    try:
        return os.lstat(path).st_mode & 0o7777
    except OSError:
        return None


def write_atomic(path: str, data: bytes, mode: int = SECRET_MODE, option: Optional[str] = None) -> str:
    """Replace ``path`` with ``data``; readers see the old or the new file, never a part.

    The path is checked with :func:`check_output_path` first. The temporary file
    is created by :func:`tempfile.mkstemp` (``O_EXCL``, 0600) in the target's
    directory and given ``mode`` before the first byte is written; it is
    fsynced, renamed over the target, and the directory is fsynced. A file it
    replaces keeps its owner and group (when the task may set them). Returns the
    real path written.
    """
    real = check_output_path(path, option)
    directory = os.path.dirname(real) or "."
    try:
        fd, temporary = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(real) + ".", suffix=".tmp")
    except OSError as exc:
        raise FileError("%s: cannot create a temporary file in %s: %s"
                        % (_label(option, path), directory, _os_message(exc)))
    try:
        os.fchmod(fd, mode)
        _keep_owner(fd, real)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, real)
    except BaseException as exc:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise FileError("%s: cannot be written: %s" % (_label(option, path), _os_message(exc)))
        raise
    _fsync_dir(directory)
    return real


def _keep_owner(fd: int, path: str) -> None:
    """Give the new file the owner and group of the file it replaces (a key owned by a service user stays so)."""
    try:
        info = os.lstat(path)
    except OSError:
        return
    if (info.st_uid, info.st_gid) == (os.geteuid(), os.getegid()):
        return
    try:
        os.fchown(fd, info.st_uid, info.st_gid)
    except OSError:
        pass  # not root: the file becomes the remote user's, as any rewrite by that user would


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def create_exclusive(path: str, data: bytes, mode: int = SECRET_MODE, option: Optional[str] = None) -> str:
    """Create the new file ``path`` holding ``data``, with ``mode`` from creation.

    ``O_CREAT | O_EXCL | O_NOFOLLOW``: fails when anything (a file, a planted
    symlink) is already at ``path``. Fsynced before it returns.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC
    old_umask = os.umask(0o077)
    try:
        fd = os.open(path, flags, mode & 0o7777)
    except FileExistsError:
        raise FileError("%s: already exists; refusing to write over it" % _label(option, path))
    except OSError as exc:
        raise FileError("%s: cannot be created: %s" % (_label(option, path), _os_message(exc)))
    finally:
        os.umask(old_umask)
    try:
        os.fchmod(fd, mode & 0o7777)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        try:
            os.unlink(path)
        except OSError:
            pass
        raise FileError("%s: cannot be written: %s" % (_label(option, path), _os_message(exc)))
    os.close(fd)
    return path


def backup_file(path: str, mode: int = SECRET_MODE, option: Optional[str] = None,
                suffix_time: Optional[datetime.datetime] = None) -> Optional[str]:
    """Copy the regular file ``path`` to a new backup beside it; return the backup's path.

    The name follows Ansible's convention (``<path>.<pid>.<YYYY-mm-dd@HH:MM:SS>~``).
    The copy is created with ``mode`` (0600 by default) from its first byte,
    never over an existing file or through a symlink. Returns None when
    ``path`` does not exist.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise FileError("%s: %s" % (_label(option, path), _os_message(exc)))
    if not stat.S_ISREG(info.st_mode):
        raise FileError("%s: is %s; nothing to back up" % (_label(option, path), _kind(info.st_mode)))
    data = read_regular(path, option, limit=max(DEFAULT_READ_LIMIT, info.st_size))
    when = (suffix_time or datetime.datetime.now()).strftime("%Y-%m-%d@%H:%M:%S")
    base = "%s.%d.%s" % (path, os.getpid(), when)
    for attempt in range(100):
        candidate = base + ("~" if attempt == 0 else ".%d~" % attempt)
        try:
            return create_exclusive(candidate, data, mode, option)
        except FileError:
            if os.path.lexists(candidate):
                continue
            raise
    raise FileError("%s: cannot find a free backup name beside it" % _label(option, path))


def secure_state_dir(path: str, option: Optional[str] = "state_dir", create: bool = True, mode: int = 0o700) -> str:
    """Create or check a directory whose files the collection later trusts.

    It must be a real directory (not a symlink), owned by the effective user
    (root, for a firewall), and not writable by group or others; missing
    parent directories are created 0755 root-owned only when ``create``.
    Returns the absolute path.
    """
    label = _label(option, path)
    if not isinstance(path, str) or not path or "\x00" in path:
        raise FileError("%s: not a usable directory path" % (option or "path"))
    path = os.path.abspath(path)
    if create and not os.path.lexists(path):
        parent = os.path.dirname(path)
        if not os.path.isdir(parent):
            try:
                os.makedirs(parent, mode=0o755, exist_ok=True)
            except OSError as exc:
                raise FileError("%s: cannot create %s: %s" % (label, parent, _os_message(exc)))
        try:
            os.mkdir(path, mode)
            os.chmod(path, mode)
        except FileExistsError:
            pass
        except OSError as exc:
            raise FileError("%s: cannot be created: %s" % (label, _os_message(exc)))
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise FileError("%s: does not exist" % label)
    except OSError as exc:
        raise FileError("%s: %s" % (label, _os_message(exc)))
    if stat.S_ISLNK(info.st_mode):
        raise FileError("%s: is a symbolic link; give a real directory owned by root" % label)
    if not stat.S_ISDIR(info.st_mode):
        raise FileError("%s: is %s; give a directory" % (label, _kind(info.st_mode)))
    if info.st_uid != os.geteuid():
        raise FileError("%s: is owned by uid %d, not by uid %d running the task; its files could be replaced "
                        "by that user: use a directory owned by root (e.g. the default)" % (label, info.st_uid, os.geteuid()))
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise FileError("%s: is writable by group or others (mode %04o); run chmod go-w on it or use another "
                        "directory" % (label, info.st_mode & 0o7777))
    for ancestor in _ancestors(path):
        try:
            a_info = os.stat(ancestor)
        except OSError:
            continue
        if not _dir_is_safe(a_info):
            raise FileError("%s: its parent %s can be changed by another user (owner uid %d, mode %04o); "
                            "use a directory under a root-owned path"
                            % (label, ancestor, a_info.st_uid, a_info.st_mode & 0o7777))
    return path


def _ancestors(path: str) -> Sequence[str]:
    out = []
    current = os.path.dirname(path)
    while True:
        out.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            return out
        current = parent
