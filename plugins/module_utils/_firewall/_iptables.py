# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""iptables/ipset backend: ipsets and one ``filter`` chain per family, all our own.

Objects (table ``mdmops_apple``): ipsets ``mdmops-apple-allow-v4/6``
(hash:net,port), ``-keep-v4/6`` (hash:net) and the DNS-fed
``-dynN-v4/6`` (hash:ip, timeout); chain ``MDMOPS-APPLE`` in iptables and
ip6tables, reached by one ``-j MDMOPS-APPLE`` rule at position 1 of OUTPUT
(or FORWARD).  Default-drop is the last rule of our chain (``-j DROP``);
built-in chain policies are never changed.  Being first in OUTPUT, our ACCEPT
ends the ``filter`` table's verdict, but other tables and nftables base
chains on the same hook still apply (a drop there wins).  With ``mark``, each
accept is a ``-j MARK --set-xmark M/M`` rule (the nft ``mark | M``) followed
by the same match with ``-j ACCEPT``.

Writes go through one small engine (``_ENGINE``, stdlib Python run with
``sys.executable``) that makes our objects match a JSON *document*: apply,
restore of a snapshot, removal and the rollback watcher all use it, so a
snapshot file is restored the same way with or without Ansible.  Static sets
are filled in a temporary set and swapped in (``ipset -exist restore``); each
family's chain and jump change in one ``iptables-restore --noflush``
transaction.  DNS-fed sets are created once and keep what dnsmasq put in them.
"""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
import sys

from ansible_collections.mdmops.apple.plugins.module_utils._firewall._backend import Backend
from ansible_collections.mdmops.apple.plugins.module_utils._firewall._plan import (
    DEFAULT_TABLE, DYN_TIMEOUT, FirewallError, dnsmasq_lines, rule_id,
)

CMD = {4: "iptables", 6: "ip6tables"}
HOOK = {"output": "OUTPUT", "forward": "FORWARD"}
INET = {4: "inet", 6: "inet6"}
OUR_CHAIN = "user chain in table filter"
TMP_RE = r"-(tmp|t[0-9a-f]{4})"   # temporary sets: a fresh suffix per run, so runs never share one
MULTIPORT_MAX = 15
FORMAT = "mdmops-iptables/1"

# Makes our objects match a document (argv[1]: a file, or "-" for stdin):
#   ours      regex of our set names; keep: the set names that stay (others of ours are destroyed)
#   ipset     text for "ipset -exist restore" (state-independent)
#   chain     our chain; tables: {"iptables"|"ip6tables": {"rules": [-A lines] or null (no chain), "jumps": [[chain, pos, spec]]}}
_ENGINE = r'''
import json, os, re, subprocess, sys, time
os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
doc = json.load(sys.stdin if sys.argv[1] == "-" else open(sys.argv[1]))
chain = doc["chain"]
jump_re = re.compile(r"(^| )-[jg] %s( |$)" % re.escape(chain))


def run(argv, data=None, tries=1):
    for _attempt in range(tries):
        proc = subprocess.run(argv, input=data, capture_output=True, text=True, check=False)
        if proc.returncode == 0:
            return proc.stdout
        time.sleep(0.1)
    sys.exit("%s failed: %s" % (" ".join(argv[:3]), (proc.stderr or proc.stdout).strip()))


if doc["ipset"]:
    run(["ipset", "-exist", "restore"], doc["ipset"])
for cmd in ("iptables", "ip6tables"):
    want = doc["tables"][cmd]
    save = run([cmd + "-save", "-t", "filter"]).splitlines()
    exists, have, jumps, count = False, [], [], {}     # as _parse_save() in _iptables.py
    for line in save:
        parts = line.split(" ", 2)
        if parts[0] == ":" + chain:
            exists = True
        elif len(parts) == 3 and parts[0] == "-A" and parts[1] == chain:
            have.append(line)
        elif len(parts) == 3 and parts[0] == "-A" and parts[1] in ("OUTPUT", "FORWARD"):
            count[parts[1]] = count.get(parts[1], 0) + 1
            if jump_re.search(parts[2]):
                jumps.append([parts[1], count[parts[1]], parts[2]])
    lines = []
    if want["rules"] is not None and (not exists or have != want["rules"]):
        lines += [":%s - [0:0]" % chain, "-F " + chain] + want["rules"]
    if jumps != want["jumps"]:
        lines += ["-D %s %s" % (j[0], j[2]) for j in jumps] + ["-I %s %d %s" % tuple(j) for j in want["jumps"]]
    if want["rules"] is None and exists:
        lines += ["-F " + chain, "-X " + chain]
    if lines:
        run([cmd + "-restore", "--noflush"], "\n".join(["*filter"] + lines + ["COMMIT", ""]))
    # iptables-nft creates a built-in chain (and its table) the first time a rule goes in; once our jump is
    # gone, an empty one with policy ACCEPT filters nothing: remove it, so the ruleset reads as before
    left = set(j[0] for j in jumps) - set(j[0] for j in want["jumps"])
    if left and "nf_tables" in run([cmd, "-V"]):
        family = "ip" if cmd == "iptables" else "ip6"
        save = run([cmd + "-save", "-t", "filter"]).splitlines()
        for hook in sorted(left):
            if ":%s ACCEPT" % hook in [line.split(" [")[0] for line in save] \
                    and not [line for line in save if line.startswith("-A %s " % hook)]:
                subprocess.run(["nft", "delete", "chain", family, "filter", hook], capture_output=True, check=False)
        listing = subprocess.run(["nft", "list", "table", family, "filter"], capture_output=True, text=True,
                                 check=False)
        if listing.returncode == 0 and "chain " not in listing.stdout and "set " not in listing.stdout:
            subprocess.run(["nft", "delete", "table", family, "filter"], capture_output=True, check=False)
for name in run(["ipset", "list", "-n"]).split():
    if re.match(doc["ours"], name) and name not in doc["keep"]:
        run(["ipset", "destroy", name], tries=30)   # nf_tables may release a set reference a moment late
'''


def _accept_rules(name, match, mark):
    """The rule(s) accepting ``match``: ``-j MARK`` cannot accept, so a marked accept is MARK then ACCEPT."""
    out = []
    if mark:
        out.append((name + "-mark", "%s -j MARK --set-xmark 0x%x/0x%x" % (match, mark, mark)))
    out.append((name, "%s -j ACCEPT" % match))
    return out


def _kept(intent, fam, prefix):
    """One intent of Plan.kept() as [(name, iptables rule body)] for family ``fam``."""
    kind = intent["kind"]
    if kind == "loopback":
        return [("loopback", "-o lo -j ACCEPT")]
    if kind == "established":
        return [("established", "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")]
    if kind == "pickup":
        return [("pickup", "-p tcp -m conntrack --ctstate NEW -m tcp --tcp-flags SYN,ACK ACK -j ACCEPT")]
    if kind == "icmp":
        return [("icmp", "-p %s -j ACCEPT" % ("icmp" if fam == 4 else "ipv6-icmp"))]
    if kind == "dns":
        if intent["family"] is None:
            return [("dns", "-p %s -m %s --dport 53 -j ACCEPT" % (proto, proto)) for proto in ("udp", "tcp")]
        if intent["family"] != fam:
            return []
        return [("dns-v%d" % fam, "-d %s -p %s -m %s --dport 53 -j ACCEPT" % (ipaddress.ip_network(server), proto, proto))
                for proto in ("udp", "tcp") for server in intent["servers"]]
    if kind == "keep":
        if intent["family"] != fam:
            return []
        return [("keep-v%d" % fam, "-m set --match-set %s-keep-v%d dst -j ACCEPT" % (prefix, fam))]
    raise FirewallError("internal error: unknown kept traffic %r" % (kind,))


def rules(plan, fam, prefix):
    """Our chain's rules for IP family ``fam`` as (id, body), in order."""
    out = []
    for intent in plan.kept():
        out.extend(_kept(intent, fam, prefix))
    out.extend(_accept_rules("allow-v%d" % fam, "-m set --match-set %s-allow-v%d dst,dst" % (prefix, fam), plan.mark))
    for g in plan.dyn_groups:
        for proto in ("tcp", "udp"):
            for start in range(0, len(g[proto]), MULTIPORT_MAX):
                ports = ",".join(str(p) for p in g[proto][start:start + MULTIPORT_MAX])
                match = '-p %s -m set --match-set %s-%s-v%d dst -m multiport --dports %s -m comment --comment "DNS-fed: %s"' % (
                    proto, prefix, g["name"], fam, ports, g["host"])
                out.extend(_accept_rules("%s-v%d-%s" % (g["name"], fam, proto), match, plan.mark))
    if plan.policy == "drop":
        out.append(("drop", "-j DROP"))
    return [(rule_id(name, body), body) for name, body in out]


