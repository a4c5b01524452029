"""The firewalld backend against a real firewalld 1.3 (nftables backend) in the lab's corp namespace.

A module fixture starts a system D-Bus and firewalld inside corp (the bus
socket path is shared by every namespace, so only one such firewalld can run
on the machine), binds corp's two interfaces to zone ``trusted`` (so the
forward tests see our policy, not firewalld's default forward reject) and
undoes all of it at the end: firewalld and dbus stopped, firewalld's nft
table gone, /etc/firewalld as it was.  Every check is a real connection from
corp (output path) or dev (forward path) to the lab's fake Internet.
"""
from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

from ansible_collections.mdmops.apple.plugins.module_utils._firewall import _rollback
from ansible_collections.mdmops.apple.plugins.module_utils._firewall._backend import converge
from ansible_collections.mdmops.apple.plugins.module_utils._firewall._firewalld import FirewalldBackend
from ansible_collections.mdmops.apple.plugins.module_utils._firewall._plan import (
    FirewallError, build_plan, comparable,
)

pytestmark = pytest.mark.lab

ETC = "/etc/firewalld"
BUS = "/run/dbus/system_bus_socket"
BUS_PID = "/run/dbus/pid"
BASE = {"services": ["device_management", "push_provider"], "default_policy": "drop", "hook": "output", "strategy": "cidr"}
INTERNET = "198.51.100.10"
TRUSTED = """<?xml version="1.0" encoding="utf-8"?>
<zone target="ACCEPT">
  <short>Trusted (mdmops lab test)</short>
  <interface name="lan0"/>
  <interface name="wan0"/>
  <forward/>
</zone>
"""


def code(src, **params):
    head = "import json\n" + "".join("%s = json.loads(%r)\n" % (k, json.dumps(v)) for k, v in params.items())
    return head + textwrap.dedent(src)


PROBE = """
import socket
out = {}
for host, port in tcp:
    try:
        socket.create_connection((host, port), timeout=3).close()
        out["%s:%d" % (host, port)] = "ok"
    except OSError as exc:
        out["%s:%d" % (host, port)] = "fail: %s" % exc
for name in names:
    try:
        out[name] = sorted({a[4][0] for a in socket.getaddrinfo(name, 443, socket.AF_INET, socket.SOCK_STREAM)})
    except OSError as exc:
        out[name] = "fail: %s" % exc
print(json.dumps(out))
"""

# loopback, ICMP echo and an established UDP flow, from a process that lives across a converge
KEEPS = """
import os, socket, struct, sys, time
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.settimeout(3)
udp.connect((internet, 443))
def echo(sock):
    try:
        sock.send(b"ping")
        return sock.recv(100).decode()
    except OSError as exc:
        return "fail: %s" % exc
first = echo(udp)
print(json.dumps({"first": first}), flush=True)
sys.stdin.readline()                      # the test converges meanwhile
out = {"first": first, "established": echo(udp)}
fresh = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
fresh.settimeout(2)
fresh.connect((internet, 443))
out["new_flow"] = echo(fresh)
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
try:
    socket.create_connection(srv.getsockname(), timeout=2).close()
    out["loopback"] = "ok"
except OSError as exc:
    out["loopback"] = "fail: %s" % exc
icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
icmp.settimeout(2)
body = struct.pack("!BBHHH", 8, 0, 0, 0x4d44, 1) + b"mdmops"
csum = sum(struct.unpack("!%dH" % (len(body) // 2), body))
csum = (csum >> 16) + (csum & 0xFFFF)
body = body[:2] + struct.pack("!H", ~(csum + (csum >> 16)) & 0xFFFF) + body[4:]
icmp.sendto(body, (apple, 0))
try:
    while True:
        data, peer = icmp.recvfrom(200)
        if peer[0] == apple and data[20] == 0:
            out["icmp"] = "ok"
            break
except OSError as exc:
    out["icmp"] = "fail: %s" % exc
print(json.dumps(out), flush=True)
"""

DNS_QUERY = """
import socket, struct
q = struct.pack(">HHHHHH", 0x4d44, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\\0" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(q, (server, port))
data = s.recv(2048)
print(json.dumps({"rcode": data[3] & 15, "answers": struct.unpack(">H", data[6:8])[0]}))
"""


def _tree(root):
    """{relative path: bytes} of every file under ``root``."""
    out = {}
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = f.read()
    return out


