"""The HTTP layer (module_utils/_http.py) against a real local HTTP server: retries, Retry-After,
deadlines, token refresh, redaction, errors. Waits go through an injected sleep/clock (recorded,
never slept), so nothing here waits for real except the one timeout test (a fraction of a second)."""
from __future__ import annotations

import base64
import datetime as dt
import email.utils
import socket

import pytest

from ansible_collections.mdmops.apple.plugins.module_utils import _http as h
from tests.lib.keys import private_key_pem

PEM_KEY = private_key_pem()          # made when the tests run: no key material in the tree


def session(server, fake_time, **kw):
    kw.setdefault("sleep", fake_time.sleep)
    kw.setdefault("clock", fake_time.clock)
    kw.setdefault("jitter", lambda: 1.0)
    kw.setdefault("trust_env", False)
    return h.Session(server.url, **kw)


def test_plain_get_json_and_basic_auth(server, fake_time):
    server.answer((200, {"Content-Type": "application/json"}, {"ok": 1}))
    s = session(server, fake_time, auth=h.BasicAuth("nanomdm", "s3cret-key"))
    assert s.get_json("/v1/x", params={"topic": "t"}) == {"ok": 1}
    method, path, headers, _body = server.seen[0]
    assert (method, path) == ("GET", "/v1/x?topic=t")
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"nanomdm:s3cret-key").decode()
    assert fake_time.waits == []


@pytest.mark.parametrize("retry_after,expected", [("7", 7.0), ("0", 0.0), ("600", 60.0)])
def test_429_retry_after_seconds_honoured_and_clamped(server, fake_time, retry_after, expected):
    server.answer((429, {"Retry-After": retry_after}, {"error": "slow down"}), (200, {}, {"done": True}))
    s = session(server, fake_time, max_retry_after=60)
    assert s.request("PUT", "/up", content=b"x").json() == {"done": True}
    assert fake_time.waits == [expected]
    assert [e["result"] for e in s.history] == [429, 200]


def test_retry_after_http_date(server, fake_time):
    when = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=30)
    server.answer((503, {"Retry-After": email.utils.format_datetime(when, usegmt=True)}, b""), (200, {}, b"{}"))
    s = session(server, fake_time)
    s.request("GET", "/")
    assert len(fake_time.waits) == 1 and 25 <= fake_time.waits[0] <= 30


def test_backoff_exponential_without_retry_after_then_gives_up(server, fake_time):
    server.answer(*[(503, {}, {"error": "busy"})] * 4)
    s = session(server, fake_time, retries=3, backoff=1, max_backoff=3)
    with pytest.raises(h.HttpError) as err:
        s.request("POST", "/p", json_body={"a": 1})          # 503: retried even for POST
    assert fake_time.waits == [1, 2, 3]                       # 1, 2, 4 capped at 3 (jitter factor 1)
    assert err.value.status == 503 and err.value.attempts == 4
    assert "answered 503" in str(err.value) and "after 4 attempts" in str(err.value)


def test_jitter_keeps_between_half_and_full():
    for j in (0.0, 0.5, 1.0):
        assert 0.5 * 4 <= h.backoff_delay(2, 1, 30, lambda j=j: j) <= 4


@pytest.mark.parametrize("method,status,retried", [
    ("POST", 504, False), ("PUT", 504, True), ("GET", 408, True), ("POST", 408, False),
    ("GET", 500, False), ("PATCH", 502, False),
])
def test_which_statuses_are_retried_for_which_methods(server, fake_time, method, status, retried):
    server.answer((status, {}, b""), (200, {}, b"{}"))
    s = session(server, fake_time)
    if retried:
        assert s.request(method, "/").status == 200
    else:
        with pytest.raises(h.HttpError) as err:
            s.request(method, "/")
        assert err.value.status == status and err.value.attempts == 1
    assert len(server.seen) == (2 if retried else 1)


def test_patch_marked_idempotent_is_retried(server, fake_time):
    server.answer((504, {}, b""), (204, {}, b""))
    s = session(server, fake_time)
    assert s.request("PATCH", "/", json_body={"v": 1}, idempotent=True, expect=(204,)).status == 204


def test_deadline_stops_a_wait_that_would_cross_it(server, fake_time):
    server.answer((429, {"Retry-After": "50"}, {"error": "x"}), (200, {}, b"{}"))
    s = session(server, fake_time, deadline=30, max_retry_after=60)
    with pytest.raises(h.HttpError) as err:
        s.request("GET", "/")
    assert err.value.kind == "deadline" and err.value.retry_after == 50
    assert "deadline" in str(err.value) and fake_time.waits == []
    assert len(server.seen) == 1


def test_connection_refused_is_retried_then_reported():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()                                             # nothing listens there now
    waits = []
    s = h.Session("http://127.0.0.1:%d" % port, retries=2, sleep=waits.append, jitter=lambda: 1.0,
                  trust_env=False)
    with pytest.raises(h.HttpError) as err:
        s.request("POST", "/never")                          # nothing was sent: safe even for POST
    assert err.value.kind == "connect" and err.value.attempts == 3 and len(waits) == 2


