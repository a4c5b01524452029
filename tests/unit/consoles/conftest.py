"""A scripted HTTP server (http.server in a thread: a real server) for the HTTP layer's tests."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class Scripted(ThreadingHTTPServer):
    """Answers each request with the next scripted answer: (status, headers, body) or "stall:<s>" or
    "close" (drop the connection). ``seen`` keeps (method, path, headers, body) of every request."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = []
        self.seen = []
        self.lock = threading.Lock()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.server_address[1]

    def answer(self, *answers):
        self.script.extend(answers)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with self.server.lock:
            self.server.seen.append((self.command, self.path, dict(self.headers), body))
            answer = self.server.script.pop(0) if self.server.script else (200, {}, b"{}")
        if answer == "close":
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if isinstance(answer, str) and answer.startswith("stall:"):
            time.sleep(float(answer.split(":")[1]))
            self.close_connection = True
            return
        status, headers, body = answer
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _any


@pytest.fixture
def server():
    srv = Scripted()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


class FakeTime:
    """Injected clock and sleep: waits are recorded and advance the clock, nothing really waits."""

    def __init__(self):
        self.now = 1000.0
        self.waits = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.waits.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time():
    return FakeTime()
