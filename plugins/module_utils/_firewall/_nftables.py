# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""nftables backend: one ``inet`` table of our own, written in one atomic
``nft -f`` transaction and read back with ``nft -j``.

Nothing outside our table is read for decisions or touched.  A ``runner``
callable runs commands: ``runner(argv, data=None) -> (rc, stdout, stderr)``
(AnsibleModule.run_command in the module, subprocess in tests).
"""

from __future__ import annotations

import ipaddress
import json
import re

from ansible_collections.mdmops.apple.plugins.module_utils._firewall._backend import Backend
from ansible_collections.mdmops.apple.plugins.module_utils._firewall._plan import (
    DEFAULT_TABLE, DYN_TIMEOUT, FirewallError, dnsmasq_lines, rule_id,
)

CHAIN = "egress"
PRIORITY = -10
_TYPE = {4: "ipv4_addr", 6: "ipv6_addr"}
_IP = {4: "ip", 6: "ip6"}


def _accept(plan):
    return ("meta mark set meta mark | 0x%08x accept" % plan.mark) if plan.mark else "accept"


def _kept(intent, plan):
    """One intent of Plan.kept() as [(name, nft text)]."""
    kind = intent["kind"]
    if kind == "loopback":
        return [("loopback", 'oifname "lo" accept')]
    if kind == "established":
        return [("established", "ct state established,related accept")]
    if kind == "pickup":
        return [("pickup", "ct state new tcp flags ack / syn,ack accept")]
    if kind == "icmp":
        return [("icmp", "meta l4proto { icmp, ipv6-icmp } accept")]
    if kind == "dns" and intent["family"] is None:
        return [("dns", "meta l4proto { tcp, udp } th dport 53 accept")]
    if kind == "dns":
        servers = intent["servers"]
        # written as nft prints it back, so the rule text compares equal
        where = servers[0] if len(servers) == 1 else "{ %s }" % ", ".join(servers)
        return [("dns-v%d" % intent["family"], "%s daddr %s meta l4proto { tcp, udp } th dport 53 accept"
                 % (_IP[intent["family"]], where))]
    if kind == "keep":
        return [("keep-v%d" % intent["family"], "%s daddr @keep_v%d accept" % (_IP[intent["family"]], intent["family"]))]
    raise FirewallError("internal error: unknown kept traffic %r" % (kind,))


def rules(plan):
    """The chain's rules as (id, nft text), in order."""
    out = []
    for intent in plan.kept():
        out.extend(_kept(intent, plan))
    for fam in plan.families:
        out.append(("allow-v%d" % fam, "%s daddr . meta l4proto . th dport @allow_v%d counter %s"
                    % (_IP[fam], fam, _accept(plan))))
    for g in plan.dyn_groups:
        for fam in plan.families:
            for proto in ("tcp", "udp"):
                if g[proto]:
                    ports = ", ".join(str(p) for p in g[proto])
                    ports = ports if len(g[proto]) == 1 else "{ %s }" % ports    # as nft prints it back
                    out.append(("%s-v%d-%s" % (g["name"], fam, proto), "%s daddr @%s_v%d %s dport %s counter %s" % (
                        _IP[fam], g["name"], fam, proto, ports, _accept(plan))))
    return [(rule_id(name, body), body) for name, body in out]


def _element(net, proto, port):
    return "%s . %s . %d" % (net if net.prefixlen != net.max_prefixlen else net.network_address, proto, port)


def desired_state(plan):
    """The state model (see _plan.describe) the table will have after apply."""
    state = {
        "chains": {CHAIN: "hook %s priority %d policy %s" % (plan.hook, PRIORITY, plan.policy)},
        "rules": ["%s: %s" % (CHAIN, rid) for rid, _body in rules(plan)],
        "rule_text": dict((rid, body) for rid, body in rules(plan)),
        "sets": {},
    }
    for fam in plan.families:
        state["sets"]["allow_v%d" % fam] = plan.element_text(fam)
        if plan.keep_networks[fam]:
            state["sets"]["keep_v%d" % fam] = sorted(str(n) for n in plan.keep_networks[fam])
        for g in plan.dyn_groups:
            state["sets"]["%s_v%d" % (g["name"], fam)] = ["(filled by DNS: %s)" % g["host"]]
    return state


