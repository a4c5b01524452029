# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Microsoft Intune: the Apple MDM push certificate through Microsoft Graph (v1.0).

What Microsoft documents (read, not copied):

* The resource ``applePushNotificationCertificate`` (one per tenant, a singleton under
  ``deviceManagement``): ``appleIdentifier`` (the Apple Account that created the certificate),
  ``topicIdentifier``, ``expirationDateTime``, ``lastModifiedDateTime``,
  ``certificateSerialNumber`` (read-only), ``certificateUploadStatus``,
  ``certificateUploadFailureReason``, ``certificate``
  (https://learn.microsoft.com/graph/api/resources/intune-devices-applepushnotificationcertificate).
* ``GET /v1.0/deviceManagement/applePushNotificationCertificate``: 200 with the object
  (https://learn.microsoft.com/graph/api/intune-devices-applepushnotificationcertificate-get). The
  page's example wraps it in ``{"value": {...}}``, unlike every other Graph entity read; the adapter
  accepts both shapes.
* ``PATCH`` of the same URL with the properties to set: 200 with the updated object
  (https://learn.microsoft.com/graph/api/intune-devices-applepushnotificationcertificate-update).
  We send ``appleIdentifier`` and ``certificate`` (the PEM text Apple's portal gives) and nothing
  else: Intune made the CSR and keeps its private key, so no key ever leaves this host. A 204 (no
  body, which Graph uses for many PATCHes) is accepted too. The PATCH sets a value, so it is
  repeated after a 502/504 or a broken connection (``idempotent=True``).
* ``GET .../downloadApplePushNotificationCertificateSigningRequest()`` (an OData function): 200
  ``{"value": "<the CSR>"}``
  (https://learn.microsoft.com/graph/api/intune-devices-applepushnotificationcertificate-downloadapplepushnotificationcertificatesigningrequest).
  The value's encoding is not documented: PEM text, base64 of the PEM file, or base64 DER are all
  read and returned as PEM.
* Permission: the application permission ``DeviceManagementServiceConfig.ReadWrite.All`` (admin
  consent granted) for all three; Graph answers 403 without it.
* Token: OAuth 2.0 client credentials, ``POST {token_url}/{tenant_id}/oauth2/v2.0/token`` with a
  form of ``client_id``, ``client_secret``, ``scope={url}/.default``, ``grant_type=client_credentials``
  (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow); errors are
  ``{"error", "error_description", "error_codes": [AADSTS numbers]}``
  (https://learn.microsoft.com/entra/identity-platform/reference-error-codes). A token expires
  (``expires_in``, about an hour): a 401 from Graph gets one new token and one more try.
* Graph errors are ``{"error": {"code", "message", "innerError": {"request-id", "date"}}}``
  (https://learn.microsoft.com/graph/errors); throttling is 429 with ``Retry-After`` that may be
  missing, and 503/504 under load (https://learn.microsoft.com/graph/throttling): the HTTP layer
  retries them.
* National clouds (https://learn.microsoft.com/graph/deployments): ``url``/``token_url`` are
  ``https://graph.microsoft.us``/``https://login.microsoftonline.us`` (US Government L4),
  ``https://dod-graph.microsoft.us``/``https://login.microsoftonline.us`` (L5, DoD),
  ``https://microsoftgraph.chinacloudapi.cn``/``https://login.chinacloudapi.cn`` (21Vianet). The
  scope always follows ``url``.

Microsoft documents ``certificateSerialNumber`` as a read-only string, not its form. It is read as
the hexadecimal serial, as .NET's ``X509Certificate2.SerialNumber`` writes it (colons and spaces
ignored), turned into the decimal form push_certificate_info reports; a value of digits only is
read as decimal too (``Held.serial_alternatives``), and :func:`compare` takes the reading that
names the certificate, so either form gives the same answers. A value that is neither leaves the
serial unknown, so :func:`compare` answers ``unknown`` and nothing is claimed.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import quote, urlsplit

from ansible_collections.mdmops.apple.plugins.module_utils._consoles._base import (
    Capabilities,
    Console,
    ConsoleError,
    Held,
)
from ansible_collections.mdmops.apple.plugins.module_utils._consoles._common import (
    certificate_facts,
    certificate_pem,
    iso,
    load_certificate_pem,
)
from ansible_collections.mdmops.apple.plugins.module_utils._http import BearerAuth, HttpError, Session

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
except ImportError:  # pragma: no cover - _material reports the missing library
    pass

DEFAULT_URL = "https://graph.microsoft.com"
DEFAULT_TOKEN_URL = "https://login.microsoftonline.com"
RESOURCE = "/v1.0/deviceManagement/applePushNotificationCertificate"
CSR_FUNCTION = RESOURCE + "/downloadApplePushNotificationCertificateSigningRequest()"
PERMISSION = "DeviceManagementServiceConfig.ReadWrite.All"
FIELDS = ("id", "appleIdentifier", "topicIdentifier", "expirationDateTime", "lastModifiedDateTime",
          "certificateSerialNumber", "certificateUploadStatus", "certificateUploadFailureReason")
FAILED_STATUS = re.compile(r"(?i)fail|error|invalid|reject")
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,253}$")
_HEX = re.compile(r"^[0-9A-Fa-f]+$")

# AADSTS code -> what to do (the common ones of the client credentials flow)
AADSTS_HINTS = {
    7000215: "the client secret is wrong: give the secret's value (not its ID) of the app registration",
    7000222: "the client secret has expired: create a new one in the app registration",
    700016: "no application with this client_id in the tenant: check client_id and tenant_id (and that "
            "the app is registered in this cloud)",
    90002: "tenant_id names no tenant in this cloud: check tenant_id, and token_url for a national cloud",
    900023: "tenant_id is not a valid tenant ID or domain name",
    70011: "the scope is not valid: url must be the Graph root of the tenant's cloud",
    1002012: "the scope is not valid: url must be the Graph root of the tenant's cloud",
    500011: "the resource (url) is not known in this tenant's cloud: check url and token_url",
    7000218: "the request carried no client secret",
}


def serials_from_graph(value: Any) -> Tuple[str, ...]:
    """The decimal serials Graph's ``certificateSerialNumber`` may stand for (see the module
    docstring): its hex reading, then, for plain digits, its decimal reading; () when it is neither.
    A ``0x`` prefix, colons or spaces can only be hex: no decimal reading then."""
    if not isinstance(value, str):
        return ()
    plain = value.strip()
    text = plain.replace(":", "").replace(" ", "")
    if text.lower().startswith("0x"):
        text = text[2:]
    if not text or not _HEX.match(text):
        return ()
    readings = [str(int(text, 16))]
    if plain.isdigit() and str(int(plain, 10)) != readings[0]:
        readings.append(str(int(text, 10)))
    return tuple(readings)


def serial_from_graph(value: Any) -> Optional[str]:
    """The first reading of Graph's ``certificateSerialNumber`` (:func:`serials_from_graph`): the
    decimal serial of its hex; None when it is empty or not hex."""
    readings = serials_from_graph(value)
    return readings[0] if readings else None


def csr_pem_from_value(value: Any) -> str:
    """The CSR as PEM text from the function's ``value`` (PEM, base64 of PEM, or base64 DER);
    ValueError with a plain message when it is none of those."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("the answer holds no CSR (value is empty)")
    data = value.strip().encode("ascii", "replace")
    candidates: List[bytes] = [data]
    if b"-----BEGIN" not in data:
        try:
            candidates.append(base64.b64decode(b"".join(data.split()), validate=True))
        except (binascii.Error, ValueError):
            pass
    for blob in candidates:
        try:
            if b"-----BEGIN" in blob:
                csr = x509.load_pem_x509_csr(blob.strip() + b"\n")
            else:
                csr = x509.load_der_x509_csr(blob)
        except ValueError:
            continue
        return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")
    raise ValueError("the answer's value is not a certificate signing request (PEM, or base64 of PEM or DER)")


def graph_error(resp: Any) -> str:
    """``code: message (request-id ...)`` of a Graph error body, redacted and short; '' otherwise."""
    try:
        body = json.loads(resp.text)
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return ""
    inner = error.get("innerError") or error.get("innererror") or {}
    request_id = inner.get("request-id") if isinstance(inner, dict) else None
    text = "%s: %s" % (error.get("code") or "error", error.get("message") or "")
    if request_id:
        text += " (request-id %s)" % request_id
    return resp.redact(" ".join(text.split()))[:400]


class Intune(Console):
    name = "intune"
    title = "Microsoft Intune"
    capabilities = Capabilities(holds_private_key=True, can_read=True, can_remove=False, can_csr=True,
                                per_topic=False, identity="serial")
    reference = ("https://learn.microsoft.com/graph/api/resources/intune-devices-applepushnotificationcertificate "
                 "(get, update, downloadApplePushNotificationCertificateSigningRequest); "
                 "https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow")

    def __init__(self, session: Session, token_session: Optional[Session] = None, *, tenant_id: str = "",
                 client_id: str = "", client_secret: str = "", scope: str = "") -> None:
        super().__init__(session)
        self.token_session = token_session
        self.tenant_id = tenant_id
        self.client_id = client_id
        self._client_secret = client_secret
        self.scope = scope
        self.tokens_issued = 0

    @classmethod
    def from_options(cls, url: Optional[str] = None, *, tenant_id: Optional[str] = None,
                     client_id: Optional[str] = None, client_secret: Optional[str] = None,
                     token_url: Optional[str] = None, **session_options: Any) -> "Intune":
        """``api_key``, ``username`` and ``password`` (which ``connect`` always passes) are not used:
        they are taken out of ``session_options`` (so they are not in this signature, which callers
        read to tell which credentials a console uses)."""
        api_key, username, password = (session_options.pop(k, None) for k in ("api_key", "username", "password"))

        def refuse(message: str) -> ConsoleError:
            return ConsoleError("Microsoft Intune (connect): " + message, console=cls.name, step="connect",
                                kind="input")

        missing = [n for n, v in (("tenant_id", tenant_id), ("client_id", client_id),
                                  ("client_secret", client_secret)) if not v]
        if missing:
            extra = ""
            if api_key or password or username:
                extra = (" (Intune does not use api_key, username or password: give the app registration's "
                         "client_id and client_secret)")
            raise refuse("%s required: the Microsoft Entra tenant, and the client ID and secret of an app "
                         "registration with the Graph application permission %s%s"
                         % (" and ".join(missing) + (" are" if len(missing) > 1 else " is"), PERMISSION, extra))
        tenant = str(tenant_id).strip()
        if not _TENANT.match(tenant):
            raise refuse("tenant_id %r is neither a tenant ID (a GUID) nor a domain name "
                         "(contoso.onmicrosoft.com)" % tenant)
        graph = (url or DEFAULT_URL).rstrip("/")
        login = (token_url or DEFAULT_TOKEN_URL).rstrip("/")
        for option, value in (("url", graph), ("token_url", login)):
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise refuse("%s %r is not an http(s) URL with a host (e.g. %s)"
                             % (option, value, DEFAULT_URL if option == "url" else DEFAULT_TOKEN_URL))
            if parts.path.strip("/"):
                raise refuse("%s %r must be the root of the service, without a path (e.g. %s; for a national "
                             "cloud, its root, such as %s)"
                             % (option, value, DEFAULT_URL if option == "url" else DEFAULT_TOKEN_URL,
                                "https://graph.microsoft.us" if option == "url" else "https://login.microsoftonline.us"))
        secrets = [client_secret] + list(session_options.pop("secrets", None) or ())
        try:
            token_session = Session(login, secrets=secrets, **session_options)
            session = Session(graph, secrets=secrets, **session_options)
        except HttpError as exc:
            raise refuse(str(exc)) from None
        console = cls(session, token_session, tenant_id=tenant, client_id=str(client_id),
                      client_secret=str(client_secret), scope=graph + "/.default")
        session.auth = BearerAuth(console.token)     # a token on the first request, a new one after a 401
        return console

    # -- token ---------------------------------------------------------------------
    def token(self, refresh: bool = False) -> str:
        """A Graph access token by the client credentials flow (a new one each call)."""
        path = "/%s/oauth2/v2.0/token" % quote(self.tenant_id, safe="")
        form = {"client_id": self.client_id, "client_secret": self._client_secret, "scope": self.scope,
                "grant_type": "client_credentials"}
        what = "get an access token" + (" (again: Graph refused the previous one)" if refresh else "")
        try:
            # safe to repeat (a token request changes nothing): retried after 502/504 too
            resp = self.token_session.request("POST", path, form=form, expect=None, idempotent=True, what=what)
        except HttpError as exc:
            raise self.http_error("token", exc) from None
        try:
            body = json.loads(resp.text)
        except ValueError:
            body = None
        if resp.status == 200 and isinstance(body, dict) and isinstance(body.get("access_token"), str) \
                and body["access_token"]:
            token = body["access_token"]
            self.session.add_secret(token)
            self.token_session.add_secret(token)
            self.tokens_issued += 1
            return token
        if resp.status == 200:
            raise self.error("token", "the token endpoint answered 200 without an access_token: %s"
                             % (resp.excerpt() or "empty body"), status=200, kind="answer")
        error = body if isinstance(body, dict) else {}
        codes = [c for c in (error.get("error_codes") or []) if isinstance(c, int)]
        hints = [AADSTS_HINTS[c] for c in codes if c in AADSTS_HINTS]
        description = resp.redact(" ".join(str(error.get("error_description") or "").split()))
        description = description.split(" Trace ID:")[0]
        detail = "%s%s" % (error.get("error") or "HTTP %s" % resp.status,
                           (": " + description[:300]) if description else "")
        if not error:
            detail = "HTTP %s: %s" % (resp.status, resp.excerpt() or "empty body")
        remedy = "; ".join(hints) or ("check tenant_id, client_id, client_secret and token_url (the tenant's "
                                      "cloud: %s for the global service)" % DEFAULT_TOKEN_URL)
        raise self.error("token", "POST %s answered %s (%s): %s" % (resp.url, resp.status, detail, remedy),
                         status=resp.status, kind="auth" if resp.status in (400, 401, 403) else "http")

    # -- helpers -------------------------------------------------------------------
    def http_error(self, step: str, exc: HttpError) -> ConsoleError:
        if exc.status == 401:
            return self.error(step, "Microsoft Graph refused the access token, also a fresh one (HTTP 401): the "
                              "app registration must belong to tenant_id, and url and token_url to the same "
                              "cloud; %s" % exc, status=401, kind="auth")
        if exc.status == 403:
            return self.error(step, "Microsoft Graph refused the request (HTTP 403): the app registration needs "
                              "the application permission %s with admin consent (and the tenant an Intune "
                              "license); %s" % (PERMISSION, exc), status=403, kind="auth")
        return super().http_error(step, exc)

    def _fail(self, step: str, resp: Any, action: str) -> ConsoleError:
        if resp.status in (401, 403):
            return self.http_error(step, HttpError("%s %s answered %s: %s" % (
                resp.method, resp.url, resp.status, graph_error(resp) or resp.excerpt() or "empty body"),
                status=resp.status))
        return self.error(step, "%s: %s %s answered %s: %s" % (action, resp.method, resp.url, resp.status,
                                                               graph_error(resp) or resp.excerpt() or "empty body"),
                          status=resp.status, kind="http")

    def _json(self, resp: Any, step: str) -> Any:
        try:
            return resp.json()
        except HttpError as exc:
            raise self.error(step, str(exc), status=resp.status, kind="answer") from None

    @staticmethod
    def _entity(body: Any) -> Optional[Dict[str, Any]]:
        if isinstance(body, dict) and isinstance(body.get("value"), dict):
            return body["value"]            # the shape of the documentation's example
        return body if isinstance(body, dict) else None

    # -- read ------------------------------------------------------------------------
    def read(self, topic: Optional[str] = None) -> Optional[Held]:
        try:
            resp = self.session.request("GET", RESOURCE, expect=None, what="read the push certificate")
        except HttpError as exc:
            raise self.http_error("read", exc) from None
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise self._fail("read", resp, "read the push certificate")
        entity = self._entity(self._json(resp, "read"))
        if entity is None:
            raise self.error("read", "GET %s answered 200 with something that is not an "
                             "applePushNotificationCertificate: %s" % (resp.url, resp.excerpt()), status=200,
                             kind="answer")
        return held_from_entity(entity)

    # -- upload -----------------------------------------------------------------------
    def upload(self, cert_pem: bytes, key_pem: Optional[bytes] = None, apple_id: Optional[str] = None) -> Dict[str, Any]:
        if key_pem:
            self.session.add_secret(key_pem.decode("ascii", "replace").strip())
        if not apple_id or not str(apple_id).strip():
            raise self.error("upload", "apple_id is required for Intune: the Apple Account (Managed Apple ID or "
                             "Apple ID email) that created the push certificate in Apple's portal; Intune keeps "
                             "it to tell you which account renews it", kind="input")
        try:
            cert = load_certificate_pem(cert_pem)
        except ValueError:
            raise self.error("upload", "the certificate is not PEM text", kind="input") from None
        body = {"@odata.type": "#microsoft.graph.applePushNotificationCertificate",
                "appleIdentifier": str(apple_id).strip(), "certificate": certificate_pem(cert)}
        try:
            resp = self.session.request("PATCH", RESOURCE, json_body=body, expect=None, idempotent=True,
                                        what="upload the push certificate")
        except HttpError as exc:
            raise self.http_error("upload", exc) from None
        if resp.status == 204:
            return {"status": 204, "key_sent": False}
        if resp.status != 200:
            raise self._fail("upload", resp, "upload the push certificate")
        entity = self._entity(self._json(resp, "upload"))
        if entity is None:
            raise self.error("upload", "PATCH %s answered 200 with something that is not an "
                             "applePushNotificationCertificate: %s" % (resp.url, resp.excerpt()), status=200,
                             kind="answer")
        held = held_from_entity(entity)
        failure = upload_failure(entity)
        if failure:
            raise self.error("upload", "Intune did not take the certificate (certificateUploadStatus %s): %s; if "
                             "the certificate was not signed for Intune's own CSR (download it with the CSR step "
                             "and upload that to Apple), Intune cannot use it: it holds the private key of its "
                             "CSR only" % (entity.get("certificateUploadStatus"), failure),
                             status=200, kind="rejected")
        answer = {"status": 200, "key_sent": False}
        if held is not None:
            answer.update({"topic": held.topic, "serial_number": held.serial, "not_after": held.not_after,
                           "apple_id": held.apple_id, "upload_status": entity.get("certificateUploadStatus")})
        return answer

    # -- csr --------------------------------------------------------------------------
    def csr(self) -> str:
        try:
            resp = self.session.request("GET", CSR_FUNCTION, expect=None,
                                        what="download Intune's certificate signing request")
        except HttpError as exc:
            raise self.http_error("csr", exc) from None
        if resp.status != 200:
            raise self._fail("csr", resp, "download the CSR")
        body = self._json(resp, "csr")
        try:
            return csr_pem_from_value(body.get("value") if isinstance(body, dict) else None)
        except ValueError as exc:
            raise self.error("csr", "GET %s: %s" % (resp.url, exc), status=200, kind="answer") from None

    def close(self) -> None:
        for session in (self.session, self.token_session):
            if session is not None:
                session.close()


def upload_failure(entity: Dict[str, Any]) -> str:
    """The failure Graph reports for the last upload ('' when none)."""
    reason = entity.get("certificateUploadFailureReason")
    status = entity.get("certificateUploadStatus")
    if isinstance(reason, str) and reason.strip():
        return reason.strip()
    if isinstance(status, str) and FAILED_STATUS.search(status):
        return "no reason given"
    return ""


def held_from_entity(entity: Dict[str, Any]) -> Optional[Held]:
    """A :class:`Held` from Graph's applePushNotificationCertificate; None when it holds none."""
    topic = entity.get("topicIdentifier") or None
    expiry = entity.get("expirationDateTime")
    serial = entity.get("certificateSerialNumber")
    facts = {k: entity.get(k) for k in FIELDS if k in entity}
    if not topic and not serial and not entity.get("certificate"):
        return None
    readings = serials_from_graph(serial)
    held = Held(topic=topic, serial=readings[0] if readings else None, serial_alternatives=readings[1:],
                not_after=iso(expiry), apple_id=entity.get("appleIdentifier") or None, facts=facts)
    text = entity.get("certificate")
    if isinstance(text, str) and "-----BEGIN CERTIFICATE-----" in text:
        try:
            cert = load_certificate_pem(text.encode("ascii"))
        except ValueError:
            cert = None
        if cert is not None:
            got = certificate_facts(cert)
            held.fingerprint_sha256 = got["fingerprint_sha256"]
            held.certificate_pem = certificate_pem(cert)
            held.topic = held.topic or got["topic"]
            held.serial = held.serial or got["serial_number"]
            held.not_after = held.not_after or got["not_after"]
    return held


ADAPTER = Intune
