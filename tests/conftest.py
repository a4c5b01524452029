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


# With $MDMOPS_CPU_REPORT set to a file, one line per test: CPU seconds (this process and the
# processes it waited for, e.g. ansible-playbook runs), wall seconds, test id. `sort -n` shows
# where the CPU of a run goes (scripts/test.sh prints the CPU of each step; this splits a step).
_CPU_REPORT = os.environ.get("MDMOPS_CPU_REPORT")


def _cpu_now():
    import resource
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


if _CPU_REPORT:
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(item, nextitem):
        import time
        cpu, wall = _cpu_now(), time.monotonic()
        yield
        with open(_CPU_REPORT, "a", encoding="utf-8") as handle:
            handle.write("%.1f\t%.1f\t%s\n" % (_cpu_now() - cpu, time.monotonic() - wall, item.nodeid))
