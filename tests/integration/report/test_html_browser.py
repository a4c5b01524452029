"""The HTML report in a real headless browser (Debian's chromium): the matrix and a failed cell's remedy are in
the DOM the browser built, a hostile string did not become an element, and the page renders to a screenshot.

Skips when chromium is not installed, unless MDMOPS_BROWSER_REQUIRED=1 (then it fails). MDMOPS_CHROMIUM names
another binary.
"""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
from html.parser import HTMLParser

import pytest

from ansible_collections.mdmops.apple.plugins.plugin_utils._report._html import render_html
from tests.unit.report import samples

pytestmark = pytest.mark.slow


def chromium():
    for candidate in (os.environ.get("MDMOPS_CHROMIUM"), "chromium", "chromium-browser"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    if os.environ.get("MDMOPS_BROWSER_REQUIRED") == "1":
        pytest.fail("MDMOPS_BROWSER_REQUIRED=1 but no chromium found (apt-get install chromium)")
    pytest.skip("chromium not installed (apt-get install chromium); MDMOPS_BROWSER_REQUIRED=1 makes this a failure")


def browse(tmp_path, page, *extra):
    """Run headless chromium on a file URL with its own profile directory; return stdout."""
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
           "--user-data-dir=%s" % profile] + list(extra) + [page.as_uri()]
    # No D-Bus for the browser: the firewalld tests may run a system bus at the same time, and
    # chromium aborts (SIGABRT) when that bus does not answer its UPower queries.
    nobus = "unix:path=%s" % (tmp_path / "no-bus")
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=nobus, DBUS_SESSION_BUS_ADDRESS=nobus)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False, cwd=str(tmp_path), env=env)
    assert proc.returncode == 0, "chromium failed (%s):\n%s" % (proc.returncode, proc.stderr[-3000:])
    return proc.stdout


class Dom(HTMLParser):
    """The serialised DOM: elements with attributes, and the text inside each td."""

    def __init__(self, text):
        HTMLParser.__init__(self, convert_charrefs=True)
        self.elements = []
        self.cells = []
        self._cell = None
        self._in_title = False
        self.title = ""
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.elements.append((tag, attrs))
        self._in_title = tag == "title"
        if tag == "td":
            self._cell = {"attrs": attrs, "text": []}
            self.cells.append(self._cell)

    def handle_endtag(self, tag):
        self._in_title = False
        if tag == "td":
            self._cell = None

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        if self._cell is not None:
            self._cell["text"].append(data)


@pytest.fixture
def report_page(tmp_path):
    probes = samples.push_probes()
    probes.append(samples._p("hostile", "evil.example", 443, "tcp", "refused", 1.0, remedy=samples.HOSTILE,
                             detail='<img src=x onerror="document.title=1"><script>document.title="pwned"</script>'))
    page = tmp_path / "push-report.html"
    page.write_text(render_html(probes, fail_on=samples.FAIL_ON, certificates=samples.CERTIFICATE,
                                generated_at=samples.GENERATED_AT, hostname="mdm01.example.com"), encoding="utf-8")
    return page


def test_matrix_and_remedy_in_the_browser_dom(tmp_path, report_page):
    dom = Dom(browse(tmp_path, report_page, "--dump-dom"))
    tags = [t for t, _a in dom.elements]
    assert ("table", {"id": "matrix"}) in dom.elements, "the matrix is in the DOM"
    assert not [a for t, a in dom.elements if t in ("script", "img")], "hostile text did not become an element"
    assert not [a for _t, a in dom.elements if any(k.startswith("on") for k in a)]
    assert tags.count("tr") > len(samples.push_probes()) // 3
    intercepted = [c for c in dom.cells if c["attrs"].get("data-status") == "intercepted"]
    assert len(intercepted) == 1 and intercepted[0]["attrs"]["data-layer"] == "tls"
    text = " ".join("".join(intercepted[0]["text"]).split())
    assert "Exempt courier.push.apple.com from TLS/HTTPS inspection" in text
    timeout = [c for c in dom.cells if c["attrs"].get("data-status") == "timeout"][0]
    assert "a firewall silently drops TCP 2197" in " ".join("".join(timeout["text"]).split())
    shown = ["".join(c["text"]) for c in dom.cells]
    assert [t for t in shown if '<script>document.title="pwned"</script>' in t], "the hostile detail is text"
    assert [t for t in shown if '<script>alert("x")</script>' in t], "the hostile remedy is text"
    assert dom.title == "Apple push connectivity from mdm01.example.com", "no script ran"


def test_screenshot_renders(tmp_path, report_page):
    shot = tmp_path / "shot.png"
    browse(tmp_path, report_page, "--window-size=1280,1600", "--hide-scrollbars", "--screenshot=%s" % shot)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 1600)
    assert len(data) > 20000, "a page with content, not a blank image"
