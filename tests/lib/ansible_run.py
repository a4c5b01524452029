"""Run real Ansible (not a mocked AnsibleModule) and return the module results.

``run_tasks`` runs many module calls as the tasks of ONE ``ansible-playbook`` run (one
Ansible start-up for a whole suite of cases); ``run_module`` runs one.  The module
arguments travel in the playbook file, never on the command line (no ARG_MAX limit on
big content).  A small test-only callback (tests/lib/callback_plugins/mdmops_result.py)
writes each task's result as JSON: no stdout parsing, no extra collection needed.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Any, Dict, List, Optional, Sequence

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


def _log_run(kind: str, tasks: int) -> None:
    """With $MDMOPS_RUN_LOG set, append one line per ansible run (kind, tasks, test): counts runs per test."""
    log = os.environ.get("MDMOPS_RUN_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write("%s\t%d\t%s\n" % (kind, tasks, os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" ", 1)[0]))


def task(name: str, module: str, args: Dict[str, Any], *, check: bool = False, diff: bool = False) -> Dict[str, Any]:
    """One case for ``run_tasks``: ``module`` with ``args``, in check and/or diff mode."""
    return {"name": name, "module": module, "args": args, "check": check, "diff": diff}


def _section(stdout: str, name: str) -> str:
    """The part of the playbook's output that belongs to task ``name``."""
    start = stdout.find("TASK [%s]" % name)
    if start < 0:
        return ""
    end = [i for i in (stdout.find("\nTASK [", start + 1), stdout.find("\nPLAY RECAP", start + 1)) if i >= 0]
    return stdout[start:min(end)] if end else stdout[start:]


def run_tasks(tasks: Sequence[Dict[str, Any]], *, host: str = "localhost", interpreter: Optional[str] = None,
              env: Optional[Dict[str, str]] = None, timeout: int = 900, task_timeout: Optional[int] = None,
              ignore_errors: bool = True, tracebacks: bool = True) -> Dict[str, Dict[str, Any]]:
    """Run each of ``tasks`` (made with ``task()``) as one task of a single playbook run on ``host``
    (local connection); return {task name: result}.

    Each result has the module's keys plus ``failed`` (what Ansible decided), ``_crash``
    (the module's traceback if an exception escaped it, else None; see the callback), ``_tracebacks``
    (the ``tracebacks`` argument),
    ``_rc`` (the playbook's exit code) and ``_stdout`` (this task's part of the output, then
    the run's stderr).  A task that outlives ``task_timeout`` seconds fails with Ansible's
    timeout message (a hang is a failed case, not a blocked run).  With ``ignore_errors``
    (the default) a failing case does not stop the cases after it.  ``tracebacks`` has Ansible
    keep the tracebacks of errors (ANSIBLE_DISPLAY_TRACEBACK=error; they then appear in the
    output too), which ``_crash`` needs on ansible-core 2.19 and later.
    """
    names = [t["name"] for t in tasks]
    assert len(set(names)) == len(names), "task names must be unique"
    tree = tempfile.mkdtemp(prefix="mdmops-tree-")
    try:
        body: List[Dict[str, Any]] = []
        for t in tasks:
            entry: Dict[str, Any] = {"name": t["name"], t["module"]: t["args"], "ignore_errors": ignore_errors}
            if t.get("check"):
                entry["check_mode"] = True
            if t.get("diff"):
                entry["diff"] = True
            if task_timeout:
                entry["timeout"] = task_timeout
            body.append(entry)
        playbook = os.path.join(tree, "cases.yml")
        with open(playbook, "w", encoding="utf-8") as handle:      # JSON is YAML
            json.dump([{"hosts": host, "gather_facts": False, "tasks": body}], handle)
        results_dir = os.path.join(tree, "results")
        os.mkdir(results_dir)
        cmd = [os.path.join(BIN, "ansible-playbook"), playbook, "-i", host + ",", "-c", "local",
               "-e", "ansible_python_interpreter=" + (interpreter or sys.executable)]
        run_env = ansible_env(env)
        run_env.update({"ANSIBLE_CALLBACK_PLUGINS": CALLBACKS, "ANSIBLE_CALLBACKS_ENABLED": "mdmops_result",
                        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "MDMOPS_RESULT_DIR": results_dir})
        if tracebacks:
            run_env["ANSIBLE_DISPLAY_TRACEBACK"] = "error"
        _log_run("playbook" if len(tasks) > 1 else "module", len(tasks))
        proc = subprocess.run(cmd, capture_output=True, text=True, env=run_env, timeout=timeout, check=False)
        found: Dict[str, Dict[str, Any]] = {}
        log = os.path.join(results_dir, host + ".jsonl")
        if os.path.exists(log):
            with open(log, encoding="utf-8") as handle:
                for line in handle:
                    record = json.loads(line)
                    found[record["task"]] = record
        missing = []
        for name in names:
            if name not in found:
                missing.append(name)
            elif not ignore_errors and found[name]["status"] != "ok":
                break             # the run stops at a failed task, as asked: the tasks after it never ran
        if missing:
            raise AssertionError("ansible produced no result for %s (rc=%s)\nstdout:\n%s\nstderr:\n%s"
                                 % (", ".join(missing), proc.returncode, proc.stdout[-6000:], proc.stderr[-6000:]))
        out = {}
        for name, record in found.items():
            result = record["result"]
            result["failed"] = record["status"] != "ok"
            result["_crash"] = record.get("crash")
            result["_tracebacks"] = tracebacks          # whether _stdout may hold tracebacks of clean failures
            result["_rc"] = proc.returncode
            result["_stdout"] = _section(proc.stdout, name) + proc.stderr
            out[name] = result
        return out
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def run_module(module: str, args: Dict[str, Any], *, check: bool = False, diff: bool = False,
               host: str = "localhost", interpreter: Optional[str] = None,
               env: Optional[Dict[str, str]] = None, timeout: int = 300) -> Dict[str, Any]:
    """Run ``module`` with ``args`` on ``host`` (local connection) and return its result.

    ``interpreter`` selects the Python on the "managed host": for a lab
    namespace, the wrapper script that runs ``ip netns exec NS python3``.
    The returned dict has the module's keys plus ``failed``, ``_rc`` (ansible-playbook's
    exit code: non-zero when the module failed) and ``_stdout``.
    """
    return run_tasks([task("run " + module, module, args, check=check, diff=diff)], host=host,
                     interpreter=interpreter, env=env, timeout=timeout, ignore_errors=False,
                     tracebacks=False)["run " + module]


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
    _log_run("playbook", 0)
    return subprocess.run(cmd, capture_output=True, text=True, env=ansible_env(env), timeout=timeout, check=False)
