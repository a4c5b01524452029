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


def apply(lab, args, ns="corp", check=False, diff=False):
    args = dict(args)
    args.setdefault("state_dir", state_dir(lab))
    return run_module(MODULE, args, check=check, diff=diff, interpreter=lab.interpreter(ns))


def remove(lab, ns="corp", **args):
    """Teardown: ``state: absent`` (default state directory of this lab unless ``state_dir`` is given),
    the module's own code in ``ns`` through tests/lib/module_runner.py (the action plugin has nothing
    to do for absent; this saves an ansible-playbook start per test). Fails loudly if it did not work."""
    from tests.lib.module_runner import run_module_cases
    args = dict({"state": "absent"}, **args)
    args.setdefault("state_dir", state_dir(lab))
    result = run_module_cases([task("remove", MODULE, args)], timeout=120, python=lab.interpreter(ns))["remove"]
    assert result["failed"] is False and result["_crash"] is None, result["_stdout"]
    return result


def apply_all(lab, cases, ns="corp", check=False, task_timeout=300):
    """Run every (name, args) or (name, args, check mode) of ``cases`` as one task of a single playbook
    run in ``ns``, in order, each whatever the others did; returns {name: result}."""
    tasks = []
    for name, args, *mode in cases:
        args = dict(args)
        args.setdefault("state_dir", state_dir(lab))
        tasks.append(task(name, MODULE, args, check=mode[0] if mode else check))
    return run_tasks(tasks, interpreter=lab.interpreter(ns), task_timeout=task_timeout)


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