class Firewalld(object):
    """firewalld running in corp, and the helpers the tests share."""

    def __init__(self, lab):
        self.lab = lab
        self.ns = lab.ns("corp")
        self.calls = []

    def runner(self, argv, data=None):
        start = time.monotonic()
        proc = subprocess.run(["ip", "netns", "exec", self.ns] + list(argv), input=data, capture_output=True,
                              text=True, check=False, timeout=120)
        self.calls.append((list(argv), time.monotonic() - start))
        return proc.returncode, proc.stdout, proc.stderr

    def backend(self, cls=FirewalldBackend):
        return cls(self.runner)

    def ruleset(self):
        rc, out, err = self.runner(["nft", "list", "ruleset"])
        assert rc == 0, err
        return out

    def probe(self, ns="corp", tcp=(), names=()):
        proc = self.lab.python(ns, code(PROBE, tcp=[list(t) for t in tcp], names=list(names)), timeout=60)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def lab_resolver(self, name, families):
        found = [a for a in self.lab.resolve(name) if a and ipaddress.ip_address(a).version in families]
        if not found:
            raise OSError("NXDOMAIN")
        return found


def _wait_running(fw, deadline):
    while time.monotonic() < deadline:
        rc, out, _err = fw.runner(["firewall-cmd", "--state"])
        if rc == 0 and out.strip() == "running":
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def fw(lab):
    for tool in ("firewalld", "firewall-cmd", "firewall-offline-cmd", "dbus-daemon"):
        if not shutil.which(tool):
            reason = "the firewalld tests need %s (apt-get install firewalld dbus)" % tool
            if os.environ.get("MDMOPS_LAB_REQUIRED"):
                pytest.fail(reason)
            pytest.skip(reason)
    if os.path.exists(BUS) or os.path.exists(BUS_PID):
        pytest.fail("a system D-Bus is already running (%s): only one lab firewalld can run on this machine at a "
                    "time; stop the other one first" % BUS)
    root_ruleset = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True, check=True).stdout
    etc_before = _tree(ETC)
    fw = Firewalld(lab)
    with open(os.path.join(ETC, "zones", "trusted.xml"), "w") as f:
        f.write(TRUSTED)
    try:
        lab.spawn("corp", "fwd-dbus", ["dbus-daemon", "--system", "--nofork", "--nopidfile"])
        deadline = time.monotonic() + 15
        while not os.path.exists(BUS) and time.monotonic() < deadline:
            time.sleep(0.05)
        started = time.monotonic()
        lab.spawn("corp", "fwd-firewalld", ["firewalld", "--nofork", "--nopid"])
        if not _wait_running(fw, time.monotonic() + 60):
            pytest.fail("firewalld did not come up in corp; see %s" % lab.path("logs", "fwd-firewalld.log"))
        fw.startup = time.monotonic() - started
        fw.etc_pristine = _tree(ETC)
        fw.root_ruleset = root_ruleset
        yield fw
    finally:
        lab.stop("fwd-firewalld")
        lab.stop("fwd-dbus")
        for path in (BUS, BUS_PID):
            if os.path.exists(path):
                os.remove(path)
        subprocess.run(["ip", "netns", "exec", fw.ns, "nft", "delete", "table", "inet", "firewalld"],
                       capture_output=True, check=False)
        now = _tree(ETC)
        for rel in set(now) - set(etc_before):
            os.remove(os.path.join(ETC, rel))
        for rel, data in etc_before.items():
            if now.get(rel) != data:
                with open(os.path.join(ETC, rel), "wb") as f:
                    f.write(data)


@pytest.fixture(scope="module")
def targets(lab):
    api4, api6 = lab.resolve("api.push.apple.com")
    courier4, _courier6 = lab.resolve("1-courier.push.apple.com")
    return {"api4": api4, "api6": api6, "courier4": courier4}


