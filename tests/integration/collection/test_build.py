"""The collection builds, installs cleanly and documents itself from the installed copy."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile

import pytest

from tests.lib.ansible_run import BIN, ansible_env

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
MODULES = sorted(f[:-3] for f in os.listdir(os.path.join(REPO, "plugins", "modules")) if f.endswith(".py"))


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, check=False, **kw)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    proc = run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(out), REPO])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tarballs = [p for p in os.listdir(out) if p.endswith(".tar.gz")]
    assert tarballs == ["mdmops-apple-%s.tar.gz" % galaxy_version()]
    tarball = os.path.join(str(out), tarballs[0])
    dest = tmp_path_factory.mktemp("installed")
    # --force: the working tree is on ANSIBLE_COLLECTIONS_PATH too, and must not count as installed
    proc = run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "--force", "-p", str(dest), tarball],
               env=ansible_env({"ANSIBLE_COLLECTIONS_PATH": str(dest)}))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return tarball, str(dest)


def galaxy_version():
    import yaml
    with open(os.path.join(REPO, "galaxy.yml")) as f:
        return yaml.safe_load(f)["version"]


def test_tarball_leaves_tests_lab_and_bench_out(installed):
    tarball, _dest = installed
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    assert "plugins/modules/network_info.py" in names
    assert "plugins/module_utils/_catalog_data.py" in names
    assert "meta/runtime.yml" in names and "README.md" in names
    for prefix in ("tests/", "lab/", "bench/", ".ci/", "tools/", "extensions/", ".venv/", ".git/"):
        assert not [n for n in names if n.startswith(prefix)], prefix


def test_installed_copy_documents_every_module(installed):
    _tarball, dest = installed
    env = ansible_env({"ANSIBLE_COLLECTIONS_PATH": dest})
    for module in MODULES:
        proc = run([os.path.join(BIN, "ansible-doc"), "--json", "mdmops.apple." + module], env=env)
        assert proc.returncode == 0, proc.stderr
        docs = json.loads(proc.stdout)
        assert "mdmops.apple." + module in docs, (list(docs), proc.stderr)
        doc = docs["mdmops.apple." + module]
        assert doc["doc"]["short_description"] and doc["examples"] and doc["return"] is not None
        assert dest in doc["doc"]["filename"]


def test_installed_copy_runs_network_info(installed):
    _tarball, dest = installed
    env = ansible_env({"ANSIBLE_COLLECTIONS_PATH": dest})
    proc = run([os.path.join(BIN, "ansible"), "localhost", "-i", "localhost,", "-c", "local",
                "-e", "ansible_python_interpreter=" + sys.executable,
                "-m", "mdmops.apple.network_info", "-a", json.dumps({"services": ["push_provider"]})], env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "api.push.apple.com" in proc.stdout
