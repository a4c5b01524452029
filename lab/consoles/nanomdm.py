"""NanoMDM's push-certificate API, as its source defines it (github.com/micromdm/nanomdm).

* ``current``: ``http/api/v1.go`` ``HandleAPIv1`` switches ``/v1/pushcert`` on the method: PUT to
  ``NewStorePushCertHandler``, GET to ``NewRetrievePushCertHandler``, anything else 405
  ``Method Not Allowed``.
* ``old`` (releases up to v0.9.0): every method goes to the store handler; a GET's empty body
  holds no PEM, so it answers 400 ``{"error": "tls: failed to find any PEM data in certificate
  input"}`` and stores nothing.

Store handler (``http/api/pushcert.go``): the body is PEM blocks; ``CERTIFICATE`` and
``*PRIVATE KEY`` taken (an encrypted key or any other block type: 400); the pair must match
(``tls.X509KeyPair``: 400); the certificate must carry a UID (the topic: 400 otherwise); stored
per topic (``storage/file``: ``<topic>.pem``/``.key``), expired or not, silently replacing the
topic's previous one; 200 ``{"topic", "not_after"}``. Read handler: ``topic`` query required
(400), a topic with nothing stored is a 500 with the storage's error (file storage: ``open
<dir>/<topic>.pem: no such file or directory``). JSON written with tab indentation, as Go's
encoder with ``SetIndent("", "\\t")``. Auth: basic, user ``nanomdm``; 401 otherwise.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Dict, List, Optional, Tuple

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from lab.consoles._server import ConsoleHandler, go_json, go_time

UID = NameOID.USER_ID
JSON = {"Content-type": "application/json"}
NO_PEM = "tls: failed to find any PEM data in certificate input"


def _blocks(body: bytes) -> List[Tuple[str, bytes]]:
    text = body.replace(b"----------", b"-----\n-----")
    return [(m.group(1).decode(), m.group(0)) for m in
            re.finditer(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", text, re.S)]


class NanoMDMHandler(ConsoleHandler):
    realm = "nanomdm"
    unauthorized_body = b"Unauthorized\n"

    def route(self, method, path, query, body):
        if path != "/v1/pushcert":
            return 404, {"Content-Type": "text/plain; charset=utf-8"}, b"404 page not found\n"
        if self.server.variant == "old":
            return self.store(body)
        if method == "PUT":
            return self.store(body)
        if method == "GET":
            return self.retrieve(query)
        return 405, {"Content-Type": "text/plain; charset=utf-8"}, b"Method Not Allowed\n"

    def error(self, status: int, text: str):
        return status, dict(JSON), go_json({"error": text})

    def store(self, body: bytes):
        cert_pem = key_pem = None
        for label, block in _blocks(body):
            if label == "CERTIFICATE":
                cert_pem = block
            elif label == "PRIVATE KEY" or label.endswith(" PRIVATE KEY"):
                if label == "ENCRYPTED PRIVATE KEY" or b"Proc-Type: 4,ENCRYPTED" in block:
                    return self.error(400, "private key PEM appears to be encrypted")
                key_pem = block
            else:
                return self.error(400, 'unrecognized PEM type: "%s"' % label)
        if cert_pem is None:
            return self.error(400, NO_PEM)
        if key_pem is None:
            return self.error(400, "tls: failed to find any PEM data in key input")
        try:
            cert = x509.load_pem_x509_certificate(cert_pem)
            key = serialization.load_pem_private_key(key_pem, None)
        except ValueError as exc:
            return self.error(400, "tls: failed to parse: %s" % exc)
        if key.public_key().public_numbers() != cert.public_key().public_numbers():
            return self.error(400, "tls: private key does not match public key")
        uids = cert.subject.get_attributes_for_oid(UID)
        if not uids:
            return self.error(400, "no UID attribute found in certificate subject")
        topic = uids[0].value
        if self.dry_run:        # fault accept_not_apply: the answer of a store, nothing stored
            self.note["accepted_not_applied"] = topic
        else:
            with self.server.lock:
                store = self.server.control.held()
                store[topic] = {"cert_pem": cert_pem.decode(), "key_pem": key_pem.decode(), "stored_at": go_time(
                    dt.datetime.now(dt.timezone.utc))}
                self.server.control.set_held(store)
            self.note["stored"] = topic
        return 200, dict(JSON), go_json({"not_after": go_time(cert.not_valid_after_utc), "topic": topic})

    def retrieve(self, query: Dict[str, List[str]]):
        topic = (query.get("topic") or [""])[0]
        if not topic:
            return self.error(400, "missing required query parameter: topic")
        held: Optional[dict] = self.server.control.held().get(topic)
        if not held:
            return self.error(500, "open db/%s.pem: no such file or directory" % topic)
        cert = x509.load_pem_x509_certificate(held["cert_pem"].encode())
        return 200, dict(JSON), go_json({"not_after": go_time(cert.not_valid_after_utc), "topic": topic})


HANDLER = NanoMDMHandler
USER = "nanomdm"
