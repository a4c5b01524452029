"""The HTTP CONNECT client (_apns/_proxy.py): the URL parser, and the tunnel against a tiny real
socket server on 127.0.0.1 that answers CONNECT as a proxy would (no root, no lab).

The lab's real proxies (Squid, clean and intercepting) are in tests/integration/apns/test_proxy_lab.py."""
from __future__ import annotations

import base64
import socket
import threading

import pytest

from ansible_collections.mdmops.apple.plugins.module_utils._apns import _proxy
from ansible_collections.mdmops.apple.plugins.module_utils._apns._proxy import ProxyError, parse_proxy


# ---------------------------------------------------------------- parser
@pytest.mark.parametrize("url,host,port,user,pw", [
    ("http://proxy.example.com:3128", "proxy.example.com", 3128, None, None),
    ("HTTP://Proxy.Example.COM:8080/", "proxy.example.com", 8080, None, None),
    ("http://10.0.0.1:3128", "10.0.0.1", 3128, None, None),
    ("http://[2001:db8::1]:3128", "2001:db8::1", 3128, None, None),
    ("http://alice:s3cr%40t@proxy:3128", "proxy", 3128, "alice", "s3cr@t"),
    ("http://alice@proxy:3128", "proxy", 3128, "alice", None),
])
def test_parse_good(url, host, port, user, pw):
    cfg = parse_proxy(url)
    assert (cfg.host, cfg.port, cfg.username, cfg.password) == (host, port, user, pw)


@pytest.mark.parametrize("url,words", [
    ("https://proxy:3128", "https://"),
    ("socks5://proxy:1080", "SOCKS"),
    ("ftp://proxy:21", "scheme"),
    ("http://proxy", "port is missing"),
    ("http://proxy:", "port is missing"),
    ("http://proxy:0", "1 to 65535"),
    ("http://proxy:70000", "1 to 65535"),
    ("http://proxy:31a", "1 to 65535"),
    ("proxy:3128", "scheme"),
    ("http://pro xy:3128", "spaces"),
    ("http://proxy:3128/path", "no path"),
    ("http://proxy:3128?x=1", "no path"),
    ("http://bad_host!:3128", "not a host name"),
    ("http://[::1:3128", "IPv6"),
    ("http://[zz::1]:3128", "not an IPv6"),
    ("http://:3128", "host is missing"),
    ("http://a%3Ab:pw@proxy:3128", "cannot contain ':'"),
    ("http://al%0dice:pw@proxy:3128", "control characters"),
    ("", "empty"),
])
def test_parse_bad(url, words):
    with pytest.raises(ValueError) as err:
        parse_proxy(url)
    assert words in str(err.value)


@pytest.mark.parametrize("url", ["https://bob:hunter2@proxy:3128", "http://bob:hunter2@proxy",
                                 "http://bob:hunter2@proxy:3128/x", "http://bob:hun/ter2@proxy:3128",
                                 "socks5://bob:hunter2@proxy:1080"])
def test_credentials_never_in_messages(url):
    with pytest.raises(ValueError) as err:
        parse_proxy(url)
    assert "hunter2" not in str(err.value) and "ter2" not in str(err.value)


def test_credentials_never_in_repr_or_str():
    cfg = parse_proxy("http://bob:hunter2@proxy:3128")
    for text in (repr(cfg), str(cfg), cfg.display):
        assert "hunter2" not in text and "bob" not in text
    assert str(cfg) == "http://proxy:3128" and "credentials=<hidden>" in repr(cfg)


def test_separate_credentials():
    cfg = parse_proxy("http://proxy:3128", username="bob", password="pw")
    assert (cfg.username, cfg.password) == ("bob", "pw")
    with pytest.raises(ValueError, match="both"):
        parse_proxy("http://a:b@proxy:3128", username="bob", password="pw")
    with pytest.raises(ValueError, match="without proxy_username"):
        parse_proxy("http://proxy:3128", password="pw")


