# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""From a catalog selection to an egress firewall plan, the same for every backend.

Pure Python, no Ansible imports.  A :class:`Plan` says *what* to allow:
``(network, protocol, port)`` triples per IP family (the catalog rows, as
Apple's ranges and/or resolved addresses), DNS-fed sets for wildcard names,
and what a default-drop policy must always keep (loopback, established
connections, DNS, ICMP, management addresses).  Backends turn it into
nftables, iptables/ipset or firewalld state and describe what they hold in
one common :func:`describe` format, so check mode, diff and idempotence work
the same everywhere.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import socket

from ansible_collections.mdmops.apple.plugins.module_utils._catalog import (
    CatalogError, host_matches, load_bundled, select_from_params,
)

STRATEGIES = ("cidr", "resolve", "both")
HOOKS = ("output", "forward")
POLICIES = ("accept", "drop")
DEFAULT_TABLE = "mdmops_apple"
DYN_TIMEOUT = 3600          # seconds an address learnt by the DNS-fed sets stays
LIMITS = {"extra": 10000, "exclude": 10000, "keep_addresses": 10000, "dns_servers": 64}
MAX_PORTS = 1024
_HOSTNAME = re.compile(r"^(?=.{1,253}$)(?!-)[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})*\.?$")


class FirewallError(ValueError):
    """Bad input or a backend failure; the message says what to do."""


def _port(value, where):
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise FirewallError("%s: port %r is not a number (1-65535)" % (where, value))
    if isinstance(value, bool) or not 0 < port < 65536 or str(value).strip() not in (str(port), "%d" % port):
        raise FirewallError("%s: port %r is not a port number (1-65535)" % (where, value))
    return port


def _protocols(value, where):
    value = value or "tcp"
    protos = ["tcp", "udp"] if value == "both" else [value]
    for p in protos:
        if p not in ("tcp", "udp"):
            raise FirewallError("%s: protocol %r must be tcp, udp or both" % (where, value))
    return protos


def _network(value, where, families=None):
    """An address or network exactly as written: host bits set under a prefix are an error, not rounded down."""
    if not isinstance(value, str) or not value.strip():
        raise FirewallError("%s: %r is not an IP address or CIDR network (for example 17.0.0.0/8)" % (where, value))
    text = value.strip()
    try:
        net = ipaddress.ip_network(text)
    except ValueError:
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise FirewallError("%s: %r is not an IP address or CIDR network (for example 17.0.0.0/8)" % (where, value))
        raise FirewallError("%s: %s has host bits set: write the network %s, or the single address %s"
                            % (where, text, loose, text.split("/")[0]))
    if families is not None and net.version not in families:
        raise FirewallError("%s: %s is an IPv%d address but ip_versions is %s: add %d to ip_versions or remove it"
                            % (where, text, net.version, sorted(families), net.version))
    return net


def _mark(value):
    """``mark`` as an int: 19780, "19780", "0x4d44" (YAML strings and -e values) are all accepted."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise FirewallError("mark must be a number such as 0x4d44, got %r" % (value,))
    if isinstance(value, int):
        mark = value
    else:
        try:
            mark = int(str(value).strip(), 0)
        except ValueError:
            raise FirewallError("mark must be a number such as 0x4d44 or 19780, got %r" % (value,))
    if not 0 < mark < 2 ** 32:
        raise FirewallError("mark must be between 1 and 0xffffffff, got %r" % (value,))
    return mark


class Plan(object):
    """What the firewall must allow; see the module docs for the fields' meaning."""

    def __init__(self, hook, policy, families):
        self.hook = hook
        self.policy = policy
        self.families = families
        self.elements = {4: set(), 6: set()}     # (network, proto, port)
        self.dyn_groups = []                      # {"name", "domains", "hosts", "tcp", "udp"}
        self.keep_networks = {4: set(), 6: set()}
        self.dns_servers = []                     # addresses or networks (text); empty: DNS to any server
        self.allow_icmp = True
        self.mark = None
        self.uncovered = []
        self.sources = {}                         # (net, proto, port) -> set of hosts

    def add(self, net, proto, port, host):
        if net.version not in self.families:
            return
        key = (net, proto, port)
        self.elements[net.version].add(key)
        self.sources.setdefault(key, set()).add(host)

    def compact(self):
        """Drop elements covered by a broader network on the same protocol and port."""
        for fam in (4, 6):
            by_pp = {}
            for net, proto, port in self.elements[fam]:
                by_pp.setdefault((proto, port), []).append(net)
            kept = set()
            for (proto, port), nets in by_pp.items():
                for net in ipaddress.collapse_addresses(nets):
                    kept.add((net, proto, port))
            self.elements[fam] = kept
        for fam in (4, 6):
            self.keep_networks[fam] = set(ipaddress.collapse_addresses(self.keep_networks[fam]))

    def kept(self):
        """What a default-drop policy keeps, as backend-neutral intents in rule order (empty under accept).

        Each is a dict with ``kind``: ``loopback`` (output only), ``established``
        (established/related connections), ``pickup`` (TCP packets without SYN
        of connections opened before the connection tracker knew them, so
        sessions older than the first tracking rule survive; they cannot open
        a new connection), ``icmp`` (ICMP and ICMPv6), ``dns`` (``family``:
        None for any server, else 4 or 6 with ``servers``) and ``keep``
        (``family``: the keep_addresses of that family).  Each backend renders
        these; firewalld keeps loopback, established and pickup in its own chains.
        """
        if self.policy != "drop":
            return []
        out = []
        if self.hook == "output":
            out.append({"kind": "loopback"})
        out.append({"kind": "established"})
        out.append({"kind": "pickup"})
        if self.allow_icmp:
            out.append({"kind": "icmp"})
        if self.dns_servers:
            for fam in self.families:
                servers = [s for s in self.dns_servers if ipaddress.ip_network(s).version == fam]
                if servers:
                    out.append({"kind": "dns", "family": fam, "servers": servers})
        else:
            out.append({"kind": "dns", "family": None, "servers": []})
        for fam in self.families:
            if self.keep_networks[fam]:
                out.append({"kind": "keep", "family": fam})
        return out

    def sorted_elements(self, fam):
        return sorted(self.elements[fam], key=lambda e: (e[1], e[2], e[0].network_address, e[0].prefixlen))

    def element_text(self, fam):
        return ["%s %s %d" % (net, proto, port) for net, proto, port in self.sorted_elements(fam)]

    def ports(self):
        out = {"tcp": set(), "udp": set()}
        for fam in (4, 6):
            for _net, proto, port in self.elements[fam]:
                out[proto].add(port)
        for g in self.dyn_groups:
            for proto in ("tcp", "udp"):
                out[proto].update(g[proto])
        return dict((p, sorted(v)) for p, v in out.items())


def default_resolver(name, families):
    """Addresses of ``name`` (A and AAAA as asked), or raise OSError."""
    fams = []
    if 4 in families:
        fams.append(socket.AF_INET)
    if 6 in families:
        fams.append(socket.AF_INET6)
    found = []
    errors = []
    for fam in fams:
        try:
            for info in socket.getaddrinfo(name, None, fam, socket.SOCK_STREAM):
                if info[4][0] not in found:
                    found.append(info[4][0])
        except socket.gaierror as exc:
            errors.append(exc.strerror or str(exc))
    if not found:
        raise OSError("; ".join(errors) or "no address")
    return found


def _excluded(host, port, proto, excludes):
    for ex in excludes:
        if ex.get("host") and not (ex["host"] == host or host_matches(ex["host"], host.lstrip("*."))
                                   or host_matches(host, ex["host"])):
            continue
        if ex.get("port") is not None and ex["port"] != port:
            continue
        if ex.get("protocol") and ex["protocol"] not in ("both", proto):
            continue
        return True
    return False


def validate_params(p):
    """Check the module's own parameters (beyond the argument spec); return normalised copies."""
    families = p.get("ip_versions") or [4, 6]
    if not isinstance(families, list) or not families or set(families) - {4, 6} \
            or any(isinstance(f, bool) for f in families):
        raise FirewallError("ip_versions must list 4 and/or 6, got %r" % (p.get("ip_versions"),))
    families = sorted(set(families))
    for option, limit in LIMITS.items():
        value = p.get(option) or []
        if not isinstance(value, list):
            raise FirewallError("%s must be a list, got %s" % (option, type(value).__name__))
        if len(value) > limit:
            raise FirewallError("%s has %d entries, more than the %d this module takes: use networks (CIDR) "
                                "instead of single addresses" % (option, len(value), limit))
    extra = []
    for n, item in enumerate(p.get("extra") or []):
        where = "extra[%d]" % n
        if not isinstance(item, dict):
            raise FirewallError("%s must be a dict with host or address, ports and protocol" % where)
        unknown = set(item) - {"host", "address", "ports", "protocol", "comment"}
        if unknown:
            raise FirewallError("%s: unknown key(s) %s; use host or address, ports, protocol" % (where, ", ".join(sorted(unknown))))
        if bool(item.get("host")) == bool(item.get("address")):
            raise FirewallError("%s needs exactly one of host (a DNS name) or address (an IP or CIDR)" % where)
        ports = item.get("ports")
        if ports is None or ports == []:
            raise FirewallError("%s needs ports, for example ports: [443]" % where)
        if not isinstance(ports, list):
            ports = [ports]
        if len(ports) > MAX_PORTS:
            raise FirewallError("%s has %d ports, more than %d" % (where, len(ports), MAX_PORTS))
        entry = {"ports": [_port(x, where) for x in ports], "protocols": _protocols(item.get("protocol"), where)}
        if item.get("address"):
            entry["network"] = _network(item["address"], where, families)
        else:
            host = item["host"]
            if not isinstance(host, str) or not _HOSTNAME.match(host.strip()):
                raise FirewallError("%s: host %r is not a DNS name; give a name such as mdm.example.com, or use "
                                    "address for an IP or CIDR" % (where, host))
            entry["host"] = host.strip().lower().rstrip(".")
        extra.append(entry)
    excludes = []
    for n, item in enumerate(p.get("exclude") or []):
        where = "exclude[%d]" % n
        if isinstance(item, str):
            item = {"host": item}
        if not isinstance(item, dict) or not item or set(item) - {"host", "port", "protocol"}:
            raise FirewallError("%s must name a host, a port and/or a protocol, for example {host: itunes.com} "
                                "or {port: 80}" % where)
        ex = {"host": str(item["host"]).lower() if item.get("host") else None,
              "port": _port(item["port"], where) if item.get("port") is not None else None,
              "protocol": item.get("protocol")}
        if ex["protocol"]:
            _protocols(ex["protocol"], where)
        excludes.append(ex)
    keep = [_network(a, "keep_addresses", families) for a in (p.get("keep_addresses") or [])]
    dns = []
    for a in p.get("dns_servers") or []:
        net = _network(a, "dns_servers", families)
        dns.append(str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net))
    return extra, excludes, keep, dns, families


