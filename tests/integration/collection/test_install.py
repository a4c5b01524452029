"""The README's "Installing" section, run as written: from git (a URL, a requirements.yml),
into a ``collections_path`` set in a project's ansible.cfg, and from a checkout laid out as
``ansible_collections/mdmops/apple``; ``ansible-doc mdmops.apple.network_info`` then finds the
module, and in a clone named anything else it does not.  (The tarball way: test_build.py.)

The "remote" is a local git repository holding this working tree's files (tracked, and new
files not ignored), so what is tested is what would be pushed.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.lib.ansible_run import BIN, ansible_env

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
MODULE = "mdmops.apple.network_info"

pytestmark = pytest.mark.skipif(not shutil.which("git"), reason="needs git")


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300, **kw)


def git(*argv, cwd):
    proc = run(["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid",
                "-c", "init.defaultBranch=main"] + list(argv), cwd=cwd)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def remote(tmp_path_factory):
    """A git repository with this working tree's files on branch main (the README's URL)."""
    src = tmp_path_factory.mktemp("remote")
    files = git("ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=REPO).split("\0")
    for name in filter(None, files):
        path = os.path.join(REPO, name)
        if os.path.isfile(path) and not os.path.islink(path):
            os.makedirs(os.path.join(src, os.path.dirname(name)), exist_ok=True)
            shutil.copy2(path, os.path.join(src, name))
    git("init", "-q", ".", cwd=src)
    git("checkout", "-q", "-b", "main", cwd=src)
    git("add", "-A", cwd=src)
    git("commit", "-q", "-m", "snapshot", cwd=src)
    return str(src)


def without_collections_path(extra=None):
    """The test environment without the working tree's collections root (and no ANSIBLE_CONFIG)."""
    env = ansible_env()
    env.pop("ANSIBLE_COLLECTIONS_PATH", None)
    env.pop("ANSIBLE_CONFIG", None)
    env.update(extra or {})
    return env


def documented_in(env, cwd=None):
    """The directory ansible-doc reads network_info from, or None when it does not find it."""
    proc = run([os.path.join(BIN, "ansible-doc"), "--json", MODULE], env=env, cwd=cwd)
    if proc.returncode:
        return None
    doc = json.loads(proc.stdout).get(MODULE)
    return doc["doc"]["filename"] if doc else None


def test_install_from_a_git_url(remote, tmp_path):
    dest = tmp_path / "collections"
    proc = run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "-p", str(dest),
                "git+file://%s,main" % remote], env=without_collections_path())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    where = documented_in(without_collections_path({"ANSIBLE_COLLECTIONS_PATH": str(dest)}))
    assert where and where.startswith(str(dest / "ansible_collections" / "mdmops" / "apple")), where


def test_requirements_file_and_collections_path_in_ansible_cfg(remote, tmp_path):
    project = tmp_path / "project"
    project.mkdir(mode=0o700)
    (project / "requirements.yml").write_text(
        "collections:\n  - name: file://%s\n    type: git\n    version: main\n" % remote)
    (project / "ansible.cfg").write_text(
        "[defaults]\ncollections_path = ./collections:~/.ansible/collections\n")
    env = without_collections_path()
    proc = run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "-r", "requirements.yml",
                "-p", "./collections"], env=env, cwd=str(project))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # no ANSIBLE_COLLECTIONS_PATH: the project's ansible.cfg says where to look
    where = documented_in(env, cwd=str(project))
    assert where and where.startswith(str(project / "collections" / "ansible_collections")), where


def test_ansible_doc_from_a_checkout_needs_the_ansible_collections_layout(remote, tmp_path):
    plain = tmp_path / "plain" / "apple"
    laid_out = tmp_path / "src" / "ansible_collections" / "mdmops" / "apple"
    for dest in (plain, laid_out):
        git("clone", "-q", remote, str(dest), cwd=str(tmp_path))
    # a clone named anything else: ansible-doc finds nothing, whatever collections_path says
    assert documented_in(without_collections_path({"ANSIBLE_COLLECTIONS_PATH": str(tmp_path / "plain")})) is None
    where = documented_in(without_collections_path({"ANSIBLE_COLLECTIONS_PATH": str(tmp_path / "src")}))
    assert where and where.startswith(str(laid_out)), where
