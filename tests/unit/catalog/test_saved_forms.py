"""A refresh reads what users save: browsers' text forms, copy-paste, HTML quirks.

The fixtures under ``tests/unit/fixtures/saved/`` were written from the French
seed (the bundled copy): ``chromium_text_*`` is Chromium's "save as text"
(tab-separated cells, trailing tabs kept, blank lines around paragraphs, and
a ports cell holding two paragraphs ``443`` / ``80`` in the first row of each
table); ``firefox_text_*`` is Firefox's "save as text files" (one cell per
line, blank lines between, empty cells leave no line).  ``*_fr`` keeps the
French cells, ``*_en`` renders the tables in English (headers, OS lists,
descriptions, "Yes").
"""
from __future__ import annotations

import os

import pytest

from ansible_collections.mdmops.apple.plugins.module_utils._catalog import Catalog, load_bundled
from ansible_collections.mdmops.apple.plugins.module_utils._catalog_parse import parse_html, refresh_report

SAVED = os.path.join(os.path.dirname(__file__), "..", "fixtures", "saved")
SEED = os.path.join(os.path.dirname(__file__), "..", "fixtures", "apple_enterprise_networks_fr.txt")


def fixture_edition():
    cat = load_bundled()
    return Catalog({"meta": cat.meta, "ranges": cat.ranges, "groups": cat.groups, "services": cat.services,
                    "entries": [e for e in cat.entries if not e["since"]]})


def article_rows():
    return len([e for e in fixture_edition().entries if e["source"] == "apple_article"])


def read(name):
    with open(os.path.join(SAVED, name), encoding="utf-8") as f:
        return f.read()


@pytest.mark.parametrize("name", ["chromium_text_fr.txt", "chromium_text_en.txt",
                                  "firefox_text_fr.txt", "firefox_text_en.txt"])
def test_browser_text_forms_read_like_the_seed(name):
    report = refresh_report(read(name), fixture_edition(), source=name)
    assert report["problems"] == [], report["problems"]
    assert (report["added"], report["removed"], report["changed"]) == ([], [], []), report
    assert report["rows"] == report["unchanged"] == article_rows()


def test_copy_paste_with_windows_line_ends_and_no_trailing_tabs():
    text = read("chromium_text_en.txt").replace("\t\n", "\n").replace("\t\t\n", "\n").replace("\n", "\r\n")
    report = refresh_report(text, fixture_edition())
    assert report["problems"] == [] and report["differs"] is False, report


def test_two_paragraphs_in_a_port_cell_are_two_ports_never_one_number():
    page = ("<html><body><h2>Device setup</h2><table><tr><th>Hosts</th><th>Ports</th><th>Protocol</th><th>OS</th>"
            "<th>Description</th><th>Supports proxies</th></tr>"
            "<tr><td>captive.apple.com</td><td><p>443</p><p>80</p></td><td>TCP</td><td>iOS</td><td>x</td>"
            "<td>Yes</td></tr><tr><td>albert.apple.com</td><td>443<br>80</td><td>TCP</td><td>iOS</td><td>x</td>"
            "<td>Yes</td></tr></table></body></html>")
    rows = parse_html(page)[0].rows
    assert [r[1] for r in rows] == ["443 80", "443 80"]
    report = refresh_report(page, load_bundled())
    ports = {c["host"]: c["changes"].get("ports") for c in report["changed"]}
    assert ports.get("captive.apple.com") is None                     # 443, 80 as in the catalog
    assert ports["albert.apple.com"] == {"before": [443], "after": [443, 80]}
    assert not any("44380" in str(x) for x in (report["changed"], report["added"], report["problems"]))


def test_a_table_nested_in_a_cell_keeps_the_outer_table():
    with open(SEED, encoding="utf-8") as f:
        seed = f.read()
    rows = []
    for line in seed.splitlines():
        if line.startswith(("albert.apple.com |", "captive.apple.com |", "gs.apple.com |")) and len(rows) < 3:
            rows.append([c.strip() for c in line.rstrip("|").split("|")])
    cells = ["<tr>%s</tr>" % "".join("<td>%s</td>" % c for c in r) for r in rows]
    nested = ("<tr><td>humb.apple.com</td><td>443</td><td>TCP</td><td>iOS</td>"
              "<td><table><tr><td>Note</td><td>inner</td></tr></table></td><td>Oui</td></tr>")
    page = "<html><body><h2>Configuration</h2><table>%s%s</table></body></html>" % ("".join(cells), nested)
    tables = parse_html(page)
    assert len(tables) == 1 and [r[0] for r in tables[0].rows] == [
        "albert.apple.com", "captive.apple.com", "gs.apple.com", "humb.apple.com"]
    assert tables[0].rows[3][4] == "Note inner"


def test_unreadable_page_parts_are_never_removals():
    # a whole table whose rows cannot be read (ports garbled): reported as unreadable, not removed
    text = read("chromium_text_fr.txt")
    start = text.index("certs.apple.com\t")
    end = text.index("valid.apple.com\t")
    garbled = text[start:end].replace("\t80\t", "\tquatre-vingts\t")
    report = refresh_report(text[:start] + garbled + text[end:], fixture_edition())
    removed = [r["host"] for r in report["removed"]]
    assert removed == [], removed
    assert any(p.startswith("crl.apple.com (certificate_validation): on the page") for p in report["problems"])
