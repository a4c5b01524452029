# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one HTTP layer of the console adapters: timeouts, bounded retries, token refresh, redaction.

Pure Python on ``httpx`` (the collection's HTTP client: ``requirements.txt``; it is also what the
APNs provider probe uses, so the hosts that talk to consoles need one library, not two). No Ansible
imports: modules build a :class:`Session` from their options and turn :class:`HttpError` into
``fail_json(msg=str(error))``.

What a :class:`Session` guarantees:

* **Timeouts**: ``timeout`` per attempt (connect, read, write, pool: each cut to what is left of the
  deadline), and ``deadline`` for the whole call including retries and waits; no attempt or wait
  starts once the deadline has passed.
* **Retries**, bounded by ``retries`` and the deadline, with exponential backoff and jitter
  (``backoff * 2**n``, capped at ``max_backoff``, times a random factor in [0.5, 1]):

  - 429 and 503 for every method (the server says it did not do it);
  - 408, 502, 504, timeouts and broken connections only for idempotent methods (GET, HEAD,
    OPTIONS, PUT, DELETE; a request may say ``idempotent=True``, e.g. a PATCH that sets a value);
  - a connection that could not be opened at all for every method (nothing was sent).

  ``Retry-After`` (seconds or an HTTP date) replaces the backoff, clamped to
  ``[0, max_retry_after]``; a wait that would cross the deadline is not started: the error says so.
* **Auth**: :class:`BasicAuth`, or :class:`BearerAuth` whose ``get_token(refresh)`` is called again
  with ``refresh=True`` once when the server answers 401 (an expired token), then the request is
  sent once more; a second 401 is an error.
* **TLS**: verification on by default; ``ca_path`` (a PEM bundle) replaces the system store;
  ``validate_certs=False`` turns it off.
* **Redaction**: messages, logs and :attr:`Session.history` never hold an ``Authorization``
  header, a password, token or API key given to the session (also base64 or URL-encoded), a PEM
  private-key block, or sensitive query parameters; :class:`HttpError` carries the status, method,
  redacted URL and a short redacted excerpt of the body.
