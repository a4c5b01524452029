"""The console emulators in the lab: spawned in net on their fixed addresses (198.51.100.230-233),
HTTPS under the lab CA, used from the corp namespace by the adapters as a module would be."""
from __future__ import annotations

import json

import pytest

from lab import consoles

pytestmark = pytest.mark.lab

SNIPPET = r"""
import json
from ansible_collections.mdmops.apple.plugins.module_utils._consoles._base import ConsoleError, compare, connect
from ansible_collections.mdmops.apple.plugins.module_utils._consoles._common import certificate_facts
from lab.pki import ApplePushPKI
pki = ApplePushPKI()
out = {}
for name, url, key in %(targets)s:
    kind = name.split("-")[0]
    cert = pki.push()
    console = connect(kind, url, api_key=key, ca_path=%(ca)r, timeout=10, trust_env=False)
    before = console.read(cert.topic)
    console.upload(cert.cert_pem(), cert.key_pem())
    after = console.read(cert.topic)
    try:
        connect(kind, url, api_key="wrong-" + key, ca_path=%(ca)r, trust_env=False).read(cert.topic)
        refused = None
    except ConsoleError as exc:
        refused = [exc.kind, exc.status, key in str(exc)]
    try:
        connect(kind, url, api_key=key, trust_env=False).read(cert.topic)   # system store: lab CA unknown
        untrusted = None
    except ConsoleError as exc:
        untrusted = exc.kind
    out[name] = {"before": None if before is None else before.known,
                 "verdict": compare(after, certificate_facts(cert.cert), console.capabilities.identity)[0],
                 "refused": refused, "untrusted": untrusted, "topic": cert.topic}
print(json.dumps(out))
"""


def test_emulators_in_the_lab_answer_the_adapters_from_corp(lab, in_ns):
    # basic-auth consoles (Intune's emulator has its own lab test: test_intune_lab.py)
    started = [consoles.start(lab, name) for name, spec in consoles.LAB_CONSOLES.items() if spec[0] != "intune"]
    try:
        targets = [(e.name, e.url, e.api_key) for e in started]
        result = in_ns("corp", SNIPPET % {"targets": repr(targets), "ca": lab.ca_path}, timeout=120)
        for e in started:
            got = result[e.name]
            old = e.variant == "old"
            assert got["before"] is (False if old else None), e.name
            assert got["verdict"] == ("unknown" if old else "same"), e.name
            assert got["refused"] == ["auth", 401, False], e.name
            assert got["untrusted"] == "tls", e.name
            writes = e.control.writes()
            assert len(writes) == 1 and writes[0]["method"] == "PUT", e.name
            assert e.api_key not in json.dumps(e.control.requests())
    finally:
        for e in started:
            lab.stop(e.process)