def build_plan(p, catalog=None, resolver=default_resolver):
    """Build the :class:`Plan` for module parameters ``p`` (a dict).

    Raises :class:`FirewallError` (or :class:`CatalogError`) on bad input,
    before anything is touched.
    """
    catalog = catalog or load_bundled()
    strategy = p.get("strategy") or "cidr"
    if strategy not in STRATEGIES:
        raise FirewallError("strategy must be one of %s" % ", ".join(STRATEGIES))
    extra, excludes, keep, dns, families = validate_params(p)
    try:
        selection = select_from_params(catalog, p)
    except CatalogError as exc:
        raise FirewallError(str(exc))
    hook = p.get("hook") or p.get("path") or "output"
    if hook not in HOOKS:
        raise FirewallError("hook must be output or forward, got %r" % (hook,))
    mark = _mark(p.get("mark"))
    plan = Plan(hook, p.get("default_policy") or "accept", families)
    plan.allow_icmp = p.get("allow_icmp", True)
    plan.mark = mark
    plan.dns_servers = dns
    for net in keep:
        plan.keep_networks[net.version].add(net)

    apple = [ipaddress.ip_network(n) for n in catalog.apple_networks()]
    apns = [ipaddress.ip_network(n) for n in catalog.apple_networks(apns_only=True)]
    resolved = {}
    uncovered = {}
    dyn = {}

    def resolve(name):
        if name not in resolved:
            try:
                resolved[name] = ([ipaddress.ip_network(a) for a in resolver(name, families)], None)
            except OSError as exc:
                resolved[name] = ([], "%s did not resolve: %s" % (name, exc))
        return resolved[name]

    for e in selection.entries:
        host = e["host"]
        for proto in e["protocols"]:
            for port in e["ports"]:
                if _excluded(host, port, proto, excludes):
                    continue
                covered = False
                if strategy in ("cidr", "both"):
                    # the row's reviewed catalog fields: APNs-range flag and network class
                    nets = apns if (p.get("apns_ranges") and e.get("apns_range")) else apple
                    for net in nets:
                        plan.add(net, proto, port, host)
                    covered = e["network"] == "apple"
                    if not covered:
                        uncovered.setdefault(host, "%s host: it may resolve outside Apple's ranges" % (
                            "CDN" if e["network"] == "cdn" else "third-party"))
                if strategy in ("resolve", "both"):
                    if e["wildcard"]:
                        if p.get("dns_sets", True):
                            group = dyn.setdefault(host, {"tcp": set(), "udp": set()})
                            group[proto].add(port)
                            covered = True
                            uncovered.pop(host, None)
                        elif not covered:
                            uncovered[host] = "wildcard name: only Apple's ranges (strategy cidr) or a DNS-fed set " \
                                              "(dns_sets: true) can cover it"
                    else:
                        nets, err = resolve(host)
                        for net in nets:
                            plan.add(net, proto, port, host)
                        if nets:
                            covered = True
                            uncovered.pop(host, None)
                        elif not covered:
                            uncovered[host] = err
    for n, item in enumerate(extra):
        for proto in item["protocols"]:
            for port in item["ports"]:
                if "network" in item:
                    plan.add(item["network"], proto, port, "extra[%d]" % n)
                else:
                    nets, err = resolve(item["host"])
                    if not nets:
                        raise FirewallError("extra[%d]: %s; fix the name or give an address" % (n, err))
                    for net in nets:
                        plan.add(net, proto, port, item["host"])
    for n, (host, ports) in enumerate(sorted(dyn.items())):
        plan.dyn_groups.append({"name": "dyn%d" % (n + 1), "host": host, "domain": host[2:],
                                "tcp": sorted(ports["tcp"]), "udp": sorted(ports["udp"])})
    plan.uncovered = [{"host": h, "reason": r} for h, r in sorted(uncovered.items())]
    plan.compact()
    return plan


