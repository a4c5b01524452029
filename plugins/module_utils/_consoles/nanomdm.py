# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""NanoMDM (github.com/micromdm/nanomdm): the push certificate through its API.

What its source says (read, not copied):

* Auth: HTTP basic, user ``nanomdm``, password the ``-api`` key (``docs/operations-guide.md``,
  "-api string"); a wrong key gets 401.
* ``PUT /v1/pushcert`` (``http/api/pushcert.go``, ``NewStorePushCertHandler``; older releases
  ``http/api/api.go``, ``StorePushCertHandler``): the body is the PEM certificate and the
  unencrypted PEM key concatenated, nothing around them. The server checks that they are a pair
  (``tls.X509KeyPair``) and that the certificate has a topic (UID), stores them under that topic
  and answers 200 ``{"topic": ..., "not_after": ...}`` (Go ``time.Time``, RFC 3339). Bad input is
  400 ``{"error": ...}`` (older releases: 500 with ``error`` beside ``topic``); storage errors 500.
  It accepts expired certificates and overwrites the topic's certificate silently: our guards are
  the only protection.
* ``GET /v1/pushcert?topic=<topic>`` (``NewRetrievePushCertHandler``, registered beside the PUT in
  ``http/api/v1.go`` ``HandleAPIv1`` with a switch on the method, other methods 405; added by pull
  request #243, merged 2026-03-13, so not in releases up to v0.9.0):
  200 ``{"topic", "not_after"}`` of the stored certificate, 400 without ``topic``, 500 when the
  storage has none for the topic (file storage: ``open <dir>/<topic>.pem: no such file or
  directory``; SQL storage: ``sql: no rows in result set``). Topic and expiry are all it returns:
  no serial, no fingerprint.
* Servers without the read route pass a GET to the upload handler, which finds no PEM in the empty
  body: 400 (500 in the oldest) ``{"error": "tls: failed to find any PEM data in certificate
  input"}``, nothing stored. This adapter reads that as "cannot tell" (``Held.known=False``).
* Certificates are kept per topic (``storage/file/pushcert.go``: ``<topic>.pem`` / ``.key``): an
  upload with another topic adds a certificate, the old topic's stays.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from ansible_collections.mdmops.apple.plugins.module_utils._consoles._base import (
    Capabilities,
    Console,
    ConsoleError,
    Held,
)
from ansible_collections.mdmops.apple.plugins.module_utils._consoles._common import iso, load_certificate_pem
from ansible_collections.mdmops.apple.plugins.module_utils._http import BasicAuth, HttpError, Session
from ansible_collections.mdmops.apple.plugins.module_utils._push._material import push_topic

PATH = "/v1/pushcert"
NO_PEM = "failed to find any pem data"
NOT_STORED = ("no such file or directory", "no rows in result set", "not found", "does not exist")


class NanoMDM(Console):
    name = "nanomdm"
    title = "NanoMDM"
    user = "nanomdm"
    capabilities = Capabilities(holds_private_key=False, can_read=True, can_remove=False, can_csr=False,
                                per_topic=True, identity="not_after")
    reference = "https://github.com/micromdm/nanomdm (http/api/pushcert.go, http/api/v1.go, docs/operations-guide.md)"

    @classmethod
    def from_options(cls, url: str, *, api_key: Optional[str] = None, username: Optional[str] = None,
                     password: Optional[str] = None, **session_options: Any) -> "NanoMDM":
        key = api_key or password
        if not key:
            raise ConsoleError("NanoMDM (connect): api_key is required (the server's -api key; NanoMDM takes it as "
                               "the password of user 'nanomdm')", console=cls.name, step="connect", kind="input")
        return cls(Session(url, auth=BasicAuth(username or cls.user, key), **session_options))

    # -- read --------------------------------------------------------------------
    def read(self, topic: Optional[str] = None) -> Optional[Held]:
        if not self.capabilities.can_read:
            return Held.unknown("this NanoMDM server has no read route (GET /v1/pushcert, added after v0.9.0): "
                                "it cannot tell which certificate it holds", route=PATH)
        if not topic:
            return Held.unknown("NanoMDM keeps one certificate per topic and reads by topic: give the topic "
                                "(expected_topic) to read what it holds")
        try:
            resp = self.session.request("GET", PATH, params={"topic": topic}, expect=None,
                                        what="read the push certificate")
        except HttpError as exc:
            raise self.http_error("read", exc) from None
        error = _error_text(resp)
        if resp.status == 200:
            body = _json(self, resp, "read")
            if not isinstance(body, dict) or not body.get("topic"):
                raise self.error("read", "GET %s answered 200 without a topic: %s" % (PATH, resp.excerpt()),
                                 status=200, kind="answer")
            return Held(topic=body.get("topic"), not_after=iso(body.get("not_after")),
                        facts={"topic": body.get("topic"), "not_after": body.get("not_after")})
        if resp.status == 405 or (resp.status in (400, 500) and NO_PEM in error.lower()):
            self.capabilities = _without_read(self.capabilities)
            return Held.unknown("this NanoMDM server has no read route (GET /v1/pushcert, added after v0.9.0; it "
                                "answered %s: %s): it cannot tell which certificate it holds; upgrade NanoMDM to "
                                "let the module compare" % (resp.status, error or resp.excerpt()), route=PATH)
        if resp.status == 500 and any(marker in error.lower() for marker in NOT_STORED):
            return None
        if resp.status in (401, 403):
            raise self.http_error("read", HttpError("GET %s answered %s" % (resp.url, resp.status),
                                                    status=resp.status)) from None
        detail = error or resp.excerpt() or "empty body"
        raise self.error("read", "GET %s answered %s: %s" % (resp.url, resp.status, detail),
                         status=resp.status, kind="http")

    # -- upload -----------------------------------------------------------------
    def upload(self, cert_pem: bytes, key_pem: Optional[bytes] = None, apple_id: Optional[str] = None) -> Dict[str, Any]:
        if not key_pem:
            raise self.error("upload", "NanoMDM needs the certificate's private key (privatekey_path or "
                             "privatekey_content): it signs pushes with it", kind="input")
        if b"ENCRYPTED" in key_pem:
            raise self.error("upload", "NanoMDM takes an unencrypted key only; give privatekey_passphrase so the key "
                             "is decrypted before the upload", kind="input")
        self.session.add_secret(key_pem.decode("ascii", "replace").strip())
        topic = push_topic(load_certificate_pem(cert_pem))
        body = cert_pem.rstrip(b"\n") + b"\n" + key_pem.strip() + b"\n"
        try:
            resp = self.session.request("PUT", PATH, content=body, headers={"Content-Type": "text/plain"},
                                        expect=None, what="upload the push certificate")
        except HttpError as exc:
            raise self.http_error("upload", exc) from None
        if resp.status != 200:
            if resp.status in (401, 403):
                raise self.http_error("upload", HttpError("PUT %s answered %s" % (resp.url, resp.status),
                                                          status=resp.status)) from None
            raise self.error("upload", "PUT %s answered %s: %s" % (resp.url, resp.status, _error_text(resp)
                                                                   or resp.excerpt() or "empty body"),
                             status=resp.status, kind="http")
        answer = _json(self, resp, "upload")
        if not isinstance(answer, dict) or answer.get("error"):
            raise self.error("upload", "PUT %s answered 200 with an error: %s" % (PATH, resp.excerpt()),
                             status=200, kind="answer")
        if answer.get("topic") != topic:
            raise self.error("upload", "NanoMDM stored the certificate under topic %r, not its topic %r: check the "
                             "server" % (answer.get("topic"), topic), status=200, kind="answer")
        return {"topic": answer.get("topic"), "not_after": iso(answer.get("not_after"))}


def _without_read(caps: Capabilities) -> Capabilities:
    return Capabilities(holds_private_key=caps.holds_private_key, can_read=False, can_remove=caps.can_remove,
                        can_csr=caps.can_csr, per_topic=caps.per_topic, identity=caps.identity)


def _error_text(resp: Any) -> str:
    return resp.error_field("error")


def _json(console: Console, resp: Any, step: str) -> Any:
    try:
        return resp.json()
    except HttpError as exc:
        raise console.error(step, str(exc), status=resp.status, kind="answer") from None


ADAPTER = NanoMDM