def _line(chain, rid, body):
    """``-A`` line as iptables-save prints it: our id is the last match before ``-j``."""
    head, _sep, target = (" " + body).rpartition(" -j ")
    return '-A %s%s -m comment --comment "%s" -j %s' % (chain, head, rid, target)


def _net_sort_key(net):
    return (net.version, net.network_address.packed, net.prefixlen)


def _nets(nets):
    """Networks as ipset takes them: hash:net has no /0, so /0 becomes its two halves."""
    out = []
    for net in nets:
        out.extend(net.subnets(1) if net.prefixlen == 0 else [net])
    return sorted(out, key=_net_sort_key)


def _elem_key(text):
    parts = text.split(" ")
    return (parts[1:2], [int(p) for p in parts[2:3]], _net_sort_key(ipaddress.ip_network(parts[0])))


def _ipset_elem(net):
    return str(net.network_address if net.prefixlen == net.max_prefixlen else net)


def _parse_save(text, chain):
    """From ``iptables-save -t filter``: (our chain exists, its -A lines, [[builtin, position, spec]] of jumps to it)."""
    jump_re = re.compile(r"(^| )-[jg] %s( |$)" % re.escape(chain))
    exists = False
    lines, jumps, count = [], [], {}
    for line in text.splitlines():
        parts = line.split(" ", 2)
        if parts[0] == ":" + chain:
            exists = True
        elif len(parts) == 3 and parts[0] == "-A" and parts[1] == chain:
            lines.append(line)
        elif len(parts) == 3 and parts[0] == "-A" and parts[1] in ("OUTPUT", "FORWARD"):
            count[parts[1]] = count.get(parts[1], 0) + 1
            if jump_re.search(parts[2]):
                jumps.append([parts[1], count[parts[1]], parts[2]])
    return exists, lines, jumps