"""

from __future__ import annotations

import base64
import datetime as _dt
import email.utils
import json
import os
import random
import re
import ssl
import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

# httpx is imported by the first Session (_load_httpx), not with this file: a module that only imports
# the consoles' code (push_certificate_info without console) does not pay its 0.15 s start-up.
httpx: Any = None
HTTPX_IMPORT_ERROR: Optional[str] = None


def _load_httpx() -> Any:
    """The httpx module, or None (HTTPX_IMPORT_ERROR then says why)."""
    global httpx, HTTPX_IMPORT_ERROR  # pylint: disable=global-statement
    if httpx is None and HTTPX_IMPORT_ERROR is None:
        try:
            import httpx as module
        except ImportError as exc:  # pragma: no cover - reported by Session()
            HTTPX_IMPORT_ERROR = str(exc)
        else:
            httpx = module
    return httpx


IDEMPOTENT_METHODS = frozenset(("GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"))
RETRY_ALWAYS = frozenset((429, 503))            # the server did not act on the request
RETRY_IDEMPOTENT = frozenset((408, 502, 504))   # it may have: only safe to repeat idempotent calls
EXCERPT_CHARS = 300
MASK = "********"
SENSITIVE_QUERY = re.compile(r"(token|secret|password|passwd|key|sig|signature|code|auth|credential)", re.I)
_PRIVATE_KEY_BLOCK = re.compile(
    r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(-----END \1PRIVATE KEY-----|\Z)", re.S)
_AUTH_HEADER = re.compile(r"(?i)\b(authorization|proxy-authorization)(\"?\s*[:=]\s*\"?)([^\r\n\",}]+)")
_BEARER_BASIC = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
_JSON_SECRET = re.compile(
    r"(?i)(\"(?:access_token|refresh_token|id_token|client_secret|password|api_key|apikey|key|private_key)\"\s*:\s*\")"
    r"([^\"]*)(\")")
USER_AGENT = "mdmops.apple (+https://example.invalid/mdmops/apple)"


class HttpError(Exception):
    """A failed HTTP exchange, safe to show: ``str()`` never holds a secret.

    ``status`` is the HTTP status (None when no answer came: ``kind`` says why: ``timeout``,
    ``connect``, ``tls``, ``protocol``, ``deadline``, ``json``), ``method`` and ``url`` (redacted) the
    request, ``excerpt`` a short redacted start of the body, ``attempts`` how many were sent,
    ``retry_after`` the server's last ``Retry-After`` in seconds (when it gave one)."""

    def __init__(self, message: str, *, status: Optional[int] = None, method: str = "", url: str = "",
                 excerpt: str = "", kind: str = "http", attempts: int = 1,
                 retry_after: Optional[float] = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.method = method
        self.url = url
        self.excerpt = excerpt
        self.kind = kind
        self.attempts = attempts
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message


# --------------------------------------------------------------------------- redaction
def secret_variants(value: Any) -> List[str]:
    """The forms a secret may take on the wire or in a body: as is, base64, URL-encoded."""
    if value is None:
        return []
    if isinstance(value, bytes):
        raw, text = value, value.decode("utf-8", "replace")
    else:
        text = str(value)
        raw = text.encode("utf-8")
    if len(text) < 4:       # too short to hunt for without masking half of every message
        return []
    forms = {text, base64.b64encode(raw).decode("ascii"), quote(text, safe="")}
    return sorted((f for f in forms if f), key=len, reverse=True)


def redact(text: Any, secrets: Iterable[str] = ()) -> str:
    """``text`` without PEM private keys, Authorization values, bearer/basic credentials, JSON
    secret fields, and any of ``secrets`` (use :func:`secret_variants` to build them)."""
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    out = str(text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, MASK)
    out = _PRIVATE_KEY_BLOCK.sub("[private key removed]", out)
    out = _AUTH_HEADER.sub(lambda m: m.group(1) + m.group(2) + MASK, out)
    out = _BEARER_BASIC.sub(lambda m: m.group(1) + " " + MASK, out)
    out = _JSON_SECRET.sub(lambda m: m.group(1) + MASK + m.group(3), out)
    return out


def redact_url(url: Any, secrets: Iterable[str] = ()) -> str:
    """``url`` without user:password and with sensitive query values masked."""
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return redact(url, secrets)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = parts.query
    if query:
        pairs = [(k, MASK if SENSITIVE_QUERY.search(k) else v) for k, v in parse_qsl(query, keep_blank_values=True)]
        query = urlencode(pairs, safe="*")
    return redact(urlunsplit((parts.scheme, netloc, parts.path, query, "")), secrets)


def short_excerpt(body: Any, secrets: Iterable[str] = (), limit: int = EXCERPT_CHARS) -> str:
    """A short, redacted, single-line start of a response body."""
    text = redact(body, secrets)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


# --------------------------------------------------------------------------- Retry-After
def parse_retry_after(value: Optional[str], now: Optional[_dt.datetime] = None) -> Optional[float]:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP date); None when absent
    or unreadable. A date in the past gives 0."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if re.match(r"^\d+(\.\d+)?$", value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    now = now or _dt.datetime.now(_dt.timezone.utc)
    return max(0.0, (when - now).total_seconds())


def backoff_delay(attempt: int, backoff: float, max_backoff: float, jitter: Callable[[], float]) -> float:
    """Exponential backoff for retry number ``attempt`` (0-based) with jitter in [0.5, 1]."""
    base = min(max_backoff, backoff * (2 ** attempt))
    return base * (0.5 + 0.5 * jitter())


# --------------------------------------------------------------------------- auth
class BasicAuth:
    """HTTP basic authentication; the password is registered as a secret of the session."""

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password

    def secrets(self) -> List[Any]:
        return [self.password, "%s:%s" % (self.username, self.password)]

    def header(self, refresh: bool = False) -> str:  # pylint: disable=unused-argument
        raw = ("%s:%s" % (self.username, self.password)).encode("utf-8")
        return "Basic " + base64.b64encode(raw).decode("ascii")

    refreshable = False


class BearerAuth:
    """A bearer token from ``get_token(refresh)``: called with False before the first request and
    with True once after a 401 (the token expired or was revoked). Tokens it returns become secrets."""

    refreshable = True

    def __init__(self, get_token: Callable[[bool], str]) -> None:
        self.get_token = get_token
        self._token: Optional[str] = None

    def secrets(self) -> List[Any]:
        return [self._token] if self._token else []

    def header(self, refresh: bool = False) -> str:
        if refresh or not self._token:
            self._token = self.get_token(refresh)
        return "Bearer " + self._token


