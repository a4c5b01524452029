"""The rollback timer, the lock and takeovers, with real nft/iptables in the lab and real Ansible runs.

Restores are triggered with the watcher's SIGUSR1 hook ("restore now") or a
test-only crash point in the module (MDMOPS_FIREWALL_TEST_CRASH), never by
waiting for a fixed time; waits poll for a result with a generous deadline.
"""
from __future__ import annotations

import fcntl
import glob
import json
import os
import threading
import time

import pytest

from ansible_collections.mdmops.apple.plugins.module_utils._firewall import _rollback
from tests.integration.firewall.fwlib import apply, apply_all, connect, remove, ruleset
from tests.lib.ansible_run import run_module, task
from tests.lib.module_runner import run_module_cases

pytestmark = pytest.mark.lab

DM = ["device_management", "push_provider"]
DROP = {"services": DM, "default_policy": "drop"}
USER_TABLE = """table inet usertable {
  chain out { type filter hook output priority 0; policy accept; tcp dport 9 counter drop; }
}
"""


def wait_for(condition, what, deadline=60.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def pending(state_dir):
    return [os.path.basename(p)[:-len(".pending")] for p in glob.glob(os.path.join(state_dir, "*.pending"))]


def restore_now(state_dir, token):
    """Fire the watcher of ``token`` and wait until it has restored."""
    assert _rollback.fire(token, state_dir)
    wait_for(lambda: os.path.exists(os.path.join(state_dir, token + ".rolled-back")), "the watcher to restore")
    with open(os.path.join(state_dir, token + ".rolled-back")) as f:
        done = json.load(f)
    assert all(r["rc"] == 0 for r in done["results"]), done


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


@pytest.fixture()
def corp(lab):
    lab.run("corp", ["nft", "flush", "ruleset"], check=True)
    lab.run("corp", ["nft", "-f", "-"], input=USER_TABLE, check=True)
    original = ruleset(lab)
    yield original
    remove(lab)
    lab.run("corp", ["nft", "flush", "ruleset"], check=True)


@pytest.fixture()
def state_dir(tmp_path):
    path = tmp_path / "state"
    path.mkdir(mode=0o700)
    return str(path)


def crash_at(lab, args, stage):
    """The module killed at ``stage`` of an apply, as if the controller were lost there (the module's own
    code, tests/lib/module_runner.py); at ``confirm``, the confirmation run of the action plugin dies,
    so that one goes through Ansible."""
    if stage == "confirm":
        return run_module("mdmops.apple.egress_firewall", args, interpreter=lab.interpreter("corp"),
                          env={_rollback.CRASH_ENV: stage})
    case = task("crash", "mdmops.apple.egress_firewall", args)
    case["confirm"] = True
    return run_module_cases([case], timeout=120, python=lab.interpreter("corp"), env={_rollback.CRASH_ENV: stage})["crash"]


@pytest.mark.parametrize("stage", ["locked", "armed", "applied", "verified"])
def test_a_controller_lost_at_any_moment_of_an_apply_ends_restored(lab, corp, state_dir, stage):
    res = crash_at(lab, dict(DROP, rollback_timeout=600, state_dir=state_dir), stage)
    assert res["failed"], res
    tokens = pending(state_dir)
    if stage == "locked":          # killed before the timer was armed: nothing changed
        assert tokens == [] and ruleset(lab) == corp
        return
    assert len(tokens) == 1, tokens
    if stage in ("applied", "verified"):
        assert "table inet mdmops_apple" in ruleset(lab)
    restore_now(state_dir, tokens[0])
    assert ruleset(lab) == corp
    # the lock was released with the dead process: the next run goes through
    again = apply(lab, dict(DROP, state_dir=state_dir))
    assert not again["failed"] and again["rollback"]["status"] == "confirmed", again


def test_an_unusable_state_dir_fails_before_anything_changes(lab, corp, tmp_path):
    """Each kind of unusable state_dir is one case; none may change the ruleset."""
    cases = []
    for kind in ("symlink", "file", "world_writable", "other_owner", "group_writable"):
        bad = tmp_path / ("bad-" + kind)
        if kind == "symlink":
            real = tmp_path / "real"
            real.mkdir(mode=0o700)
            os.symlink(str(real), str(bad))
        elif kind == "file":
            bad.write_text("not a directory")
        else:
            bad.mkdir()
            os.chmod(str(bad), {"world_writable": 0o777, "group_writable": 0o770}.get(kind, 0o700))
            if kind == "other_owner":
                os.chown(str(bad), 65534, 65534)
        cases.append((kind, dict(DROP, state_dir=str(bad))))
    results = apply_all(lab, cases)
    for kind, _args in cases:
        res = results[kind]
        assert res["failed"] and res.get("changed") is False, (kind, res)
        assert "state_dir" in res["msg"] and "nothing was changed" in res["msg"], (kind, res["msg"])
        assert res["_crash"] is None, (kind, res["_crash"])
    assert ruleset(lab) == corp


def lock_holders(path):
    """Pids of the processes (other than this one) that have ``path`` open."""
    pids = []
    for fd_dir in glob.glob("/proc/[0-9]*/fd"):
        pid = int(fd_dir.split("/")[2])
        if pid == os.getpid():
            continue
        try:
            if any(os.readlink(os.path.join(fd_dir, fd)) == path for fd in os.listdir(fd_dir)):
                pids.append(pid)
        except OSError:
            continue
    return pids


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_two_concurrent_applies_end_consistent(lab, corp, state_dir, backend):
    """Two runs are made to meet at the lock every time (not by chance): the test holds the table's lock
    until both runs wait for it, then lets them race; one round proves what rounds of luck could not."""
    variants = [dict(DROP, backend=backend, state_dir=state_dir, rollback_timeout=0),
                dict(DROP, backend=backend, services=DM + ["device_setup"], state_dir=state_dir, rollback_timeout=0)]
    if backend == "iptables":
        lab.run("corp", ["nft", "flush", "ruleset"], check=True)
    lock = os.path.join(state_dir, "%s-mdmops_apple.lock" % backend)
    held = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    results = [None, None]

    def go(i):
        results[i] = apply(lab, variants[i])

    threads = [threading.Thread(target=go, args=(i,)) for i in (0, 1)]
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        for t in threads:
            t.start()
        wait_for(lambda: len(lock_holders(lock)) >= 2, "both runs to wait for the lock", deadline=120)
    finally:
        os.close(held)                      # releases the lock: both runs race for it now
    for t in threads:
        t.join()
    assert all(not r["failed"] for r in results), results
    # whichever ran last owns the table, and it is exactly its plan: re-running it changes nothing
    last = apply_all(lab, [("variant %d" % i, v) for i, v in enumerate(variants)], check=True)
    assert [r["changed"] for r in last.values()].count(False) == 1, last
    if backend == "iptables":
        sets = lab.run("corp", ["ipset", "list", "-n"], check=True).stdout.split()
        assert not [s for s in sets if s.startswith("mdmops-apple") and not s.endswith(("-v4", "-v6"))], sets
        assert apply(lab, {"backend": "iptables", "state": "absent", "state_dir": state_dir})["changed"] is True


def test_a_stale_timer_never_undoes_a_confirmed_change(lab, corp, state_dir):
    # both applies in one runner process: the second starts as soon as the first has armed its timer,
    # so the first timer is still pending when the second takes it over, however loaded the machine
    runs = apply_all(lab, [
        ("first", dict(DROP, rollback_timeout=20, rollback_confirm="manual", state_dir=state_dir)),
        ("second", dict(DROP, services=DM + ["device_setup"], state_dir=state_dir, rollback_timeout=600))])
    first, second = runs["first"], runs["second"]
    assert first["rollback"]["pending"] is True, first
    token = first["rollback"]["token"]
    assert not second["failed"], second
    assert second["rollback"]["status"] == "confirmed" and second["rollback"]["superseded"] == [token]
    assert "took over the pending rollback timer" in second["_stdout"]
    with open(os.path.join(state_dir, token + ".superseded")) as f:
        job = json.load(f)                       # the first timer's record: its watcher and when it was armed
    wait_for(lambda: not alive(job["pid"]), "the first timer to stop")
    # past the first timer's deadline: nothing may have been restored
    time.sleep(max(0.0, job["created"] + job["timeout"] + 1 - time.time()))
    assert "udp . 123" in ruleset(lab)
    assert apply(lab, dict(DROP, services=DM + ["device_setup"], state_dir=state_dir))["changed"] is False
    late = apply(lab, {"confirm_token": token, "state_dir": state_dir})
    assert late["rollback"]["status"] == "superseded" and not late["failed"], late


def test_a_run_without_timer_cancels_a_pending_one_and_says_so(lab, corp, state_dir):
    first = apply(lab, dict(DROP, rollback_timeout=600, rollback_confirm="manual", state_dir=state_dir))
    token = first["rollback"]["token"]
    second = apply(lab, {"services": DM, "state_dir": state_dir})          # accept policy, no timer
    assert second["changed"] is True and second["rollback"] == {"pending": False, "superseded": [token],
                                                                "status": "superseded"}
    assert pending(state_dir) == [] and "policy accept" in ruleset(lab)


def test_manual_confirm_keeps_and_no_confirm_restores(lab, corp, state_dir):
    res = apply(lab, dict(DROP, rollback_timeout=600, rollback_confirm="manual", state_dir=state_dir))
    assert res["rollback"]["pending"] is True and res["changed"] is True
    restore_now(state_dir, res["rollback"]["token"])
    assert ruleset(lab) == corp
    # a confirmation that comes too late, then a new manual apply
    runs = apply_all(lab, [("late", {"confirm_token": res["rollback"]["token"], "state_dir": state_dir}),
                           ("again", dict(DROP, rollback_timeout=600, rollback_confirm="manual", state_dir=state_dir))])
    assert runs["late"]["rollback"]["status"] == "rolled_back", runs["late"]

    res = runs["again"]
    assert res["rollback"]["pending"] is True and res["changed"] is True, res
    ok = apply(lab, {"confirm_token": res["rollback"]["token"], "state_dir": state_dir})
    assert ok["rollback"]["status"] == "confirmed" and ok["changed"] is False
    assert not _rollback.fire(res["rollback"]["token"], state_dir)          # no watcher left to fire
    assert "table inet mdmops_apple" in ruleset(lab)
    snap = res["rollback"]["snapshot"]
    assert os.stat(snap).st_mode & 0o777 == 0o600 and os.path.dirname(snap) == state_dir


def test_a_drop_policy_arms_a_timer_by_default_and_the_action_plugin_confirms_it(lab, corp, state_dir):
    res = apply(lab, dict(DROP, state_dir=state_dir), via="ansible")
    assert not res["failed"], res
    assert res["rollback"]["status"] == "confirmed" and res["rollback"]["timeout"] == 120
    assert pending(state_dir) == []
    optout = apply(lab, dict(DROP, services=DM + ["device_setup"], state_dir=state_dir, rollback_timeout=0))
    assert optout["changed"] is True and "rollback" not in optout


def test_the_module_runner_confirms_as_the_action_plugin_does(lab, corp, state_dir):
    """Most tests here apply through tests/lib/module_runner.py, which confirms a timer the way the action
    plugin does (the same functions of _rollback decide): both paths end with the same result."""
    through_ansible = apply(lab, dict(DROP, state_dir=state_dir), via="ansible")
    remove(lab, state_dir=state_dir)
    direct = apply(lab, dict(DROP, state_dir=state_dir))
    ignored = {"invocation", "_stdout", "_crash", "_rc", "_tracebacks", "_runner", "_confirmation", "_ansible_no_log",
               "diff"}     # Ansible drops a diff it was not asked for
    for res in (through_ansible, direct):
        assert res["changed"] and not res["failed"] and res["rollback"]["status"] == "confirmed", res
        assert res["rollback"]["pending"] is False
    assert set(through_ansible) - ignored == set(direct) - ignored, sorted(set(through_ansible) ^ set(direct))
    assert set(through_ansible["rollback"]) == set(direct["rollback"])
    assert pending(state_dir) == []


def test_when_no_confirmation_reaches_the_host_the_task_fails_and_the_host_restores(lab, corp, state_dir):
    res = crash_at(lab, dict(DROP, rollback_timeout=600, state_dir=state_dir), "confirm")
    assert res["failed"] is True
    assert "could not be confirmed through a new connection" in res["msg"], res["msg"]
    assert "restores the previous rules by itself 600 s after the change" in res["msg"]
    tokens = pending(state_dir)
    assert tokens == [res["rollback"]["token"]]
    restore_now(state_dir, tokens[0])
    assert ruleset(lab) == corp


def test_keep_snapshots_prunes_finished_timers(lab, corp, state_dir):
    # three confirmed applies (each with its confirmation run) with keep_snapshots 2: one is pruned
    results = apply_all(lab, [("apply %d" % n, dict(DROP, services=DM if n % 2 else DM + ["device_setup"],
                                                    state_dir=state_dir, keep_snapshots=2)) for n in range(3)])
    assert all(r["changed"] and not r["failed"] and r["rollback"]["status"] == "confirmed"
               for r in results.values()), results
    assert len(glob.glob(os.path.join(state_dir, "*.snapshot"))) == 2
    assert len(glob.glob(os.path.join(state_dir, "*.confirmed"))) == 2


def test_drift_in_a_verdict_under_our_comment_is_repaired(lab, corp, state_dir):
    apply(lab, dict(DROP, rollback_timeout=0, state_dir=state_dir))
    listing = lab.run("corp", ["nft", "-a", "list", "chain", "inet", "mdmops_apple", "egress"], check=True).stdout
    line = [ln for ln in listing.splitlines() if "@allow_v4" in ln][0]
    handle = line.rsplit("# handle ", 1)[1].strip()
    comment = line.split('comment "', 1)[1].split('"', 1)[0]
    lab.run("corp", ["nft", "replace", "rule", "inet", "mdmops_apple", "egress", "handle", handle,
                     "ip", "daddr", ".", "meta", "l4proto", ".", "th", "dport", "@allow_v4", "counter", "drop",
                     "comment", '"%s"' % comment], check=True)
    assert connect(lab, [("api.push.apple.com", 443, "tcp")]) != {("api.push.apple.com", 443, "tcp"): "ok"}
    # check mode sees the drift, the next run repairs it, the one after finds nothing to do
    args = dict(DROP, rollback_timeout=0, state_dir=state_dir)
    runs = apply_all(lab, [("check", args, True), ("fix", args), ("again", args)])
    assert [runs[n]["changed"] for n in ("check", "fix", "again")] == [True, True, False], runs
    assert connect(lab, [("api.push.apple.com", 443, "tcp")]) == {("api.push.apple.com", 443, "tcp"): "ok"}


# A "remote" interpreter whose every run needs a NEW TCP connection from corp to the controller
# (198.51.100.50, outside every selection): the controller end listens in net, an agent in corp
# connects out, receives the module's argv, runs it and sends its output back on that connection.
# A default-drop policy that does not allow the controller therefore cuts the controller off.
WRAPPER = r'''#!PYTHON
import json, subprocess, sys
NET, CORP, ADDR, PORT = "NETNS", "CORPNS", "198.51.100.50", "PORTNO"
SERVER = """
import json, socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(); s.settimeout(8)
print("ready", flush=True)
try:
    c, _ = s.accept()
except socket.timeout:
    sys.exit(255)
c.sendall(sys.argv[3].encode() + b"\\n")
out = b""
while True:
    d = c.recv(65536)
    if not d:
        break
    out += d
sys.stdout.buffer.write(out)
"""
AGENT = """
import socket, subprocess, sys, json
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
c.settimeout(None)
argv = json.loads(c.makefile().readline())
proc = subprocess.run(["python3"] + argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
c.sendall(proc.stdout); c.close()
"""
server = subprocess.Popen(["ip", "netns", "exec", NET, "python3", "-c", SERVER, ADDR, PORT, json.dumps(sys.argv[1:])],
                          stdout=subprocess.PIPE)
assert server.stdout.readline().strip() == b"ready"
agent = subprocess.run(["ip", "netns", "exec", CORP, "python3", "-c", AGENT, ADDR, PORT],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
out = server.stdout.read()
rc = server.wait()
if rc or agent.returncode:
    sys.stderr.write("the controller could not reach the host (agent rc %s, server rc %s)\n" % (agent.returncode, rc))
    sys.exit(255)
sys.stdout.buffer.write(out)
'''


def test_a_real_lock_out_fails_the_task_and_the_host_restores_itself(lab, state_dir, tmp_path):
    import sys
    lab.run("corp", ["nft", "flush", "ruleset"], check=True)           # a fresh host
    wrapper = tmp_path / "python-over-tcp"
    wrapper.write_text(WRAPPER.replace("PYTHON", sys.executable).replace("NETNS", lab.ns("net"))
                       .replace("CORPNS", lab.ns("corp")).replace("PORTNO", "7310"))
    wrapper.chmod(0o755)
    before = ruleset(lab)
    try:
        ok = run_module("mdmops.apple.egress_firewall", {"state": "absent", "state_dir": state_dir},
                        interpreter=str(wrapper))
        assert not ok["failed"] and ok["changed"] is False, ok          # the path works while nothing drops
        res = run_module("mdmops.apple.egress_firewall", dict(DROP, state_dir=state_dir, rollback_timeout=20),
                         interpreter=str(wrapper))
        assert res["failed"] is True, res
        assert "could not be confirmed through a new connection" in res["msg"], res["msg"]
        token = res["rollback"]["token"]
        assert "table inet mdmops_apple" in ruleset(lab)                 # applied, and we are cut off
        wait_for(lambda: os.path.exists(os.path.join(state_dir, token + ".rolled-back")),
                 "the host to restore itself", deadline=120)
        assert ruleset(lab) == before
        back = run_module("mdmops.apple.egress_firewall", {"confirm_token": token, "state_dir": state_dir},
                          interpreter=str(wrapper))
        assert back["rollback"]["status"] == "rolled_back", back         # reachable again
    finally:
        apply(lab, {"state": "absent", "state_dir": state_dir})
        lab.run("corp", ["nft", "flush", "ruleset"], check=True)
