"""The lab's HTTP CONNECT proxies: one real Squid (Debian's squid-openssl) in the net namespace.

Started on demand (``start(lab)``, like the TLS faults), so ``Lab.up`` stays fast;
``lab.stop(NAME)`` or ``lab.down()`` stops it.  One Squid process, three
addresses in the lab's "other Internet" (198.51.100.0/24, local in net), port
3128 each, each a kind of proxy an enterprise runs:

``clean`` (198.51.100.220)
    a plain CONNECT proxy: tunnels to ports 443, 2197 and 5223 only (Apple's
    TLS ports), answers any other CONNECT with ``403 Forbidden``
    (``X-Squid-Error: ERR_ACCESS_DENIED``): the ``proxy_refused`` case.
``auth`` (198.51.100.221)
    the same rules behind basic authentication (``basic_ncsa_auth``, user
    ``AUTH_USER``, password ``AUTH_PASSWORD``): ``407`` without them.
``intercept`` (198.51.100.222)
    an inspecting proxy: ``ssl_bump`` (peek at the ClientHello, then bump)
    re-signs every server certificate with its own CA, ``INTERCEPT_CA``
    ("Corp Squid Inspection CA (lab)", made per lab in
    ``<state>/proxies/intercept-ca.pem``), and talks to the real server itself
    (validating it against the lab's ``ca.pem``).  Squid 5 has no HTTP/2, so a
    bumped connection negotiates no ALPN, as real inspecting proxies often do.

``DOWN`` (198.51.100.229:3128) is an address where nothing listens (connections
are refused at once): a proxy that is down.  ``SILENT`` (17.0.0.250) is a target
the proxy cannot get an answer from: ``start`` adds an nftables rule in net
(table ``inet mdmops_proxy_lab``) that drops what is sent there, so a CONNECT to it
waits (Squid's ``connect_timeout`` is 5 s) and the probe's own timeout says
``timeout``.  Squid resolves names with the lab DNS.
Logs: ``<state>/logs/proxy.log`` (Squid's cache.log) and
``<state>/proxies/access.log`` (one line per CONNECT, with the answer).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from typing import Dict

NAME = "proxy"                  # Lab.spawn name: pids/proxy.pid, logs/proxy.log
PORT = 3128
ADDRESSES = {"clean": "198.51.100.220", "auth": "198.51.100.221", "intercept": "198.51.100.222"}
DOWN = "198.51.100.229"
ALLOWED_PORTS = (443, 2197, 5223)
SILENT = "17.0.0.250"           # packets from net to it are dropped (nftables in net): a target that never answers
NFT_TABLE = "mdmops_proxy_lab"
DENIED_PORT = 2195              # the retired binary APNs port: a CONNECT the proxy's ACL refuses
AUTH_USER = "mdmops"
AUTH_PASSWORD = "lab-proxy-secret"
INTERCEPT_CA = "Corp Squid Inspection CA (lab)"
SQUID = "/usr/sbin/squid"
CERTGEN = "/usr/lib/squid/security_file_certgen"
NCSA = "/usr/lib/squid/basic_ncsa_auth"
USER = "proxy"                  # Debian's squid user


def url(kind: str = "clean", credentials: bool = False) -> str:
    """``http://address:3128`` of proxy ``kind`` (``down`` too); ``credentials`` adds the lab's user."""
    address = DOWN if kind == "down" else ADDRESSES[kind]
    auth = "%s:%s@" % (AUTH_USER, AUTH_PASSWORD) if credentials else ""
    return "http://%s%s:%d" % (auth, address, PORT)


def unavailable() -> str:
    """Why the lab cannot run its proxies here ('' when it can)."""
    for path in (SQUID, CERTGEN, NCSA):
        if not os.path.exists(path):
            return "%s is missing: apt-get install squid-openssl" % path
    out = subprocess.run([SQUID, "-v"], capture_output=True, text=True, check=False).stdout
    if "--with-openssl" not in out:
        return "this squid has no OpenSSL (ssl_bump): apt-get install squid-openssl (it replaces squid)"
    return ""


