"""Run real Ansible (not a mocked AnsibleModule) and return the module result.

``run_module`` uses the ad-hoc command with a small test-only callback
(tests/lib/callback_plugins/mdmops_result.py) that writes each host's result
as JSON: no stdout parsing, no extra collection needed.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Any, Dict, Optional

from lab.collection import collections_root

BIN = os.path.dirname(sys.executable)
CALLBACKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "callback_plugins")


def ansible_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": collections_root(),
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
        "PATH": BIN + os.pathsep + env.get("PATH", ""),
    })
    env.update(extra or {})
    return env


def run_module(module: str, args: Dict[str, Any], *, check: bool = False, diff: bool = False,
               host: str = "localhost", interpreter: Optional[str] = None,
               env: Optional[Dict[str, str]] = None, timeout: int = 300) -> Dict[str, Any]:
    """Run ``module`` with ``args`` on ``host`` (local connection) and return its result.

    ``interpreter`` selects the Python on the "managed host": for a lab
    namespace, the wrapper script that runs ``ip netns exec NS python3``.
    The returned dict has the module's keys plus ``_rc`` and ``_stdout``.
    """
    tree = tempfile.mkdtemp(prefix="mdmops-tree-")
    try:
        cmd = [os.path.join(BIN, "ansible"), host, "-i", host + ",", "-c", "local",
               "-m", module, "-a", json.dumps(args),
               "-e", "ansible_python_interpreter=" + (interpreter or sys.executable)]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        run_env = ansible_env(env)
        run_env.update({"ANSIBLE_CALLBACK_PLUGINS": CALLBACKS, "ANSIBLE_CALLBACKS_ENABLED": "mdmops_result",
                        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "MDMOPS_RESULT_DIR": tree})
        proc = subprocess.run(cmd, capture_output=True, text=True, env=run_env, timeout=timeout, check=False)
        path = os.path.join(tree, host)
        if not os.path.exists(path):
            raise AssertionError("ansible produced no result (rc=%s)\nstdout:\n%s\nstderr:\n%s"
                                 % (proc.returncode, proc.stdout, proc.stderr))
        with open(path) as f:
            result = json.load(f)
        # ansible-core 2.19 leaves "failed" out of the callback's result; the exit code says it
        result.setdefault("failed", proc.returncode != 0)
        result["_rc"] = proc.returncode
        result["_stdout"] = proc.stdout + proc.stderr
        return result
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def run_playbook(playbook: str, *, inventory: Optional[str] = None, extra_vars: Optional[Dict[str, Any]] = None,
                 check: bool = False, diff: bool = False, env: Optional[Dict[str, str]] = None,
                 timeout: int = 900) -> subprocess.CompletedProcess:
    cmd = [os.path.join(BIN, "ansible-playbook"), playbook]
    if inventory:
        cmd += ["-i", inventory]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    return subprocess.run(cmd, capture_output=True, text=True, env=ansible_env(env), timeout=timeout, check=False)
