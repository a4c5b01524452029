"""Every (host, port, protocol) row of Apple's article is in the catalog.

This test reads the saved article with its own few lines of parsing, on
purpose independent of plugins/module_utils/_catalog_parse.py, so a bug in the
catalog's parser cannot hide a missing row.
"""
from __future__ import annotations

import os
import re

from ansible_collections.mdmops.apple.plugins.module_utils._catalog import load_bundled

SEED = os.path.join(os.path.dirname(__file__), "..", "fixtures", "apple_enterprise_networks_fr.txt")
# Documented corrections: Apple's cell -> what the catalog opens.
PROTOCOL_MEANS = {"TCP": "tcp", "UDP": "udp", "SSH": "tcp"}
PORT_TYPOS = {"433": 443}
# Hosts this (French) edition misprints, as the catalog notes them.
HOST_TYPOS = {"token.safebrowsing.apple.com": "token.safebrowsing.apple",
              "phonesubmissions.apple.com": "iphonesubmissions.apple.com"}


def seed_rows():
    rows = []
    in_table = False
    for line in open(SEED, encoding="utf-8"):
        if line.startswith("---|"):
            in_table = True
            continue
        if in_table and "|" in line:
            cells = [c.strip() for c in line.rstrip("\n").rstrip("|").split("|")]
            rows.append(cells)
        else:
            in_table = False
    return rows


def seed_triples():
    out = []
    for cells in seed_rows():
        host, ports, protos = cells[0], cells[1], cells[2]
        for port in re.findall(r"\d+", ports):
            for proto in re.findall(r"[A-Z]+", protos):
                out.append((host, port, proto))
    return out


def test_seed_has_the_expected_shape():
    rows = seed_rows()
    assert len(rows) == 139
    assert len(seed_triples()) == 169


def test_every_seed_row_is_a_catalog_entry():
    # rows with ``since`` come from newer editions than this copy: they are not in it
    article = [e for e in load_bundled().entries if e["source"] == "apple_article" and not e["since"]]
    assert len(article) == len(seed_rows())
    written = sorted((e["as_written"]["host"], e["as_written"]["ports"], e["as_written"]["protocol"]) for e in article)
    assert written == sorted((c[0], c[1], c[2]) for c in seed_rows())


def test_every_seed_host_port_protocol_is_opened_by_the_catalog():
    entries = load_bundled().entries
    missing = []
    for host, port, proto in seed_triples():
        want_port = PORT_TYPOS.get(port, int(port))
        want_proto = PROTOCOL_MEANS[proto]
        ok = any(e["as_written"]["host"] == host and port in re.findall(r"\d+", e["as_written"]["ports"])
                 and want_port in e["ports"] and want_proto in e["protocols"] for e in entries)
        if not ok:
            missing.append((host, port, proto))
    assert missing == []


def test_every_endpoint_is_reachable_from_the_flat_view():
    cat = load_bundled()
    flat = {(e["host"], e["port"], e["protocol"]) for e in cat.endpoints()}
    for host, port, proto in seed_triples():
        name = host.split("/")[0].lower()
        name = HOST_TYPOS.get(name, name)
        assert (name, PORT_TYPOS.get(port, int(port)), PROTOCOL_MEANS[proto]) in flat


def test_newer_rows_say_where_they_come_from():
    newer = [e for e in load_bundled().entries if e["since"]]
    assert newer, "the catalog carries rows from editions newer than the fixture"
    for e in newer:
        assert any("Source:" in n for n in e["notes"]), e["host"]
        assert e["as_written"]["host"] not in [c[0] for c in seed_rows()]


def test_misprinted_hosts_keep_apples_cell_and_say_so():
    entries = load_bundled().entries
    for written, real in HOST_TYPOS.items():
        e = next(e for e in entries if e["as_written"]["host"] == written)
        assert e["host"] == real and any("misprint" in n and real in n for n in e["notes"])