def test_connect_request_bytes():
    cfg = parse_proxy("http://bob:pw@proxy:3128")
    req = _proxy.connect_request(cfg, "api.push.apple.com", 443).decode()
    assert req.startswith("CONNECT api.push.apple.com:443 HTTP/1.1\r\nHost: api.push.apple.com:443\r\n")
    assert "Proxy-Authorization: Basic %s\r\n" % base64.b64encode(b"bob:pw").decode() in req
    assert req.endswith("\r\n\r\n")
    v6 = _proxy.connect_request(parse_proxy("http://p:1"), "2620:149::1", 5223).decode()
    assert "CONNECT [2620:149::1]:5223 " in v6
    assert "Proxy-Authorization" not in _proxy.connect_request(parse_proxy("http://p:1"), "h", 1).decode()


# ---------------------------------------------------------------- answers (pure)
CFG = parse_proxy("http://proxy:3128")


@pytest.mark.parametrize("code,reason,headers,status,words", [
    (403, "Forbidden", {"x-squid-error": "ERR_ACCESS_DENIED 0"}, "proxy_refused", "'403 Forbidden'"),
    (407, "Proxy Authentication Required", {"proxy-authenticate": 'Basic realm="x"'}, "proxy_auth_required",
     "requires authentication"),
    (503, "Service Unavailable", {"x-squid-error": "ERR_CONNECT_FAIL 111"}, "refused", "refused"),
    (503, "Service Unavailable", {"x-squid-error": "ERR_CONNECT_FAIL 110"}, "timeout", "timed out"),
    (503, "Service Unavailable", {"x-squid-error": "ERR_DNS_FAIL 0"}, "dns_failed", "not resolved"),
    (502, "Bad Gateway", {}, "proxy_refused", "'502 Bad Gateway'"),
])
def test_classify_answer(code, reason, headers, status, words):
    err = _proxy.classify_answer(CFG, "api.push.apple.com", 443, code, reason, headers)
    assert err.status == status and err.proxy_status == status and words in err.detail
    assert "http://proxy:3128" in err.detail and err.remedy
    assert err.upstream is (status in ("refused", "timeout", "dns_failed"))
    assert isinstance(err, OSError)


def test_classify_2xx_is_none():
    assert _proxy.classify_answer(CFG, "h", 443, 200, "Connection established", {}) is None


def test_407_with_credentials_says_refused():
    cfg = parse_proxy("http://bob:hunter2@proxy:3128")
    err = _proxy.classify_answer(cfg, "h", 443, 407, "Proxy Authentication Required", {})
    assert "credentials given were refused" in err.detail and "hunter2" not in err.detail + err.remedy


# ---------------------------------------------------------------- a tiny real proxy
class TinyProxy:
    """Accepts connections on 127.0.0.1; ``answer(request_bytes) -> bytes or None`` decides what to send
    (None: say nothing).  After a 2xx answer it writes ``after`` (tunnel bytes) and echoes what it reads."""

    def __init__(self, answer, after=b""):
        self.answer, self.after = answer, after
        self.requests = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            self.requests.append(data)
            out = self.answer(data)
            if out is None:
                return                       # keep it open, silent (the test's timeout ends it)
            # head and the first tunnel bytes in one write: the client must not eat them
            conn.sendall(out + self.after)
            if out.startswith(b"HTTP/1.1 2"):
                while True:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    conn.sendall(chunk)
            else:
                conn.close()
        except OSError:
            pass

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


@pytest.fixture
def tiny():
    made = []

    def make(answer, after=b""):
        p = TinyProxy(answer, after)
        made.append(p)
        return p
    yield make
    for p in made:
        p.close()


def test_tunnel_ok_keeps_the_bytes_after_the_head(tiny):
    p = tiny(lambda req: b"HTTP/1.1 200 Connection established\r\nVia: tiny\r\n\r\n", after=b"SERVER-FIRST")
    connect = _proxy.connector("http://bob:pw@127.0.0.1:%d" % p.port)
    sock = connect("api.push.apple.com", 443, 2.0)
    try:
        assert sock.recv(12, socket.MSG_WAITALL) == b"SERVER-FIRST"
        sock.sendall(b"ping")
        assert sock.recv(4, socket.MSG_WAITALL) == b"ping"
    finally:
        sock.close()
    req = p.requests[0].decode()
    assert req.startswith("CONNECT api.push.apple.com:443 HTTP/1.1\r\n")
    assert "Proxy-Authorization: Basic " + base64.b64encode(b"bob:pw").decode() in req
    assert connect.proxy.display == "http://127.0.0.1:%d" % p.port


