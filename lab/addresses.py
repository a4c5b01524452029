"""Lab addresses: every catalog host gets a stable address, and the lab DNS
answers exactly what ``resolve_lab`` computes here.

Address pools (all reachable only inside the lab's ``net`` namespace):

========== ==================== ===================== ==========================
pool       IPv4                 IPv6                  used for
========== ==================== ===================== ==========================
apple      17.0.0.0/8           2620:149::/32         catalog hosts, network 'apple'
apns       17.249.0.0/16        2620:149:a44::/48     apple hosts under push.apple.com
cdn        203.0.113.0/24       2001:db8:cd::/48      network 'cdn' and 'third_party'
internet   198.51.100.0/24      2001:db8:100::/48     generic non-Apple Internet
========== ==================== ===================== ==========================

17.0.0.0/24 is never handed out (kept for fixed lab services).  Inside a pool
an address comes from sha256 of the name; on a collision the next name in
sorted order probes ``name#1``, ``name#2``... so a given record set always
gives the same answer.

Records are a dict ``name -> (ipv4 or None, ipv6 or None)``.  A name starting
with ``*.`` is a wildcard: like dnsmasq ``address=/x/`` it answers ``x`` and
every name below it; other names are exact (dnsmasq ``host-record=``) and win
over any wildcard.  The longest matching wildcard wins.
"""
from __future__ import annotations

import hashlib
import ipaddress
import re
import sys
from typing import Dict, Iterable, List, Mapping, Optional, Tuple, Union

Pair = Tuple[Optional[str], Optional[str]]

POOLS: Dict[str, Tuple[str, str]] = {
    "apple": ("17.0.0.0/8", "2620:149::/32"),
    "apns": ("17.249.0.0/16", "2620:149:a44::/48"),
    "cdn": ("203.0.113.0/24", "2001:db8:cd::/48"),
    "internet": ("198.51.100.0/24", "2001:db8:100::/48"),
}
# catalog ``network`` value -> pool
NETWORK_POOL = {"apple": "apple", "cdn": "cdn", "third_party": "cdn", "internet": "internet"}
# Prefixes routed as local (AnyIP) in the lab's net namespace: every address answers.
LOCAL_PREFIXES = ("17.0.0.0/8", "203.0.113.0/24", "198.51.100.0/24",
                  "2620:149::/32", "2001:db8:cd::/48", "2001:db8:100::/48")
# Names the lab always serves besides the catalog (non-Apple Internet for negative tests).
# api.sandbox.push.apple.com is only covered by the catalog's *.push.apple.com (shared with the
# couriers); it gets an address of its own so the lab APNs emulator (lab/apns.py) can answer there.
DEFAULT_RECORDS: Dict[str, str] = {"*.example.com": "internet", "api.sandbox.push.apple.com": "apple"}

# Fixed lab services with names of their own (exact names win over ``*.example.com``); extras override.
# lab/ats.py: the App Transport Security test servers, one address per server profile.
SERVICE_RECORDS: Dict[str, Tuple[str, str]] = {
    "mdm-%s.example.com" % profile: ("198.51.100.%d" % (210 + i), "2001:db8:100::%d" % (210 + i))
    for i, profile in enumerate(("good", "ec", "tls11", "sha1", "rsa1024", "nofs", "expired"))}

_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


def normalize(host: str) -> Optional[str]:
    """Lower-case DNS name (``*.`` prefix allowed) or None if ``host`` is not one."""
    name = str(host).strip().lower().rstrip(".")
    body = name[2:] if name.startswith("*.") else name
    if not body or "." not in body or len(body) > 253:
        return None
    if not all(_LABEL.match(label) for label in body.split(".")):
        return None
    try:  # an IP or CIDR is not a name
        ipaddress.ip_network(body)
        return None
    except ValueError:
        return name


def pool_for(name: str, network: str) -> str:
    """Pool of ``name`` (a catalog ``network`` or a pool name)."""
    if network in POOLS and network != "apple":
        return network
    try:
        pool = NETWORK_POOL[network]
    except KeyError:
        raise ValueError("unknown network %r for %s (want one of %s)"
                         % (network, name, ", ".join(sorted(set(NETWORK_POOL) | set(POOLS)))))
    base = name[2:] if name.startswith("*.") else name
    if pool == "apple" and (base == "push.apple.com" or base.endswith(".push.apple.com")):
        return "apns"
    return pool


