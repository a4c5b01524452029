"""Test harness shared by unit and integration tests.

The collection is importable as ``ansible_collections.mdmops.apple`` only from
a tree laid out as ``ansible_collections/mdmops/apple``.  Rather than moving the
checkout, lab/collection.py links it from a private temporary directory (reused from
``$MDMOPS_COLLECTIONS_ROOT`` when scripts/test.sh or the pytest-xdist controller made
one, removed by whoever made it), put on sys.path and on ANSIBLE_COLLECTIONS_PATH, so
pytest and ansible-playbook both load this working tree.
"""
from __future__ import annotations

import os
import sys

import pytest

# tools/ and lab/ hold plain Python helpers that the tests import directly.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from lab.collection import collections_root  # noqa: E402

COLLECTIONS = collections_root()
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
os.environ["ANSIBLE_COLLECTIONS_PATH"] = COLLECTIONS


@pytest.fixture(scope="module")
def pki():
    """The lab's Apple push PKI (Apple Root CA -> Apple Application Integration 2 CA), made at run time."""
    from lab.pki import ApplePushPKI
    return ApplePushPKI()


@pytest.fixture(scope="module")
def push(pki):
    """An MDM push certificate with its key, issued by the lab AAI2 CA."""
    return pki.push()