def test_drop_output_allows_only_the_plan_and_keeps_loopback_established_dns_icmp(fw, lab, targets):
    keeper = subprocess.Popen(["ip", "netns", "exec", fw.ns, sys.executable, "-c",
                               code(KEEPS, internet=INTERNET, apple=targets["api4"])],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=lab.env())
    try:
        assert json.loads(keeper.stdout.readline()) == {"first": "mdmlab udp 443"}
        backend = fw.backend()
        assert backend.read() is None
        changed, before, after, snap = converge(backend, build_plan(dict(BASE)))
        keeper.stdin.write("go\n")
        keeper.stdin.flush()
        keeps = json.loads(keeper.stdout.readline())
    finally:
        keeper.kill()
        keeper.wait()
    assert changed and before is None and snap is not None
    assert comparable(after) == comparable(backend.desired(build_plan(dict(BASE))))
    assert after["chains"]["mdmops-apple"] == "policy ingress HOST egress ANY priority -100 target REJECT"
    assert "17.0.0.0/8 tcp 5223" in after["sets"]["mdmops-apple-allow-v4"]

    assert keeps["established"] == "mdmlab udp 443", keeps
    assert keeps["new_flow"].startswith("fail"), keeps
    assert keeps["loopback"] == "ok" and keeps["icmp"] == "ok", keeps

    got = fw.probe(tcp=[(targets["api4"], 443), (targets["courier4"], 5223), (targets["api4"], 2197),
                        (targets["courier4"], 443), (targets["api6"], 443),
                        (targets["api4"], 8443), (targets["api6"], 8443), (INTERNET, 8080), (INTERNET, 443)],
                   names=["api.push.apple.com"])
    ok = ["%s:443" % targets["api4"], "%s:5223" % targets["courier4"], "%s:2197" % targets["api4"],
          "%s:443" % targets["courier4"], "%s:443" % targets["api6"]]
    for key, value in got.items():
        if key in ok:
            assert value == "ok", (key, value)
        elif key == "api.push.apple.com":
            assert value == [targets["api4"]], value
        else:
            assert value.startswith("fail"), (key, value)


def test_second_converge_changes_nothing(fw):
    backend = fw.backend()
    fw.calls[:] = []
    changed, before, after, snap = converge(backend, build_plan(dict(BASE)))
    assert not changed and snap is None and before == after
    assert all(argv[1] in ("--info-policy=mdmops-apple", "--get-ipsets") or argv[1].startswith("--info-ipset=")
               for argv, _t in fw.calls), fw.calls


def test_check_mode_changes_nothing(fw):
    backend = fw.backend()
    files, rules = _tree(ETC), fw.ruleset()
    plan = build_plan(dict(BASE, keep_addresses=["198.51.100.0/24"], dns_servers=["100.64.0.1"]))
    changed, before, after, snap = converge(backend, plan, check_mode=True)
    assert changed and snap is None
    assert after == backend.desired(plan) and before == backend.read()
    assert "mdmops-apple-keep-v4" in after["sets"] and "mdmops-apple-keep-v4" not in before["sets"]
    assert _tree(ETC) == files and fw.ruleset() == rules


def test_keep_addresses_and_dns_servers(fw, targets):
    backend = fw.backend()
    plan = build_plan(dict(BASE, keep_addresses=["198.51.100.0/24"], dns_servers=["100.64.0.1"]))
    changed, _before, after, _snap = converge(backend, plan)
    assert changed and after["sets"]["mdmops-apple-keep-v4"] == ["198.51.100.0/24"]
    assert any('destination address="100.64.0.1" service name="dns"' in t for t in after["rule_text"].values())
    got = fw.probe(tcp=[(INTERNET, 8080), (targets["api4"], 8443)], names=["api.push.apple.com"])
    assert got["%s:8080" % INTERNET] == "ok" and got["%s:8443" % targets["api4"]].startswith("fail")
    assert got["api.push.apple.com"] == [targets["api4"]]
    assert converge(backend, build_plan(dict(BASE)))[0]


def test_bad_input_raises_before_anything_changes(fw):
    backend = fw.backend()
    files, rules, state = _tree(ETC), fw.ruleset(), backend.read()
    with pytest.raises(FirewallError, match="port"):
        converge(backend, build_plan(dict(BASE, extra=[{"address": "17.0.0.0/8", "ports": [70000]}])))
    with pytest.raises(FirewallError, match="mark is not supported .* path output"):
        converge(backend, build_plan(dict(BASE, mark=16)))
    assert _tree(ETC) == files and fw.ruleset() == rules and backend.read() == state


def test_firewalld_checker_rejects_before_anything_changes(fw):
    backend = FirewalldBackend(fw.runner, ingress_zone="no-such-zone")
    files, rules, state = _tree(ETC), fw.ruleset(), backend.read()
    with pytest.raises(FirewallError, match="(?s)firewalld rejected the generated configuration.*no-such-zone"):
        converge(backend, build_plan(dict(BASE, hook="forward")))
    assert _tree(ETC) == files and fw.ruleset() == rules and backend.read() == state


class _NoPlanCheck(FirewalldBackend):
    """Renders what firewalld's checkers accept but its reload refuses (a mark in a HOST policy)."""

    def _check_plan(self, plan):
        return None