def _hashed(cidr: str, key: str) -> ipaddress._BaseAddress:
    net = ipaddress.ip_network(cidr)
    h = int.from_bytes(hashlib.sha256(key.encode()).digest(), "big")
    if net.version == 6:
        return net[1 + h % (net.num_addresses - 2)]
    blocks = net.num_addresses // 256
    start = 1 if blocks > 1 else 0          # skip the first /24 of bigger pools
    idx = h % ((blocks - start) * 254)      # last octet 1..254
    return net[(start + idx // 254) * 256 + 1 + idx % 254]


def assign(hosts: Mapping[str, str], taken: Iterable[str] = ()) -> Dict[str, Tuple[str, str]]:
    """``{name: network}`` -> ``{name: (ipv4, ipv6)}``, collision free, deterministic."""
    used = {str(ipaddress.ip_address(a)) for a in taken if a}
    out: Dict[str, Tuple[str, str]] = {}
    for name in sorted(hosts):
        v4net, v6net = POOLS[pool_for(name, hosts[name])]
        pair = []
        for cidr in (v4net, v6net):
            n = 0
            while True:
                addr = str(_hashed(cidr, name if n == 0 else "%s#%d" % (name, n)))
                if addr not in used:
                    break
                n += 1
            used.add(addr)
            pair.append(addr)
        out[name] = (pair[0], pair[1])
    return out


# ----------------------------------------------------------------- catalog
def catalog_entries() -> List[dict]:
    """The bundled catalog's entries (imports the collection from this tree)."""
    from lab.collection import collections_root
    root = collections_root()
    if root not in sys.path:
        sys.path.insert(0, root)
    from ansible_collections.mdmops.apple.plugins.module_utils._catalog import load_bundled
    return list(load_bundled().entries)


def catalog_hosts(entries: Iterable[Mapping]) -> Dict[str, str]:
    """``{name: network}`` for every usable host name of ``entries`` (first network wins)."""
    hosts: Dict[str, str] = {}
    for entry in entries:
        name = normalize(entry.get("host", ""))
        if name:
            hosts.setdefault(name, entry.get("network") or "apple")
    return hosts


def catalog_ports(entries: Iterable[Mapping]) -> Dict[str, List[int]]:
    """``{'tcp': [...], 'udp': [...]}``: union of the catalog's ports (retired ones too)."""
    ports: Dict[str, set] = {"tcp": set(), "udp": set()}
    for entry in entries:
        for proto in entry.get("protocols") or ["tcp"]:
            if proto in ports:
                ports[proto].update(int(p) for p in entry.get("ports") or ())
    return {k: sorted(v) for k, v in ports.items()}


RecordValue = Union[str, None, Iterable[str]]


def build_records(entries: Iterable[Mapping], extra: Optional[Mapping[str, RecordValue]] = None
                  ) -> Dict[str, Pair]:
    """The lab's DNS records: catalog hosts, DEFAULT_RECORDS, then ``extra``.

    ``extra`` maps a name (``*.`` for a wildcard) to a network/pool name
    (``'apple'``, ``'cdn'``, ``'internet'``...: an address is assigned), to one
    IP or a list of IPs (one v4 and/or one v6), or to None (drop the name).
    Entries of ``extra`` override the catalog's.
    """
    extra = dict(SERVICE_RECORDS, **dict(extra or {}))
    hosts = dict(catalog_hosts(entries))
    for name, net in DEFAULT_RECORDS.items():
        hosts.setdefault(name, net)
    fixed: Dict[str, Pair] = {}
    for raw, value in (extra or {}).items():
        name = normalize(raw)
        if not name:
            raise ValueError("not a DNS name: %r" % (raw,))
        hosts.pop(name, None)
        if value is None:
            continue
        if isinstance(value, str) and not _is_ip(value):
            hosts[name] = value
            continue
        v4 = v6 = None
        for addr in ([value] if isinstance(value, str) else list(value)):
            ip = ipaddress.ip_address(addr)
            if ip.version == 4:
                v4 = str(ip)
            else:
                v6 = str(ip)
        fixed[name] = (v4, v6)
    taken = [a for pair in fixed.values() for a in pair if a]
    records: Dict[str, Pair] = dict(assign(hosts, taken))
    records.update(fixed)
    return dict(sorted(records.items()))


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


_BUNDLED: Dict[str, Pair] = {}


def _bundled_records() -> Dict[str, Pair]:
    if not _BUNDLED:
        _BUNDLED.update(build_records(catalog_entries()))
    return _BUNDLED


def resolve_lab(name: str, records: Optional[Mapping[str, Pair]] = None) -> Optional[Pair]:
    """What the lab DNS answers for ``name``: ``(ipv4, ipv6)`` or None (NXDOMAIN).

    ``records`` defaults to the bundled catalog's records (a running lab's
    records, with its extras, are ``Lab.records``).
    """
    if records is None:
        records = _bundled_records()
    name = name.strip().lower().rstrip(".")
    if not name.startswith("*.") and name in records:
        return tuple(records[name])
    labels = name[2:].split(".") if name.startswith("*.") else name.split(".")
    for i in range(len(labels)):
        hit = records.get("*." + ".".join(labels[i:]))
        if hit:
            return tuple(hit)
    return None


def address_for(host: str, records: Optional[Mapping[str, Pair]] = None) -> Pair:
    """Lab address of a catalog host (exact or ``*.`` wildcard); KeyError if unknown."""
    hit = resolve_lab(host, records)
    if hit is None:
        raise KeyError("%s has no lab address (not in the catalog or the lab's records)" % host)
    return hit
