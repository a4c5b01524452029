"""Integration fixtures: the built-in lab (network namespaces), brought up once per session.

* ``lab``: a running ``lab.netns.Lab``.  Prefix ``$MDMOPS_LAB_PREFIX`` or
  ``mdmtest`` (so a lab you started by hand with ``python -m lab up`` is not
  touched); under pytest-xdist each worker adds its number (``gw1`` -> ``<prefix>1``)
  and so gets a lab of its own.  A lab that was already up is reused and left up;
  otherwise it is torn down at the end (keep it with ``MDMOPS_LAB_KEEP=1``).
* ``in_ns``: ``in_ns(ns, code)`` runs Python ``code`` inside namespace ``ns``
  and returns the JSON the code printed last.

Without root or ``ip netns`` the lab tests are skipped, unless
``MDMOPS_LAB_REQUIRED=1`` (CI) turns that into a failure.

Tests that need something only one process on the machine may use at a time (the
system D-Bus socket, hence every firewalld test) are marked ``serial``: scripts/test.sh
runs them alone, after nothing else, in one process.  ``pytestmark = pytest.mark.serial``
in the module marks a whole file; files named ``test_firewalld*.py`` are marked here.
Tests marked ``compat`` (COMPAT_PATHS below, or by hand) also run on the older ansible-cores.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from lab.netns import Lab, LabError


def _unavailable():
    if os.geteuid() != 0:
        return "the lab needs root (ip netns); run the integration tests as root"
    for tool in ("ip", "dnsmasq", "ss", "setsid"):
        if not shutil.which(tool) and not os.path.exists("/usr/sbin/" + tool):
            return "the lab needs %s (apt-get install iproute2 dnsmasq-base util-linux)" % tool
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    if out.returncode:
        return "'ip netns' does not work here: %s" % out.stderr.strip()
    return None


SERIAL_FILES = ("test_firewalld",)
# What the older ansible-cores (scripts/compat.sh) run: where the modules meet ansible-core.
# test_compat.py runs every module through ansible-playbook with what a core decides (argument
# spec validation, deprecated aliases, check and diff mode, module_defaults groups, the action
# plugin); collection/ builds, installs and documents the collection with that core's ansible-galaxy
# and ansible-doc. Everything else runs once, on the current core: the modules' own behaviour (the
# RETURN documentation, test_return_docs.py; the certificate modules' files; the hostile-input
# suites) and the backends (nft, iptables, firewalld) do not depend on the core. Mark a test
# `compat` by hand when it checks something a core decides.
COMPAT_PATHS = ("collection/", "test_compat.py")
HERE = os.path.dirname(os.path.abspath(__file__))


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = os.path.abspath(str(item.fspath))
        if os.path.basename(path).startswith(SERIAL_FILES):
            item.add_marker(pytest.mark.serial)
        rel = os.path.relpath(path, HERE)
        if rel.startswith(COMPAT_PATHS):
            item.add_marker(pytest.mark.compat)


BASE_PREFIX = os.environ.get("MDMOPS_LAB_PREFIX") or "mdmtest"


def lab_prefix():
    """This process's lab prefix: ``$MDMOPS_LAB_PREFIX`` (or mdmtest), plus the xdist worker number."""
    prefix = BASE_PREFIX
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker.startswith("gw"):
        prefix += worker[2:]
    return prefix


def _skip_or_fail(reason):
    if os.environ.get("MDMOPS_LAB_REQUIRED"):
        pytest.fail("lab required (MDMOPS_LAB_REQUIRED) but unavailable: " + reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def lab():
    reason = _unavailable()
    if reason:
        _skip_or_fail(reason)
    instance = Lab(lab_prefix())
    # what the tests start (ansible runs, helpers reading the prefix) uses this worker's lab
    os.environ["MDMOPS_LAB_PREFIX"] = instance.prefix
    was_up = instance.is_up()
    try:
        instance.up()
    except LabError as exc:
        _skip_or_fail(str(exc))
    yield instance
    if not was_up and not os.environ.get("MDMOPS_LAB_KEEP"):
        instance.down()


@pytest.fixture(scope="session")
def in_ns(lab):
    def run(ns, code, timeout=60):
        proc = lab.python(ns, code, timeout=timeout)
        if proc.returncode:
            raise AssertionError("python in %s failed (rc %s):\n%s" % (ns, proc.returncode, proc.stderr))
        lines = proc.stdout.strip().splitlines()
        if not lines:
            raise AssertionError("python in %s printed nothing; stderr:\n%s" % (ns, proc.stderr))
        return json.loads(lines[-1])
    return run
