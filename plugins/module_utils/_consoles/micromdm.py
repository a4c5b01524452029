# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""MicroMDM (github.com/micromdm/micromdm): the push certificate through its config API.

What its source says (read, not copied):

* Auth: HTTP basic, user ``micromdm``, password the ``-api-key``
  (``pkg/httputil/httputil.go`` ``EncodeRequestWithToken``/``RequireBasicAuth``: 401
  ``Authorization Required`` with ``WWW-Authenticate: Basic realm=...``).
* ``PUT /v1/config/certificate`` (``platform/config/save_push_certificate.go``; the route is
  registered by the config package's ``RegisterHTTPHandlers``, ``Methods("PUT")``): JSON ``{"cert": ..., "key": ...}``
  where both are Go ``[]byte``, so base64 in JSON, of the PEM certificate and the PEM key. It
  stores them as given (``platform/config/builtin/db.go`` ``SavePushCertificate``: no check at
  all) and answers 200 ``{}``; errors are 500 ``{"error": ...}`` (``httputil.ErrorEncoder``).
* ``GET /v1/config/certificate`` (``platform/config/get_push_certificate.go``; older releases
  register only the PUT, and answer a GET with 405): 200 ``{"cert": <base64 of the DER
  certificate>}``. The server re-reads the stored pair to answer (``builtin/db.go``
  ``PushCertificate``): the key must be PKCS#1 (``x509.ParsePKCS1PrivateKey``), so this adapter
  always sends ``RSA PRIVATE KEY`` PEM; a pair it cannot parse, or no configuration at all, is a
  500 (``not found: ServerConfig no config found in boltdb``).
* One certificate per server: an upload replaces it. No delete route.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Dict, Optional

from ansible_collections.mdmops.apple.plugins.module_utils._consoles._base import (
    Capabilities,
    Console,
    ConsoleError,
    Held,
)
from ansible_collections.mdmops.apple.plugins.module_utils._consoles._common import (
    certificate_facts,
    certificate_pem,
    unencrypted_key_pem,
)
from ansible_collections.mdmops.apple.plugins.module_utils._http import BasicAuth, HttpError, Session

PATH = "/v1/config/certificate"
NOT_CONFIGURED = ("not found", "no config found")

try:
    from cryptography import x509
except ImportError:  # pragma: no cover - _material reports the missing library
    pass


class MicroMDM(Console):
    name = "micromdm"
    title = "MicroMDM"
    user = "micromdm"
    capabilities = Capabilities(holds_private_key=False, can_read=True, can_remove=False, can_csr=False,
                                per_topic=False, identity="fingerprint")
    reference = ("https://github.com/micromdm/micromdm (platform/config/save_push_certificate.go, "
                 "get_push_certificate.go, builtin/db.go, pkg/httputil/httputil.go)")

    @classmethod
    def from_options(cls, url: str, *, api_key: Optional[str] = None, username: Optional[str] = None,
                     password: Optional[str] = None, **session_options: Any) -> "MicroMDM":
        key = api_key or password
        if not key:
            raise ConsoleError("MicroMDM (connect): api_key is required (the server's -api-key; MicroMDM takes it as "
                               "the password of user 'micromdm')", console=cls.name, step="connect", kind="input")
        return cls(Session(url, auth=BasicAuth(username or cls.user, key), **session_options))

    def read(self, topic: Optional[str] = None) -> Optional[Held]:
        if not self.capabilities.can_read:
            return Held.unknown("this MicroMDM server has no GET %s route: it cannot tell which certificate "
                                "it holds" % PATH)
        try:
            resp = self.session.request("GET", PATH, expect=None, what="read the push certificate")
        except HttpError as exc:
            raise self.http_error("read", exc) from None
        error = resp.error_field("error")
        if resp.status in (404, 405):
            self.capabilities = Capabilities(can_read=False, identity=self.capabilities.identity)
            return Held.unknown("this MicroMDM server has no GET %s route (answered %s): it cannot tell which "
                                "certificate it holds; upgrade MicroMDM to let the module compare"
                                % (PATH, resp.status))
        if resp.status in (401, 403):
            raise self.http_error("read", HttpError("GET %s answered %s" % (resp.url, resp.status),
                                                    status=resp.status)) from None
        if resp.status == 500 and any(m in error.lower() for m in NOT_CONFIGURED):
            return None
        if resp.status != 200:
            raise self.error("read", "GET %s answered %s: %s" % (resp.url, resp.status,
                                                                 error or resp.excerpt() or "empty body"),
                             status=resp.status, kind="http")
        try:
            body = resp.json()
        except HttpError as exc:
            raise self.error("read", str(exc), status=200, kind="answer") from None
        encoded = body.get("cert") if isinstance(body, dict) else None
        if not encoded:
            return None
        try:
            der = base64.b64decode(encoded, validate=True)
            cert = x509.load_der_x509_certificate(der)
        except (binascii.Error, ValueError, TypeError) as exc:
            raise self.error("read", "GET %s answered a cert that is not a base64 DER certificate (%s)"
                             % (PATH, exc), status=200, kind="answer") from None
        facts = certificate_facts(cert)
        return Held(topic=facts["topic"], serial=facts["serial_number"], not_after=facts["not_after"],
                    fingerprint_sha256=facts["fingerprint_sha256"], certificate_pem=certificate_pem(cert),
                    facts={"cert": "(%d bytes DER)" % len(der)})

    def upload(self, cert_pem: bytes, key_pem: Optional[bytes] = None, apple_id: Optional[str] = None) -> Dict[str, Any]:
        if not key_pem:
            raise self.error("upload", "MicroMDM needs the certificate's private key (privatekey_path or "
                             "privatekey_content): it signs pushes with it", kind="input")
        self.session.add_secret(key_pem.decode("ascii", "replace").strip())
        try:
            pkcs1 = unencrypted_key_pem(key_pem, "pkcs1")
        except (ValueError, TypeError) as exc:
            raise self.error("upload", "MicroMDM needs an unencrypted RSA key, which it reads as PKCS#1: %s"
                             % exc, kind="input") from None
        self.session.add_secret(pkcs1.decode("ascii").strip())
        encoded_key = base64.b64encode(pkcs1).decode("ascii")
        self.session.add_secret(encoded_key)
        body = {"cert": base64.b64encode(cert_pem).decode("ascii"), "key": encoded_key}
        try:
            resp = self.session.request("PUT", PATH, json_body=body, expect=None,
                                        what="upload the push certificate")
        except HttpError as exc:
            raise self.http_error("upload", exc) from None
        if resp.status in (401, 403):
            raise self.http_error("upload", HttpError("PUT %s answered %s" % (resp.url, resp.status),
                                                      status=resp.status)) from None
        if resp.status != 200:
            raise self.error("upload", "PUT %s answered %s: %s" % (resp.url, resp.status, resp.error_field("error")
                                                                   or resp.excerpt() or "empty body"),
                             status=resp.status, kind="http")
        error = resp.error_field("error")
        if error:
            raise self.error("upload", "PUT %s answered 200 with an error: %s" % (PATH, error), status=200,
                             kind="answer")
        return {"status": resp.status}


ADAPTER = MicroMDM
