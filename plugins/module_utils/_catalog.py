# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Apple network catalog: model, normalisation, selection and views.

Private module_utils (the leading underscore): no stability promise outside
this collection.  Pure Python, no Ansible imports, so it is unit-tested
directly and usable from tools/ and lab/.

A catalog *row* is one line of one of Apple's host tables, kept as Apple
wrote it (``cells``: host, ports, protocol, OS, description, proxy support,
by column position) plus our annotations (English purpose, who opens the
connection, notes).  :func:`normalise_cells` turns the cells into what a
firewall can use; the bundled data in ``_catalog_data`` is the output of that
function over the source YAML, so parsing Apple's article again yields the
same entries (see ``_catalog_parse``).
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import unicodedata

PLATFORMS = ("iOS", "iPadOS", "tvOS", "watchOS", "macOS", "visionOS")
PROTOCOLS = ("tcp", "udp")
INITIATORS = ("devices", "mdm_servers", "administrators")
NETWORKS = ("apple", "cdn", "third_party")

# Column positions of Apple's host tables, in every language of the article.
COL_HOST, COL_PORTS, COL_PROTOCOL, COL_OS, COL_DESCRIPTION, COL_PROXY = range(6)
N_COLUMNS = 6
CELL_NAMES = ("host", "ports", "protocol", "platforms", "description", "proxy")

# "Supports proxies" cells, in the languages Apple publishes the article in,
# compared after fold() (lower case, accents stripped).
_YES_WORDS = frozenset([
    "yes", "oui", "ja", "si", "sim", "ya", "tak", "evet", "igen", "ano", "kylla", "da", "taip", "jah",
    "co", "\u306f\u3044", "\u662f", "\uc608", "\u0434\u0430", "\u03bd\u03b1\u03b9", "\u05db\u05df",
    "\u0646\u0639\u0645", "\u0e43\u0e0a\u0e48",
])
_NO_WORDS = frozenset([
    "no", "non", "nein", "nao", "nee", "nej", "nei", "ei", "nem", "nie", "hayir", "ne", "tidak", "khong",
    "\u3044\u3044\u3048", "\u5426", "\uc544\ub2c8\uc694", "\u043d\u0435\u0442", "\u03bf\u03c7\u03b9",
    "\u05dc\u05d0", "\u0644\u0627", "\u0e44\u0e21\u0e48",
])
# Apple writes an em dash for "no"; other dashes and underscores are typos of it.
_DASH = "\u2014"
_DASH_CHARS = frozenset("-_\u2012\u2013\u2014\u2015\u2212")

