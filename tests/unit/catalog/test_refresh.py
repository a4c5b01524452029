"""Catalog refresh: parse a saved article and report its difference."""
from __future__ import annotations

import html
import os

import pytest

from ansible_collections.mdmops.apple.plugins.module_utils._catalog import Catalog
from ansible_collections.mdmops.apple.plugins.module_utils._catalog import load_bundled as _bundled
from ansible_collections.mdmops.apple.plugins.module_utils._catalog_parse import (
    CatalogParseError, parse_article, refresh_report,
)

SEED = os.path.join(os.path.dirname(__file__), "..", "fixtures", "apple_enterprise_networks_fr.txt")


def load_bundled():
    """The bundled catalog as of the fixture's edition (rows from newer editions, ``since``, left out)."""
    cat = _bundled()
    return Catalog({"meta": cat.meta, "ranges": cat.ranges, "groups": cat.groups, "services": cat.services,
                    "entries": [e for e in cat.entries if not e["since"]]})


def seed_text():
    with open(SEED, encoding="utf-8") as f:
        return f.read()


def to_html(text):
    """Render the text article as Apple's HTML page shape: headings, paragraphs, tables."""
    out = ["<!DOCTYPE html><html><head><title>x</title><script>var a='|---|';</script></head><body>"]
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if i + 1 < len(lines) and lines[i + 1].startswith("---|"):
            out.append("<div class='table-wrapper'><table><tr>%s</tr>" % "".join(
                "<th><p>%s</p></th>" % html.escape(c.strip()) for c in line.rstrip("|").split("|")))
            i += 2
            while i < len(lines) and "|" in lines[i]:
                cells = lines[i].rstrip("\n")[:-1].split("|") if lines[i].endswith("|") else lines[i].split("|")
                out.append("<tr>%s</tr>" % "".join("<td><p>%s</p></td>" % html.escape(c.strip()) for c in cells))
                i += 1
            out.append("</table></div>")
            continue
        tag = "h2" if len(line) < 90 and not line.endswith(".") else "p"
        out.append("<%s>%s</%s>" % (tag, html.escape(line), tag))
        i += 1
    out.append("</body></html>")
    return "\n".join(out)


def edit(text, old, new):
    assert old in text
    return text.replace(old, new, 1)


def test_seed_parses_to_exactly_the_bundled_catalog():
    report = refresh_report(seed_text(), load_bundled())
    assert report["differs"] is False
    assert report["problems"] == []
    assert (report["tables"], report["rows"], report["unchanged"]) == (21, 139, 139)


def test_the_fixture_lacks_exactly_the_rows_of_newer_editions():
    report = refresh_report(seed_text(), _bundled())
    newer = sorted((e["service"], e["host"]) for e in _bundled().entries if e["since"])
    assert sorted((r["service"], r["host"]) for r in report["removed"]) == newer
    assert report["added"] == [] and report["changed"] == [] and report["problems"] == []


def test_html_copy_parses_to_the_same_catalog():
    report = refresh_report(to_html(seed_text()), load_bundled())
    assert report["differs"] is False, report
    assert (report["tables"], report["rows"]) == (21, 139)


def test_other_language_headers_and_words_give_the_same_result():
    # Column position, not header words: an English/Japanese rendering of the same table.
    text = seed_text().replace("Hôtes | Ports | Protocole | Système d\u2019exploitation | Description | Prend en charge",
                               "ホスト | ポート | プロトコル | OS | 説明 | プロキシ対応")
    text = text.replace("| Oui |", "| Yes |").replace(" et visionOS", " and visionOS")
    report = refresh_report(text, load_bundled())
    assert report["differs"] is False, report


def test_edited_copy_reports_exactly_the_edits():
    text = seed_text()
    # 1. a row added to Device management
    text = edit(text, "*.appattest.apple.com | 443 | TCP | iOS, iPadOS, tvOS, macOS et visionOS | Attestation d\u2019appareils gérés | — |",
                "*.appattest.apple.com | 443 | TCP | iOS, iPadOS, tvOS, macOS et visionOS | Attestation d\u2019appareils gérés | — |\n"
                "mdm-new.apple.com | 8443 | TCP | iOS et macOS | Nouveau service | Oui |")
    # 2. a port changed in Device setup
    text = edit(text, "albert.apple.com | 443 | TCP", "albert.apple.com | 443, 8443 | TCP")
    # 3. a row removed from Certificate validation
    text = edit(text, "crl4.digicert.com | 80 | TCP | iOS, iPadOS, tvOS, macOS et visionOS | Validation des certificats | — |\n", "")
    report = refresh_report(text, load_bundled())
    assert report["differs"] is True
    assert report["added"] == [{"service": "device_management", "host": "mdm-new.apple.com", "ports": [8443],
                                "protocols": ["tcp"], "platforms": ["iOS", "macOS"], "supports_proxy": True,
                                "section_title": "Gestion des appareils"}]
    assert [(r["service"], r["host"]) for r in report["removed"]] == [("certificate_validation", "crl4.digicert.com")]
    assert report["changed"] == [{"service": "device_setup", "host": "albert.apple.com",
                                  "changes": {"ports": {"before": [443], "after": [443, 8443]}}}]
    assert report["unchanged"] == 137


def test_proxy_and_protocol_changes_are_reported():
    text = edit(seed_text(), "time.apple.com | 123 | UDP |", "time.apple.com | 123 | TCP, UDP |")
    text = edit(text, "idmsa.apple.com | 443 | TCP | iOS, iPadOS, tvOS, macOS et visionOS | Authentification du compte Apple | Oui |",
                "idmsa.apple.com | 443 | TCP | iOS, iPadOS, tvOS, macOS et visionOS | Authentification du compte Apple | — |")
    report = refresh_report(text, load_bundled())
    changes = {(c["service"], c["host"]): c["changes"] for c in report["changed"]}
    assert changes == {
        ("device_setup", "time.apple.com"): {"protocols": {"before": ["udp"], "after": ["tcp", "udp"]}},
        ("apple_account", "idmsa.apple.com"): {"supports_proxy": {"before": True, "after": False}},
    }


def test_a_new_table_becomes_a_new_section():
    text = seed_text() + ("\nNouveau service\nLes appareils doivent accéder à ces hôtes.\n"
                          "Hôtes | Ports | Protocole | Système d\u2019exploitation | Description | Prend en charge les proxys |\n"
                          "---|---|---|---|---|---|\n"
                          "brand-new.apple.com | 443 | TCP | iOS | Nouveau | Oui |\n")
    report = refresh_report(text, load_bundled())
    assert [(a["service"], a["host"]) for a in report["added"]] == [("new_nouveau_service", "brand-new.apple.com")]
    assert report["removed"] == [] and report["changed"] == []


def test_unreadable_row_is_a_problem_not_a_removal():
    text = edit(seed_text(), "albert.apple.com | 443 |", "albert.apple.com | 99999 |")
    report = refresh_report(text, load_bundled())
    assert any("99999" in p and "Configuration de l\u2019appareil" in p for p in report["problems"])
    assert any(p.startswith("albert.apple.com (device_setup): on the page") for p in report["problems"])
    assert report["removed"] == []


@pytest.mark.parametrize("page", [
    "",
    "Just some text.\nNo tables here.\n",
    "<html><body><h1>Apple</h1><p>Nothing</p><table><tr><td>a</td><td>b</td></tr></table></body></html>",
    "a | b | c\n---|---|---\nx | y | z\n",
])
def test_a_page_without_host_tables_is_a_clear_error(page):
    with pytest.raises(CatalogParseError, match="holds no host table"):
        parse_article(page, source="my.html")
