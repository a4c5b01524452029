"""The HTTP(S) server the console emulators share: basic auth, faults on demand, a request log.

One emulator = one ``ConsoleServer`` (a threading HTTP/1.1 server) + a handler class per console
(``nanomdm.py``, ``micromdm.py``). Everything a test needs to see or steer lives in the state
directory, so it works the same for an emulator in a thread and one in the lab's ``net``
namespace (another process):

* ``requests.jsonl``: one JSON line per request: method, path, query, status, ``auth``
  (``ok``/``bad``/``none``), body size and SHA-256, ``fault`` applied, and what the handler
  noted (``stored`` topic...). Never a body, never a key, never the Authorization header.
* ``faults.json``: a list consumed in order, one entry per matching request:
  ``{"status": 429, "retry_after": "2"}`` (``retry_after`` omitted: none sent), ``{"status": 503}``,
  ``{"status": 500, "error": "..."}``, ``{"stall": 30}`` (read the request, answer nothing for 30 s),
  ``{"malformed": true}`` (200 with a body that is not JSON), ``{"accept_not_apply": true}`` (an
  upload answered as the console would, nothing stored). Optional ``"method": "PUT"`` restricts
  an entry to a method, ``"times": n`` repeats it.
* ``store.json``: what the console holds (certificates and, as the real servers keep them, keys:
  this is a lab directory; tests read it only through ``Control.held()``).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit


def _atomic_json(path: str, data: Any) -> None:
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def _read_json(path: str, default: Any) -> Any:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


class Control:
    """Read and steer an emulator through its state directory (any process)."""

    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir

    def path(self, name: str) -> str:
        return os.path.join(self.state_dir, name)

    def set_faults(self, faults: List[Dict[str, Any]]) -> None:
        _atomic_json(self.path("faults.json"), list(faults))

    def faults(self) -> List[Dict[str, Any]]:
        return _read_json(self.path("faults.json"), [])

    def requests(self) -> List[Dict[str, Any]]:
        try:
            with open(self.path("requests.jsonl")) as f:
                return [json.loads(line) for line in f if line.strip()]
        except OSError:
            return []

    def held(self) -> Dict[str, Any]:
        return _read_json(self.path("store.json"), {})

    def set_held(self, store: Dict[str, Any]) -> None:
        _atomic_json(self.path("store.json"), store)

    def writes(self) -> List[Dict[str, Any]]:
        """Logged requests that changed what the console holds."""
        return [r for r in self.requests() if r.get("stored")]


class ConsoleServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: Tuple[str, int], handler: type, state_dir: str, api_key: str, user: str,
                 variant: str = "current", tls: Optional[Tuple[str, str]] = None) -> None:
        super().__init__(address, handler)
        self.state_dir = state_dir
        self.control = Control(state_dir)
        self.api_key = api_key
        self.user = user
        self.variant = variant
        self.lock = threading.Lock()
        os.makedirs(state_dir, exist_ok=True)
        if not os.path.exists(self.control.path("store.json")):
            self.control.set_held({})
        self.tls_context = None
        if tls:
            self.tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls_context.load_cert_chain(tls[0], tls[1])
        self.scheme = "https" if tls else "http"

    def finish_request(self, request, client_address) -> None:
        # the TLS handshake happens here, in the request's thread: a slow client stalls no other
        if self.tls_context is not None:
            try:
                request.settimeout(30)
                request = self.tls_context.wrap_socket(request, server_side=True)
                request.settimeout(None)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)

    def take_fault(self, method: str) -> Optional[Dict[str, Any]]:
        with self.lock:
            faults = self.control.faults()
            for i, fault in enumerate(faults):
                if fault.get("method") and fault["method"].upper() != method:
                    continue
                times = int(fault.get("times", 1))
                if times > 1:
                    faults[i] = dict(fault, times=times - 1)
                else:
                    faults.pop(i)
                self.control.set_faults(faults)
                return fault
        return None

    def log(self, entry: Dict[str, Any]) -> None:
        with self.lock:
            with open(self.control.path("requests.jsonl"), "a") as f:
                f.write(json.dumps(entry, sort_keys=True) + "\n")

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = "[%s]" % host if ":" in host else host
        return "%s://%s:%d" % (self.scheme, host, port)


class ConsoleHandler(BaseHTTPRequestHandler):
    """Subclasses implement ``route(method, path, query, body) -> (status, headers, body_bytes)``
    and may set ``self.note`` (logged)."""

    protocol_version = "HTTP/1.1"
    server: ConsoleServer
    realm = "console"
    unauthorized_body = b"Unauthorized\n"

    def log_message(self, fmt: str, *args: Any) -> None:  # quiet: the JSON log is the record
        pass

    def _auth(self) -> str:
        header = self.headers.get("Authorization") or ""
        if not header.startswith("Basic "):
            return "none"
        try:
            user, _sep, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return "bad"
        ok = hmac.compare_digest(user, self.server.user) and hmac.compare_digest(password, self.server.api_key)
        return "ok" if ok else "bad"

    def _handle(self) -> None:
        method = self.command.upper()
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.note: Dict[str, Any] = {}
        self.dry_run = False
        entry: Dict[str, Any] = {"method": method, "path": parts.path, "query": parts.query, "time": time.time(),
                                 "body_bytes": len(body), "body_sha256": hashlib.sha256(body).hexdigest()}
        auth = self._auth()
        entry["auth"] = auth
        if auth != "ok":
            status, headers, out = self.unauthorized(auth)
        else:
            fault = self.server.take_fault(method)
            if fault:
                entry["fault"] = fault
            status, headers, out = self._answer(fault, method, parts.path, parse_qs(parts.query), body)
        entry["status"] = status
        entry.update(self.note)
        self.server.log(entry)
        if status is None:      # stalled: never answer
            return
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def unauthorized(self, auth: str) -> Tuple[int, Dict[str, str], bytes]:
        """The answer to a request whose ``_auth()`` was not ``ok`` (basic auth's 401 here)."""
        return 401, {"WWW-Authenticate": 'Basic realm="%s"' % self.realm,
                     "Content-Type": "text/plain; charset=utf-8"}, self.unauthorized_body

    def _answer(self, fault: Optional[Dict[str, Any]], method: str, path: str, query: Dict[str, List[str]],
                body: bytes) -> Tuple[Optional[int], Dict[str, str], bytes]:
        if fault:
            if fault.get("stall"):
                time.sleep(float(fault["stall"]))
                self.close_connection = True
                return None, {}, b""
            if fault.get("status"):
                headers = {"Content-Type": "application/json"}
                if fault.get("retry_after") is not None:
                    headers["Retry-After"] = str(fault["retry_after"])
                text = fault.get("body") or json.dumps({"error": fault.get("error") or "injected %s" % fault["status"]})
                return int(fault["status"]), headers, text.encode("utf-8")
            if fault.get("malformed"):
                return 200, {"Content-Type": "application/json"}, b'{"topic": "com.apple.mgmt.Ext'
            if fault.get("accept_not_apply"):
                self.dry_run = True
        return self.route(method, path, query, body)

    dry_run = False

    def route(self, method: str, path: str, query: Dict[str, List[str]], body: bytes
              ) -> Tuple[Optional[int], Dict[str, str], bytes]:
        raise NotImplementedError

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _handle


def go_json(value: Any, indent: str = "\t") -> bytes:
    """JSON as Go's encoder with SetIndent("", indent) writes it (newline at the end)."""
    if indent == "\t":
        text = json.dumps(value, indent="\t")
    else:
        text = json.dumps(value, indent=len(indent))
    return (text + "\n").encode("utf-8")


def go_time(dt: Any) -> str:
    """A datetime as Go's time.Time marshals to JSON (RFC 3339, UTC ``Z``)."""
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")