def rule_id(name, body):
    """A rule comment that changes when the rule's body changes."""
    return "mdmops:%s:%s" % (name, hashlib.sha256(body.encode()).hexdigest()[:8])


def comparable(state):
    """The parts of a state model that decide whether anything must change.

    The rule text counts, not only our comment: a rule whose verdict or
    matches were edited but which kept our comment reads as changed (each
    backend writes its rules the way the firewall prints them back).
    """
    if not state:
        return state
    texts = state.get("rule_text", {})
    out = dict((k, v) for k, v in state.items() if k != "rule_text")
    out["rules"] = [(rule, texts.get(rule, texts.get(rule.partition(": ")[2]))) for rule in state.get("rules", [])]
    return out


def difference(want, have):
    """A unified diff of two state models, for error messages."""
    import difflib
    return "".join(difflib.unified_diff(describe(want).splitlines(True), describe(have).splitlines(True),
                                        "planned", "read back", n=1))


def describe(state):
    """Readable, backend-neutral lines for a state model (for diffs and results).

    A state model is ``None`` (nothing of ours exists) or a dict with
    ``chains`` ({name: "hook H priority P policy X"}), ``rules`` (list of
    "chain: rule id"; the id changes with the rule's body), ``rule_text``
    ({rule id: body as the firewall prints it}, compared too) and ``sets``
    ({name: [element, ...]}).
    """
    if not state:
        return ""
    lines = []
    texts = state.get("rule_text", {})
    for name in sorted(state.get("chains", {})):
        lines.append("chain %s: %s" % (name, state["chains"][name]))
    for rule in state.get("rules", []):
        chain, _sep, rid = rule.partition(": ")
        lines.append("rule %s: %s  [%s]" % (chain, texts[rid], rid) if rid in texts else "rule %s" % rule)
    for name in sorted(state.get("sets", {})):
        elems = state["sets"][name]
        lines.append("set %s (%d elements)" % (name, len(elems)))
        lines.extend("  " + e for e in elems)
    return "\n".join(lines) + "\n"


def dnsmasq_lines(plan, backend="nftables", table=DEFAULT_TABLE):
    """Lines for the user's dnsmasq that feed the DNS sets of wildcard hosts."""
    lines = []
    for g in plan.dyn_groups:
        if backend == "nftables":
            targets = ["%d#inet#%s#%s_v%d" % (f, table, g["name"], f) for f in plan.families]
            lines.append("nftset=/%s/%s" % (g["domain"], ",".join(targets)))
        else:
            names = ["%s-%s-v%d" % (table.replace("_", "-"), g["name"], f) for f in plan.families]
            lines.append("ipset=/%s/%s" % (g["domain"], ",".join(names)))
    return lines
