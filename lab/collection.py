"""Expose this working tree as the installed collection ``mdmops.apple``.

Ansible (and Python imports of ``ansible_collections.mdmops.apple``) need the
collection under ``<root>/ansible_collections/mdmops/apple``.  ``collections_root()``
makes that layout in a *private* temporary directory (``mkdtemp``: a fresh name,
mode 0700, owned by us, checked after creation) holding one symlink to this
checkout, and removes it when the process that made it exits.

A predictable shared path (``/tmp/mdmops-collections-<hash>``, what this used to be)
could be created first by another local user and pointed at their own code, which
root would then import and run; it was also never removed.

The root is handed to child processes through ``$MDMOPS_COLLECTIONS_ROOT`` (ansible
runs, pytest-xdist workers, lab namespaces), which reuse it after checking it again
(ours, not a symlink, not writable by anyone else, the link pointing at this
checkout); only the process that made it removes it.

From a shell (scripts/*.sh)::

    root=$(python lab/collection.py)            # made (or reused from the environment), kept
    python lab/collection.py --remove "$root"   # when done (checks it is ours first)
"""
from __future__ import annotations

import atexit
import os
import shutil
import stat
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = "MDMOPS_COLLECTIONS_ROOT"
PREFIX = "mdmops-collections-"
LAYOUT = ("ansible_collections", "mdmops")

_made = {}   # repo -> root made by this process (pid-checked before removal)


class UnsafeRoot(RuntimeError):
    """A collections root that is not ours alone."""


class OtherCheckout(UnsafeRoot):
    """A private collections root, but for another checkout (a sibling worktree)."""


def _private_dir(path: str) -> None:
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeRoot("%s is not a directory (a symlink or a file?)" % path)
    if st.st_uid != os.geteuid():
        raise UnsafeRoot("%s belongs to uid %d, not to us (uid %d)" % (path, st.st_uid, os.geteuid()))
    if st.st_mode & 0o077:
        raise UnsafeRoot("%s has mode %o: group or others may use it" % (path, stat.S_IMODE(st.st_mode)))


def check(root: str, repo: str = REPO) -> None:
    """Raise ``UnsafeRoot`` unless ``root`` is a private collections root linking to ``repo``."""
    parent = os.path.dirname(os.path.abspath(root))
    pst = os.stat(parent)
    if pst.st_mode & 0o002 and not pst.st_mode & stat.S_ISVTX:
        raise UnsafeRoot("%s is writable by anyone without the sticky bit" % parent)
    path = root
    _private_dir(path)
    for part in LAYOUT:
        path = os.path.join(path, part)
        _private_dir(path)
    link = os.path.join(path, "apple")
    if not os.path.islink(link) or os.readlink(link) != repo:
        raise OtherCheckout("%s does not link to %s" % (link, repo))


def _make(repo: str) -> str:
    root = tempfile.mkdtemp(prefix=PREFIX)       # 0700, a name nobody could have taken
    try:
        path = root
        for part in LAYOUT:
            path = os.path.join(path, part)
            os.mkdir(path, 0o700)
        os.symlink(repo, os.path.join(path, "apple"))
        check(root, repo)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return root


def remove(root: str, repo: str = REPO) -> None:
    """Remove a root made by ``collections_root``/the CLI, after checking it is one."""
    if not os.path.lexists(root):
        return
    check(root, repo)
    shutil.rmtree(root)           # unlinks the symlink, never follows it


def _cleanup(root: str, repo: str, pid: int) -> None:
    if os.getpid() != pid:        # a forked child exiting must not remove its parent's root
        return
    try:
        remove(root, repo)
    except (OSError, UnsafeRoot):
        pass


def collections_root(repo: str = REPO, *, keep: bool = False) -> str:
    """Return a directory to use as ANSIBLE_COLLECTIONS_PATH for ``repo``.

    Reuses ``$MDMOPS_COLLECTIONS_ROOT`` when it names a valid root for ``repo`` (and
    refuses one that exists but is not private); otherwise makes one, exports it for
    child processes and, unless ``keep``, removes it when this process exits.
    """
    if repo in _made:
        return _made[repo]
    given = os.environ.get(ENV)
    if given and os.path.lexists(given):
        try:
            check(given, repo)
            return given
        except OtherCheckout:
            pass                  # another checkout's root: make our own
        except UnsafeRoot as exc:
            raise UnsafeRoot("refusing $%s: %s; unset it or remove that directory" % (ENV, exc)) from None
    root = _make(repo)
    _made[repo] = root
    if repo == REPO:
        os.environ[ENV] = root
    if not keep:
        atexit.register(_cleanup, root, repo, os.getpid())
    return root


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--remove"] and len(argv) == 2:
        try:
            remove(argv[1])
        except UnsafeRoot as exc:
            print("collection: not removed: %s" % exc, file=sys.stderr)
            return 1
        return 0
    if argv:
        print("usage: collection.py [--remove ROOT]", file=sys.stderr)
        return 2
    try:
        print(collections_root(keep=True))
    except UnsafeRoot as exc:
        print("collection: %s" % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
