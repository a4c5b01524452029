"""The iptables/ipset backend against the real kernel, in the lab's corp namespace.

Every claim is checked with real connections from corp (or dev, for the
forward path) and with iptables-save / ip6tables-save / ipset output.  Run
with your own lab prefix, e.g. ``MDMOPS_LAB_PREFIX=mdmipt``.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import time

import pytest

from ansible_collections.mdmops.apple.plugins.module_utils._firewall import _rollback
from ansible_collections.mdmops.apple.plugins.module_utils._firewall._backend import converge
from ansible_collections.mdmops.apple.plugins.module_utils._firewall._iptables import IptablesBackend
from ansible_collections.mdmops.apple.plugins.module_utils._firewall._plan import FirewallError, build_plan

pytestmark = pytest.mark.lab

BASE = {"services": ["device_management", "push_provider"], "strategy": "cidr", "default_policy": "drop", "hook": "output"}
EMPTY_TABLE = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", "COMMIT"]

PROBE = r"""
import json, socket
out = {}
for host, port in TARGETS:
    try:
        socket.create_connection((host, port), timeout=TIMEOUT).close()
        out["%s:%s" % (host, port)] = "ok"
    except OSError as exc:
        out["%s:%s" % (host, port)] = "%s: %s" % (type(exc).__name__, exc)
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(1)
try:
    socket.create_connection(server.getsockname(), timeout=TIMEOUT).close()
    out["loopback"] = "ok"
except OSError as exc:
    out["loopback"] = str(exc)
try:
    out["dns"] = socket.getaddrinfo("mdmenrollment.apple.com", 443, socket.AF_INET)[0][4][0]
except OSError as exc:
    out["dns"] = str(exc)
print(json.dumps(out))
"""

# One A and one AAAA query to a dnsmasq on 127.0.0.1:5353 (it fills the DNS-fed sets as it answers).
DNS_QUERY = r"""
import json, socket, struct
answers = []
for qtype in (1, 28):
    name = b"".join(bytes([len(p)]) + p.encode() for p in NAME.split(".")) + b"\0"
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(3)
    sock.sendto(struct.pack(">HHHHHH", 7, 0x0100, 1, 0, 0, 0) + name + struct.pack(">HH", qtype, 1), ("127.0.0.1", 5353))
    answers.append(struct.unpack(">H", sock.recv(2048)[6:8])[0])
