"""The hostile-input test framework: cases registered on a :class:`Suite`, run as the tasks of one
playbook per group, each judged on its own.

Every case runs a module through real Ansible and must end in a clean failure: a failed task
within its deadline (no hang), a ``msg`` that holds the case's fragments (the option and what to
do), no crash (no traceback escaped the module; see tests/lib/ansible_run.py), no ``exception``,
no module stderr, no key material, and the case's directory exactly as before (types, modes,
owners and bytes).  The few accepted inputs (``accepted=True``) must succeed; ``verify`` checks
then say they did exactly what was asked (no wrong success).

The cases run through tests/lib/module_runner.py by default (the module's own code, imported once,
a fork per case: a tenth of the CPU of an Ansible task), or through ansible-playbook
(``Suite(runner="ansible")``) where the controller is part of what is tested.

A case is ``make(c, ctx) -> args``: it gets its own empty directory ``c.d`` and the suite's
context, may add ``c.prepare`` runs (modules that must succeed first), ``c.then`` steps (after
those runs) and ``c.verify`` checks (on the result).
"""
from __future__ import annotations

import json
import os
import re
import stat

from tests.lib.ansible_run import run_tasks, task
from tests.lib.module_runner import run_module_cases

ROOT = os.geteuid() == 0
KEY_MATERIAL = re.compile(r"PRIVATE KEY-----(\\n|\n)[A-Za-z0-9+/]{16}")


def wrong(what):
    """For ``verify`` lambdas: ``check or wrong("what went wrong")``."""
    raise AssertionError(what)


class Case(object):
    """One hostile input: its directory ``d``, the module and arguments, what the message must say."""

    def __init__(self, group, name, module, make, fragments, check=False, accepted=False, root=False):
        self.group, self.name, self.module, self.make = group, name, module, make
        self.fragments, self.check, self.accepted, self.root = fragments, check, accepted, root
        self.d = None
        self.args = None
        self.prepare = []        # (module, args) the module must run successfully before the case
        self.then = []           # setup steps that need what the prepare runs made
        self.verify = []         # extra checks on the result after the run

    @property
    def id(self):
        return "%s/%s" % (self.group, self.name)


def snapshot(directory):
    """Type, mode, owner and content of everything under ``directory`` (symlinks not followed)."""
    state = {}
    for base, dirs, files in os.walk(str(directory)):
        for name in dirs + files:
            path = os.path.join(base, name)
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode):
                with open(path, "rb") as handle:
                    content = handle.read()
            elif stat.S_ISLNK(info.st_mode):
                content = os.readlink(path)
            elif stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode):
                content = info.st_rdev
            else:
                content = None
            state[os.path.relpath(path, str(directory))] = (stat.S_IFMT(info.st_mode), stat.S_IMODE(info.st_mode),
                                                            info.st_uid, content)
    return state


def judge_failure(c, result, before, secrets=()):
    """The case must have failed cleanly, said its fragments, and left its directory untouched."""
    text = json.dumps({k: v for k, v in result.items() if k not in ("_stdout", "_crash", "_tracebacks")})
    assert result["failed"] is True, "wrong success: %s" % text
    assert result["_crash"] is None, "the module crashed:\n%s" % result["_crash"]
    assert "Traceback" not in text
    assert "exception" not in result and "module_stderr" not in result and "module_stdout" not in result, text
    assert isinstance(result.get("msg"), str) and result["msg"], text
    for fragment in c.fragments:
        assert fragment in result["msg"], "%r not in the message: %s" % (fragment, result["msg"])
    assert not KEY_MATERIAL.search(text + result["_stdout"]), "key material in the result"
    for secret in secrets:
        assert secret not in text + result["_stdout"], "a secret in the result"
    assert snapshot(c.d) == before, "files changed on failure"


def judge_success(c, result):
    assert result["failed"] is False and result["_crash"] is None, result["_stdout"]


class Suite(object):
    """The cases of one test file; ``case`` registers, ``run`` runs one group in one playbook."""

    def __init__(self, timeout=120, secrets=(), runner="direct"):
        self.cases = []
        self.groups = []
        self.timeout = timeout      # seconds per case: a hang fails its case instead of blocking the run
        self.secrets = secrets      # strings no result may hold (credentials the cases pass)
        # "direct": tests/lib/module_runner.py (the module's own code, one import, a fork per case);
        # "ansible": tests/lib/ansible_run.py (one ansible-playbook run, the controller included)
        assert runner in ("direct", "ansible")
        self.runner = runner

    def _run(self, tasks, **run_options):
        if self.runner == "direct":
            return run_module_cases(tasks, timeout=self.timeout)
        return run_tasks(tasks, task_timeout=self.timeout, **run_options)

    def case(self, group, name, module, *fragments, check=False, accepted=False, root=False):
        """Register ``make(c, ctx) -> args`` as the case ``group/name``."""
        if group not in self.groups:
            self.groups.append(group)

        def register(make):
            assert (group, name) not in [(c.group, c.name) for c in self.cases], "two cases named %s/%s" % (group, name)
            self.cases.append(Case(group, name, module, make, fragments, check=check, accepted=accepted, root=root))
            return make
        return register

    def selected(self, group):
        return [c for c in self.cases if c.group == group and (ROOT or not c.root)]

    def run(self, group, base, make_ctx, **run_options):
        """Every case of ``group`` as the tasks of one playbook run (``run_options`` go to run_tasks);
        returns how many ran. The assertion lists each case that went wrong."""
        cases = self.selected(group)
        for n, c in enumerate(cases):
            c.d = base / ("%02d-%s" % (n, c.name.replace("/", "_")))
            c.d.mkdir()
            c.args = c.make(c, make_ctx(c))
        prepared = [task("prepare %s %d" % (c.id, i), module, args) for c in cases for i, (module, args)
                    in enumerate(c.prepare)]
        if prepared:
            for name, result in self._run(prepared, **run_options).items():
                assert result["failed"] is False and result["_crash"] is None, \
                    "%s failed:\n%s" % (name, result["_stdout"])
        for c in cases:
            for step in c.then:
                step()
        before = dict((c.id, snapshot(c.d)) for c in cases)
        results = self._run([task(c.id, c.module, c.args, check=c.check) for c in cases], **run_options)
        problems = []
        for c in cases:
            try:
                if c.accepted:
                    judge_success(c, results[c.id])
                else:
                    judge_failure(c, results[c.id], before[c.id], self.secrets)
                for extra in c.verify:
                    extra(results[c.id])
            except AssertionError as exc:
                problems.append("%s: %s" % (c.id, exc))
        assert not problems, "%d of %d cases went wrong:\n%s" % (len(problems), len(cases), "\n".join(problems))
        return len(cases)