class Pieces:
    """A socket stand-in that delivers ``pieces`` one per recv (MSG_PEEK leaves them in place)."""

    def __init__(self, pieces):
        self.pieces = list(pieces)

    def settimeout(self, value):
        pass

    def recv(self, n, flags=0):
        if not self.pieces:
            return b""
        if flags & socket.MSG_PEEK:
            return self.pieces[0][:n]
        data, rest = self.pieces[0][:n], self.pieces[0][n:]
        if rest:
            self.pieces[0] = rest
        else:
            self.pieces.pop(0)
        return data


@pytest.mark.parametrize("pieces", [
    [b"HTTP/1.1 200 OK\r", b"\n", b"X: y\r\n\r", b"\nTUNNEL"],
    [b"HTTP/1.1 200 OK\r\n\r\nTUNNEL"],
    [b"HTTP/1.1 200 OK\r\n", b"\r\n", b"TUNNEL"],
])
def test_read_head_stops_at_the_blank_line(pieces):
    import time
    sock = Pieces(pieces)
    head = _proxy.read_head(sock, time.monotonic() + 5)
    assert head.endswith(b"\r\n\r\n") and b"TUNNEL" not in head
    assert b"".join(sock.pieces) == b"TUNNEL"          # the tunnel's first bytes are left for TLS


def test_read_head_eof_and_limit():
    import time
    with pytest.raises(EOFError):
        _proxy.read_head(Pieces([b"HTTP/1.1 200 OK\r\n"]), time.monotonic() + 5)
    with pytest.raises(ValueError, match="longer than"):
        _proxy.read_head(Pieces([b"X" * 4096] * 20), time.monotonic() + 5)


def test_403_is_proxy_refused_naming_the_status_line(tiny):
    p = tiny(lambda req: b"HTTP/1.1 403 Forbidden\r\nX-Squid-Error: ERR_ACCESS_DENIED 0\r\n"
                         b"Content-Length: 5\r\n\r\ndenied")
    with pytest.raises(ProxyError) as err:
        _proxy.connector("http://127.0.0.1:%d" % p.port)("api.push.apple.com", 25, 2.0)
    assert err.value.status == "proxy_refused" and "'403 Forbidden'" in err.value.detail
    assert err.value.answer == "403 Forbidden" and "api.push.apple.com" in err.value.remedy


def test_407(tiny):
    p = tiny(lambda req: b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                         b"Proxy-Authenticate: Basic realm=\"corp\"\r\n\r\n")
    with pytest.raises(ProxyError) as err:
        _proxy.connector("http://127.0.0.1:%d" % p.port)("h", 443, 2.0)
    assert err.value.status == "proxy_auth_required" and "realm" in err.value.detail


def test_silent_proxy_is_timeout(tiny):
    p = tiny(lambda req: None)
    with pytest.raises(ProxyError) as err:
        _proxy.connector("http://127.0.0.1:%d" % p.port)("api.push.apple.com", 443, 0.3)
    assert err.value.status == "timeout" and "did not answer CONNECT" in err.value.detail


def test_closed_without_answer_is_proxy_refused(tiny):
    p = tiny(lambda req: b"")
    with pytest.raises(ProxyError) as err:
        _proxy.connector("http://127.0.0.1:%d" % p.port)("h", 443, 2.0)
    assert err.value.status == "proxy_refused" and "closed" in err.value.detail


def test_not_http_is_proxy_refused(tiny):
    p = tiny(lambda req: b"SSH-2.0-x\r\n\r\n")
    with pytest.raises(ProxyError) as err:
        _proxy.connector("http://127.0.0.1:%d" % p.port)("h", 443, 2.0)
    assert err.value.status == "proxy_refused" and "not an HTTP answer" in err.value.detail


def test_nothing_listening_is_proxy_unreachable():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                                  # a port nobody listens on: refused at once
    with pytest.raises(ProxyError) as err:
        _proxy.connector("http://127.0.0.1:%d" % port)("api.push.apple.com", 443, 2.0)
    assert err.value.status == "proxy_unreachable" and "http://127.0.0.1:%d" % port in err.value.detail
    assert "proxy" in err.value.remedy and "Apple" not in err.value.detail


