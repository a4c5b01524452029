"""MicroMDM's push-certificate config API, as its source defines it (github.com/micromdm/micromdm).

* ``PUT /v1/config/certificate`` (``platform/config/save_push_certificate.go``): JSON
  ``{"cert": <base64>, "key": <base64>}`` (Go ``[]byte`` fields); a body that does not decode is
  a 500 ``{"error": ...}`` (go-kit's error encoder, ``pkg/httputil/httputil.go``). Stored as
  given, without any check (``platform/config/builtin/db.go`` ``SavePushCertificate``);
  answer 200 ``{}``.
* ``GET /v1/config/certificate`` (``get_push_certificate.go``; ``current`` only, the ``old``
  variant registers the PUT alone and answers 405): the stored pair is parsed again
  (``PushCertificate``: PEM certificate, PKCS#1 key) and the certificate returned as
  ``{"cert": <base64 of DER>}``; nothing stored or an unparsable pair is a 500 with the wrapped
  error. Other methods: 405. JSON indented with two spaces.
* Auth: ``RequireBasicAuth``-style: user ``micromdm``; 401 ``Authorization Required``.
"""
from __future__ import annotations

import base64
import binascii
import json
import re

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from lab.consoles._server import ConsoleHandler, go_json

JSON = {"Content-Type": "application/json; charset=utf-8"}
PREFIX = "get push certificate: "
PEM_LABEL = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")


class MicroMDMHandler(ConsoleHandler):
    realm = "micromdm"
    unauthorized_body = b"Authorization Required\n"

    def route(self, method, path, query, body):
        if path != "/v1/config/certificate":
            return 404, {"Content-Type": "text/plain; charset=utf-8"}, b"404 page not found\n"
        if method == "PUT":
            return self.save(body)
        if method == "GET" and self.server.variant != "old":
            return self.get()
        return 405, {}, b""

    def error(self, text: str, status: int = 500):
        return status, dict(JSON), go_json({"error": text}, indent="  ")

    def save(self, body: bytes):
        try:
            request = json.loads(body.decode("utf-8"))
            cert = base64.b64decode(request.get("cert") or "", validate=True)
            key = base64.b64decode(request.get("key") or "", validate=True)
        except (ValueError, UnicodeDecodeError, AttributeError, binascii.Error) as exc:
            return self.error("illegal base64 data or JSON: %s" % exc)
        if self.dry_run:
            self.note["accepted_not_applied"] = True
        else:
            with self.server.lock:
                self.server.control.set_held({"cert_pem": cert.decode("latin-1"), "key_pem": key.decode("latin-1")})
            self.note["stored"] = True
        return 200, dict(JSON), go_json({}, indent="  ")

    def get(self):
        held = self.server.control.held()
        if not held.get("cert_pem"):
            return self.error(PREFIX + "get server config for push cert: get server config from bolt: "
                              "not found: ServerConfig no config found in boltdb")
        key_pem = held.get("key_pem", "").encode("latin-1")
        label = PEM_LABEL.search(key_pem)
        if not label or label.group(1) != b"RSA PRIVATE KEY":        # MicroMDM parses PKCS#1 only
            if not label or not label.group(1).endswith(b"PRIVATE KEY"):
                return self.error(PREFIX + "decode private key for push cert")
            return self.error(PREFIX + "parse push certificate key from server config: x509: failed to parse "
                              "private key (use ParsePKCS8PrivateKey instead for this key format)")
        try:
            key = serialization.load_pem_private_key(key_pem, None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ValueError("not RSA")
        except ValueError:
            return self.error(PREFIX + "parse push certificate key from server config: x509: malformed private key")
        try:
            cert = x509.load_pem_x509_certificate(held["cert_pem"].encode("latin-1"))
        except ValueError:
            return self.error(PREFIX + "decode push certificate PEM")
        encoded = base64.b64encode(cert.public_bytes(Encoding.DER)).decode("ascii")
        return 200, dict(JSON), go_json({"cert": encoded}, indent="  ")


HANDLER = MicroMDMHandler
USER = "micromdm"
