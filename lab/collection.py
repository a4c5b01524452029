"""Expose this working tree as the installed collection ``mdmops.apple``.

Ansible (and Python imports of ``ansible_collections.mdmops.apple``) need the
collection under ``<root>/ansible_collections/mdmops/apple``.  We keep one
symlink per checkout in the temp directory, so two clones never fight over it.
"""
from __future__ import annotations

import hashlib
import os
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def collections_root(repo: str = REPO) -> str:
    """Return a directory to use as ANSIBLE_COLLECTIONS_PATH for ``repo``."""
    tag = hashlib.sha256(repo.encode()).hexdigest()[:10]
    root = os.path.join(tempfile.gettempdir(), "mdmops-collections-" + tag)
    parent = os.path.join(root, "ansible_collections", "mdmops")
    link = os.path.join(parent, "apple")
    os.makedirs(parent, exist_ok=True)
    if os.path.realpath(link) != os.path.realpath(repo):
        tmp = link + ".new-%d" % os.getpid()
        os.symlink(repo, tmp)
        os.replace(tmp, link)
    return root


if __name__ == "__main__":
    print(collections_root())