_HOST_RE = re.compile(r"^(\*\.)?([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_PLATFORM_RE = re.compile(r"(?<![A-Za-z])(iPadOS|iOS|tvOS|watchOS|macOS|visionOS)(?![A-Za-z])", re.IGNORECASE)

# Well-known typos in Apple's tables: what Apple wrote -> what a firewall needs.
PORT_ERRATA = {433: 443}
# Host names misprinted in an edition of the article, where Apple's other
# editions and real traffic show the real name (the cell is kept as written).
HOST_ERRATA = {
    "token.safebrowsing.apple.com": "token.safebrowsing.apple",
    "phonesubmissions.apple.com": "iphonesubmissions.apple.com",
}


class CatalogError(ValueError):
    """A bad catalog, selection or argument; the message says what to do."""


def fold(text):
    """Lower-case and strip accents, for comparing words across languages."""
    text = unicodedata.normalize("NFKD", text or "")
    return "".join(c for c in text if not unicodedata.combining(c)).strip().lower()


def proxy_value(cell):
    """Map a "supports proxies" cell to True, False or None (Apple says nothing).

    Returns ``(value, recognised)``; an unrecognised word gives ``(None, False)``.
    """
    word = (cell or "").strip()
    if not word:
        return None, True
    if set(word) <= _DASH_CHARS:
        return False, True
    folded = fold(word)
    if folded in _YES_WORDS:
        return True, True
    if folded in _NO_WORDS:
        return False, True
    return None, False


def is_proxy_word(cell):
    word = (cell or "").strip()
    return bool(word) and proxy_value(word)[1]


def normalise_host(written):
    """Return ``(host, notes)``: the name a firewall or proxy can match."""
    notes = []
    host = (written or "").strip().lower().rstrip(".")
    if "://" in host:
        host = host.split("://", 1)[1]
    if "/" in host:
        path = host[host.index("/"):]
        host = host[:host.index("/")]
        notes.append("Apple wrote %s with the URL path %s; a firewall or proxy matches the host %s."
                     % (written.strip(), path, host))
    if ":" in host:
        raise CatalogError("host %r: a port belongs in the ports column" % _short(written))
    if not _HOST_RE.match(host):
        raise CatalogError("host %r is not a DNS name or a '*.' wildcard" % _short(written))
    if host in HOST_ERRATA:
        fixed = HOST_ERRATA[host]
        notes.append("This edition of Apple's table writes %s, a misprint of %s (Apple's other editions and real "
                     "traffic use %s); the catalog uses %s and keeps %s in as_written."
                     % (host, fixed, fixed, fixed, host))
        host = fixed
    return host, notes


def normalise_ports(written):
    """Return ``(ports, notes)`` from a cell such as ``"443, 80"``."""
    found = re.findall(r"\d+", written or "")
    if not found:
        raise CatalogError("ports %r: no port number" % written)
    ports, notes = [], []
    for text in found:
        port = int(text)
        if not 0 < port < 65536:
            raise CatalogError("ports %r: %d is not a port (1-65535)" % (written, port))
        if port in PORT_ERRATA:
            fixed = PORT_ERRATA[port]
            notes.append("Apple's table says port %d, a typo of %d (no Apple service uses %d); "
                         "the catalog opens %d and keeps %d in ports_as_written." % (port, fixed, port, fixed, port))
            port = fixed
        if port not in ports:
            ports.append(port)
    return ports, notes


def normalise_protocols(written):
    """Return ``(protocols, notes)``; SSH and HTTP(S) are application names over TCP."""
    words = re.findall(r"[A-Za-z0-9]+", written or "")
    protocols, notes = [], []
    for word in words:
        w = word.lower()
        if w in PROTOCOLS:
            proto = w
        elif w in ("ssh", "sftp", "http", "https", "tls"):
            proto = "tcp"
            notes.append("Apple's protocol column says %s, an application protocol; it runs over TCP." % word)
        elif w == "quic":
            proto = "udp"
            notes.append("Apple's protocol column says QUIC, which runs over UDP.")
        else:
            raise CatalogError("protocol %r: expected TCP and/or UDP" % written)
        if proto not in protocols:
            protocols.append(proto)
    if not protocols:
        raise CatalogError("protocol %r: expected TCP and/or UDP" % written)
    return protocols, notes


def normalise_platforms(written):
    found = []
    for match in _PLATFORM_RE.finditer(written or ""):
        canon = next(p for p in PLATFORMS if p.lower() == match.group(1).lower())
        if canon not in found:
            found.append(canon)
    return [p for p in PLATFORMS if p in found]


def normalise_cells(cells):
    """Normalise one table row given as its cells, by column position.

    Returns a dict with Apple's cells kept as written and the derived fields.
    Raises :class:`CatalogError` for a row a firewall cannot use.
    """
    cells = [("" if c is None else str(c)).strip() for c in list(cells)[:N_COLUMNS]]
    cells += [""] * (N_COLUMNS - len(cells))
    host, notes = normalise_host(cells[COL_HOST])
    ports, port_notes = normalise_ports(cells[COL_PORTS])
    protocols, proto_notes = normalise_protocols(cells[COL_PROTOCOL])
    description, proxy_cell = cells[COL_DESCRIPTION], cells[COL_PROXY]
    if not proxy_cell and is_proxy_word(description):
        notes.append("Apple's row has no description and its proxy answer (%s) in the description "
                     "column; read as an empty description." % description)
        description, proxy_cell = "", description
    supports_proxy, recognised = proxy_value(proxy_cell)
    if not recognised:
        notes.append("Apple's proxy column says %r, which is neither yes nor no; read as unknown." % proxy_cell)
    elif proxy_cell and set(proxy_cell) <= _DASH_CHARS and proxy_cell not in (_DASH, "-"):
        notes.append("Apple's proxy column says %r, read as a dash (no)." % proxy_cell)
    return {
        "host": host,
        "wildcard": host.startswith("*."),
        "ports": ports,
        "protocols": protocols,
        "platforms": normalise_platforms(cells[COL_OS]),
        "supports_proxy": supports_proxy,
        "description": description,
        "as_written": dict(zip(CELL_NAMES, cells)),
        "normalisation_notes": notes + port_notes + proto_notes,
    }


def host_matches(pattern, name):
    """True when ``name`` is covered by catalog host ``pattern`` (wildcards too)."""
    name = name.lower().rstrip(".")
    if pattern.startswith("*."):
        return name.endswith(pattern[1:])
    return name == pattern


def _short(value, limit=80):
    """``repr`` of a user value, cut to ``limit`` characters for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...(%d characters)" % len(text)


# Longest name or word a selection accepts (a DNS name is at most 253 characters).
MAX_WORD = 253
# Most items a selection list accepts.
MAX_ITEMS = 1000


def _as_list(value, what):
    """A selection option as a list of stripped strings; ``None`` is empty.

    A comma-separated string is accepted (the lookup's ``services='a,b'``);
    anything else that is not a list of strings is refused with a message.
    """
    if value is None:
        return []
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise CatalogError("%s must be a list of strings, got %s %s" % (what, type(value).__name__, _short(value)))
    if len(items) > MAX_ITEMS:
        raise CatalogError("%s: %d items, more than the %d accepted" % (what, len(items), MAX_ITEMS))
    out = []
    for v in items:
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise CatalogError("%s: %s is not a string; give names such as %s"
                               % (what, _short(v), {"services": "device_management"}.get(what, "'...'")))
        v = str(v).strip()
        if len(v) > MAX_WORD:
            raise CatalogError("%s: %s is longer than %d characters" % (what, _short(v), MAX_WORD))
        if v:
            out.append(v)
    return out


def _unknown(what, value, valid):
    close = difflib.get_close_matches(value, list(valid), n=1)
    hint = " Did you mean %r?" % close[0] if close else ""
    return CatalogError("%ss: unknown %s %s.%s Valid values: %s."
                        % (what, what, _short(value), hint, ", ".join(sorted(valid))))


class Catalog(object):
    """The catalog: sections (services), their entries, and Apple's ranges."""

    def __init__(self, data, include_retired=False):
        self.include_retired = include_retired
        self.meta = data.get("meta", {})
        self.ranges = data.get("ranges", {})
        self.services = [dict(s) for s in data["services"]]
        self.groups = dict(data.get("groups", {}))
        self.entries = [dict(e) for e in data["entries"]]
        self._service_ids = [s["id"] for s in self.services]

    def probe_names(self):
        """``{wildcard host: concrete name to probe}`` from the rows' ``probe_name``."""
        return dict((e["host"], e["probe_name"]) for e in self.entries if e.get("probe_name"))

    # -- selection ---------------------------------------------------------
    def service_ids(self):
        return list(self._service_ids)

    def expand_services(self, services):
        """Resolve service ids and group names (``all``, ``abm_asm``...) to ids.

        ``None`` means ``all``; an empty list is refused (it selects nothing,
        and silently selecting everything instead would open what was not asked).
        """
        if services is None:
            services = ["all"]
        wanted = _as_list(services, "services")
        if not wanted:
            raise CatalogError("services is empty: name at least one service (for example device_management), "
                               "or 'all' for every service")
        out = []
        for sid in wanted:
            if sid == "all":
                ids = [s["id"] for s in self.services if s.get("default", True)]
            elif sid in self.groups:
                ids = self.groups[sid]
            elif sid in self._service_ids:
                ids = [sid]
            else:
                raise _unknown("service", sid, self._service_ids + list(self.groups) + ["all"])
            out.extend(i for i in ids if i not in out)
        return out

    def select(self, services=None, platforms=None, protocols=None, initiators=None,
               hosts=None, include_retired=False):
        """Return a new Catalog with the entries matching every given filter.

        ``platforms`` keeps rows that name one of the platforms, and rows that
        name none (Apple writes "-" for hosts used from any web browser).
        ``hosts`` keeps rows whose host is, or whose wildcard covers, a name.
        """
        sids = set(self.expand_services(services))
        plats = []
        for p in _as_list(platforms, "platforms"):
            canon = next((c for c in PLATFORMS if c.lower() == p.lower()), None)
            if canon is None:
                raise _unknown("platform", p, PLATFORMS)
            plats.append(canon)
        protos = []
        for p in _as_list(protocols, "protocols"):
            if p.lower() not in PROTOCOLS:
                raise _unknown("protocol", p, PROTOCOLS)
            protos.append(p.lower())
        inits = []
        for i in _as_list(initiators, "initiators"):
            if i not in INITIATORS:
                raise _unknown("initiator", i, INITIATORS)
            inits.append(i)
        names = [h.lower() for h in _as_list(hosts, "hosts")]
        kept = []
        for e in self.entries:
            if e["service"] not in sids:
                continue
            if e.get("retired") and not include_retired:
                continue
            if plats and e["platforms"] and not set(plats) & set(e["platforms"]):
                continue
            if inits and not set(inits) & set(e["initiators"]):
                continue
            if names and not any(host_matches(e["host"], n) or e["host"] == n for n in names):
                continue
            if protos:
                e = dict(e, protocols=[p for p in e["protocols"] if p in protos])
                if not e["protocols"]:
                    continue
            kept.append(e)
        with_rows = set(e["service"] for e in kept)
        data = {"meta": self.meta, "ranges": self.ranges, "groups": self.groups,
                "services": [s for s in self.services if s["id"] in with_rows], "entries": kept}
        return Catalog(data, include_retired=include_retired)

    # -- views -------------------------------------------------------------
    def endpoints(self, include_retired=None):
        """One ``{service, host, port, protocol}`` per port and protocol of each row.

        Retired rows count only when this catalog was selected with them
        (or ``include_retired`` says so).
        """
        if include_retired is None:
            include_retired = self.include_retired
        out = []
        for e in self.entries:
            if e.get("retired") and not include_retired:
                continue
            for proto in e["protocols"]:
                for port in e["ports"]:
                    out.append({"service": e["service"], "host": e["host"], "port": port, "protocol": proto})
        return out

    def unique_endpoints(self):
        """The (host, port, protocol) triples, services merged; sorted."""
        seen = {}
        for ep in self.endpoints():
            key = (ep["host"], ep["port"], ep["protocol"])
            seen.setdefault(key, []).append(ep["service"])
        return [{"host": h, "port": p, "protocol": pr, "services": sorted(set(s))}
                for (h, p, pr), s in sorted(seen.items())]

    def hosts(self):
        return sorted({e["host"] for e in self.entries})

    def wildcard_hosts(self):
        return sorted({e["host"] for e in self.entries if e["wildcard"]})

    def outside_apple_range(self):
        """Hosts that an IP-only rule on Apple's ranges may not cover."""
        out = {}
        for e in self.entries:
            if e["network"] != "apple":
                out.setdefault(e["host"], {"host": e["host"], "network": e["network"], "services": []})
                if e["service"] not in out[e["host"]]["services"]:
                    out[e["host"]]["services"].append(e["service"])
        return [out[h] for h in sorted(out)]

    def ports(self):
        """Ports by protocol: ``{"tcp": [...], "udp": [...]}``."""
        res = {p: set() for p in PROTOCOLS}
        for ep in self.endpoints():
            res[ep["protocol"]].add(ep["port"])
        return {p: sorted(v) for p, v in res.items()}

    def counts(self):
        return {
            "services": len({e["service"] for e in self.entries}),
            "entries": len(self.entries),
            "endpoints": len(self.endpoints()),
            "hosts": len(self.hosts()),
            "wildcard_hosts": len(self.wildcard_hosts()),
            "outside_apple_range": len(self.outside_apple_range()),
            "retired": sum(1 for e in self.entries if e.get("retired")),
        }

    def apple_networks(self, family=None, apns_only=False):
        """Apple's address ranges (``apns_only``: the narrower APNs ranges)."""
        key = "apns" if apns_only else "apple"
        nets = list(self.ranges.get(key, {}).get("ipv4", [])) + list(self.ranges.get(key, {}).get("ipv6", []))
        if family in (4, 6):
            nets = [n for n in nets if ipaddress.ip_network(n).version == family]
        return nets

    def in_apple_range(self, address, apns_only=False):
        addr = ipaddress.ip_address(address)
        return any(addr in ipaddress.ip_network(n) for n in self.apple_networks(apns_only=apns_only))

    def summary(self):
        """A dict for humans and for the ``network_info`` module."""
        return {
            "meta": self.meta,
            "services": self.services,
            "counts": self.counts(),
            "ports": self.ports(),
            "ranges": self.ranges,
        }


_BUNDLED = None


def load_bundled():
    """The catalog shipped with the collection (``_catalog_data``, a JSON string)."""
    global _BUNDLED
    if _BUNDLED is None:
        import json
        from ansible_collections.mdmops.apple.plugins.module_utils._catalog_data import CATALOG_JSON
        _BUNDLED = Catalog(json.loads(CATALOG_JSON))
    return _BUNDLED


SELECTION_KEYS = ("services", "platforms", "protocols", "initiators", "hosts", "include_retired")


def select_from_params(catalog, params, hosts=None):
    """Apply the catalog selection options (see ``_argspec.catalog_selection_spec``) to ``catalog``.

    The one selection path of every module and of the ``network_catalog``
    lookup: same defaults, same checks, same messages.
    """
    if hosts is None:
        hosts = params.get("hosts")
    retired = params.get("include_retired", False)
    if not isinstance(retired, bool):
        raise CatalogError("include_retired must be true or false, got %s" % _short(retired))
    return catalog.select(services=params.get("services"), platforms=params.get("platforms"),
                          protocols=params.get("protocols"), initiators=params.get("initiators"),
                          hosts=hosts, include_retired=retired)
