# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTTP CONNECT proxies for the probes: a tunnel per connection, and what went wrong named.

Pure Python (standard library only), no Ansible imports.

* :func:`parse_proxy` reads ``http://[user:password@]host:port`` into a
  :class:`ProxyConfig` (only plain ``http://`` proxies that speak CONNECT; the
  port is required). Credentials never appear in its ``repr``/``str``, in
  :attr:`ProxyConfig.display`, in an error message or in a detail.
* :func:`connector` returns ``connect(host_or_address, port, timeout) -> socket``
  (the hook of ``_tls.tls_probe`` and ``_provider.provider_probe``): one TCP
  connection to the proxy, one ``CONNECT host:port HTTP/1.1`` (with
  ``Proxy-Authorization: Basic`` when credentials are given), and the socket
  once the proxy answered 2xx, positioned at the first byte of the tunnel.
  The target is sent as given: a name is resolved by the proxy, not locally.

Failures raise :class:`ProxyError` (an ``OSError``) whose ``status`` is one of:

``proxy_unreachable``
    the proxy itself refused the TCP connection, did not answer it within the
    timeout, or has no route: a problem with the proxy, not with Apple.
``proxy_auth_required``
    407: the proxy wants credentials, or refused the ones given.
``proxy_refused``
    any other non-2xx answer to CONNECT (a deny ACL's 403, a port the proxy
    does not tunnel to), or the proxy closing the connection without an
    answer; the detail quotes the proxy's status line.
``timeout``
    the proxy accepted the connection but did not answer CONNECT within the
    timeout (it is usually waiting on a target that drops its packets).
