"""The Intune emulator in the lab: spawned in net on 198.51.100.234:9444 (Graph and its token
endpoint on one address, HTTPS under the lab CA), used from corp by the adapter as a module would:
token, read, Intune's CSR, an upload of the certificate "Apple" signed for it (no key sent), read
back; a wrong secret and an untrusted CA refused."""
from __future__ import annotations

import json

import pytest

from lab import consoles
from lab.consoles import intune as emi
from lab.pki import ApplePushPKI

pytestmark = pytest.mark.lab

SNIPPET = r"""
import json
from ansible_collections.mdmops.apple.plugins.module_utils._consoles._base import ConsoleError, compare, connect
from ansible_collections.mdmops.apple.plugins.module_utils._consoles._common import certificate_facts, load_certificate_pem
cert_pem = %(cert)r.encode()
options = dict(token_url=%(url)r, tenant_id=%(tenant)r, client_id=%(client)r, timeout=10, trust_env=False)
console = connect("intune", %(url)r, client_secret=%(secret)r, ca_path=%(ca)r, **options)
out = {"before": console.read(), "csr": console.csr()[:35]}
out["answer"] = console.upload(cert_pem, None, "mdm-admin@example.com")
after = console.read()
out["verdict"] = compare(after, certificate_facts(load_certificate_pem(cert_pem)), console.capabilities.identity)[0]
out["after"] = after.as_dict()
try:
    connect("intune", %(url)r, client_secret="wrong-" + %(secret)r, ca_path=%(ca)r, **options).read()
except ConsoleError as exc:
    out["refused"] = [exc.step, exc.kind, exc.status, %(secret)r in str(exc)]
try:
    connect("intune", %(url)r, client_secret=%(secret)r, **options).read()     # system store: lab CA unknown
except ConsoleError as exc:
    out["untrusted"] = exc.kind
print(json.dumps(out))
"""


def test_intune_emulator_in_the_lab_answers_the_adapter_from_corp(lab, in_ns):
    endpoint = consoles.start(lab, "intune")
    try:
        assert endpoint.url == "https://198.51.100.234:9444"
        key = emi.tenant_key(endpoint.control)                   # what Intune keeps; "Apple" signs for it
        issued = ApplePushPKI().push(key=key)
        result = in_ns("corp", SNIPPET % {"cert": issued.cert_pem().decode(), "url": endpoint.url,
                                          "tenant": emi.TENANT_ID, "client": emi.CLIENT_ID,
                                          "secret": endpoint.api_key, "ca": lab.ca_path}, timeout=120)
        assert result["before"] is None and result["csr"].startswith("-----BEGIN CERTIFICATE REQUEST")
        assert result["answer"]["topic"] == issued.topic and result["answer"]["key_sent"] is False
        assert result["verdict"] == "same" and result["after"]["serial_number"] == str(issued.cert.serial_number)
        assert result["refused"] == ["token", "auth", 401, False]
        assert result["untrusted"] == "tls"
        log = endpoint.control.requests()
        writes = endpoint.control.writes()
        assert len(writes) == 1 and writes[0]["method"] == "PATCH" and not writes[0].get("key_in_body")
        assert [r.get("token_refused") for r in log if r["path"].endswith("/token")].count("secret") == 1
        assert endpoint.api_key not in json.dumps(log)
    finally:
        lab.stop(endpoint.process)
