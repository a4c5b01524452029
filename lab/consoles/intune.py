"""Microsoft Intune's push-certificate API on Microsoft Graph, with its token endpoint, for the lab.

One server plays both hosts (``login.microsoftonline.com`` and ``graph.microsoft.com``: the
adapter gets both as ``token_url`` and ``url``), following Microsoft's documentation (see
``plugins/module_utils/_consoles/intune.py`` for the pages):

* ``POST /{tenant}/oauth2/v2.0/token`` (client credentials): form ``client_id``,
  ``client_secret``, ``scope`` (``<graph root>/.default``), ``grant_type=client_credentials``;
  200 ``{"token_type": "Bearer", "expires_in", "ext_expires_in", "access_token"}``. Errors as
  Microsoft Entra writes them: ``{"error", "error_description": "AADSTS...: ...", "error_codes",
  "timestamp", "trace_id", "correlation_id"}``: unknown tenant 400 ``invalid_request``
  (AADSTS90002), unknown client 400 ``unauthorized_client`` (AADSTS700016), wrong secret 401
  ``invalid_client`` (AADSTS7000215), no secret 401 (AADSTS7000218), a scope without
  ``/.default`` 400 ``invalid_scope`` (AADSTS1002012), another grant 400
  ``unsupported_grant_type`` (AADSTS70003). The tenant is :data:`TENANT_ID` (or
  :data:`TENANT_DOMAIN`), the client :data:`CLIENT_ID`, the secret the emulator's API key.
* Tokens are HS256 JWTs signed with a key derived from the secret: ``aud`` is the scope's
  resource, ``roles`` the application permissions granted (``config.json`` ``roles``, default
  ``DeviceManagementServiceConfig.ReadWrite.All``), ``exp`` after ``token_lifetime`` seconds
  (default 3599). Graph answers 401 ``InvalidAuthenticationToken`` (with Graph's
  ``WWW-Authenticate: Bearer ...``) to a missing, forged, expired or revoked token or one for
  another audience (``aud`` must name the host the request came to), and 403 ``Forbidden`` when
  the token lacks the permission.
* ``GET /v1.0/deviceManagement/applePushNotificationCertificate``: 200 with the entity
  (``@odata.context``, ``id``, ``appleIdentifier``, ``topicIdentifier``, ``lastModifiedDateTime``,
  ``expirationDateTime``, ``certificateUploadStatus``, ``certificateUploadFailureReason``,
  ``certificateSerialNumber`` in upper-case hex as .NET writes it (``serial_format: "decimal"`` in
  the store writes it in decimal instead: Microsoft does not document the form), ``certificate`` null); 404
  ``ResourceNotFound`` while the tenant holds none.
* ``PATCH`` of it, JSON with ``appleIdentifier`` and ``certificate`` (PEM text): the certificate
  is parsed, topic, serial and expiry filled in, and it must be signed for the tenant's CSR key
  (Intune keeps the key: ``store.json`` ``csr_key_pem``, made on first need). 200 with the updated
  entity. A certificate for another key, or the ``upload_fails`` fault, is answered 200 with
  ``certificateUploadStatus: "Failed"`` and a ``certificateUploadFailureReason``, the certificate
  held unchanged. Bad JSON or no parsable certificate: 400 ``BadRequest``. A body holding a private
  key is noted in the log (``key_in_body``): tests assert it never happens.
* ``GET .../downloadApplePushNotificationCertificateSigningRequest`` (with or without ``()``):
  200 ``{"value": "<PEM CSR>"}`` for the tenant's key.

Faults (``faults.json``, see ``_server.py``) get Graph's error body (``{"error": {"code",
"message", "innerError"}}``), or Entra's on the token endpoint (``"method": "POST"``); extra ones:
``{"expire_token": true}`` (this request's token is revoked and answered 401, as an expired one),
``{"upload_fails": "reason"}`` (a PATCH answered as a failed upload).
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
import uuid
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from lab.consoles._server import ConsoleHandler, Control, _atomic_json, _read_json

TENANT_ID = "9f3b2c1e-5d4a-4e7b-8c6d-2a1b0c9d8e7f"
TENANT_DOMAIN = "mdmopslab.onmicrosoft.com"
CLIENT_ID = "4a7e9c2b-1f3d-4b6a-9e8c-7d5f3a2b1c0e"
USER = CLIENT_ID
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
PERMISSION = "DeviceManagementServiceConfig.ReadWrite.All"
RESOURCE = "/v1.0/deviceManagement/applePushNotificationCertificate"
CSR_NAME = "downloadApplePushNotificationCertificateSigningRequest"
CSR_PATHS = (RESOURCE + "/" + CSR_NAME, RESOURCE + "/" + CSR_NAME + "()")
JSON = {"Content-Type": "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; "
                        "charset=utf-8"}
TOKEN_JSON = {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store, no-cache",
              "Pragma": "no-cache"}
GRAPH_CODES = {400: "BadRequest", 401: "InvalidAuthenticationToken", 403: "Forbidden", 404: "ResourceNotFound",
               405: "MethodNotAllowed", 429: "TooManyRequests", 500: "InternalServerError", 502: "BadGateway",
               503: "ServiceUnavailable", 504: "GatewayTimeout"}
DEFAULT_CONFIG = {"roles": [PERMISSION], "token_lifetime": 3599}


# --------------------------------------------------------------------------- helpers for tests
def config(control: Control) -> Dict[str, Any]:
    return dict(DEFAULT_CONFIG, **_read_json(control.path("config.json"), {}))


def set_config(control: Control, **values: Any) -> None:
    """E.g. ``set_config(control, roles=[])`` (a token without the permission: 403),
    ``token_lifetime=0`` (every token expired at once)."""
    current = _read_json(control.path("config.json"), {})
    current.update(values)
    _atomic_json(control.path("config.json"), current)


def tenant_key(control: Control, key: Any = None) -> Any:
    """The private key Intune keeps for its CSR (the tenant's); ``key`` sets it (before any request),
    else it is made when missing. The lab's stand-in for what Intune never hands out."""
    store = control.held()
    if key is not None:
        store["csr_key_pem"] = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()).decode("ascii")
        control.set_held(store)
        return key
    if not store.get("csr_key_pem"):
        return tenant_key(control, rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return serialization.load_pem_private_key(store["csr_key_pem"].encode("ascii"), None)


def held_certificate(control: Control) -> Optional[x509.Certificate]:
    pem = control.held().get("cert_pem")
    return x509.load_pem_x509_certificate(pem.encode("ascii")) if pem else None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _graph_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class IntuneHandler(ConsoleHandler):
    realm = "intune"

    # -- signing key of the tokens: derived from the client secret (no shared state needed) ----------
    def _signing_key(self) -> bytes:
        return hashlib.sha256(b"mdmops-lab-intune-token:" + self.server.api_key.encode("utf-8")).digest()

    def _sign(self, claims: Dict[str, Any]) -> str:
        head = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = _b64url(json.dumps(claims, sort_keys=True).encode())
        sig = hmac.new(self._signing_key(), ("%s.%s" % (head, body)).encode(), hashlib.sha256).digest()
        return "%s.%s.%s" % (head, body, _b64url(sig))

    def _verify(self, token: str) -> Tuple[str, Optional[Dict[str, Any]]]:
        try:
            head, body, sig = token.split(".")
            want = hmac.new(self._signing_key(), ("%s.%s" % (head, body)).encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(want, _b64url_decode(sig)):
                return "bad", None
            claims = json.loads(_b64url_decode(body))
        except (ValueError, TypeError):
            return "bad", None
        if claims.get("exp", 0) <= time.time():
            return "expired", claims
        if claims.get("jti") in _read_json(self.server.control.path("revoked.json"), []):
            return "expired", claims
        host = (self.headers.get("Host") or "").lower()
        aud = urlsplit(str(claims.get("aud") or ""))
        aud_host = aud.netloc.lower()
        if aud.scheme == "https" and aud_host.endswith(":443"):
            aud_host = aud_host[:-4]
        if host.endswith(":443"):
            host = host[:-4]
        if aud_host != host:
            return "audience", claims
        return "ok", claims

    @staticmethod
    def _is_token_path(path: str) -> bool:
        return path.endswith("/oauth2/v2.0/token")

    # -- auth hooks of ConsoleHandler ----------------------------------------------------------
    def _auth(self) -> str:
        self.claims: Optional[Dict[str, Any]] = None
        if self._is_token_path(urlsplit(self.path).path):
            return "ok"            # the client authenticates in the form (checked in route)
        header = self.headers.get("Authorization") or ""
        if not header.startswith("Bearer ") or not header[7:].strip():
            return "none"
        verdict, claims = self._verify(header[7:].strip())
        self.claims = claims
        if claims and claims.get("jti"):
            self.note["token"] = claims["jti"]
        return verdict

    def unauthorized(self, auth: str):
        messages = {"none": "Access token is empty.", "expired": "Access token has expired or is not yet valid.",
                    "audience": "Invalid audience.", "bad": "Access token validation failure. Invalid signature."}
        status, headers, body = self.graph_error(401, messages.get(auth, "Access token validation failure."))
        headers["WWW-Authenticate"] = ('Bearer realm="", authorization_uri="https://login.microsoftonline.com/'
                                       'common/oauth2/authorize", client_id="%s"' % GRAPH_APP_ID)
        return status, headers, body

    def _answer(self, fault, method, path, query, body):
        self.fault = fault or {}
        if fault and fault.get("status") and not fault.get("body"):
            status = int(fault["status"])
            if self._is_token_path(path):
                text = self.entra_error(status, "temporarily_unavailable", 50196 if status == 429 else 50001,
                                        "injected %s" % status)[2].decode()
            else:
                text = self.graph_error(status, fault.get("error") or "injected %s" % status)[2].decode()
            fault = dict(fault, body=text)
        if fault and fault.get("expire_token") and self.claims:
            with self.server.lock:
                revoked = _read_json(self.server.control.path("revoked.json"), [])
                revoked.append(self.claims.get("jti"))
                _atomic_json(self.server.control.path("revoked.json"), revoked)
            self.note["auth_fault"] = "token expired"
            return self.unauthorized("expired")
        return super()._answer(fault, method, path, query, body)

    # -- bodies ---------------------------------------------------------------------------------
    def graph_error(self, status: int, message: str, code: Optional[str] = None):
        stamp = _now().strftime("%Y-%m-%dT%H:%M:%S")
        request_id = str(uuid.uuid4())
        body = {"error": {"code": code or GRAPH_CODES.get(status, "UnknownError"), "message": message,
                          "innerError": {"date": stamp, "request-id": request_id, "client-request-id": request_id}}}
        headers = dict(JSON, **{"request-id": request_id, "client-request-id": request_id})
        return status, headers, json.dumps(body).encode("utf-8")

    def entra_error(self, status: int, error: str, code: int, text: str):
        trace, corr = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = _now().strftime("%Y-%m-%d %H:%M:%SZ")
        body = {"error": error,
                "error_description": "AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s"
                                     % (code, text, trace, corr, stamp),
                "error_codes": [code], "timestamp": stamp, "trace_id": trace, "correlation_id": corr,
                "error_uri": "https://login.microsoftonline.com/error?code=%d" % code}
        return status, dict(TOKEN_JSON), json.dumps(body).encode("utf-8")

    # -- routes ---------------------------------------------------------------------------------
    def route(self, method, path, query, body):
        if self._is_token_path(path):
            if method != "POST":
                return 405, {"Content-Type": "text/plain"}, b"Method Not Allowed\n"
            return self.token(path, body)
        roles = (self.claims or {}).get("roles") or []
        if path == RESOURCE or path in CSR_PATHS:
            if PERMISSION not in roles:
                return self.graph_error(403, "Application is not authorized to perform this operation. Application "
                                             "must have one of the following scopes: %s - Operation ID (for customer "
                                             "support): %s" % (PERMISSION, uuid.uuid4()))
        if path == RESOURCE:
            if method == "GET":
                return self.read()
            if method == "PATCH":
                return self.patch(body)
            return self.graph_error(405, "The HTTP method '%s' is not allowed for this resource." % method)
        if path in CSR_PATHS:
            if method != "GET":
                return self.graph_error(405, "The HTTP method '%s' is not allowed for this resource." % method)
            return self.csr()
        return self.graph_error(400, "Resource not found for the segment '%s'." % path.rstrip("/").rsplit("/", 1)[-1])

    def token(self, path: str, body: bytes):
        tenant = path.split("/")[1] if path.count("/") >= 4 else ""
        try:
            form = {k: v[0] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
        except UnicodeDecodeError:
            form = {}
        if tenant not in (TENANT_ID, TENANT_DOMAIN):
            self.note["token_refused"] = "tenant"
            return self.entra_error(400, "invalid_request", 90002, "Tenant '%s' not found. Check to make sure you "
                                    "have the correct tenant ID and are signing into the correct cloud." % tenant)
        if form.get("grant_type") != "client_credentials":
            self.note["token_refused"] = "grant"
            return self.entra_error(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant "
                                    "type '%s'." % form.get("grant_type", ""))
        if form.get("client_id") != self.server.user:
            self.note["token_refused"] = "client"
            return self.entra_error(400, "unauthorized_client", 700016, "Application with identifier '%s' was not "
                                    "found in the directory '%s'." % (form.get("client_id", ""), tenant))
        if not form.get("client_secret"):
            self.note["token_refused"] = "no secret"
            return self.entra_error(401, "invalid_client", 7000218, "The request body must contain the following "
                                    "parameter: 'client_assertion' or 'client_secret'.")
        if not hmac.compare_digest(form["client_secret"], self.server.api_key):
            self.note["token_refused"] = "secret"
            return self.entra_error(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the "
                                    "secret being sent in the request is the client secret value, not the client "
                                    "secret ID, for a secret added to app '%s'." % CLIENT_ID)
        scope = form.get("scope", "")
        if not scope.endswith("/.default") or " " in scope.strip():
            self.note["token_refused"] = "scope"
            return self.entra_error(400, "invalid_scope", 1002012, "The provided value for scope %s is not valid. "
                                    "Client credential flows must have a scope value with /.default suffixed to "
                                    "the resource identifier (application ID URI)." % scope)
        settings = config(self.server.control)
        lifetime = int(settings["token_lifetime"])
        now = int(time.time())
        claims = {"aud": scope[: -len("/.default")], "iss": "https://sts.windows.net/%s/" % TENANT_ID,
                  "tid": TENANT_ID, "appid": CLIENT_ID, "roles": list(settings["roles"]), "iat": now,
                  "nbf": now, "exp": now + lifetime, "jti": secrets.token_hex(8)}
        self.note["token_issued"] = claims["jti"]
        answer = {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
                  "access_token": self._sign(claims)}
        return 200, dict(TOKEN_JSON), json.dumps(answer).encode("utf-8")

    def _entity(self, store: Dict[str, Any], cert: Optional[x509.Certificate]) -> Dict[str, Any]:
        host = self.headers.get("Host") or "graph.microsoft.com"
        entity: Dict[str, Any] = {
            "@odata.context": "https://%s/v1.0/$metadata#deviceManagement/applePushNotificationCertificate/$entity"
                              % host,
            "id": store.get("id") or str(uuid.uuid5(uuid.NAMESPACE_URL, TENANT_ID)),
            "appleIdentifier": store.get("apple_id"),
            "topicIdentifier": None, "lastModifiedDateTime": store.get("last_modified"),
            "expirationDateTime": None, "certificateUploadStatus": store.get("upload_status"),
            "certificateUploadFailureReason": store.get("upload_failure"), "certificateSerialNumber": None,
            "certificate": None}
        if cert is not None:
            uids = cert.subject.get_attributes_for_oid(NameOID.USER_ID)
            entity["topicIdentifier"] = uids[0].value if uids else None
            entity["expirationDateTime"] = _graph_time(cert.not_valid_after_utc)
            entity["certificateSerialNumber"] = (str(cert.serial_number) if store.get("serial_format") == "decimal"
                                                 else "%X" % cert.serial_number)
        return entity

    def read(self):
        store = self.server.control.held()
        cert = held_certificate(self.server.control)
        if cert is None:
            return self.graph_error(404, "No Apple push notification certificate is set up for this account.")
        return 200, dict(JSON), json.dumps(self._entity(store, cert)).encode("utf-8")

    def patch(self, body: bytes):
        try:
            request = json.loads(body.decode("utf-8"))
            if not isinstance(request, dict):
                raise ValueError("not an object")
        except (ValueError, UnicodeDecodeError):
            return self.graph_error(400, "Invalid request body: the body is not a JSON object.")
        if "PRIVATE KEY" in body.decode("utf-8", "replace"):
            self.note["key_in_body"] = True
        text = request.get("certificate")
        if not isinstance(text, str) or not text.strip():
            return self.graph_error(400, "The property 'certificate' is required.")
        apple_id = request.get("appleIdentifier")
        if not isinstance(apple_id, str) or not apple_id.strip():
            return self.graph_error(400, "The property 'appleIdentifier' is required.")
        try:
            cert = x509.load_pem_x509_certificate(text.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            return self.graph_error(400, "The certificate could not be parsed: expected the PEM file from the Apple "
                                         "Push Certificates Portal.")
        with self.server.lock:
            key = tenant_key(self.server.control)
            store = self.server.control.held()
            failure = self.fault.get("upload_fails")
            if not failure and cert.public_key().public_numbers() != key.public_key().public_numbers():
                failure = ("The certificate does not match the certificate signing request: upload the certificate "
                           "Apple created for the CSR downloaded from Intune.")
            now = _graph_time(_now())
            if failure:
                store.update(upload_status="Failed", upload_failure=str(failure))
                self.server.control.set_held(store)
                self.note["upload_failed"] = True
                return 200, dict(JSON), json.dumps(self._entity(store, held_certificate(self.server.control))).encode()
            uids = cert.subject.get_attributes_for_oid(NameOID.USER_ID)
            topic = uids[0].value if uids else None
            if self.dry_run:
                self.note["accepted_not_applied"] = topic
                shown = dict(store, apple_id=apple_id, upload_status="Succeeded", upload_failure=None,
                             last_modified=now)
                return 200, dict(JSON), json.dumps(self._entity(shown, cert)).encode("utf-8")
            store.update(cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode("ascii"), apple_id=apple_id,
                         upload_status="Succeeded", upload_failure=None, last_modified=now)
            self.server.control.set_held(store)
        self.note["stored"] = topic or "(no topic)"
        return 200, dict(JSON), json.dumps(self._entity(store, cert)).encode("utf-8")

    def csr(self):
        with self.server.lock:
            key = tenant_key(self.server.control)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Intune MDM push request (lab tenant)"),
                             x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mdmops lab"),
                             x509.NameAttribute(NameOID.COUNTRY_NAME, "US")])
        request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
        self.note["csr"] = True
        value = request.public_bytes(serialization.Encoding.PEM).decode("ascii")
        host = self.headers.get("Host") or "graph.microsoft.com"
        return 200, dict(JSON), json.dumps({"@odata.context": "https://%s/v1.0/$metadata#Edm.String" % host,
                                            "value": value}).encode("utf-8")


HANDLER = IntuneHandler


def reset(control: Control, keep_key: bool = True) -> None:
    """Forget the certificate (keep the tenant key unless told)."""
    store = control.held()
    control.set_held({"csr_key_pem": store["csr_key_pem"]} if keep_key and store.get("csr_key_pem") else {})


__all__: List[str] = ["HANDLER", "USER", "TENANT_ID", "CLIENT_ID", "config", "set_config", "tenant_key",
                      "held_certificate", "reset"]