def render(plan, table=DEFAULT_TABLE, dynamic=None):
    """The ``nft -f`` text that replaces our table in one transaction.

    ``dynamic`` maps DNS-fed set names to addresses learnt so far, which are
    carried over so a re-apply does not forget them.
    """
    dynamic = dynamic or {}
    lines = ["table inet %s {}" % table, "delete table inet %s" % table, "table inet %s {" % table,
             '\tcomment "managed by mdmops.apple egress_firewall: edit the playbook, not this table"']
    for fam in plan.families:
        lines.append("\tset allow_v%d {" % fam)
        lines.append("\t\ttype %s . inet_proto . inet_service" % _TYPE[fam])
        lines.append("\t\tflags interval")
        elems = [_element(*e) for e in plan.sorted_elements(fam)]
        if elems:
            lines.append("\t\telements = { %s }" % ",\n\t\t\t".join(elems))
        lines.append("\t}")
        if plan.keep_networks[fam]:
            lines.append("\tset keep_v%d { type %s; flags interval; elements = { %s } }" % (
                fam, _TYPE[fam], ", ".join(str(n) for n in sorted(plan.keep_networks[fam]))))
        for g in plan.dyn_groups:
            name = "%s_v%d" % (g["name"], fam)
            lines.append("\tset %s {" % name)
            lines.append('\t\ttype %s; flags timeout; timeout %ds; comment "DNS-fed: %s"' % (
                _TYPE[fam], DYN_TIMEOUT, g["host"]))
            if dynamic.get(name):
                lines.append("\t\telements = { %s }" % ", ".join(dynamic[name]))
            lines.append("\t}")
    lines.append("\tchain %s {" % CHAIN)
    lines.append("\t\ttype filter hook %s priority %d; policy %s;" % (plan.hook, PRIORITY, plan.policy))
    for rid, body in rules(plan):
        lines.append('\t\t%s comment "%s"' % (body, rid))
    lines.append("\t}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _norm_elem(value):
    """One element of an ``nft -j`` set as "net proto port" text."""
    def addr(v):
        if isinstance(v, dict) and "prefix" in v:
            return [ipaddress.ip_network("%s/%s" % (v["prefix"]["addr"], v["prefix"]["len"]))]
        if isinstance(v, dict) and "range" in v:
            a, b = (ipaddress.ip_address(x) for x in v["range"])
            return list(ipaddress.summarize_address_range(a, b))
        if isinstance(v, dict) and "elem" in v:
            return addr(v["elem"]["val"])
        return [ipaddress.ip_network(v)]
    if isinstance(value, dict) and "elem" in value:
        value = value["elem"]["val"]
    if isinstance(value, dict) and "concat" in value:
        net, proto, port = value["concat"]
        proto = {6: "tcp", 17: "udp"}.get(proto, proto)
        return ["%s %s %s" % (n, proto, int(port)) for n in addr(net)]
    return [str(n) for n in addr(value)]


def read_state(runner, table=DEFAULT_TABLE):
    """Our table as a state model, plus DNS-fed elements; ``(None, {})`` when absent."""
    rc, out, err = runner(["nft", "-j", "list", "table", "inet", table])
    if rc != 0:
        if _absent(err):
            return None, {}
        raise FirewallError("nft list table inet %s failed: %s" % (table, err.strip() or out.strip()))
    try:
        items = json.loads(out)["nftables"]
    except (ValueError, KeyError) as exc:
        raise FirewallError("nft -j printed something that is not nftables JSON: %s" % exc)
    state = {"chains": {}, "rules": [], "rule_text": _rule_text(runner, table), "sets": {}}
    dynamic = {}
    for item in items:
        if "chain" in item:
            c = item["chain"]
            state["chains"][c["name"]] = "hook %s priority %s policy %s" % (c.get("hook"), c.get("prio"), c.get("policy"))
        elif "rule" in item:
            r = item["rule"]
            state["rules"].append("%s: %s" % (r["chain"], r.get("comment") or "(rule without our comment, handle %s)"
                                              % r.get("handle")))
        elif "set" in item:
            s = item["set"]
            elems = []
            for e in s.get("elem", []):
                elems.extend(_norm_elem(e))
            if "timeout" in (s.get("flags") or []) or s.get("timeout"):
                dynamic[s["name"]] = sorted(set(elems))
                state["sets"][s["name"]] = ["(filled by DNS: %s)" % (s.get("comment", "").replace("DNS-fed: ", ""))]
            else:
                state["sets"][s["name"]] = sorted(elems, key=_elem_sort_key)
    return state, dynamic


_COMMENT_RE = re.compile(r'^\s*(.*?)\s+comment "([^"]*)"\s*$')
_COUNTER_RE = re.compile(r"counter packets \d+ bytes \d+")


def _rule_text(runner, table):
    """Rule bodies as nft prints them, by comment (for readable diffs only)."""
    rc, out, _err = runner(["nft", "list", "table", "inet", table])
    texts = {}
    if rc == 0:
        for line in out.splitlines():
            m = _COMMENT_RE.match(line)
            if m and m.group(2).startswith("mdmops:"):
                texts[m.group(2)] = _COUNTER_RE.sub("counter", m.group(1))
    return texts


def _elem_sort_key(text):
    parts = text.split(" ")
    if len(parts) == 3:
        net = ipaddress.ip_network(parts[0])
        return (parts[1], int(parts[2]), net.network_address.packed, net.prefixlen)
    net = ipaddress.ip_network(parts[0])
    return ("", 0, net.network_address.packed, net.prefixlen)


class NftablesBackend(Backend):
    """Our ``inet`` table, replaced in one ``nft -f`` transaction."""

    name = "nftables"
    commands = ("nft",)

    def desired(self, plan):
        state = desired_state(plan)
        state["sets"] = dict((k, v if v and v[0].startswith("(") else sorted(v, key=_elem_sort_key))
                             for k, v in state["sets"].items())
        return state

    def read(self):
        state, self.dynamic = read_state(self.runner, self.table)
        return state

    def render(self, plan):
        return render(plan, self.table, getattr(self, "dynamic", None))

    def validate(self, plan):
        self._nft(["-c", "-f", "-"], self.render(plan), "nftables rejected the generated ruleset (nothing was changed)")

    def apply(self, plan):
        self._nft(["-f", "-"], self.render(plan),
                  "nft -f failed; the transaction was not applied, so the previous rules stay")

    def snapshot(self):
        rc, out, err = self.runner(["nft", "list", "table", "inet", self.table])
        head = removal(self.table)
        if rc != 0:
            if _absent(err):
                return head
            raise FirewallError("cannot save the current table before changing it: %s" % err.strip())
        return head + out

    def restore(self, snapshot):
        self._nft(["-f", "-"], snapshot, "restoring the previous table failed")

    def restore_commands(self):
        return [["nft", "-f", "-"]]

    def remove(self):
        self._nft(["-f", "-"], removal(self.table), "removing table inet %s failed" % self.table)

    def dnsmasq_lines(self, plan):
        return dnsmasq_lines(plan, "nftables", self.table)

    def _nft(self, args, text, what):
        rc, out, err = self.runner(["nft"] + args, data=text)
        if rc != 0:
            raise FirewallError("%s: %s" % (what, (err or out).strip()))


def _absent(err):
    return "No such file or directory" in err or "does not exist" in err


def removal(table=DEFAULT_TABLE):
    return "table inet %s {}\ndelete table inet %s\n" % (table, table)