_ID_RE = re.compile(r' -m comment --comment "?(mdmops:[^" ]+)"?')
_DNS_RE = re.compile(r'--match-set (\S+) dst .*--comment "DNS-fed: ([^"]+)"')


class IptablesBackend(Backend):
    """ipsets plus one chain per family in the ``filter`` table, changed in one transaction per family."""

    name = "iptables"
    commands = ("iptables-save", "iptables-restore", "ip6tables-save", "ip6tables-restore", "ipset")

    def __init__(self, runner, table=DEFAULT_TABLE, which=None):
        super(IptablesBackend, self).__init__(runner, table, which)
        self.prefix = table.replace("_", "-")
        self.chain = table.upper().replace("_", "-")
        self.tmp = "-t" + secrets.token_hex(2)
        self.ours = r"^%s-(allow|keep|dyn[0-9]+)-v[46](%s)?$" % (re.escape(self.prefix), TMP_RE)

    # -- the state model ---------------------------------------------------
    def _sets(self, plan):
        """{set name: (ipset type, [element text as in the state model], [ipset element], DNS host or None)}."""
        out = {}
        for fam in plan.families:
            elems = []
            for net, proto, port in plan.elements[fam]:
                elems.extend((n, proto, port) for n in _nets([net]))
            elems.sort(key=lambda e: (e[1], e[2], _net_sort_key(e[0])))
            out["%s-allow-v%d" % (self.prefix, fam)] = (
                "hash:net,port family %s" % INET[fam], ["%s %s %d" % e for e in elems],
                ["%s,%s:%d" % (_ipset_elem(n), proto, port) for n, proto, port in elems], None)
            if plan.keep_networks[fam]:
                nets = _nets(plan.keep_networks[fam])
                out["%s-keep-v%d" % (self.prefix, fam)] = (
                    "hash:net family %s" % INET[fam], [str(n) for n in nets], [_ipset_elem(n) for n in nets], None)
            for g in plan.dyn_groups:
                out["%s-%s-v%d" % (self.prefix, g["name"], fam)] = (
                    "hash:ip family %s timeout %d" % (INET[fam], DYN_TIMEOUT), ["(filled by DNS: %s)" % g["host"]], [], g["host"])
        for name in out:
            if len(name + self.tmp) > 31:
                raise FirewallError("ipset name %s%s is longer than 31 characters: use a shorter table name" % (name, self.tmp))
        return out

    def desired(self, plan):
        state = {"chains": {}, "rules": [], "rule_text": {}, "sets": {}}
        for fam in plan.families:
            state["chains"]["%s %s" % (CMD[fam], self.chain)] = OUR_CHAIN
            state["chains"]["%s %s" % (CMD[fam], HOOK[plan.hook])] = self._jump_text([1, "-j " + self.chain])
            for rid, body in rules(plan, fam, self.prefix):
                state["rules"].append("%s %s: %s" % (CMD[fam], self.chain, rid))
                state["rule_text"][rid] = body
        state["sets"] = dict((name, s[1]) for name, s in self._sets(plan).items())
        return state

    def _jump_text(self, *jumps):
        plain = "-j " + self.chain
        return ", ".join("jump %s at %d" % (self.chain, pos) if spec == plain else "%s at %d" % (spec, pos)
                         for pos, spec in jumps)

    def _raw(self):
        """{"tables": {cmd: (exists, lines, jumps)}, "save": {set: [ipset save lines]}} of our objects."""
        tables = {}
        for cmd in (CMD[4], CMD[6]):
            tables[cmd] = _parse_save(self._run([cmd + "-save", "-t", "filter"], None, "reading the %s rules" % cmd),
                                      self.chain)
        saved = {}
        for line in self._run(["ipset", "save"], None, "reading the ipsets").splitlines():
            parts = line.split(" ")
            if len(parts) > 2 and parts[0] in ("create", "add") and re.match(self.ours, parts[1]) \
                    and not re.search(TMP_RE + "$", parts[1]):
                saved.setdefault(parts[1], []).append(line)
        return {"tables": tables, "save": saved}

    def read(self):
        state = self._read()[0]
        return state if state["chains"] or state["sets"] or state["rules"] else None

    def _read(self):
        """(state model, {DNS-fed set: host}); the state may be empty."""
        raw = self._raw()
        state = {"chains": {}, "rules": [], "rule_text": {}, "sets": {}}
        hosts = {}
        for cmd in (CMD[4], CMD[6]):
            exists, lines, jumps = raw["tables"][cmd]
            if exists:
                state["chains"]["%s %s" % (cmd, self.chain)] = OUR_CHAIN
            for hook in sorted(set(j[0] for j in jumps)):
                state["chains"]["%s %s" % (cmd, hook)] = self._jump_text(*[j[1:] for j in jumps if j[0] == hook])
            for line in lines:
                body = " " + line.split(" ", 2)[2]
                found = _ID_RE.search(body)
                if not found:
                    state["rules"].append("%s %s: (rule without our comment:%s)" % (cmd, self.chain, body))
                    continue
                rule = "%s %s: %s" % (cmd, self.chain, found.group(1))
                state["rules"].append(rule)
                text = _ID_RE.sub("", body, count=1).strip()
                if state["rule_text"].setdefault(found.group(1), text) != text:
                    state["rule_text"][rule] = text     # differs between families: an edit in one family still shows
                dns = _DNS_RE.search(body)
                if dns:
                    hosts[dns.group(1)] = dns.group(2)
        for name, lines in raw["save"].items():
            if " timeout " in lines[0]:
                state["sets"][name] = ["(filled by DNS: %s)" % hosts[name] if name in hosts else "(filled by DNS)"]
                continue
            elems = []
            for line in lines[1:]:
                elem = line.split(" ")[2].split(",")
                net = str(ipaddress.ip_network(elem[0]))
                elems.append(net if len(elem) == 1 else "%s %s" % (net, elem[1].replace(":", " ")))
            state["sets"][name] = sorted(elems, key=_elem_key)
        return state, hosts

    # -- writing -------------------------------------------------------------
    def _tables(self, plan):
        """{command: {"rules": our -A lines or None, "jumps": [[hook, 1, spec]]}} for the engine."""
        tables = {}
        for fam in (4, 6):
            if fam in plan.families:
                tables[CMD[fam]] = {"rules": [_line(self.chain, rid, body) for rid, body in rules(plan, fam, self.prefix)],
                                    "jumps": [[HOOK[plan.hook], 1, "-j " + self.chain]]}
            else:
                tables[CMD[fam]] = {"rules": None, "jumps": []}
        return tables

    def _document(self, plan):
        """The engine document that makes our objects hold ``plan`` (unchanged static sets are left alone)."""
        state, hosts = self._read()
        text = []
        sets = self._sets(plan)
        for name, (kind, elems, ipset_elems, host) in sorted(sets.items()):
            if host is not None:
                text.append("create %s %s" % (name, kind))
                if hosts.get(name) != host:
                    text.append("flush %s" % name)   # new, or the name now means another wildcard
            elif state["sets"].get(name) != elems:
                tmp = name + self.tmp
                text += ["create %s %s" % (tmp, kind), "flush %s" % tmp] + ["add %s %s" % (tmp, e) for e in ipset_elems]
                text += ["create %s %s" % (name, kind), "swap %s %s" % (tmp, name), "destroy %s" % tmp]
        return self._doc(sorted(sets), text, self._tables(plan))

    def _doc(self, keep, ipset_lines, tables):
        return {"format": FORMAT, "chain": self.chain, "ours": self.ours, "keep": keep,
                "ipset": "\n".join(ipset_lines) + "\n" if ipset_lines else "", "tables": tables}

    def validate(self, plan):
        """ipset checks the elements in temporary sets, ``iptables-restore --test`` the rules against them."""
        sets = self._sets(plan)
        text = []
        for name, (kind, _elems, ipset_elems, _host) in sorted(sets.items()):
            text += ["create %s%s %s" % (name, self.tmp, kind), "flush %s%s" % (name, self.tmp)]
            text += ["add %s%s %s" % (name, self.tmp, e) for e in ipset_elems]
        try:
            self._run(["ipset", "-exist", "restore"], "\n".join(text) + "\n",
                      "ipset rejected the generated sets (nothing was changed)")
            tables = self._tables(plan)
            for cmd in (CMD[4], CMD[6]):
                want = tables[cmd]
                if want["rules"] is not None:
                    lines = [":%s - [0:0]" % self.chain] + [re.sub(r"--match-set (\S+) ", r"--match-set \g<1>%s " % self.tmp, line)
                                                            for line in want["rules"]]
                    self._run([cmd + "-restore", "--test", "--noflush"], "\n".join(["*filter"] + lines + ["COMMIT", ""]),
                              "%s-restore --test rejected the generated rules (nothing was changed)" % cmd)
        finally:
            for name in sets:
                self.runner(["ipset", "destroy", name + self.tmp])

    def _sync(self, doc, what):
        self._run([sys.executable, "-c", _ENGINE, "-"], json.dumps(doc), what)

    def apply(self, plan):
        snap = self.snapshot()
        try:
            self._sync(self._document(plan), "applying the iptables/ipset changes failed")
        except FirewallError as exc:
            try:
                self.restore(snap)
            except FirewallError as again:
                raise FirewallError("%s; restoring the previous state also failed (%s): check `iptables-save`, "
                                    "`ip6tables-save` and `ipset list -n`, or remove our objects with state: absent"
                                    % (exc, again))
            raise FirewallError("%s; the previous state was restored" % exc)

    def snapshot(self):
        """A JSON engine document that rebuilds our objects as they are now (nothing of ours: removes all)."""
        raw = self._raw()
        text = []
        for name, lines in sorted(raw["save"].items()):
            create = lines[0].split(" ", 2)[2]
            tmp = name + self.tmp
            text += ["create %s %s" % (tmp, create), "flush %s" % tmp]
            text += ["add %s %s" % (tmp, line.split(" ", 2)[2]) for line in lines[1:]]
            text += ["create %s %s" % (name, create), "swap %s %s" % (tmp, name), "destroy %s" % tmp]
        tables = dict((cmd, {"rules": lines if exists else None, "jumps": jumps})
                      for cmd, (exists, lines, jumps) in raw["tables"].items())
        return json.dumps(self._doc(sorted(raw["save"]), text, tables), indent=1, sort_keys=True) + "\n"

    def restore(self, snapshot):
        try:
            doc = json.loads(snapshot)
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise FirewallError("this is not a snapshot of the iptables backend, so nothing was restored")
        self._sync(doc, "restoring the previous iptables/ipset state failed")

    def restore_commands(self):
        return [[sys.executable, "-c", _ENGINE, "-"]]

    def remove(self):
        tables = dict((cmd, {"rules": None, "jumps": []}) for cmd in CMD.values())
        self._sync(self._doc([], [], tables), "removing our iptables chains and ipsets failed")

    def dnsmasq_lines(self, plan):
        return dnsmasq_lines(plan, "iptables", self.table)

    def _run(self, argv, data, what):
        rc, out, err = self.runner(argv, data=data)
        if rc != 0:
            raise FirewallError("%s: %s" % (what, (err or out).strip()))
        return out
