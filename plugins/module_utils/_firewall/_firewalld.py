# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""firewalld backend (firewalld >= 0.9 policy objects, tested with 1.3 and its nftables backend).

What we own, all named from the table name (``mdmops_apple`` -> ``mdmops-apple``):

* one **policy** ``<name>``: ingress zone ``HOST`` (path ``output``) or ``ANY``
  / a given zone (path ``forward``), egress zone ``ANY``, priority -100 (before
  the zones and the usual policies), target ``REJECT`` for
  ``default_policy: drop`` (firewalld's own deny, an immediate
  ``admin-prohibited`` instead of a silent timeout) or ``CONTINUE`` for
  ``accept`` (what we do not allow falls through to the zones unchanged);
* **ipsets** ``<name>-allow-v4|v6`` (``hash:net,port``, one element per
  network, protocol and port, matched by one rich rule
  ``destination ipset=...``), ``<name>-keep-v4|v6`` (``hash:net``, management
  addresses) and ``<name>-dynN-v4|v6`` (``hash:ip`` with a timeout option, fed by
  dnsmasq for wildcard names).

How it is applied: our XML files under ``/etc/firewalld/policies`` and
``/etc/firewalld/ipsets`` are written from one rendering, firewalld checks them
(``firewall-offline-cmd --check-config`` on a copy in :meth:`validate`, then
``firewall-cmd --check-config``) and one ``firewall-cmd --reload`` makes them
live.  firewalld creates policies and ipsets only in its permanent
configuration, so a reload is unavoidable; like every reload it also drops
*runtime-only* changes that someone made with ``firewall-cmd`` without
``--permanent`` (interface-to-zone bindings too, unless NetworkManager or the
permanent zone files hold them).  A failed check puts our previous files back;
a failed reload (firewalld 1.3 accepts some policies in its checks that it
cannot load) puts them back and reloads again, so the old state stays.

What a drop policy keeps, and who keeps it: firewalld's own ``filter_OUTPUT``
and ``filter_FORWARD`` chains accept ``ct state established,related`` and
loopback before any policy is consulted.  Unlike zones, a policy with target
``REJECT`` rejects ICMP too, so our policy adds ICMP/ICMPv6 (when
``allow_icmp``; ICMPv6 also carries IPv6 neighbour discovery), DNS (service
``dns``: TCP and UDP 53, to any server or to ``dns_servers`` only) and the
management addresses (``keep_addresses``).

