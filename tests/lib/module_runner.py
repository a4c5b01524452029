"""Run a module's real code on many argument sets quickly: the way Ansible runs it on a host, minus
the controller.

Ansible runs a module as a new Python process that imports it from an AnsiballZ zip, so every task
compiles ``ansible.module_utils.basic`` and the collection's module_utils from source again
(about 0.5 s of CPU per task here, most of a hostile-input case). :func:`run_module_cases` starts
ONE Python process per module (``python -m tests.lib.module_runner``) that imports the module once
and then forks a child per case; the child hands the case's arguments to ``AnsibleModule`` exactly
as AnsiballZ does (``basic._ANSIBLE_ARGS``, the ``_ansible_*`` keys the controller adds for check
and diff mode) and calls the module's ``main()``. What runs is the module's own code with its own
argument spec, files, network and exit: nothing is mocked. What it leaves out is the controller
(templating, action plugins, the display): suites that test those use tests/lib/ansible_run.py, and
tests/integration/test_module_runner.py shows both give the same results.

Each result has the module's keys plus ``failed``, ``_crash`` (the traceback when an exception
escaped ``main()``, else None), ``_stdout`` (what the module printed on stdout and stderr) and
``_rc`` and ``_runner`` ("direct"); a case that outlives ``timeout`` is killed and fails with "Timed out".
egress_firewall's action plugin (the confirmation of a rollback timer through a second run) is what a
case with ``confirm`` adds: the same two pure functions decide what to confirm and what the task reports.
"""
from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Any, Dict, List, Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PREFIX = "mdmops.apple."
# imported by the runner process before it forks, so that each case does not import them again: what
# these modules import lazily on their first request (the console HTTP client, the provider layer)
PRELOAD = {"push_certificate": ("httpx",), "push_certificate_info": ("httpx",), "push_connectivity": ("httpx",)}


def run_module_cases(cases: Sequence[Dict[str, Any]], timeout: int = 60, python: str = sys.executable,
                     env: Optional[Dict[str, str]] = None, ordered: bool = False) -> Dict[str, Dict[str, Any]]:
    """``cases`` made with tests.lib.ansible_run.task(); {name: result}. The cases of one module run
    in their order, in one runner process per module; with ``ordered``, all cases run in their order
    (one runner process per run of consecutive cases of one module). ``python``: the interpreter to run them with,
    e.g. a lab namespace's (``lab.interpreter(ns)``). A case with ``"confirm": True`` (egress_firewall)
    is followed, as the module's action plugin does, by the run that confirms its rollback timer.
    ``env``: more environment variables for the runner process (and so for every case)."""
    from lab.collection import collections_root
    names = [c["name"] for c in cases]
    assert len(set(names)) == len(names), "case names must be unique"
    batches: List[List[Dict[str, Any]]] = []      # one runner process per batch of one module's cases
    for c in cases:
        assert c["module"].startswith(PREFIX), "only this collection's modules: %s" % c["module"]
        same = [b for b in batches if b[0]["module"] == c["module"]]
        if ordered and batches and batches[-1][0]["module"] == c["module"]:
            batches[-1].append(c)
        elif not ordered and same:
            same[0].append(c)
        else:
            batches.append([c])
    env = dict(os.environ, **(env or {}))
    env["PYTHONPATH"] = os.pathsep.join([collections_root(), ROOT])
    results: Dict[str, Dict[str, Any]] = {}
    for batch in batches:
        module = batch[0]["module"][len(PREFIX):]
        request = json.dumps({"module": module, "timeout": timeout, "cases": batch})
        proc = subprocess.run([python, "-m", "tests.lib.module_runner"], input=request, capture_output=True,
                              text=True, env=env, cwd=ROOT, timeout=timeout * 2 * len(batch) + 120, check=False)
        assert proc.returncode == 0, "the module runner failed for %s:\n%s" % (module, proc.stderr[-4000:])
        results.update(json.loads(proc.stdout))
    return results


# -- the runner process ------------------------------------------------------------------------