def test_probe_engine_classifies_a_proxy_error():
    from ansible_collections.mdmops.apple.plugins.module_utils._probe import classify_oserror
    for status in ("proxy_refused", "proxy_auth_required", "proxy_unreachable", "timeout", "dns_failed"):
        assert classify_oserror(ProxyError(status, "x")) == status


# ---------------------------------------------------------------- the probe engine through the tiny proxy
def test_probe_all_through_a_proxy(tiny):
    from ansible_collections.mdmops.apple.plugins.module_utils._probe import probe_all

    def answer(req):
        target = req.split(b" ", 2)[1]
        if target.endswith(b":443"):
            return b"HTTP/1.1 200 Connection established\r\n\r\n"
        if target.endswith(b":2197"):
            return b"HTTP/1.1 503 Service Unavailable\r\nX-Squid-Error: ERR_CONNECT_FAIL 111\r\n\r\n"
        return b"HTTP/1.1 403 Forbidden\r\nX-Squid-Error: ERR_ACCESS_DENIED 0\r\n\r\n"
    p = tiny(answer)
    eps = [dict(service="s", host=h, port=port, protocol="tcp")
           for h, port in (("api.push.apple.com", 443), ("api.push.apple.com", 2197), ("gateway.push.apple.com", 2195),
                           ("*.push.apple.com", 443))]
    res = probe_all(eps, timeout=2.0, proxy="http://127.0.0.1:%d" % p.port, catalog_names={})
    assert [r["status"] for r in res] == ["ok", "refused", "proxy_refused", "skipped"]
    assert all(r["addresses"] == [] and r["address"] is None for r in res)
    assert [r["resolved_by"] for r in res[:3]] == ["proxy"] * 3
    assert res[0]["proxy"] == "http://127.0.0.1:%d" % p.port and res[0]["remedy"] == ""
    assert "403 Forbidden" in res[2]["error"] and "CONNECT to gateway.push.apple.com" in res[2]["remedy"]
    assert "proxy's own connection" in res[1]["error"]
    # CONNECT carries the name, never a locally resolved address
    targets = sorted(r.split(b" ", 2)[1] for r in p.requests)
    assert targets == [b"api.push.apple.com:2197", b"api.push.apple.com:443", b"gateway.push.apple.com:2195"]


def test_module_options():
    assert _proxy.PROXY_ARGSPEC["proxy_password"]["no_log"] is True
    assert _proxy.proxy_from_options("http://proxy:3128").username is None
    cfg = _proxy.proxy_from_options("http://proxy:3128", "bob", "pw")
    assert (cfg.username, cfg.password, cfg.display) == ("bob", "pw", "http://proxy:3128")
    with pytest.raises(ValueError) as err:
        _proxy.proxy_from_options("http://bob:hunter2@proxy:3128")
    assert "proxy_username and proxy_password" in str(err.value) and "hunter2" not in str(err.value)
    with pytest.raises(ValueError, match="without proxy_username"):
        _proxy.proxy_from_options("http://proxy:3128", None, "pw")
    assert _proxy.url_secrets("http://bob:hun@ter2@proxy:3128") == ["bob:hun@ter2", "hun@ter2"]
    assert _proxy.url_secrets("http://proxy:3128") == []


def test_tls_probe_reports_the_proxy_error():
    from ansible_collections.mdmops.apple.plugins.module_utils._apns import _tls

    def connect(host, port, timeout):
        raise ProxyError("proxy_refused", "proxy http://p:1 answered CONNECT h:443 with '403 Forbidden'",
                         "allow CONNECT to h")
    res = _tls.tls_probe("api.push.apple.com", 443, timeout=1, connect=connect)
    assert (res["status"], res["remedy"]) == ("proxy_refused", "allow CONNECT to h")
    assert res["detail"].startswith("proxy http://p:1 answered") and res["chain_verified"] is None


def test_provider_classifies_a_wrapped_proxy_error():
    from ansible_collections.mdmops.apple.plugins.module_utils._apns import _provider
    try:
        try:
            raise ProxyError("proxy_auth_required", "proxy http://p:1 answered 407")
        except ProxyError as inner:
            raise RuntimeError("ConnectError") from inner
    except RuntimeError as exc:
        assert _provider.classify_exception(exc) == ("proxy_auth_required", "proxy http://p:1 answered 407")