def test_read_timeout_retried_for_get_only(server, fake_time):
    server.answer("stall:1", (200, {}, b"{}"))
    s = session(server, fake_time, timeout=0.2)
    assert s.request("GET", "/").status == 200
    server.answer("stall:1")
    with pytest.raises(h.HttpError) as err:
        s.request("POST", "/")
    assert err.value.kind == "timeout" and err.value.attempts == 1


def test_bearer_token_refreshed_once_on_401(server, fake_time):
    calls = []

    def get_token(refresh):
        calls.append(refresh)
        return "tok-%d-abcdef" % len(calls)

    server.answer((401, {}, {"error": "expired"}), (200, {}, {"ok": True}))
    s = session(server, fake_time, auth=h.BearerAuth(get_token))
    assert s.get_json("/me") == {"ok": True}
    assert calls == [False, True]
    assert [seen[2]["Authorization"] for seen in server.seen] == ["Bearer tok-1-abcdef", "Bearer tok-2-abcdef"]
    server.answer((401, {}, {"error": "expired"}), (401, {}, {"error": "still"}))
    with pytest.raises(h.HttpError) as err:
        s.get_json("/me")
    assert err.value.status == 401 and calls == [False, True, True]


def test_errors_never_show_secrets(server, fake_time):
    echo = {"error": "bad request", "password": "hunter2-pw", "echo": "api key was s3cret-key",
            "b64": base64.b64encode(b"s3cret-key").decode(), "pem": PEM_KEY,
            "access_token": "eyJhbGciOi.secret.token"}
    server.answer((400, {}, echo))
    lines = []
    s = session(server, fake_time, auth=h.BasicAuth("nanomdm", "s3cret-key"), log=lines.append)
    with pytest.raises(h.HttpError) as err:
        s.request("PUT", "https://user:pw-in-url@example.invalid/x?token=abc&topic=t".replace(
            "https://user:pw-in-url@example.invalid", server.url), content=PEM_KEY.encode())
    text = str(err.value) + err.value.excerpt + err.value.url + repr(s.history) + " ".join(lines)
    for secret in ("s3cret-key", base64.b64encode(b"s3cret-key").decode(), "hunter2-pw", "MIIEvQ",
                   "eyJhbGciOi.secret.token", "token=abc"):
        assert secret not in text, secret
    assert "400" in str(err.value) and "topic=t" in err.value.url and err.value.method == "PUT"


def test_redact_helpers():
    assert h.redact("Authorization: Basic bmFub21kbTprZXk=") == "Authorization: " + h.MASK
    assert "PRIVATE KEY" not in h.redact("x " + PEM_KEY + " y").replace("[private key removed]", "")
    pkcs1 = private_key_pem(pkcs1=True)
    cut = pkcs1[:pkcs1.index("\n") + 40]          # a PKCS#1 key cut off mid-body
    assert cut[-30:] not in h.redact(cut) and pkcs1.splitlines()[1] not in h.redact(pkcs1)
    assert h.redact_url("https://u:p@h/x?client_secret=s&a=1") == "https://h/x?client_secret=********&a=1"
    assert h.short_excerpt("a" * 1000).endswith("...") and len(h.short_excerpt("a" * 1000)) == h.EXCERPT_CHARS + 3


def test_malformed_json_is_an_error_with_excerpt(server, fake_time):
    server.answer((200, {}, b'{"topic": "com.apple.mgmt.Ext'))
    with pytest.raises(h.HttpError) as err:
        session(server, fake_time).get_json("/")
    assert err.value.kind == "json" and "not JSON" in str(err.value) and "com.apple.mgmt.Ext" in err.value.excerpt


@pytest.mark.parametrize("value,seconds", [
    ("12", 12.0), (" 3 ", 3.0), ("1.5", 1.5), ("", None), (None, None), ("soon", None),
    ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
])
def test_parse_retry_after(value, seconds):
    assert h.parse_retry_after(value) == seconds


def test_bad_url_and_ca_path_are_clear(tmp_path):
    with pytest.raises(h.HttpError, match="not an http"):
        h.Session("mdm.example.com")
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(h.HttpError, match="ca_path"):
        h.Session("https://mdm.example.com", ca_path=str(bad))


def test_form_body_and_secret_form_values_redacted(server, fake_time):
    server.answer((400, {}, {"error": "invalid_client", "error_description": "secret c1ient-s3cret is wrong"}))
    s = session(server, fake_time, secrets=["c1ient-s3cret"])
    with pytest.raises(h.HttpError) as err:
        form = {"client_id": "id", "client_secret": "c1ient-s3cret", "grant_type": "client_credentials"}
        s.request("POST", "/tenant/oauth2/v2.0/token", form=form)
    _method, _path, headers, body = server.seen[0]
    assert headers["Content-Type"] == "application/x-www-form-urlencoded" and b"client_secret=c1ient-s3cret" in body
    assert "c1ient-s3cret" not in str(err.value) and "invalid_client" in str(err.value)


def test_proxy_option_sends_through_the_proxy(server, fake_time):
    """The scripted server stands as the HTTP proxy: it receives the absolute-form request."""
    server.answer((200, {}, {"via": "proxy"}))
    s = h.Session("http://mdm.example.invalid", proxy=server.url, trust_env=False, sleep=fake_time.sleep)
    assert s.get_json("/v1/pushcert") == {"via": "proxy"}
    assert server.seen[0][1] == "http://mdm.example.invalid/v1/pushcert"