def test_failed_reload_keeps_the_previous_state(fw, targets):
    backend = fw.backend(_NoPlanCheck)
    files, state = _tree(ETC), backend.read()
    with pytest.raises(FirewallError, match="(?s)reload failed.*previous files were put back.*previous state stays"):
        converge(backend, build_plan(dict(BASE, mark=16)))
    assert _tree(ETC) == files and backend.read() == state
    assert fw.runner(["firewall-cmd", "--state"])[1].strip() == "running"
    got = fw.probe(tcp=[(targets["api4"], 443), (targets["api4"], 8443)])
    assert got["%s:443" % targets["api4"]] == "ok" and got["%s:8443" % targets["api4"]].startswith("fail")


def test_forward_path_filters_the_device_and_marks(fw, lab, targets):
    backend = fw.backend()
    base = fw.probe("dev", tcp=[(targets["api4"], 8443)])
    assert base["%s:8443" % targets["api4"]] == "ok", "zone trusted should forward everything before our policy"
    changed, _before, after, _snap = converge(backend, build_plan(dict(BASE, hook="forward", mark=16)))
    assert changed and after["chains"]["mdmops-apple"] == "policy ingress ANY egress ANY priority -100 target REJECT"
    counter = "table inet mdmfwdmark { chain post { type filter hook postrouting priority 300; " \
              "meta mark & 0x10 == 0x10 ip daddr %s counter; }; }\n" % targets["api4"]
    assert fw.runner(["nft", "-f", "-"], data=counter)[0] == 0
    try:
        got = fw.probe("dev", tcp=[(targets["api4"], 443), (targets["courier4"], 5223), (targets["api4"], 8443),
                                   (INTERNET, 8080)], names=["api.push.apple.com"])
        rc, out, _err = fw.runner(["nft", "-j", "list", "chain", "inet", "mdmfwdmark", "post"])
    finally:
        fw.runner(["nft", "delete", "table", "inet", "mdmfwdmark"])
    assert got["%s:443" % targets["api4"]] == "ok" and got["%s:5223" % targets["courier4"]] == "ok", got
    assert got["%s:8443" % targets["api4"]].startswith("fail") and got["%s:8080" % INTERNET].startswith("fail"), got
    assert got["api.push.apple.com"] == [targets["api4"]]
    packets = [e["counter"]["packets"] for item in json.loads(out)["nftables"] if "rule" in item
               for e in item["rule"]["expr"] if "counter" in e]
    assert packets and packets[0] > 0, "no forwarded packet to Apple carried mark 0x10"
    own = fw.probe("corp", tcp=[(targets["api4"], 8443)])
    assert own["%s:8443" % targets["api4"]] == "ok", "the forward policy must not filter corp's own traffic"
    assert not converge(backend, build_plan(dict(BASE, hook="forward", mark=16)))[0]


def test_wildcards_fed_by_dnsmasq_nftset(fw, lab, targets, tmp_path):
    backend = fw.backend()
    plan = build_plan(dict(BASE, strategy="resolve"), resolver=fw.lab_resolver)
    courier = targets["courier4"]
    assert not any(net.network_address == ipaddress.ip_address(courier) for net, _p, _port in plan.elements[4])
    group = [g for g in plan.dyn_groups if g["host"] == "*.push.apple.com"][0]
    assert 5223 in group["tcp"]
    changed, _before, after, _snap = converge(backend, plan)
    assert changed and after["sets"]["mdmops-apple-%s-v4" % group["name"]] == ["(filled by DNS: *.push.apple.com)"]
    lines = backend.dnsmasq_lines(plan)
    assert any(line.startswith("nftset=/push.apple.com/4#inet#firewalld#mdmops-apple-") for line in lines), lines
    conf = tmp_path / "dnsmasq.conf"
    conf.write_text("\n".join(["listen-address=127.0.0.1", "bind-interfaces", "port=5300", "no-resolv",
                               "server=100.64.0.1", "user=root", "log-queries"] + lines) + "\n")
    assert fw.probe(tcp=[(courier, 5223)])["%s:5223" % courier].startswith("fail")
    lab.spawn("corp", "fwd-dnsmasq", ["dnsmasq", "--keep-in-foreground", "--conf-file=%s" % conf, "--log-facility=-"],
              udp_ports=[5300])
    try:
        proc = lab.python("corp", code(DNS_QUERY, name="7-courier.push.apple.com", server="127.0.0.1", port=5300))
        assert proc.returncode == 0 and json.loads(proc.stdout)["answers"] == 1, proc.stderr
    finally:
        lab.stop("fwd-dnsmasq")
    assert fw.probe(tcp=[(courier, 5223)])["%s:5223" % courier] == "ok"
    # what we read stays stable while dnsmasq adds addresses: no change
    assert not converge(backend, plan)[0]


