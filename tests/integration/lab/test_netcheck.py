"""tests/lib/netcheck.py, the one connect/DNS helper, against the lab."""
from __future__ import annotations

import pytest

from tests.lib.netcheck import connect, resolve

pytestmark = pytest.mark.lab


def test_connect_reports_each_target(lab):
    got = connect(lab, [("api.push.apple.com", 443, "tcp"), ("no-such-host.example", 443, "tcp")])
    assert got[("api.push.apple.com", 443, "tcp")] == "ok"
    assert got[("no-such-host.example", 443, "tcp")].startswith("dns: ")


def test_resolve_answers_what_the_lab_dns_serves(lab):
    v4, v6 = lab.resolve("albert.apple.com")
    got = resolve(lab, ["albert.apple.com", "no-such-host.example"])
    assert got["albert.apple.com"] == sorted([v4, v6])
    assert got["no-such-host.example"].startswith("dns: ")
    assert resolve(lab, ["albert.apple.com"], family=4) == {"albert.apple.com": [v4]}
