"""HTML page: self-contained, escaped, the matrix with status classes and remedies, the summary."""
from __future__ import annotations

from html.parser import HTMLParser

import pytest

from ansible_collections.mdmops.apple.plugins.plugin_utils._report._html import matrix, render_html
from ansible_collections.mdmops.apple.plugins.plugin_utils._report import build_report

from . import samples


class Page(HTMLParser):
    """Elements with their attributes, and the text, as a browser's parser sees them."""

    def __init__(self, text):
        HTMLParser.__init__(self, convert_charrefs=True)
        self.tags = []
        self.text = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def find(self, tag, **attrs):
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]


def render(probes=None, **kwargs):
    kwargs.setdefault("fail_on", samples.FAIL_ON)
    kwargs.setdefault("generated_at", samples.GENERATED_AT)
    return render_html(samples.push_probes() if probes is None else probes, **kwargs)


def test_self_contained():
    text = render(certificates=samples.CERTIFICATE)
    page = Page(text)
    assert not page.find("script") and not page.find("link") and not page.find("img") and not page.find("iframe")
    for _tag, attrs in page.tags:
        for name, value in attrs.items():
            assert name not in ("src", "href", "action") and not name.startswith("on")
    assert "url(" not in text and "@import" not in text and "http://" not in text and "https://" not in text
    csp = page.find("meta", **{"http-equiv": "Content-Security-Policy"})
    assert csp and "default-src 'none'" in csp[0]["content"]


def test_matrix_cells_by_service_endpoint_layer():
    probes = samples.push_probes()
    page = Page(render(probes))
    cells = page.find("td", **{"data-layer": "tls", "data-status": "intercepted"})
    assert len(cells) == 1 and "bad" in cells[0]["class"]
    assert page.find("td", **{"data-layer": "provider", "data-status": "wrong_environment"})
    assert page.find("td", **{"data-layer": "udp", "data-status": "no_answer"})[0]["class"] == "cell inconclusive"
    rows = page.find("tr", **{"data-service": "device_management", "data-endpoint": "*.push.apple.com:5223"})
    assert rows
    # every probe with a port is in exactly one cell; port-less DNS probes fill the dns cell of their host's rows
    filled = [a for t, a in page.tags if t == "td" and "data-status" in a]
    with_port = [p for p in probes if p["port"] is not None]
    assert len(filled) >= len(with_port)


def test_portless_dns_probe_fills_its_hosts_rows():
    report = build_report(samples.push_probes())
    rows = matrix(report)["device_management"]
    courier = [r for r in rows if r["endpoint"].startswith("*.push.apple.com:")]
    assert len(courier) == 3 and all(r["cells"]["dns"]["status"] == "ok" for r in courier)
    lonely = [r for r in rows if r["endpoint"] == "mdmenrollment.apple.com"]
    assert lonely and lonely[0]["cells"]["dns"]["status"] == "nxdomain"


def test_remedy_on_each_failed_cell():
    probes = samples.push_probes()
    text = render(probes)
    for p in probes:
        if p["status"] not in ("ok", "no_answer", "skipped"):
            assert '<p class="remedy">%s</p>' % p["remedy"].replace("'", "&#39;") in text, p["status"]


def test_summary_and_verdict():
    text = render(certificates=samples.CERTIFICATE)
    page = Page(text)
    words = " ".join(page.text)
    failing = sum(1 for p in samples.push_probes() if p["status"] in samples.FAIL_ON)
    assert "%d of %d probes fail the run" % (failing, len(samples.push_probes())) in words
    assert page.find("div", id="interception"), "interception gets its own banner"
    assert "HTTPS inspection detected" in words and "Corp Inspection CA" in words
    assert samples.CERTIFICATE["topic"] in words
    ok = Page(render([samples._p("s", "h", 443, "tcp", "ok", 1.0)], fail_on=None))
    assert "All 1 probes ok" in " ".join(ok.text) and not ok.find("div", id="interception")
    assert ok.find("div", id="verdict")[0]["class"] == "verdict ok"


def test_not_ok_without_fail_on_is_informational():
    words = " ".join(Page(render(fail_on=None)).text)
    assert "fail_on is empty, so this report is informational" in words


@pytest.mark.parametrize("field", ["service", "host", "name", "address", "layer", "status", "remedy", "detail"])
def test_hostile_strings_are_escaped(field):
    probe = samples._p("svc", "host.example", 443, "tls", "refused", 1.0, remedy="r", detail="d")
    probe[field] = samples.HOSTILE
    text = render([probe], title=samples.HOSTILE, hostname=samples.HOSTILE,
                  certificates={"topic": samples.HOSTILE, "not_after": "2027-01-01T00:00:00Z"})
    page = Page(text)
    assert not page.find("script"), "no element injected"
    assert [t for t, _a in page.tags if t not in (
        "html", "head", "meta", "title", "style", "body", "header", "h1", "p", "b", "code", "section", "div", "span",
        "ul", "li", "h2", "table", "thead", "tr", "th", "tbody", "td", "ol", "br", "details", "summary", "footer",
        "br")] == []
    assert '<script>alert("x")</script>' in "".join(page.text), "the hostile string is shown as text"
    assert 'data-x="' not in text


def test_hostile_attribute_values_stay_in_their_attribute():
    probe = samples._p('a" onmouseover="alert(1)', 'b"><script>x</script>', 443, "tcp", "ok", 1.0)
    page = Page(render([probe]))
    assert not page.find("script")
    rows = [a for t, a in page.tags if t == "tr" and "data-service" in a]
    assert rows[0]["data-service"] == 'a" onmouseover="alert(1)'
    assert all(not k.startswith("on") for _t, a in page.tags for k in a)


def test_network_probe_result_renders():
    page = Page(render(samples.network_probe_result()))
    assert page.find("td", **{"data-layer": "dns", "data-status": "dns_failed"})
    assert page.find("td", **{"data-layer": "tcp", "data-status": "skipped"})


def test_empty_report():
    words = " ".join(Page(render([])).text)
    assert "No probes" in words
