"""lab/collection.py: the collections root the tests and the lab use is private to us."""
from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from lab import collection

REPO = collection.REPO
CLI = [sys.executable, os.path.join(REPO, "lab", "collection.py")]


def cli(*args, env=None):
    base = dict(os.environ)
    base.pop(collection.ENV, None)
    base.update(env or {})
    return subprocess.run(CLI + list(args), capture_output=True, text=True, env=base, check=False)


@pytest.fixture
def made():
    proc = cli()
    assert proc.returncode == 0, proc.stderr
    root = proc.stdout.strip()
    yield root
    cli("--remove", root)


def test_a_fresh_private_root_links_this_checkout(made):
    st = os.lstat(made)
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == os.geteuid()
    assert os.path.basename(made).startswith(collection.PREFIX) and os.path.basename(made) != collection.PREFIX
    link = os.path.join(made, "ansible_collections", "mdmops", "apple")
    assert os.readlink(link) == REPO
    other = cli().stdout.strip()
    cli("--remove", other)
    assert other and other != made, "each run gets a new, unpredictable root"


def test_a_child_reuses_the_root_it_is_given(made):
    assert cli(env={collection.ENV: made}).stdout.strip() == made


def test_a_root_others_can_write_is_refused(made):
    os.chmod(made, 0o755)
    proc = cli(env={collection.ENV: made})
    assert proc.returncode == 1 and "group or others" in proc.stderr
    assert cli("--remove", made).returncode == 1, "not removed either"
    os.chmod(made, 0o700)


def test_a_symlinked_root_is_refused(made, tmp_path):
    planted = tmp_path / "planted"
    planted.symlink_to(made)
    proc = cli(env={collection.ENV: str(planted)})
    assert proc.returncode == 1 and "not a directory" in proc.stderr


def test_a_link_to_other_code_is_not_used(made):
    link = os.path.join(made, "ansible_collections", "mdmops", "apple")
    os.unlink(link)
    os.symlink("/tmp", link)
    got = cli(env={collection.ENV: made}).stdout.strip()
    try:
        assert got and got != made
    finally:
        cli("--remove", got)
    with pytest.raises(collection.UnsafeRoot):
        collection.remove(made)
    os.unlink(link)
    os.symlink(REPO, link)


def test_removed_when_the_process_that_made_it_exits():
    code = ("import sys; sys.path.insert(0, %r); from lab.collection import collections_root; "
            "print(collections_root())" % REPO)
    env = dict(os.environ)
    env.pop(collection.ENV, None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    root = out.stdout.strip()
    assert root and not os.path.lexists(root)