Coexistence: priority -100 runs our policy before the zones and before
policies of default priority (-1).  With target ``REJECT`` whatever we do not
allow is rejected even if a later policy or zone would accept it; with
``CONTINUE`` our accepts are final inside firewalld and everything else is
decided by the rest of the firewalld configuration (for forwarded traffic
that is often firewalld's own reject between zones).

Wildcard names (DNS-fed sets): with firewalld's nftables backend the ipsets are
nft sets inside firewalld's own ``inet firewalld`` table, so dnsmasq's
``ipset=`` (kernel ipsets) cannot reach them; dnsmasq's ``nftset=`` can, and
:meth:`FirewalldBackend.dnsmasq_lines` writes such lines.  Two limits of
firewalld 1.3 remain: its nftables backend ignores the ipset ``timeout`` option
(learnt addresses never expire until the next reload), and every reload empties
these sets until the names are resolved again.  With firewalld's iptables
backend the sets are kernel ipsets and ``ipset=`` lines are written instead.

``mark`` works on path ``forward`` only: firewalld applies rich-rule marks in
its mangle PREROUTING chains, which traffic of the host itself never passes
(firewalld 1.3 refuses to load such a policy).

The state model (see ``_plan.describe``) is read from the *runtime* through
``firewall-cmd`` (what is enforced), plus a fingerprint of our permanent files
(what the next reload would enforce), so both kinds of drift show as a change.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import shutil
import sys
import tempfile
from xml.etree import ElementTree
from xml.sax.saxutils import escape, quoteattr

from ansible_collections.mdmops.apple.plugins.module_utils._firewall._backend import Backend
from ansible_collections.mdmops.apple.plugins.module_utils._firewall._plan import (
    DEFAULT_TABLE, DYN_TIMEOUT, FirewallError, rule_id,
)

CONFIG_DIR = "/etc/firewalld"
PRIORITY = -100
MAX_POLICY_NAME = 17        # firewalld: the longest chain it derives must fit iptables' 28 characters
MAX_IPSET_NAME = 32
_FAMILY = {4: "ipv4", 6: "ipv6"}
_IPSET_FAMILY = {4: "inet", 6: "inet6"}
_RANK = {"icmp": 0, "dns": 1, "keep": 2, "allow": 3, "dyn": 4}
_NOT_RUNNING = ("not running", "Failed to connect", "org.freedesktop.DBus.Error")

# The one restore code (no Ansible, no collection on sys.path), run by the rollback watcher and by
# FirewalldBackend.restore(): put the snapshot's files back (each created O_EXCL|O_NOFOLLOW with
# mode 0644, then renamed) and reload.
_RESTORE_SCRIPT = r"""
import json, os, re, subprocess, sys
snap = json.load(sys.stdin if sys.argv[1] == "-" else open(sys.argv[1]))
pattern = re.compile(snap["pattern"])
for sub in ("policies", "ipsets"):
    folder = os.path.join(snap["config_dir"], sub)
    for name in (os.listdir(folder) if os.path.isdir(folder) else []):
        if pattern.match(sub + "/" + name):
            os.remove(os.path.join(folder, name))
for rel, text in sorted(snap["files"].items()):
    if not pattern.match(rel):
        sys.exit("refusing to restore %r: not one of our files" % rel)
    path = os.path.join(snap["config_dir"], rel)
    os.makedirs(os.path.dirname(path), 0o750, exist_ok=True)
    tmp = "%s.mdmops-%d.tmp" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.rename(tmp, path)
proc = subprocess.run(snap["reload"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
sys.stderr.write(proc.stderr)
sys.exit(proc.returncode)
"""


def base_name(table=DEFAULT_TABLE):
    """Our policy name (and ipset prefix) for ``table``, within firewalld's limits."""
    name = re.sub(r"[^A-Za-z0-9-]", "-", table).strip("-") or "mdmops"
    if len(name) > MAX_POLICY_NAME:
        name = "%s-%s" % (name[:MAX_POLICY_NAME - 5].rstrip("-"), hashlib.sha256(table.encode()).hexdigest()[:4])
    return name


def _rich(rule):
    """A rule tuple as firewalld prints it (``Rich_Rule.__str__``)."""
    _label, family, dest, element, action = rule
    out = "rule"
    if family:
        out += ' family="%s"' % _FAMILY[family]
    if dest:
        out += ' destination %s="%s"' % dest
    if element:
        if element[0] == "port":
            out += ' port port="%s" protocol="%s"' % (element[1], element[2])
        else:
            out += ' %s %s="%s"' % (element[0], "name" if element[0] == "service" else "value", element[1])
    return out + (" accept" if action == "accept" else " mark set=%s" % action[1])


def _rule_xml(rule):
    _label, family, dest, element, action = rule
    lines = ["  <rule%s>" % (' family="%s"' % _FAMILY[family] if family else "")]
    if dest:
        lines.append("    <destination %s=%s/>" % (dest[0], quoteattr(dest[1])))
    if element:
        if element[0] == "port":
            lines.append('    <port port="%s" protocol="%s"/>' % (element[1], element[2]))
        elif element[0] == "service":
            lines.append("    <service name=%s/>" % quoteattr(element[1]))
        else:
            lines.append("    <protocol value=%s/>" % quoteattr(element[1]))
    lines.append("    <accept/>" if action == "accept" else "    <mark set=%s/>" % quoteattr(action[1]))
    lines.append("  </rule>")
    return lines


def _rule_key(text):
    """Sort key and label of a rich rule, from its text (used for desired and read states alike)."""
    port_no = 0
    m = re.search(r'ipset="[^"]*-(allow|keep|dyn\d+)-v([46])"', text)
    if m:
        kind = "dyn" if m.group(1).startswith("dyn") else m.group(1)
        label = "%s-v%s" % (m.group(1), m.group(2))
        port = re.search(r'port port="(\d+)" protocol="([^"]*)"', text)
        if port:
            port_no = int(port.group(1))
            label += "-%s-%s" % (port.group(2), port.group(1))
    elif 'protocol value="' in text:
        kind, label = "icmp", re.search(r'protocol value="([^"]*)"', text).group(1)
    elif 'service name="dns"' in text:
        addr = re.search(r'destination address="([^"]*)"', text)
        kind, label = "dns", ("dns-%s" % addr.group(1)) if addr else "dns"
    else:
        kind, label = "other", "other"
    if " mark set=" in text:
        label += "-mark"
    return (_RANK.get(kind, 9), label.rsplit("-", 1)[0] if port_no else label, port_no, text), label


def _elem_sort_key(text):
    parts = text.split(" ")
    net = ipaddress.ip_network(parts[0])
    if len(parts) == 3:
        return (parts[1], int(parts[2]), net.version, net.network_address.packed, net.prefixlen)
    return ("", 0, net.version, net.network_address.packed, net.prefixlen)


def _entry_text(entry):
    """An ipset entry (``17.0.0.0/8,tcp:443`` or ``10.0.0.0/8``) as state text (``17.0.0.0/8 tcp 443``)."""
    parts = entry.split(",")
    try:
        net = ipaddress.ip_network(parts[0], strict=False)
    except ValueError:
        return "(entry %s)" % entry
    if len(parts) == 2 and ":" in parts[1]:
        proto, port = parts[1].split(":", 1)
        return "%s %s %s" % (net, proto, port)
    return str(net) if len(parts) == 1 else "(entry %s)" % entry


def _mark(plan):
    """``mark set=`` value that ORs the plan's mark into the packet mark: (mark & ~m) ^ m."""
    return "0x%x/0x%x" % (plan.mark, ~plan.mark & 0xFFFFFFFF)


class FirewalldBackend(Backend):
    """One firewalld policy and its ipsets, written as permanent XML and activated with one reload."""

    name = "firewalld"
    commands = ("firewall-cmd", "firewall-offline-cmd")

    def __init__(self, runner, table=DEFAULT_TABLE, which=None, config_dir=CONFIG_DIR, ingress_zone="ANY"):
        super(FirewalldBackend, self).__init__(runner, table, which)
        self.config_dir = config_dir
        self.ingress_zone = ingress_zone
        self.policy = base_name(table)
        self._file_re = re.compile(r"^(policies/%s|ipsets/%s-(allow|keep|dyn\d+)-v[46])\.xml(\.old)?$"
                                   % (re.escape(self.policy), re.escape(self.policy)))

    # -- names and rendering ----------------------------------------------
    def ipset(self, kind, fam):
        return "%s-%s-v%d" % (self.policy, kind, fam)

    def _check_plan(self, plan):
        if plan.mark and plan.hook == "output":
            raise FirewallError("mark is not supported by the firewalld backend on path output: firewalld sets marks "
                                "only in its mangle PREROUTING chains, which the host's own traffic never passes; "
                                "use backend nftables or iptables for marks on output, or drop mark")
        if len(self.ipset("dyn%d" % len(plan.dyn_groups), 6)) > MAX_IPSET_NAME:
            raise FirewallError("firewalld ipset names are limited to %d characters: too many wildcard names (%d)"
                                % (MAX_IPSET_NAME, len(plan.dyn_groups)))

    def _policy_head(self, plan):
        ingress = "HOST" if plan.hook == "output" else self.ingress_zone
        target = "REJECT" if plan.policy == "drop" else "CONTINUE"
        return ingress, "ANY", PRIORITY, target

    def rules(self, plan):
        """Our rules as tuples (label, family, destination, element, action), in state order."""
        out = []
        accept = ("mark", _mark(plan)) if plan.mark else None
        for intent in plan.kept():
            kind = intent["kind"]
            if kind == "icmp":
                out.append(("icmp", None, None, ("protocol", "icmp"), "accept"))
                out.append(("icmp", None, None, ("protocol", "ipv6-icmp"), "accept"))
            elif kind == "dns" and intent["family"] is None:
                out.append(("dns", None, None, ("service", "dns"), "accept"))
            elif kind == "dns":
                for server in intent["servers"]:
                    out.append(("dns", intent["family"], ("address", server), ("service", "dns"), "accept"))
            elif kind == "keep":
                fam = intent["family"]
                out.append(("keep", fam, ("ipset", self.ipset("keep", fam)), None, "accept"))
            # loopback, established and pickup: firewalld's own filter_OUTPUT/filter_FORWARD accept them first
        for fam in plan.families:
            out.append(("allow", fam, ("ipset", self.ipset("allow", fam)), None, "accept"))
            if accept:
                out.append(("allow", fam, ("ipset", self.ipset("allow", fam)), None, accept))
        for g in plan.dyn_groups:
            for fam in plan.families:
                for proto in ("tcp", "udp"):
                    for port in g[proto]:
                        out.append(("dyn", fam, ("ipset", self.ipset(g["name"], fam)), ("port", port, proto), "accept"))
                        if accept:
                            out.append(("dyn", fam, ("ipset", self.ipset(g["name"], fam)), ("port", port, proto), accept))
        return sorted(out, key=lambda r: _rule_key(_rich(r))[0])

    def sets(self, plan):
        """{ipset name: (type, {option: value}, [entries], description)} for ``plan``."""
        out = {}
        for fam in plan.families:
            entries = ["%s,%s:%d" % (net, proto, port) for net, proto, port in plan.sorted_elements(fam)]
            out[self.ipset("allow", fam)] = ("hash:net,port", {"family": _IPSET_FAMILY[fam]}, entries,
                                             "Allowed destinations (network, protocol, port)")
            if plan.policy == "drop" and plan.keep_networks[fam]:
                out[self.ipset("keep", fam)] = ("hash:net", {"family": _IPSET_FAMILY[fam]},
                                                [str(n) for n in sorted(plan.keep_networks[fam])], "Management addresses")
            for g in plan.dyn_groups:
                out[self.ipset(g["name"], fam)] = ("hash:ip", {"family": _IPSET_FAMILY[fam], "timeout": str(DYN_TIMEOUT)},
                                                   [], "DNS-fed: %s" % g["host"])
        return out

    def render(self, plan):
        """{relative path: XML text} of every file we own for ``plan``."""
        self._check_plan(plan)
        ingress, egress, priority, target = self._policy_head(plan)
        note = "Managed by mdmops.apple egress_firewall (table %s): edit the playbook, not this file." % self.table
        lines = ['<?xml version="1.0" encoding="utf-8"?>',
                 '<policy priority="%d" target="%s">' % (priority, target),
                 "  <short>%s</short>" % escape(self.policy),
                 "  <description>%s</description>" % escape(note),
                 "  <ingress-zone name=%s/>" % quoteattr(ingress),
                 "  <egress-zone name=%s/>" % quoteattr(egress)]
        for rule in self.rules(plan):
            lines.extend(_rule_xml(rule))
        lines.append("</policy>")
        files = {"policies/%s.xml" % self.policy: "\n".join(lines) + "\n"}
        for name, (kind, options, entries, desc) in sorted(self.sets(plan).items()):
            lines = ['<?xml version="1.0" encoding="utf-8"?>', "<ipset type=%s>" % quoteattr(kind),
                     "  <short>%s</short>" % escape(name), "  <description>%s</description>" % escape(desc)]
            for key in sorted(options):
                lines.append("  <option name=%s value=%s/>" % (quoteattr(key), quoteattr(options[key])))
            lines.extend("  <entry>%s</entry>" % escape(e) for e in entries)
            lines.append("</ipset>")
            files["ipsets/%s.xml" % name] = "\n".join(lines) + "\n"
        return files

    # -- state model --------------------------------------------------------
    def desired(self, plan):
        files = self.render(plan)
        ingress, egress, priority, target = self._policy_head(plan)
        rules = [_rich(r) for r in self.rules(plan)]
        state = {"chains": {self.policy: self._chain_text(ingress, egress, priority, target),
                            self.policy + " (permanent files)": _fingerprint(files)},
                 "rules": [], "rule_text": {}, "sets": {}}
        self._add_rules(state, rules)
        for name, (kind, _options, entries, desc) in self.sets(plan).items():
            if kind == "hash:ip":
                state["sets"][name] = ["(filled by DNS: %s)" % desc.replace("DNS-fed: ", "")]
            else:
                state["sets"][name] = sorted((_entry_text(e) for e in entries), key=_elem_sort_key)
        return state

    @staticmethod
    def _chain_text(ingress, egress, priority, target):
        return "policy ingress %s egress %s priority %s target %s" % (ingress, egress, priority, target)

    def _add_rules(self, state, texts):
        keyed = sorted(_rule_key(t) for t in texts)
        for key, label in keyed:
            text = key[-1]
            rid = rule_id(label, text)
            state["rules"].append("%s: %s" % (self.policy, rid))
            state["rule_text"][rid] = text

    def read(self):
        files = self._files()
        state = {"chains": {}, "rules": [], "rule_text": {}, "sets": {}}
        if files:
            state["chains"][self.policy + " (permanent files)"] = _fingerprint(files)
        info = self._info("--info-policy=%s" % self.policy, "INVALID_POLICY")
        if info is not None:
            fields, rich = info
            state["chains"][self.policy] = self._chain_text(fields.get("ingress-zones") or "-", fields.get("egress-zones") or "-",
                                                            fields.get("priority"), fields.get("target"))
            extra = ["(%s: %s, not set by us)" % (k, v) for k, v in sorted(fields.items())
                     if k in ("services", "ports", "protocols", "forward-ports", "source-ports", "icmp-blocks") and v
                     or k == "masquerade" and v != "no"]
            self._add_rules(state, rich + extra)
        rc, out, err = self._cmd(["--get-ipsets"], "listing firewalld's ipsets")
        descriptions = self._descriptions(files)
        for name in sorted(out.split()):
            if not self._file_re.match("ipsets/%s.xml" % name):
                continue
            set_info = self._info("--info-ipset=%s" % name, "INVALID_IPSET")
            if set_info is None:
                continue
            fields = set_info[0]
            options = dict(o.partition("=")[::2] for o in (fields.get("options") or "").split())
            if "timeout" in options:
                state["sets"][name] = ["(filled by DNS: %s)" % descriptions.get(name, "?")]
            else:
                state["sets"][name] = sorted((_entry_text(e) for e in (fields.get("entries") or "").split()),
                                             key=lambda t: _elem_sort_key(t) if not t.startswith("(") else ("(",))
            want = "hash:net,port" if "-allow-" in name else "hash:net" if "-keep-" in name else "hash:ip"
            if fields.get("type") != want:
                state["sets"][name].append("(type %s, expected %s)" % (fields.get("type"), want))
        if not state["chains"] and not state["sets"]:
            return None
        return state

    def _info(self, option, absent_code):
        """(fields, rich rules) of ``firewall-cmd <option>``, or None when the object does not exist."""
        rc, out, err = self.runner(["firewall-cmd", option])
        if rc != 0:
            if absent_code in err or absent_code in out:
                return None
            self._fail("firewall-cmd %s" % option, rc, out, err)
        fields, rich, in_rich = {}, [], False
        for line in out.splitlines()[1:]:
            if in_rich and line.startswith("\t"):
                rich.append(line.strip())
                continue
            key, _sep, value = line.strip().partition(":")
            in_rich = key == "rich rules"
            fields[key] = value.strip()
        return fields, rich

    def _descriptions(self, files):
        out = {}
        for rel, text in files.items():
            if rel.startswith("ipsets/"):
                try:
                    desc = ElementTree.fromstring(text.encode()).findtext("description") or ""
                except ElementTree.ParseError:
                    continue
                out[rel[len("ipsets/"):-len(".xml")]] = desc.replace("DNS-fed: ", "")
        return out

    # -- files ----------------------------------------------------------------
    def _files(self, with_backups=False, config_dir=None):
        """{relative path: text} of our permanent files as they are on disk."""
        out = {}
        for sub in ("policies", "ipsets"):
            folder = os.path.join(config_dir or self.config_dir, sub)
            if not os.path.isdir(folder):
                continue
            for name in sorted(os.listdir(folder)):
                rel = "%s/%s" % (sub, name)
                if self._file_re.match(rel) and (with_backups or not name.endswith(".old")):
                    with open(os.path.join(folder, name)) as f:
                        out[rel] = f.read()
        return out

    def _install(self, files, remove_backups=False, config_dir=None):
        """Replace our files on disk with ``files`` (each written atomically)."""
        config_dir = config_dir or self.config_dir
        for rel in self._files(with_backups=remove_backups, config_dir=config_dir):
            if rel not in files:
                os.remove(os.path.join(config_dir, rel))
        for rel, text in sorted(files.items()):
            path = os.path.join(config_dir, rel)
            folder = os.path.dirname(path)
            if not os.path.isdir(folder):
                os.makedirs(folder, 0o750)
            fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path), dir=folder)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.chmod(tmp, 0o644)
            os.rename(tmp, path)

    # -- changes ----------------------------------------------------------------
    def validate(self, plan):
        """``firewall-offline-cmd --check-config`` on a copy of the configuration with our new files in it."""
        files = self.render(plan)
        tmp = tempfile.mkdtemp(prefix="mdmops-firewalld-")
        try:
            copy = os.path.join(tmp, "firewalld")
            if os.path.isdir(self.config_dir):
                shutil.copytree(self.config_dir, copy, symlinks=True)
            else:
                os.makedirs(copy)
            self._install(files, config_dir=copy)
            problems = self._offline_check(copy)
            if problems:
                before = set(self._offline_check(self.config_dir))
                problems = [p for p in problems if p not in before]
            if problems:
                raise FirewallError("firewalld rejected the generated configuration (nothing was changed):\n%s"
                                    % "\n".join(problems))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _offline_check(self, config_dir):
        rc, out, err = self.runner(["firewall-offline-cmd", "--system-config", config_dir, "--check-config"])
        lines = sorted(set(line.strip() for line in (out + "\n" + err).splitlines()
                           if "ERROR" in line or "WARNING" in line or "Error" in line))
        if rc != 0 and not lines:
            lines = ["firewall-offline-cmd --check-config failed (rc %s): %s" % (rc, (err or out).strip())]
        return lines

    def apply(self, plan):
        files = self.render(plan)
        previous = self._files()
        self._activate(files, "applying the new firewalld configuration", previous)

    def _activate(self, files, what, previous):
        """Install ``files``, check and reload; on failure put ``previous`` back (and reload if we had), and raise."""
        self._install(files)
        rc, out, err = self.runner(["firewall-cmd", "--check-config"])
        if rc != 0:
            self._install(previous)
            raise FirewallError("%s failed: firewall-cmd --check-config rejected it (rc %s): %s; our previous files were "
                                "put back and nothing was reloaded" % (what, rc, (err or out).strip()))
        problem = self._reload()
        if problem is None:
            return
        self._install(previous)
        again = self._reload()
        if again:
            raise FirewallError("%s failed: %s; our previous files were put back, but reloading them failed too: %s; "
                                "fix the configuration under %s and run firewall-cmd --reload"
                                % (what, problem, again, self.config_dir))
        raise FirewallError("%s failed: %s; our previous files were put back and firewalld was reloaded, so the "
                            "previous state stays" % (what, problem))

    def _reload(self):
        """Reload firewalld; None when it is running afterwards, else what went wrong."""
        rc, out, err = self.runner(["firewall-cmd", "--reload"])
        if rc != 0:
            return "firewall-cmd --reload failed (rc %s): %s" % (rc, (err or out).strip())
        rc, out, err = self.runner(["firewall-cmd", "--state"])
        if rc != 0 or out.strip() != "running":
            return "firewalld is %s after the reload: %s" % (out.strip() or "not running", err.strip())
        return None

    def snapshot(self):
        return json.dumps({"backend": self.name, "config_dir": self.config_dir, "pattern": self._file_re.pattern,
                           "files": self._files(), "reload": ["firewall-cmd", "--reload"]}, indent=1, sort_keys=True)

    def restore(self, snapshot):
        try:
            snap = json.loads(snapshot)
            snap["files"].items()
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise FirewallError("not a firewalld snapshot of this module (%s)" % exc)
        rc, out, err = self.runner([sys.executable, "-c", _RESTORE_SCRIPT, "-"], data=snapshot)
        problem = None
        if rc != 0:
            problem = "the restore script failed (rc %s): %s" % (rc, (err or out).strip())
        else:
            rc, out, err = self.runner(["firewall-cmd", "--state"])
            if rc != 0 or out.strip() != "running":
                problem = "firewalld is %s after the reload: %s" % (out.strip() or "not running", err.strip())
        if problem:
            raise FirewallError("restoring the previous firewalld configuration failed: %s; check %s and run "
                                "firewall-cmd --reload" % (problem, self.config_dir))

    def restore_commands(self):
        return [[sys.executable, "-c", _RESTORE_SCRIPT, "-"]]

    def remove(self):
        if not self._files(with_backups=True):
            if self.read() is None:
                return
        previous = self._files()
        self._install({}, remove_backups=True)
        problem = self._reload()
        if problem:
            self._install(previous)
            again = self._reload()
            raise FirewallError("removing policy %s failed: %s; our files were put back%s"
                                % (self.policy, problem, " but that reload failed too: %s" % again if again else ""))

    def dnsmasq_lines(self, plan):
        """dnsmasq lines that feed the DNS-fed ipsets: ``nftset=`` into table ``inet firewalld`` (nftables backend),
        ``ipset=`` for firewalld's iptables backend."""
        backend = self._firewalld_backend()
        lines = []
        for g in plan.dyn_groups:
            names = [(fam, self.ipset(g["name"], fam)) for fam in plan.families]
            if backend == "nftables":
                lines.append("nftset=/%s/%s" % (g["domain"], ",".join("%d#inet#firewalld#%s" % n for n in names)))
            else:
                lines.append("ipset=/%s/%s" % (g["domain"], ",".join(n for _fam, n in names)))
        return lines

    def _firewalld_backend(self):
        try:
            with open(os.path.join(self.config_dir, "firewalld.conf")) as f:
                for line in f:
                    key, _sep, value = line.strip().partition("=")
                    if key == "FirewallBackend":
                        return value.strip().lower()
        except (IOError, OSError):
            pass
        return "nftables"

    def _cmd(self, args, what):
        rc, out, err = self.runner(["firewall-cmd"] + args)
        if rc != 0:
            self._fail(what, rc, out, err)
        return rc, out, err

    @staticmethod
    def _fail(what, rc, out, err):
        text = (err or out).strip()
        if any(s in text for s in _NOT_RUNNING):
            raise FirewallError("%s: firewalld is not running or not reachable on the system D-Bus (%s); start it "
                                "(systemctl start firewalld) or choose another backend" % (what, text))
        raise FirewallError("%s failed (rc %s): %s" % (what, rc, text))


def _fingerprint(files):
    digest = hashlib.sha256()
    for rel in sorted(files):
        digest.update(("%s\0%s\0" % (rel, files[rel])).encode())
    return "%d files, sha256 %s" % (len(files), digest.hexdigest()[:12])