def config(lab, base: str) -> str:
    """The squid.conf text for this lab (``base``: the proxies' directory)."""
    allowed = " ".join(str(p) for p in ALLOWED_PORTS)
    a = ADDRESSES
    return "\n".join([
        "# written by lab/proxies.py for lab %s" % lab.prefix,
        "http_port %s:%d name=clean" % (a["clean"], PORT),
        "http_port %s:%d name=auth" % (a["auth"], PORT),
        "http_port %s:%d name=intercept ssl-bump tls-cert=%s/intercept-ca.pem tls-key=%s/intercept-ca.key "
        "generate-host-certificates=on dynamic_cert_mem_cache_size=4MB" % (a["intercept"], PORT, base, base),
        "sslcrtd_program %s -s %s/ssl_db -M 4MB" % (CERTGEN, base),
        "sslcrtd_children 3 startup=1 idle=1",
        "tls_outgoing_options cafile=%s" % lab.ca_path,
        "acl step1 at_step SslBump1",
        "ssl_bump peek step1",
        "ssl_bump bump all",
        "auth_param basic program %s %s/htpasswd" % (NCSA, base),
        "auth_param basic children 2 startup=1 idle=1",
        "auth_param basic realm mdmops lab proxy",
        "acl authed proxy_auth REQUIRED",
        "acl auth_port myportname auth",
        "acl apple_tls port %s" % allowed,
        "acl CONNECT method CONNECT",
        "http_access deny auth_port !authed",
        "http_access deny CONNECT !apple_tls",
        "http_access allow all",
        "dns_nameservers %s" % lab.dns_server,
        "hosts_file none",
        "connect_timeout 5 seconds",
        "cache deny all",
        "cache_mem 8 MB",
        "visible_hostname mdmlab-proxy",
        "cache_effective_user %s" % USER,
        "pid_filename none",
        "cache_log stdio:%s" % lab.path("logs", NAME + ".log"),
        "access_log stdio:%s/access.log" % base,
        "cache_store_log none",
        "logfile_rotate 0",
        "netdb_filename none",
        "pinger_enable off",
        "icp_port 0",
        "htcp_port 0",
        "shutdown_lifetime 0 seconds",
        "coredump_dir %s" % base,
        "",
    ])


def _intercept_ca(base: str) -> None:
    from lab.pki import make_ca
    ca = make_ca(INTERCEPT_CA, "Example Corp")
    ca.write(os.path.join(base, "intercept-ca.pem"), os.path.join(base, "intercept-ca.key"))


def _htpasswd(path: str) -> None:
    hashed = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=AUTH_PASSWORD, capture_output=True,
                            text=True, check=True).stdout.strip()
    with open(path, "w") as f:
        f.write("%s:%s\n" % (AUTH_USER, hashed))


def prepare(lab) -> str:
    """Write config, CA, password file and certificate database under ``<state>/proxies``; return the conf path."""
    problem = unavailable()
    if problem:
        from lab.netns import LabError
        raise LabError("the lab proxies need Squid with OpenSSL: " + problem)
    base = lab.path("proxies")
    if os.path.isdir(base):
        shutil.rmtree(base)
    os.makedirs(base, mode=0o750)
    _intercept_ca(base)
    _htpasswd(os.path.join(base, "htpasswd"))
    subprocess.run([CERTGEN, "-c", "-s", os.path.join(base, "ssl_db"), "-M", "4MB"], check=True,
                   capture_output=True, text=True)
    conf = os.path.join(base, "squid.conf")
    with open(conf, "w") as f:
        f.write(config(lab, base))
    # Squid and its helpers run as the proxy user: it owns what they read and write
    subprocess.run(["chown", "-R", "%s:%s" % (USER, USER), base], check=True)
    log = lab.path("logs", NAME + ".log")
    open(log, "a").close()
    shutil.chown(log, USER, USER)
    return conf


def _silent_target(lab) -> None:
    """Drop, in net, what is sent to SILENT (idempotent; gone with the namespace)."""
    rules = ("table inet %s\ndelete table inet %s\ntable inet %s {\n chain out {\n"
             "  type filter hook output priority 0; policy accept;\n  ip daddr %s drop\n }\n}\n"
             % (NFT_TABLE, NFT_TABLE, NFT_TABLE, SILENT))
    lab.run("net", ["nft", "-f", "-"], input=rules, check=True)


def start(lab) -> Dict[str, str]:
    """Start the lab's Squid if it is not running; returns ``{kind: url}`` (``down`` included)."""
    if not lab.pid(NAME):
        _silent_target(lab)
        conf = prepare(lab)
        lab.spawn("net", NAME, [SQUID, "-N", "-f", conf], tcp_ports=[PORT], timeout=30)
    urls = {kind: url(kind) for kind in ADDRESSES}
    urls["down"] = url("down")
    return urls


def intercept_ca_path(lab) -> str:
    return lab.path("proxies", "intercept-ca.pem")