def _child(main, case: Dict[str, Any], out_fd: int, tmpdir: str) -> None:
    """In the forked child: stdout and stderr to ``out_fd``'s file, the case's arguments, main()."""
    from ansible.module_utils import basic
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    args = dict(case["args"])
    args.update({"_ansible_check_mode": bool(case.get("check")), "_ansible_diff": bool(case.get("diff")),
                 "_ansible_module_name": PREFIX + case["module"].split(".")[-1], "_ansible_tmpdir": tmpdir,
                 "_ansible_remote_tmp": tmpdir, "_ansible_keep_remote_files": False})
    basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()
    if hasattr(basic, "_ANSIBLE_PROFILE"):
        basic._ANSIBLE_PROFILE = "legacy"
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:       # what Ansible would report as MODULE FAILURE with a traceback
        sys.stderr.write("MDMOPS-CRASH\n" + traceback.format_exc())
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _result(output: str, rc: int, timed_out: bool, timeout: int) -> Dict[str, Any]:
    if timed_out:
        return {"failed": True, "msg": "Task failed: Timed out after %d second(s)." % timeout, "_crash": None,
                "_stdout": output, "_rc": rc, "_runner": "direct"}
    crash = output.partition("MDMOPS-CRASH\n")[2] or None
    parsed = None
    for line in reversed(output.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                parsed = json.loads(line)
                break
            except ValueError:
                continue
    if parsed is None:
        return {"failed": True, "msg": "MODULE FAILURE: no JSON answer", "module_stdout": output, "_crash": crash,
                "_stdout": output, "_rc": rc, "_runner": "direct"}
    parsed.setdefault("failed", bool(rc) or bool(parsed.get("failed")))
    parsed["failed"] = bool(parsed["failed"])
    parsed.update(_crash=crash, _stdout=output, _rc=rc, _runner="direct")
    return parsed


def _run_case(main, case: Dict[str, Any], timeout: int) -> Dict[str, Any]:
    """One case in a forked child; its result."""
    with tempfile.TemporaryDirectory(prefix="mdmops-case-") as tmpdir:
        out_path = os.path.join(tmpdir, "output")
        out_fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        pid = os.fork()
        if pid == 0:
            try:
                _child(main, case, out_fd, tmpdir)
            finally:
                os._exit(99)
        os.close(out_fd)
        deadline, timed_out, status = time.monotonic() + timeout, False, 0
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                _done, status = os.waitpid(pid, 0)
                timed_out = True
                break
            time.sleep(0.005)
        with open(out_path, encoding="utf-8", errors="replace") as handle:
            output = handle.read()
        return _result(output, os.waitstatus_to_exitcode(status), timed_out, timeout)


def _confirmed(main, case: Dict[str, Any], result: Dict[str, Any], timeout: int) -> Dict[str, Any]:
    """egress_firewall's action plugin after the module: the confirmation run it would make (a second
    module run, here a second child), merged as it merges it (the same functions, from _rollback)."""
    from ansible_collections.mdmops.apple.plugins.module_utils._firewall._rollback import (
        confirmation_args, merge_confirmation)
    args = confirmation_args(case["args"], result)
    if args is None:
        return result
    confirmed = _run_case(main, dict(case, args=args), timeout)
    merged = merge_confirmation(result, confirmed)
    merged.update(_crash=result["_crash"] or confirmed["_crash"], _stdout=result["_stdout"] + confirmed["_stdout"],
                  _confirmation=confirmed)
    return merged


def _serve(request: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    module = importlib.import_module("ansible_collections.mdmops.apple.plugins.modules." + request["module"])
    for name in PRELOAD.get(request["module"], ()):
        try:
            importlib.import_module(name)
        except ImportError:         # the module then says what is missing, as on a host without it
            pass
    timeout = request["timeout"]
    results = {}
    for case in request["cases"]:
        result = _run_case(module.main, case, timeout)
        if case.get("confirm"):
            result = _confirmed(module.main, case, result, timeout)
        results[case["name"]] = result
    return results


if __name__ == "__main__":
    json.dump(_serve(json.load(sys.stdin)), sys.stdout)