def test_rollback_restores_when_not_confirmed(fw, targets, tmp_path):
    state_dir = str(tmp_path)
    lock = os.path.join(state_dir, "firewalld-mdmops_apple.lock")
    backend = fw.backend()
    converge(backend, build_plan(dict(BASE)))
    good, good_snap = backend.read(), backend.snapshot()
    timer = _rollback.arm(state_dir, "firewalld", "mdmops_apple", good_snap, backend.restore_commands(), 600, lock)
    changed, _before, _after, snap = converge(backend, build_plan(dict(BASE, default_policy="accept")))
    assert changed and fw.probe(tcp=[(targets["api4"], 8443)])["%s:8443" % targets["api4"]] == "ok"
    assert _rollback.fire(timer.token, state_dir)
    done = os.path.join(state_dir, timer.token + ".rolled-back")
    deadline = time.monotonic() + 60
    while not os.path.exists(done) and time.monotonic() < deadline:
        time.sleep(0.1)
    with open(done) as f:
        results = json.load(f)["results"]
    assert [r["rc"] for r in results] == [0], results
    assert comparable(backend.read()) == comparable(good)
    assert fw.probe(tcp=[(targets["api4"], 8443)])["%s:8443" % targets["api4"]].startswith("fail")
    # confirmed in time: nothing is restored
    timer = _rollback.arm(state_dir, "firewalld", "mdmops_apple", backend.snapshot(), backend.restore_commands(),
                          600, lock)
    changed, _before, after, snap = converge(backend, build_plan(dict(BASE, default_policy="accept")))
    assert _rollback.confirm(timer.token, state_dir=state_dir) == "confirmed"
    assert not _rollback.fire(timer.token, state_dir)
    assert comparable(backend.read()) == comparable(after)
    # restore() in-process (what converge does when the read-back differs from the plan)
    backend.restore(good_snap)
    assert comparable(backend.read()) == comparable(good)


def test_remove_leaves_firewalld_as_before(fw, targets):
    backend = fw.backend()
    converge(backend, build_plan(dict(BASE, keep_addresses=["203.0.113.0/24"])))
    assert _tree(ETC) != fw.etc_pristine
    backend.remove()
    assert backend.read() is None
    assert _tree(ETC) == fw.etc_pristine
    assert "mdmops" not in fw.ruleset()
    assert fw.probe(tcp=[(targets["api4"], 8443)])["%s:8443" % targets["api4"]] == "ok"
    backend.remove()            # nothing left: a no-op
    assert _tree(ETC) == fw.etc_pristine


def test_unreachable_firewalld_is_reported(fw):
    def runner(argv, data=None):
        proc = subprocess.run(["ip", "netns", "exec", fw.ns, "env", "DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent"]
                              + list(argv), input=data, capture_output=True, text=True, check=False)
        return proc.returncode, proc.stdout, proc.stderr
    with pytest.raises(FirewallError, match="firewalld is not running or not reachable"):
        FirewalldBackend(runner).read()


def test_root_namespace_untouched(fw):
    now = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True, check=True).stdout
    assert now == fw.root_ruleset


def test_module_drives_firewalld_through_ansible(fw, lab, targets):
    """The same through the egress_firewall module (action plugin, argument spec, diff, absent)."""
    from tests.integration.firewall.fwlib import apply, connect
    args = {"backend": "firewalld", "services": ["device_management", "push_provider"], "default_policy": "drop"}
    res = apply(lab, args, diff=True, via="ansible")
    assert res["changed"] is True and not res["failed"], res
    assert "mdmops-apple" in res["_stdout"]
    got = connect(lab, [("api.push.apple.com", 443, "tcp"), ("1-courier.push.apple.com", 5223, "tcp"),
                        ("198.51.100.10", 8080, "tcp")])
    assert got[("api.push.apple.com", 443, "tcp")] == "ok" and got[("1-courier.push.apple.com", 5223, "tcp")] == "ok"
    assert got[("198.51.100.10", 8080, "tcp")] != "ok"
    assert apply(lab, args)["changed"] is False
    gone = apply(lab, {"backend": "firewalld", "state": "absent"})
    assert gone["changed"] is True and not gone["failed"], gone
    assert connect(lab, [("198.51.100.10", 8080, "tcp")]) == {("198.51.100.10", 8080, "tcp"): "ok"}