print(json.dumps(answers))
"""


def runner_in(ns, env=None):
    def run(argv, data=None):
        proc = subprocess.run(["ip", "netns", "exec", ns] + list(argv), input=data, capture_output=True, text=True,
                              env=env, timeout=120, check=False)
        return proc.returncode, proc.stdout, proc.stderr
    return run


class Corp(object):
    """The corp namespace: our backend, saves, probes, and what a test created there."""

    def __init__(self, lab, in_ns):
        self.lab, self.in_ns = lab, in_ns
        self.runner = runner_in(lab.ns("corp"))
        self.backend = IptablesBackend(self.runner)
        self.cleanup = []

    def sh(self, *argv):
        proc = self.lab.run("corp", list(argv))
        assert proc.returncode == 0, (argv, proc.stderr)
        return proc.stdout

    def saves(self, empty_table_is_none=False):
        """iptables-save / ip6tables-save without comments and counters, ipset save and ipset list -n."""
        out = {}
        for cmd in ("iptables-save", "ip6tables-save"):
            lines = [re.sub(r" \[\d+:\d+\]$", " [0:0]", line) for line in self.sh(cmd).splitlines() if not line.startswith("#")]
            # iptables-nft creates the filter table on first use and never deletes it: an empty one equals none
            out[cmd] = [] if empty_table_is_none and lines == EMPTY_TABLE else lines
        out["ipset save"] = self.sh("ipset", "save")
        out["ipset list -n"] = self.sh("ipset", "list", "-n")
        return out

    def probe(self, targets, ns="corp", timeout=1.5):
        code = "TARGETS = %s\nTIMEOUT = %s\n%s" % (json.dumps(targets), timeout, PROBE)
        return self.in_ns(ns, code)

    def address(self, host, fam=4):
        return self.lab.resolve(host)[0 if fam == 4 else 1]

    def resolver(self, name, families):
        found = [a for fam, a in zip((4, 6), self.lab.resolve(name) or ()) if a and fam in families]
        if not found:
            raise OSError("no lab address")
        return found


@pytest.fixture
def corp(lab, in_ns):
    box = Corp(lab, in_ns)
    box.backend.remove()
    yield box
    box.backend.remove()
    for argv in box.cleanup:
        lab.run("corp", argv)


def plan_for(corp, **changes):
    params = dict(BASE, **changes)
    return build_plan(params, resolver=corp.resolver)


def test_default_drop_allows_apple_only(corp):
    apple4, apple6 = corp.address("mdmenrollment.apple.com"), corp.address("mdmenrollment.apple.com", 6)
    allowed = [["mdmenrollment.apple.com", 443], ["7-courier.push.apple.com", 5223], ["api.push.apple.com", 2197],
               ["7-courier.push.apple.com", 80], [apple6, 443]]
    blocked = [[apple4, 8443], ["198.51.100.10", 8080], [apple6, 8443], ["2001:db8:100::10", 8080]]
    before = corp.probe(allowed + blocked)
    assert set(before.values()) == {"ok", apple4}, before          # everything answers without the firewall

    changed, old, new, _snap = converge(corp.backend, plan_for(corp))
    assert changed and old is None and new == corp.backend.read()
    after = corp.probe(allowed + blocked)
    for host, port in allowed:
        assert after["%s:%s" % (host, port)] == "ok", after
    for host, port in blocked:
        assert after["%s:%s" % (host, port)] != "ok", after
    assert after["loopback"] == "ok" and after["dns"] == apple4, after

    save = corp.sh("iptables-save")
    assert "-A OUTPUT -j MDMOPS-APPLE" in save and ":OUTPUT ACCEPT" in save   # built-in policy untouched
    ours = [line for line in save.splitlines() if line.startswith("-A MDMOPS-APPLE ")]
    assert ours[-1].startswith('-A MDMOPS-APPLE -m comment --comment "mdmops:drop:') and ours[-1].endswith(" -j DROP")
    assert "add mdmops-apple-allow-v4 17.0.0.0/8,tcp:5223" in corp.sh("ipset", "save")
    assert "-A MDMOPS-APPLE -p ipv6-icmp" in corp.sh("ip6tables-save")

    unchanged = corp.saves()
    assert converge(corp.backend, plan_for(corp))[0] is False
    assert corp.saves() == unchanged


def test_drift_is_detected_and_repaired(corp):
    plan = plan_for(corp)
    converge(corp.backend, plan)
    corp.sh("iptables", "-D", "OUTPUT", "-j", "MDMOPS-APPLE")
    corp.sh("ipset", "add", "mdmops-apple-allow-v4", "198.51.100.0/24,tcp:8080")
    changed, old, new, _snap = converge(corp.backend, plan)
    assert changed and "iptables OUTPUT" not in old["chains"] and "198.51.100.0/24 tcp 8080" in old["sets"]["mdmops-apple-allow-v4"]
    assert new["chains"]["iptables OUTPUT"] == "jump MDMOPS-APPLE at 1"
    assert corp.probe([["198.51.100.10", 8080]])["198.51.100.10:8080"] != "ok"
    assert converge(corp.backend, plan)[0] is False


def test_check_mode_changes_nothing(corp):
    before = corp.saves()
    changed, old, want, snap = converge(corp.backend, plan_for(corp), check_mode=True)
    assert changed and old is None and snap is None and want["chains"]["iptables OUTPUT"] == "jump MDMOPS-APPLE at 1"
    assert corp.saves() == before
    converge(corp.backend, plan_for(corp, default_policy="accept"))
    before = corp.saves()
    assert converge(corp.backend, plan_for(corp), check_mode=True)[0] is True
    assert corp.saves() == before


@pytest.mark.parametrize("bad, message", [
    ({"services": ["device_management", "no_such_service"]}, "no_such_service"),
    ({"extra": [{"address": "17.0.0.0/33", "ports": [443]}]}, "not an IP address"),
    ({"extra": [{"address": "192.0.2.0/24", "ports": [70000]}]}, "not a port number"),
])
def test_bad_input_changes_nothing(corp, bad, message):
    converge(corp.backend, plan_for(corp, default_policy="accept"))
    before = corp.saves()
    with pytest.raises(FirewallError, match=message):
        converge(corp.backend, plan_for(corp, **bad))
    assert corp.saves() == before


def test_rules_rejected_by_iptables_change_nothing(corp):
    converge(corp.backend, plan_for(corp, default_policy="accept"))
    before = corp.saves()
    plan = plan_for(corp)
    plan.dyn_groups.append({"name": "dyn1", "host": "*.bad.example", "domain": "bad.example", "tcp": [70000], "udp": []})
    with pytest.raises(FirewallError, match="iptables-restore --test rejected.*70000"):
        converge(corp.backend, plan)
    assert corp.saves() == before                    # no temporary sets left either


def test_failure_half_way_restores_previous_state(corp, lab, tmp_path):
    converge(corp.backend, plan_for(corp, default_policy="accept", services=["device_management"]))
    before = corp.saves()
    fake = tmp_path / "ip6tables-restore"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do [ "$a" = --test ] && exec /usr/sbin/ip6tables-restore "$@"; done\n'
                    'echo "simulated ip6tables-restore failure" >&2\nexit 1\n')
    fake.chmod(0o755)
    env = dict(os.environ, PATH="%s:%s" % (tmp_path, os.environ.get("PATH", "/usr/sbin:/usr/bin")))
    failing = IptablesBackend(runner_in(lab.ns("corp"), env))
    with pytest.raises(FirewallError, match="simulated ip6tables-restore failure.*previous state was restored"):
        converge(failing, plan_for(corp, keep_addresses=["192.0.2.7", "2001:db8::7"]))
    assert corp.saves() == before


def test_remove_restores_pristine_state(corp):
    before = corp.saves(empty_table_is_none=True)
    converge(corp.backend, plan_for(corp, keep_addresses=["192.0.2.7"], mark=16))
    ours = [line for line in corp.sh("iptables-save").splitlines() if "allow-v4" in line]
    assert [line.split(" -j ")[1] for line in ours] == ["MARK --set-xmark 0x10/0x10", "ACCEPT"]
    assert corp.probe([["mdmenrollment.apple.com", 443]])["mdmenrollment.apple.com:443"] == "ok"
    assert re.search(r"\[[1-9]\d*:\d+\] -A MDMOPS-APPLE .*allow-v4-mark", corp.sh("iptables-save", "-c"))   # packets were marked
    corp.backend.remove()
    assert corp.backend.read() is None
    assert corp.saves(empty_table_is_none=True) == before


def test_remove_keeps_user_rules_and_sets(corp):
    for cmd, addr in (("iptables", "192.0.2.1/32"), ("ip6tables", "2001:db8::1/128")):
        corp.sh(cmd, "-A", "OUTPUT", "-d", addr, "-j", "DROP")
        corp.cleanup.append([cmd, "-D", "OUTPUT", "-d", addr, "-j", "DROP"])
    corp.sh("ipset", "create", "user-list", "hash:ip")
    corp.cleanup.append(["ipset", "destroy", "user-list"])
    before = corp.saves()

    converge(corp.backend, plan_for(corp))
    assert corp.sh("iptables", "-S", "OUTPUT").splitlines()[1:] == ["-A OUTPUT -j MDMOPS-APPLE", "-A OUTPUT -d 192.0.2.1/32 -j DROP"]
    assert corp.sh("ip6tables", "-S", "OUTPUT").splitlines()[1:] == ["-A OUTPUT -j MDMOPS-APPLE", "-A OUTPUT -d 2001:db8::1/128 -j DROP"]
    snap = corp.backend.snapshot()
    converge(corp.backend, plan_for(corp, hook="forward", ip_versions=[4]))   # jump moves, v6 chain goes
    assert corp.sh("iptables", "-S", "OUTPUT").splitlines()[1:] == ["-A OUTPUT -d 192.0.2.1/32 -j DROP"]
    corp.backend.restore(snap)
    assert corp.backend.read() == corp.backend.desired(plan_for(corp))

    corp.backend.remove()
    assert corp.saves() == before                                            # byte for byte


def test_forward_path_filters_the_device(corp):
    targets = [["mdmenrollment.apple.com", 443], ["198.51.100.10", 8080]]
    converge(corp.backend, plan_for(corp, hook="forward"))
    dev = corp.probe(targets, ns="dev")
    assert dev["mdmenrollment.apple.com:443"] == "ok" and dev["198.51.100.10:8080"] != "ok", dev
    assert corp.probe(targets)["198.51.100.10:8080"] == "ok"      # corp's own traffic is not filtered


def test_dns_fed_sets_filled_by_dnsmasq_and_kept(corp, lab, tmp_path):
    plan = plan_for(corp, strategy="resolve", services=["device_management"])
    group = [g for g in plan.dyn_groups if g["host"] == "*.push.apple.com"][0]
    courier = corp.address("7-courier.push.apple.com")
    converge(corp.backend, plan)
    assert corp.probe([[courier, 5223]])["%s:5223" % courier] != "ok"

    conf = tmp_path / "dnsmasq.conf"
    conf.write_text("\n".join(["port=5353", "listen-address=127.0.0.1", "bind-interfaces", "no-resolv", "no-hosts",
                               "server=%s" % lab.dns_server] + corp.backend.dnsmasq_lines(plan)) + "\n")
    assert "ipset=/push.apple.com/mdmops-apple-%s-v4,mdmops-apple-%s-v6" % (group["name"], group["name"]) in conf.read_text()
    lab.spawn("corp", "ipt-dnsmasq", ["dnsmasq", "--keep-in-foreground", "--conf-file=%s" % conf, "--pid-file="],
              udp_ports=[5353])
    try:
        assert corp.in_ns("corp", "NAME = '7-courier.push.apple.com'\n" + DNS_QUERY) == [1, 1]
    finally:
        lab.stop("ipt-dnsmasq")
    assert courier in corp.sh("ipset", "list", "mdmops-apple-%s-v4" % group["name"])
    assert corp.probe([[courier, 5223]])["%s:5223" % courier] == "ok"

    # a re-apply (another plan, same wildcard) keeps what DNS taught the set
    changed = converge(corp.backend, plan_for(corp, strategy="resolve", services=["device_management"],
                                              extra=[{"address": "192.0.2.9", "ports": [8443]}]))[0]
    assert changed and courier in corp.sh("ipset", "list", "mdmops-apple-%s-v4" % group["name"])
    assert corp.probe([[courier, 5223]])["%s:5223" % courier] == "ok"


def _restored(state_dir, token):
    """Fire the watcher of ``token`` ("restore now") and wait for its report."""
    assert _rollback.fire(token, state_dir)
    done = os.path.join(state_dir, token + ".rolled-back")
    deadline = time.monotonic() + 60
    while not os.path.exists(done) and time.monotonic() < deadline:
        time.sleep(0.1)
    with open(done) as f:
        return [r["rc"] for r in json.load(f)["results"]]


def test_rollback_restores_unless_confirmed(corp, lab, tmp_path):
    state_dir = str(tmp_path)
    commands = [["ip", "netns", "exec", lab.ns("corp")] + argv for argv in corp.backend.restore_commands()]
    lock = os.path.join(state_dir, "iptables-mdmops_apple.lock")

    converge(corp.backend, plan_for(corp, default_policy="accept"))
    before = corp.saves()
    snap = corp.backend.snapshot()
    timer = _rollback.arm(state_dir, "iptables", "mdmops_apple", snap, commands, 600, lock)
    assert converge(corp.backend, plan_for(corp))[0]
    assert _restored(state_dir, timer.token) == [0]
    assert _rollback.confirm(timer.token, state_dir=state_dir) == "rolled_back"
    assert corp.saves() == before

    snap = corp.backend.snapshot()
    timer = _rollback.arm(state_dir, "iptables", "mdmops_apple", snap, commands, 600, lock)
    assert converge(corp.backend, plan_for(corp))[0]
    applied = corp.saves()
    assert applied != before
    assert _rollback.confirm(timer.token, state_dir=state_dir) == "confirmed"
    assert not _rollback.fire(timer.token, state_dir)
    assert corp.saves() == applied