# --------------------------------------------------------------------------- response
class Response:
    """What came back: ``status``, ``headers`` (lower-case names), ``content`` (bytes)."""

    def __init__(self, status: int, headers: Mapping[str, str], content: bytes, method: str, url: str,
                 secrets: Sequence[str], attempts: int) -> None:
        self.status = status
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.content = content
        self.method = method
        self.url = url
        self.attempts = attempts
        self._secrets = secrets

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def excerpt(self) -> str:
        return short_excerpt(self.content, self._secrets)

    def redact(self, text: Any) -> str:
        return redact(text, self._secrets)

    def error_field(self, name: str = "error") -> str:
        """The redacted string ``name`` of a JSON object body ('' when the body is not one)."""
        try:
            body = json.loads(self.text)
        except ValueError:
            return ""
        value = body.get(name) if isinstance(body, dict) else None
        return short_excerpt(value, self._secrets) if isinstance(value, str) else ""

    def json(self, what: str = "the answer") -> Any:
        """The body as JSON; :class:`HttpError` (``kind='json'``) with an excerpt when it is not."""
        try:
            return json.loads(self.text)
        except ValueError as exc:
            raise HttpError("%s %s answered %s with %s that is not JSON (%s): %s"
                            % (self.method, self.url, self.status, what, exc, self.excerpt() or "empty body"),
                            status=self.status, method=self.method, url=self.url, excerpt=self.excerpt(),
                            kind="json", attempts=self.attempts) from None


