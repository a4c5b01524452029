"""Shared helpers for the firewall tests: run the module in a lab namespace and
send real connections from it."""
from __future__ import annotations

import json
import os
import sys

from ansible_collections.mdmops.apple.plugins.module_utils._catalog import load_bundled
from ansible_collections.mdmops.apple.plugins.module_utils._probe import concrete_name
from tests.lib.ansible_run import run_module, run_tasks, task

MODULE = "mdmops.apple.egress_firewall"
NAMES = {"*.appattest.apple.com": "data.appattest.apple.com"}

CONNECT = r"""
import json, socket, sys
out = []
for host, port, proto in json.loads(sys.argv[1]):
    try:
        addr = socket.getaddrinfo(host, port, socket.AF_INET6 if (":" in host or FAMILY == 6) else socket.AF_INET)[0][4][0]
    except OSError as exc:
        out.append([host, port, proto, None, "dns: %s" % exc]); continue
    s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET,
                      socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    s.settimeout(TIMEOUT)
    try:
        s.connect((addr, port))
        if proto == "udp":
            s.send(b"x"); s.recv(100)
        out.append([host, port, proto, addr, "ok"])
    except socket.timeout:
        out.append([host, port, proto, addr, "timeout"])
    except OSError as exc:
        out.append([host, port, proto, addr, type(exc).__name__])
    finally:
        s.close()
print(json.dumps(out))
"""


def state_dir(lab):
    """The firewall state directory of this lab: labs side by side (pytest-xdist workers) share the
    file system, so they must not share locks, snapshots or pending timers."""
    return os.path.join(lab.state_dir, "egress-firewall")


def _direct(lab, cases, ns, timeout=300):
    """(name, args, check, diff) cases through tests/lib/module_runner.py, in order, each followed by the
    confirmation the action plugin would make (``confirm``); {name: result}."""
    from tests.lib.module_runner import run_module_cases
    tasks = []
    for name, args, check, diff in cases:
        case = task(name, MODULE, args, check=check, diff=diff)
        case["confirm"] = True
        tasks.append(case)
    return run_module_cases(tasks, timeout=timeout, python=lab.interpreter(ns))


def apply(lab, args, ns="corp", check=False, diff=False, via="direct"):
    """One apply in ``ns``. ``via="direct"`` (the default): the module's own code through
    tests/lib/module_runner.py, with the confirmation run of the action plugin (a tenth of the CPU of an
    ansible-playbook run); ``via="ansible"`` where the controller is what is tested (the action plugin's
    connection, what Ansible displays: diffs, warnings)."""
    args = dict(args)
    args.setdefault("state_dir", state_dir(lab))
    if via == "ansible":
        return run_module(MODULE, args, check=check, diff=diff, interpreter=lab.interpreter(ns))
    return _direct(lab, [("apply", args, check, diff)], ns)["apply"]


def remove(lab, ns="corp", **args):
    """Teardown: ``state: absent`` (default state directory of this lab unless ``state_dir`` is given),
    the module's own code in ``ns`` through tests/lib/module_runner.py. Fails loudly if it did not work."""
    args = dict({"state": "absent"}, **args)
    args.setdefault("state_dir", state_dir(lab))
    result = _direct(lab, [("remove", args, False, False)], ns, timeout=120)["remove"]
    assert result["failed"] is False and result["_crash"] is None, result["_stdout"]
    return result


def apply_all(lab, cases, ns="corp", check=False, task_timeout=300, via="direct"):
    """Every (name, args) or (name, args, check mode) of ``cases``, in order, each whatever the others
    did; returns {name: result}. ``via`` as for :func:`apply`; with ``"ansible"`` they are the tasks of
    a single playbook run."""
    prepared = []
    for name, args, *mode in cases:
        args = dict(args)
        args.setdefault("state_dir", state_dir(lab))
        prepared.append((name, args, mode[0] if mode else check, False))
    if via == "ansible":
        return run_tasks([task(n, MODULE, a, check=c) for n, a, c, _d in prepared], interpreter=lab.interpreter(ns),
                         task_timeout=task_timeout)
    return _direct(lab, prepared, ns, timeout=task_timeout)


def ruleset(lab, ns="corp"):
    proc = lab.run(ns, ["nft", "list", "ruleset"], check=True)
    return proc.stdout


def connect(lab, targets, ns="corp", timeout=1.0, family=4):
    """Connect to each (host, port, proto) from ``ns`` over IPv4 (or IPv6 with ``family=6``);
    returns {(host, port, proto): status}."""
    code = CONNECT.replace("TIMEOUT", str(timeout)).replace("FAMILY", str(family))
    proc = lab.run(ns, [sys.executable, "-c", code, json.dumps([list(t) for t in targets])],
                   timeout=60 + len(targets) * timeout * 2)
    assert proc.returncode == 0, proc.stderr
    return dict(((h, p, pr), status) for h, p, pr, _addr, status in json.loads(proc.stdout))


def selected_targets(services):
    """Every (concrete name, port, protocol) of the selected catalog rows."""
    sel = load_bundled().select(services=services)
    out = set()
    for ep in sel.endpoints():
        name = concrete_name(ep["host"], NAMES)
        assert name, "no concrete name for %s" % ep["host"]
        out.add((name, ep["port"], ep["protocol"]))
    return sorted(out)