``refused``, ``timeout``, ``unreachable``, ``dns_failed``
    when the proxy says (Squid's ``X-Squid-Error`` header on a 5xx answer)
    that *its* connection to the target was refused, timed out or had no
    route, or that it could not resolve the name: the same finding as a
    direct probe, seen from the proxy (``upstream`` is then True).

Each ``ProxyError`` has ``detail`` (one line, names the proxy and the target)
and ``remedy`` (one line: what to do, and on which side).
"""

from __future__ import annotations

import base64
import errno
import ipaddress
import re
import socket
import time

try:
    from urllib.parse import unquote
except ImportError:  # pragma: no cover  (Python 2 is not supported by the collection)
    from urllib import unquote

#: ProxyError statuses that concern the proxy itself (the others are the target's, seen through it).
PROXY_STATUSES = ("proxy_refused", "proxy_auth_required", "proxy_unreachable")
MAX_HEAD = 65536

REMEDIES = {
    "proxy_unreachable": "This host cannot reach its proxy {proxy}: check the proxy address and port, that the "
                         "proxy runs, and the firewalls between this host and the proxy.",
    "proxy_auth_required": "The proxy {proxy} wants credentials for CONNECT, or refused the ones given: set "
                           "proxy_username and proxy_password to an account the proxy accepts.",
    "proxy_refused": "The proxy {proxy} refused CONNECT to {host}:{port} ({answer}): allow CONNECT to {host} on "
                     "port {port} in the proxy's rules (Apple's hosts need ports 443, 2197 and 5223 tunnelled).",
    "timeout": "The proxy {proxy} got no answer from {host}:{port} in time: a firewall behind the proxy drops "
               "TCP {port} to {host}; allow it there.",
    "refused": "The proxy {proxy} reports TCP {port} to {host} refused: open TCP {port} to {host} on the "
               "firewalls between the proxy and Apple.",
    "unreachable": "The proxy {proxy} has no route to {host}: check the proxy's routing and upstream firewall.",
    "dns_failed": "The proxy {proxy} cannot resolve {host}: fix the DNS the proxy uses.",
}

_HOST_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")
_CTL_RE = re.compile(r"[\x00-\x20\x7f]")
_STATUS_RE = re.compile(r"^HTTP/1\.[01] (\d{3})(?: (.*))?$")
# errno values Squid puts after ERR_CONNECT_FAIL
_UPSTREAM_ERRNO = {errno.ECONNREFUSED: "refused", errno.ETIMEDOUT: "timeout", errno.EHOSTUNREACH: "unreachable",
                   errno.ENETUNREACH: "unreachable"}


class ProxyConfig(object):
    """A parsed proxy: ``host``, ``port``, optional ``username``/``password``.

    ``display`` (also ``str()``) is ``http://host:port``: safe to print.
    """

    __slots__ = ("host", "port", "username", "password")

    def __init__(self, host, port, username=None, password=None):
        self.host = host
        self.port = port
        self.username = username
        self.password = password

    @property
    def has_credentials(self):
        return self.username is not None

    @property
    def display(self):
        host = "[%s]" % self.host if ":" in self.host else self.host
        return "http://%s:%d" % (host, self.port)

    def __str__(self):
        return self.display

    def __repr__(self):
        return "ProxyConfig(%r%s)" % (self.display, ", credentials=<hidden>" if self.has_credentials else "")

    def __eq__(self, other):
        return isinstance(other, ProxyConfig) and all(getattr(self, a) == getattr(other, a) for a in self.__slots__)

    def __ne__(self, other):
        return not self == other

    __hash__ = None


class ProxyError(OSError):
    """CONNECT through the proxy failed; ``status``, ``detail``, ``remedy`` say how.

    ``proxy_status`` repeats ``status`` (so callers that only see an
    ``OSError`` can tell); ``answer`` is the proxy's status line when it gave one;
    ``upstream`` is True when the proxy reported the target's failure.
    """

    def __init__(self, status, detail, remedy="", errno_=None, answer=None, upstream=False):
        super(ProxyError, self).__init__(errno_ if errno_ is not None else 0, detail)
        self.status = self.proxy_status = status
        self.detail = detail
        self.remedy = remedy
        self.answer = answer
        self.upstream = upstream

    def __str__(self):
        return self.detail


def _safe(url):
    """The URL with anything between ``//`` and ``@`` hidden, for messages."""
    text = str(url)
    head, sep, rest = text.partition("//")
    if sep and "@" in rest:
        rest = "<credentials>@" + rest.rsplit("@", 1)[1]
    elif not sep and "@" in text:
        return "<hidden: the value holds '@' (credentials?)>"
    return (head + sep + rest)[:200]


def parse_proxy(url, username=None, password=None):
    """``http://[user:password@]host:port[/]`` -> :class:`ProxyConfig`; ValueError says what is wrong.

    ``username``/``password`` (e.g. no_log module options) are used when the
    URL has none; giving both is an error. IPv6 hosts go in brackets.
    """
    if isinstance(url, ProxyConfig):
        return url
    if not isinstance(url, str) or not url.strip():
        raise ValueError("proxy: give the proxy as http://host:port, got an empty value")
    text = url.strip()
    safe = _safe(text)
    if _CTL_RE.search(text):
        raise ValueError("proxy %r: spaces and control characters are not allowed" % safe)
    scheme, sep, rest = text.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise ValueError("proxy %r: give a URL with its scheme, http://host:port" % safe)
    if scheme == "https":
        raise ValueError("proxy %r: TLS to the proxy (https://) is not supported; give the proxy's plain HTTP "
                         "CONNECT address, http://host:port" % safe)
    if scheme.startswith("socks"):
        raise ValueError("proxy %r: SOCKS proxies are not supported; give an HTTP CONNECT proxy, "
                         "http://host:port" % safe)
    if scheme != "http":
        raise ValueError("proxy %r: scheme %r is not supported; give an HTTP CONNECT proxy, http://host:port"
                         % (safe, scheme[:20]))
    if rest.endswith("/"):
        rest = rest[:-1]
    if any(c in rest for c in "/?#"):
        raise ValueError("proxy %r: a proxy URL has no path, query or fragment; give http://host:port" % safe)
    user = pw = None
    if "@" in rest:
        creds, rest = rest.rsplit("@", 1)
        user, colon, pw = creds.partition(":")
        user, pw = unquote(user), (unquote(pw) if colon else None)
        if not user:
            raise ValueError("proxy %r: the user name before '@' is empty" % safe)
        if ":" in user:
            raise ValueError("proxy %r: a user name cannot contain ':' (basic authentication)" % safe)
        if re.search(r"[\x00-\x1f\x7f]", user + (pw or "")):
            raise ValueError("proxy %r: control characters in the credentials" % safe)
    if rest.startswith("["):
        host, bracket, port_text = rest[1:].partition("]")
        if not bracket or not port_text.startswith(":"):
            raise ValueError("proxy %r: give an IPv6 proxy as http://[address]:port" % safe)
        port_text = port_text[1:]
        try:
            host = str(ipaddress.IPv6Address(host))
        except ValueError:
            raise ValueError("proxy %r: %r is not an IPv6 address" % (safe, host[:60]))
    else:
        host, colon, port_text = rest.rpartition(":")
        if not colon:
            host, port_text = rest, ""
        if not host:
            raise ValueError("proxy %r: the host is missing; give http://host:port" % safe)
        if not _HOST_RE.match(host):
            raise ValueError("proxy %r: %r is not a host name or IPv4 address" % (safe, host[:60]))
        host = host.rstrip(".").lower()
    if not port_text:
        raise ValueError("proxy %r: the port is missing (proxies have no default port); give http://host:port, "
                         "e.g. http://%s:3128" % (safe, host if ":" not in host else "[%s]" % host))
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError("proxy %r: port %r is not a number from 1 to 65535" % (safe, port_text[:10]))
    if user is not None and username is not None:
        raise ValueError("proxy: credentials are given both in the URL and as proxy_username; give them once")
    if username is not None:
        user, pw = username, password
        if not user or ":" in user or re.search(r"[\x00-\x1f\x7f]", user + (pw or "")):
            raise ValueError("proxy_username must be a non-empty name without ':' or control characters")
    elif password is not None:
        raise ValueError("proxy_password is given without proxy_username")
    return ProxyConfig(host, int(port_text), user, pw)


#: Argument spec of the proxy options (doc fragment ``mdmops.apple.proxy``).
PROXY_ARGSPEC = {
    "proxy": {"type": "str"},
    "proxy_username": {"type": "str"},
    "proxy_password": {"type": "str", "no_log": True},
}
#: For AnsibleModule(required_by=...): credentials need the proxy.
PROXY_REQUIRED_BY = {"proxy_username": "proxy", "proxy_password": ["proxy", "proxy_username"]}


def url_secrets(url):
    """What a proxy URL holds between ``//`` and ``@`` (and the password part): values a module must mask."""
    userinfo = str(url or "").partition("//")[2].rpartition("@")[0]
    return [v for v in (userinfo, userinfo.partition(":")[2]) if v]


def proxy_from_options(url, username=None, password=None):
    """A ProxyConfig from the module options; ValueError (never holding a credential) when they are wrong.

    Credentials must come as ``username``/``password`` (``proxy_password`` is
    no_log), not inside the URL.
    """
    cfg = parse_proxy(url)
    if cfg.has_credentials:
        raise ValueError("proxy %s: give the proxy's credentials in proxy_username and proxy_password "
                         "(proxy_password is never logged), not in the URL" % cfg.display)
    if username is None:
        if password is not None:
            raise ValueError("proxy_password is given without proxy_username")
        return cfg
    return parse_proxy(cfg.display, username, password or "")


def _target(host):
    host = str(host)
    return "[%s]" % host if ":" in host else host


def connect_request(cfg, host, port):
    """The bytes of ``CONNECT host:port`` for ``cfg`` (Proxy-Authorization when it has credentials)."""
    authority = "%s:%d" % (_target(host), int(port))
    lines = ["CONNECT %s HTTP/1.1" % authority, "Host: %s" % authority, "User-Agent: mdmops.apple-probe"]
    if cfg.has_credentials:
        token = base64.b64encode(("%s:%s" % (cfg.username, cfg.password or "")).encode("utf-8")).decode("ascii")
        lines.append("Proxy-Authorization: Basic %s" % token)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def read_head(sock, deadline):
    """Read exactly the response head (up to and including the blank line) from ``sock``; nothing after it.

    Raises ``socket.timeout`` past ``deadline`` (monotonic), ``EOFError`` when the
    peer closes first, ValueError for a head over 64 KiB.
    """
    buf = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out")
        sock.settimeout(left)
        peek = sock.recv(4096, socket.MSG_PEEK)
        if not peek:
            raise EOFError("closed")
        combined = buf + peek
        end = combined.find(b"\r\n\r\n", max(0, len(buf) - 3))
        want = (end + 4 - len(buf)) if end >= 0 else len(peek)
        got = b""
        while len(got) < want:
            chunk = sock.recv(want - len(got))
            if not chunk:
                raise EOFError("closed")
            got += chunk
        buf += got
        if end >= 0:
            return buf
        if len(buf) > MAX_HEAD:
            raise ValueError("answer head longer than %d bytes" % MAX_HEAD)


def parse_head(head):
    """(code, reason, {lower-case header: value}) of a response head; ValueError when it is not HTTP/1.x."""
    lines = head.decode("latin-1").split("\r\n")
    match = _STATUS_RE.match(lines[0])
    if not match:
        raise ValueError("not an HTTP answer: %r" % lines[0][:80])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            headers.setdefault(key.strip().lower(), value.strip())
    return int(match.group(1)), (match.group(2) or "").strip(), headers


def classify_answer(cfg, host, port, code, reason, headers):
    """A :class:`ProxyError` for a non-2xx answer to CONNECT (None for 2xx).  Pure."""
    if 200 <= code < 300:
        return None
    answer = ("%d %s" % (code, reason)).strip()
    fmt = dict(proxy=cfg.display, host=host, port=port, answer=answer)
    where = "proxy %s answered CONNECT %s:%s with '%s'" % (cfg.display, _target(host), port, answer)
    if code == 407:
        challenge = headers.get("proxy-authenticate")
        detail = "%s: %s" % (where, "the credentials given were refused" if cfg.has_credentials else
                             "it requires authentication%s and none was given" % (
                                 " (%s)" % challenge[:80] if challenge else ""))
        return ProxyError("proxy_auth_required", detail, REMEDIES["proxy_auth_required"].format(**fmt),
                          errno.EACCES, answer)
    squid = headers.get("x-squid-error", "")
    if code >= 500 and squid:
        name, _sp, num = squid.partition(" ")
        status = None
        if name == "ERR_CONNECT_FAIL" and num.strip().isdigit():
            status = _UPSTREAM_ERRNO.get(int(num))
        elif name == "ERR_DNS_FAIL":
            status = "dns_failed"
        elif name in ("ERR_CONNECT_TIMEOUT", "ERR_READ_TIMEOUT"):
            status = "timeout"
        if status:
            detail = "%s (%s): the proxy's own connection to %s:%s failed (%s)" % (
                where, squid[:60], host, port, {"refused": "refused", "timeout": "timed out",
                                                "unreachable": "no route", "dns_failed": "name not resolved"}[status])
            return ProxyError(status, detail, REMEDIES[status].format(**fmt), errno.ECONNABORTED, answer, True)
    detail = where + (" (%s)" % squid[:60] if squid else "") + ": the proxy does not allow this tunnel"
    return ProxyError("proxy_refused", detail, REMEDIES["proxy_refused"].format(**fmt), errno.ECONNABORTED, answer)


def open_tunnel(cfg, host, port, timeout):
    """A socket tunnelled through ``cfg`` to ``host``:``port`` (the proxy resolves a name); raises ProxyError."""
    deadline = time.monotonic() + timeout
    fmt = dict(proxy=cfg.display, host=host, port=port, answer="")
    unreachable = REMEDIES["proxy_unreachable"].format(**fmt)
    try:
        sock = socket.create_connection((cfg.host, cfg.port), timeout=timeout)
    except socket.timeout:
        raise ProxyError("proxy_unreachable", "the proxy %s did not accept a TCP connection within %ss"
                         % (cfg.display, timeout), unreachable, errno.ETIMEDOUT)
    except socket.gaierror as exc:
        raise ProxyError("proxy_unreachable", "the proxy's name in %s does not resolve here: %s"
                         % (cfg.display, exc.strerror or exc), unreachable, errno.EHOSTUNREACH)
    except OSError as exc:
        raise ProxyError("proxy_unreachable", "the proxy %s cannot be reached: %s"
                         % (cfg.display, exc.strerror or exc), unreachable, exc.errno)
    try:
        sock.settimeout(timeout)
        sock.sendall(connect_request(cfg, host, port))
        head = read_head(sock, deadline)
        code, reason, headers = parse_head(head)
    except socket.timeout:
        sock.close()
        raise ProxyError("timeout", "the proxy %s took the connection but did not answer CONNECT %s:%s within %ss "
                         "(it is probably waiting for %s:%s, which does not answer it)"
                         % (cfg.display, _target(host), port, timeout, host, port),
                         REMEDIES["timeout"].format(**fmt), errno.ETIMEDOUT)
    except (EOFError, OSError, ValueError) as exc:
        sock.close()
        reason = "it closed the connection" if isinstance(exc, (EOFError, ConnectionError)) else str(exc)
        fmt["answer"] = "no answer"
        raise ProxyError("proxy_refused", "the proxy %s gave no usable answer to CONNECT %s:%s: %s"
                         % (cfg.display, _target(host), port, reason),
                         REMEDIES["proxy_refused"].format(**fmt), errno.ECONNABORTED)
    err = classify_answer(cfg, host, port, code, reason, headers)
    if err is not None:
        sock.close()
        raise err
    sock.settimeout(timeout)
    return sock


def connector(cfg):
    """``connect(host_or_address, port, timeout) -> socket`` through the proxy ``cfg`` (a ProxyConfig or URL)."""
    cfg = parse_proxy(cfg)

    def connect(host, port, timeout):
        return open_tunnel(cfg, host, port, timeout)

    connect.proxy = cfg
    return connect