# --------------------------------------------------------------------------- session
class Session:
    """One console's HTTP connection settings; see the module docstring for the guarantees.

    ``sleep``, ``clock`` and ``jitter`` are injectable so the retry policy can be tested without
    waiting. ``log`` receives one redacted line per attempt. ``history`` keeps one dict per
    attempt (method, url, status or error kind, wait before the next one): redacted, safe to return.
    """

    def __init__(self, base_url: str, *, timeout: float = 30.0, deadline: float = 120.0,
                 validate_certs: bool = True, ca_path: Optional[str] = None, auth: Any = None,
                 retries: int = 4, backoff: float = 1.0, max_backoff: float = 30.0,
                 max_retry_after: float = 60.0, headers: Optional[Mapping[str, str]] = None,
                 secrets: Iterable[Any] = (), proxy: Optional[str] = None, trust_env: bool = True,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 jitter: Callable[[], float] = random.random, log: Optional[Callable[[str], None]] = None,
                 client: Any = None) -> None:
        if _load_httpx() is None and client is None:
            raise HttpError("the console connection needs the Python library httpx on the host that talks to "
                            "the console (%s): install it with 'pip install httpx' (or python3-httpx)"
                            % HTTPX_IMPORT_ERROR, kind="import")
        parts = urlsplit(base_url or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise HttpError("the console URL %r is not an http(s) URL with a host (e.g. https://mdm.example.com)"
                            % redact_url(base_url), kind="url")
        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout)
        self.deadline = float(deadline)
        self.retries = max(0, int(retries))
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.max_retry_after = float(max_retry_after)
        self.auth = auth
        self.headers = dict(headers or {})
        self.headers.setdefault("User-Agent", USER_AGENT)
        self._sleep, self._clock, self._jitter, self._log = sleep, clock, jitter, log
        self._secrets: List[str] = []
        for value in list(secrets) + (auth.secrets() if auth is not None else []):
            self.add_secret(value)
        if parts.username or parts.password:
            self.add_secret(parts.password)
        self.history: List[Dict[str, Any]] = []
        self._client = client or _client(verify=self._verify(validate_certs, ca_path), timeout=self.timeout,
                                         trust_env=trust_env, proxy=proxy)

    @staticmethod
    def _verify(validate_certs: bool, ca_path: Optional[str]) -> Any:
        if not validate_certs:
            return False
        try:
            if ca_path and os.path.isdir(ca_path):       # an OpenSSL hashed directory
                return ssl.create_default_context(capath=ca_path)
            return ssl.create_default_context(cafile=ca_path) if ca_path else ssl.create_default_context()
        except (OSError, ssl.SSLError) as exc:
            raise HttpError("cannot use ca_path %s as a CA bundle (%s): give a PEM file of CA certificates"
                            % (ca_path, exc), kind="tls") from None

    # -- secrets ----------------------------------------------------------------
    def add_secret(self, value: Any) -> None:
        """Never show ``value`` (nor its base64 or URL-encoded forms) in a message, log or history."""
        for form in secret_variants(value):
            if form not in self._secrets:
                self._secrets.append(form)
        self._secrets.sort(key=len, reverse=True)

    @property
    def secrets(self) -> Tuple[str, ...]:
        return tuple(self._secrets)

    def redact(self, text: Any) -> str:
        return redact(text, self._secrets)

    # -- plumbing ---------------------------------------------------------------
    def url(self, path: str, params: Optional[Mapping[str, Any]] = None) -> str:
        url = path if re.match(r"^https?://", path) else self.base_url + "/" + path.lstrip("/")
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params)
        return url

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _note(self, entry: Dict[str, Any]) -> None:
        self.history.append(entry)
        if self._log:
            self._log("%(method)s %(url)s -> %(result)s (attempt %(attempt)d)" % entry)

    def _fail(self, message: str, **kw: Any) -> HttpError:
        return HttpError(self.redact(message), **kw)

    # -- the request --------------------------------------------------------------
    def request(self, method: str, path: str, *, params: Optional[Mapping[str, Any]] = None,
                json_body: Any = None, content: Optional[bytes] = None, form: Optional[Mapping[str, Any]] = None,
                headers: Optional[Mapping[str, str]] = None, expect: Optional[Iterable[int]] = (200,),
                idempotent: Optional[bool] = None, what: str = "") -> Response:
        """Send one request (with retries); return the :class:`Response` when its status is in
        ``expect`` (``expect=None``: any status), else raise :class:`HttpError`.

        ``what`` names the step for messages ("upload the push certificate")."""
        method = method.upper()
        url = self.url(path, params)
        shown = redact_url(url, self._secrets)
        label = "%s%s %s" % ((what + ": ") if what else "", method, shown)
        safe_to_repeat = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        body = content
        send_headers = dict(self.headers)
        send_headers.update(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode("utf-8")
            send_headers.setdefault("Content-Type", "application/json")
        elif form is not None:      # e.g. an OAuth2 token request (client_secret: add_secret it first)
            body = urlencode(form).encode("ascii")
            send_headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        send_headers.setdefault("Accept", "application/json")
        start = self._clock()
        attempt = 0
        refreshed = attempt_refresh = False
        last_retry_after: Optional[float] = None
        while True:
            attempt += 1
            remaining = self.deadline - (self._clock() - start)
            if remaining <= 0:
                raise self._fail("%s: gave up after %d attempt(s): the %ss deadline passed"
                                 % (label, attempt - 1, self.deadline), method=method, url=shown,
                                 kind="deadline", attempts=attempt - 1, retry_after=last_retry_after)
            if self.auth is not None:
                send_headers["Authorization"] = self.auth.header(refresh=attempt_refresh)
                for value in self.auth.secrets():
                    self.add_secret(value)
            attempt_refresh = False
            per_try = min(self.timeout, remaining)
            error_kind, status, response = None, None, None
            try:
                response = self._client.request(method, url, content=body, headers=send_headers,
                                                timeout=httpx.Timeout(per_try) if httpx else per_try)
                status = response.status_code
            except Exception as exc:  # pylint: disable=broad-except
                error_kind, detail, nothing_sent = _classify(exc)
                retryable = nothing_sent or (safe_to_repeat and error_kind in ("timeout", "protocol"))
                wait = backoff_delay(attempt - 1, self.backoff, self.max_backoff, self._jitter)
                self._note({"method": method, "url": shown, "result": error_kind, "attempt": attempt,
                            "detail": self.redact(detail)})
                if not retryable or attempt > self.retries:
                    raise self._fail("%s failed (%s%s): %s" % (
                        label, error_kind, ", after %d attempts" % attempt if attempt > 1 else "", detail),
                        method=method, url=shown, kind=error_kind, attempts=attempt) from None
                if self._clock() - start + wait >= self.deadline:
                    raise self._fail("%s failed (%s) and the %ss deadline leaves no time to retry: %s"
                                     % (label, error_kind, self.deadline, detail), method=method, url=shown,
                                     kind=error_kind, attempts=attempt) from None
                self.history[-1]["wait"] = round(wait, 3)
                self._sleep(wait)
                continue
            content_bytes = response.content
            resp = Response(status, dict(response.headers), content_bytes, method, shown, self._secrets, attempt)
            entry = {"method": method, "url": shown, "result": status, "attempt": attempt}
            self._note(entry)
            if status == 401 and self.auth is not None and getattr(self.auth, "refreshable", False) and not refreshed:
                refreshed = attempt_refresh = True
                continue
            retry_status = status in RETRY_ALWAYS or (safe_to_repeat and status in RETRY_IDEMPOTENT)
            if retry_status:
                last_retry_after = parse_retry_after(resp.headers.get("retry-after"))
            if retry_status and attempt <= self.retries:
                hint = last_retry_after
                if hint is not None:
                    wait = min(max(hint, 0.0), self.max_retry_after)
                else:
                    wait = backoff_delay(attempt - 1, self.backoff, self.max_backoff, self._jitter)
                if self._clock() - start + wait < self.deadline:
                    entry["wait"] = round(wait, 3)
                    self._sleep(wait)
                    continue
                raise self._fail("%s answered %s%s and waiting %.0fs more would pass the %ss deadline: %s"
                                 % (label, status, _retry_after_text(hint), wait, self.deadline,
                                    resp.excerpt() or "empty body"),
                                 status=status, method=method, url=shown, excerpt=resp.excerpt(), kind="deadline",
                                 attempts=attempt, retry_after=hint)
            if retry_status:
                raise self._fail("%s answered %s%s after %d attempts (the retry limit): %s"
                                 % (label, status, _retry_after_text(last_retry_after), attempt,
                                    resp.excerpt() or "empty body"),
                                 status=status, method=method, url=shown, excerpt=resp.excerpt(),
                                 attempts=attempt, retry_after=last_retry_after)
            if expect is not None and status not in set(expect):
                hint = parse_retry_after(resp.headers.get("retry-after"))
                tried = " after %d attempts" % attempt if attempt > 1 else ""
                body_text = resp.excerpt() or "empty body"
                raise self._fail("%s answered %s%s%s: %s" % (label, status, _retry_after_text(hint), tried, body_text),
                                 status=status, method=method, url=shown, excerpt=resp.excerpt(),
                                 attempts=attempt, retry_after=hint)
            return resp

    def get_json(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw).json()

    def send_json(self, method: str, path: str, body: Any, **kw: Any) -> Any:
        resp = self.request(method, path, json_body=body, **kw)
        return resp.json() if resp.content.strip() else None


def _client(verify: Any, timeout: float, trust_env: bool, proxy: Optional[str]) -> Any:
    """An httpx.Client; ``proxy=`` since httpx 0.26, ``proxies=`` before (Debian 12 ships 0.23)."""
    kwargs = {"verify": verify, "timeout": timeout, "follow_redirects": False, "trust_env": trust_env}
    if proxy:
        try:
            return httpx.Client(proxy=proxy, **kwargs)
        except TypeError:
            return httpx.Client(proxies=proxy, **kwargs)
    return httpx.Client(**kwargs)


def _retry_after_text(hint: Optional[float]) -> str:
    return " (Retry-After %gs)" % hint if hint is not None else ""


def _classify(exc: BaseException) -> Tuple[str, str, bool]:
    """(kind, detail, nothing_sent) for an exception of the transport."""
    detail = "%s: %s" % (type(exc).__name__, exc) if str(exc) else type(exc).__name__
    if httpx is not None:
        if isinstance(exc, httpx.ConnectTimeout):
            return "timeout", detail, True
        if isinstance(exc, httpx.TimeoutException):
            return "timeout", detail, False
        if isinstance(exc, httpx.ConnectError):
            text = str(exc).lower()
            if "certificate" in text or "ssl" in text or "tls" in text:
                return "tls", detail, False        # retrying does not fix a certificate
            return "connect", detail, True
        if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
            return "protocol", detail, False
        if isinstance(exc, httpx.HTTPError):
            return "protocol", detail, False
    if isinstance(exc, ssl.SSLError):
        return "tls", detail, False
    if isinstance(exc, OSError):
        return "connect", detail, False
    return "error", detail, False
