"""The lab's APNs provider API: HTTP/2 over TLS with client-certificate authentication.

Stands in for ``api.push.apple.com`` (production) and ``api.sandbox.push.apple.com``
(sandbox, the development environment) on TCP 443 and 2197, bound (``SO_REUSEPORT``)
to the addresses the lab DNS gives those two names, so every other address keeps
answering as the generic listeners do (lab/listeners.py).  Started by ``Lab.up``.

Answers follow Apple's "Handling notification responses from APNs"
(https://developer.apple.com/documentation/usernotifications/handling-notification-responses-from-apns):
``:status`` plus an ``apns-id`` header on every response, an empty body on 200,
otherwise ``{"reason": "<Reason>"}`` (410 adds ``timestamp``).

Server side: the lab server certificate (leaf, lab "Apple Public Server RSA CA
12 - G1", lab "USERTrust RSA Certification Authority"), ALPN ``h2`` only, so the
TLS layer says ``ok`` for these names.  Client side (what APNs checks):

====================================================  ================================================
client certificate                                    answer
====================================================  ================================================
none                                                  403 ``MissingProviderToken``
expired or not yet valid                              TLS alert ``certificate_expired`` (handshake)
revoked (serial listed in ``revoked`` of the config)   TLS alert ``certificate_revoked`` (CRL check)
issued by a CA no lab PKI knows                       TLS alert ``unknown_ca`` (handshake)
issued by the lab "impostor" CA (known, not Apple's)  403 ``BadCertificate``
not valid for this environment (see below)            403 ``BadCertificateEnvironment``
``apns-topic`` missing and no topic in the certificate  400 ``MissingTopic``
``apns-topic`` malformed                              400 ``BadTopic``
``apns-topic`` not the certificate's topic (UID)       400 ``TopicDisallowed``
device token not one of ``devices`` in the config     400 ``BadDeviceToken`` (what a probe expects)
a known device token                                  200 (empty body)
more than ``rate_limit`` requests per token and topic   429 ``TooManyRequests``
====================================================  ================================================

Also 405 ``MethodNotAllowed`` (not POST), 404 ``BadPath`` (not ``/3/device/<token>``),
400 ``MissingDeviceToken``.

Environment of a client certificate: Apple's push certificate extensions,
``1.2.840.113635.100.6.3.1`` (development: sandbox only) and
``1.2.840.113635.100.6.3.2`` (production).  A certificate with only the first is
refused by production with ``BadCertificateEnvironment``; with only the second,
refused by sandbox; with both or neither (MDM push certificates of the lab PKI),
accepted by both.  ``push_certificate(..., environment="sandbox")`` makes one.

Faults on demand, per push topic (``"*"``: any), read from ``apns-faults.json``
in the lab state directory on every request (``set_fault``/``clear_faults``)::

    {"com.apple.mgmt.External.x": {"status": 503, "reason": "ServiceUnavailable"},
     "*": "stall"}

``"stall"`` reads the request and never answers (a client timeout).  A fault is
applied after TLS, before the certificate and topic checks.  ``configure(lab,
devices=..., revoked=..., rate_limit=...)`` rewrites ``apns.json``; the running
emulator reloads it on the next connection (no restart).

Trust: the lab push PKI (``pki/push_*.pem``, written by ``prepare``): "Apple
Root CA", "Apple Application Integration 2 Certification Authority" and the
"impostor" CA are TLS trust anchors; only certificates issued by AAI2 are
APNs-valid.  ``lab_push_pki(lab)`` gives an ``ApplePushPKI`` over those files so
tests issue client certificates the emulator knows.

Run: ``python -m lab.apns --config <state>/apns.json`` (inside the net namespace).
"""
from __future__ import annotations

import argparse
import collections
import datetime as _dt
import json
import logging
import os
import re
import signal
import socket
import ssl
import sys
import threading
import time
import uuid
from typing import Dict, Optional

PORTS = (443, 2197)
HOSTS = {"api.push.apple.com": "production", "api.sandbox.push.apple.com": "sandbox"}
OID_DEVELOPMENT = "1.2.840.113635.100.6.3.1"
OID_PRODUCTION = "1.2.840.113635.100.6.3.2"
RATE_LIMIT = {"requests": 20, "seconds": 10.0}
TOPIC_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)
PUSH_CAS = ("push_root", "push_aai2", "push_impostor")
log = logging.getLogger("lab.apns")


# ---------------------------------------------------------------- lab side
def lab_push_pki(lab):
    """An ``ApplePushPKI`` over the lab's persisted push CAs (the ones the emulator trusts)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from lab.pki import ApplePushPKI, Issued, WWDR_NAME, apple_ca_name, issue

    def load(base, parent=None):
        with open(lab.path("pki", base + ".pem"), "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        with open(lab.path("pki", base + ".key"), "rb") as f:
            key = load_pem_private_key(f.read(), None)
        return Issued(cert, key, ((parent.cert,) + tuple(parent.chain)) if parent else ())

    pki = ApplePushPKI.__new__(ApplePushPKI)
    pki.root = load("push_root")
    pki.aai2 = load("push_aai2", pki.root)
    pki.impostor = load("push_impostor")
    pki.wwdr = issue(apple_ca_name(WWDR_NAME), pki.root, ca=True, days=3650, path_length=0)
    return pki


def push_certificate(pki, topic: Optional[str] = None, environment: Optional[str] = None, **kw):
    """A push certificate from ``pki`` marked for ``environment`` (``sandbox``, ``production``, ``both``)
    with Apple's extensions, or unmarked (None). Other keywords as ``ApplePushPKI.push``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from lab.pki import PushIssued
    issued = pki.push(topic, **kw)
    if environment is None:
        return issued
    oids = {"sandbox": [OID_DEVELOPMENT], "production": [OID_PRODUCTION],
            "both": [OID_DEVELOPMENT, OID_PRODUCTION]}[environment]
    issuer = kw.get("issuer") or pki.aai2
    builder = (x509.CertificateBuilder().subject_name(issued.cert.subject).issuer_name(issued.cert.issuer)
               .public_key(issued.cert.public_key()).serial_number(issued.cert.serial_number)
               .not_valid_before(issued.cert.not_valid_before_utc)
               .not_valid_after(issued.cert.not_valid_after_utc))
    for ext in issued.cert.extensions:
        builder = builder.add_extension(ext.value, ext.critical)
    for oid in oids:
        builder = builder.add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), b"\x05\x00"),
                                        critical=False)
    cert = builder.sign(issuer.key, hashes.SHA256())
    return PushIssued(cert=cert, key=issued.key, chain=issued.chain, topic=issued.topic)


def prepare(lab) -> str:
    """Write the push CAs (once per lab) and ``apns.json``; returns the config path."""
    from lab.pki import ApplePushPKI
    if not all(os.path.exists(lab.path("pki", ca + ".key")) for ca in PUSH_CAS):
        pki = ApplePushPKI()
        for ca, issued in zip(PUSH_CAS, (pki.root, pki.aai2, pki.impostor)):
            issued.write(lab.path("pki", ca + ".pem"), lab.path("pki", ca + ".key"))
    listen = {}
    for host, env in HOSTS.items():
        pair = lab.resolve(host) or (None, None)
        for addr in pair:
            if addr:
                listen[addr] = {"host": host, "environment": env}
    path = lab.path("apns.json")
    old = {}
    if os.path.exists(path):
        with open(path) as f:
            old = json.load(f)
    cfg = {"listen": listen, "ports": list(PORTS),
           "cert": lab.path("pki", "server.pem"), "key": lab.path("pki", "server.key"),
           "pki_dir": lab.path("pki"), "faults": lab.path("apns-faults.json"),
           "devices": old.get("devices", []), "revoked": old.get("revoked", []),
           "rate_limit": old.get("rate_limit", RATE_LIMIT)}
    with open(path + ".tmp", "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
    os.replace(path + ".tmp", path)
    return path


def configure(lab, **changes) -> None:
    """Change the running emulator's config: ``devices=[token, ...]`` (answered 200),
    ``revoked=[serial, ...]`` (TLS alert), ``rate_limit={"requests": n, "seconds": s}``.
    Applies from the next connection (no restart)."""
    path = prepare(lab)
    with open(path) as f:
        cfg = json.load(f)
    cfg.update(changes)
    with open(path + ".tmp", "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
    os.replace(path + ".tmp", path)


def start(lab, **changes) -> int:
    """(Re)start the emulator in net (``Lab.up`` does); ``changes`` as ``configure``."""
    configure(lab, **changes)
    return lab.spawn("net", "apns", [sys.executable, "-m", "lab.apns", "--config", lab.path("apns.json")],
                     tcp_ports=PORTS)


def set_fault(lab, topic: str, fault) -> None:
    """Fault for requests with ``apns-topic`` ``topic`` (``"*"``: all): ``"stall"`` or
    ``{"status": 503, "reason": "ServiceUnavailable"}``; None removes it."""
    path = lab.path("apns-faults.json")
    faults = _read_json(path) or {}
    if fault is None:
        faults.pop(topic, None)
    else:
        faults[topic] = fault
    with open(path + ".tmp", "w") as f:
        json.dump(faults, f)
    os.replace(path + ".tmp", path)


def clear_faults(lab) -> None:
    try:
        os.unlink(lab.path("apns-faults.json"))
    except FileNotFoundError:
        pass


def _read_json(path: str):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------- server
def cert_environments(cert) -> set:
    """Environments a client certificate may use: by Apple's extensions; unmarked: both."""
    oids = {ext.oid.dotted_string for ext in cert.extensions}
    envs = set()
    if OID_DEVELOPMENT in oids:
        envs.add("sandbox")
    if OID_PRODUCTION in oids:
        envs.add("production")
    return envs or {"sandbox", "production"}


def cert_topic(cert) -> Optional[str]:
    from cryptography.x509.oid import NameOID
    attrs = cert.subject.get_attributes_for_oid(NameOID.USER_ID)
    return str(attrs[0].value) if attrs else None


class Emulator:
    def __init__(self, config_path: str) -> None:
        self.path = config_path
        self.stamp = None
        self.lock = threading.Lock()
        self.hits: Dict[tuple, collections.deque] = collections.defaultdict(collections.deque)
        self.reload()

    def reload(self) -> None:
        """(Re)read the config: a changed ``apns.json`` (``configure``) applies from the next connection."""
        from cryptography import x509
        st = os.stat(self.path)
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp == self.stamp:
            return
        with open(self.path) as f:
            cfg = json.load(f)
        self.cfg = cfg
        with open(os.path.join(cfg["pki_dir"], "push_aai2.pem"), "rb") as f:
            self.aai2 = x509.load_pem_x509_certificate(f.read())
        self.devices = set(t.lower() for t in cfg.get("devices", []))
        self.rate = cfg.get("rate_limit") or RATE_LIMIT
        self.ctx = self._context()
        self.stamp = stamp
        log.info("config loaded: devices %d, revoked %s, rate_limit %s", len(self.devices), cfg.get("revoked"),
                 self.rate)

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cfg["cert"], self.cfg["key"])
        ctx.set_alpn_protocols(["h2"])
        ctx.verify_mode = ssl.CERT_OPTIONAL
        bundle = b""
        for ca in PUSH_CAS:
            with open(os.path.join(self.cfg["pki_dir"], ca + ".pem"), "rb") as f:
                bundle += f.read()
        bundle += self._crls()
        # a file, not cadata: only a file lookup loads the CRLs too
        path = os.path.join(self.cfg["pki_dir"], "apns-client-trust.pem")
        with open(path, "wb") as f:
            f.write(bundle)
        ctx.load_verify_locations(cafile=path)
        if self.cfg.get("revoked"):
            ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
        return ctx

    def _crls(self) -> bytes:
        """One CRL per push CA listing ``revoked`` serials (only when some are listed)."""
        if not self.cfg.get("revoked"):
            return b""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.serialization import load_pem_private_key
        out = b""
        now = _dt.datetime.now(_dt.timezone.utc)
        for ca in PUSH_CAS:
            base = os.path.join(self.cfg["pki_dir"], ca)
            with open(base + ".pem", "rb") as f:
                cert = x509.load_pem_x509_certificate(f.read())
            with open(base + ".key", "rb") as f:
                key = load_pem_private_key(f.read(), None)
            builder = (x509.CertificateRevocationListBuilder().issuer_name(cert.subject)
                       .last_update(now - _dt.timedelta(minutes=5)).next_update(now + _dt.timedelta(days=1)))
            for serial in self.cfg["revoked"]:
                builder = builder.add_revoked_certificate(
                    x509.RevokedCertificateBuilder().serial_number(int(serial))
                    .revocation_date(now - _dt.timedelta(minutes=5)).build())
            out += builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
        return out

    # -------------------------------------------------------- one request
    def fault_for(self, topic: Optional[str]):
        faults = _read_json(self.cfg["faults"]) or {}
        return faults.get(topic or "") or faults.get("*")

    def answer(self, headers: dict, peer_der: Optional[bytes], environment: str):
        """(status, reason or None, extra body fields); None means: do not answer (stall)."""
        from cryptography import x509
        method, path = headers.get(":method", ""), headers.get(":path", "")
        topic = headers.get("apns-topic")
        fault = self.fault_for(topic)
        if fault == "stall":
            return None
        if isinstance(fault, dict):
            return int(fault.get("status", 500)), fault.get("reason", "InternalServerError"), {}
        if method != "POST":
            return 405, "MethodNotAllowed", {}
        match = re.match(r"^/3/device/([^/?]*)$", path)
        if not match:
            return 404, "BadPath", {}
        token = match.group(1).lower()
        if not peer_der:
            return 403, "MissingProviderToken", {}
        cert = x509.load_der_x509_certificate(peer_der)
        try:
            cert.verify_directly_issued_by(self.aai2)
        except Exception:  # issuer name or signature mismatch: not an Apple push certificate
            return 403, "BadCertificate", {}
        if environment not in cert_environments(cert):
            return 403, "BadCertificateEnvironment", {}
        own = cert_topic(cert)
        if topic is None:
            if not own:
                return 400, "MissingTopic", {}
            topic = own
        elif not TOPIC_RE.match(topic):
            return 400, "BadTopic", {}
        elif topic != own:
            return 400, "TopicDisallowed", {}
        if not token:
            return 400, "MissingDeviceToken", {}
        key = (environment, topic, token)
        now = time.monotonic()
        hits = self.hits[key]
        while hits and now - hits[0] > float(self.rate["seconds"]):
            hits.popleft()
        hits.append(now)
        if len(hits) > int(self.rate["requests"]):
            return 429, "TooManyRequests", {}
        if token not in self.devices or not re.match(r"^[0-9a-f]{64}$", token):
            return 400, "BadDeviceToken", {}
        return 200, None, {}

    # -------------------------------------------------------- connection
    def handle(self, raw: socket.socket, environment: str) -> None:
        """One connection, in its own thread.  The handshake runs on a blocking ``SSLSocket`` so a
        refused client certificate gets its TLS alert on the wire (asyncio would drop it)."""
        import h2.config
        import h2.connection
        import h2.events
        raw.settimeout(5)
        with self.lock:
            self.reload()
            ctx = self.ctx
        sock = ctx.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
        try:
            sock.do_handshake()
        except (ssl.SSLError, OSError) as exc:
            log.info("%s handshake refused: %s", environment, getattr(exc, "reason", None) or exc)
            _linger(sock)
            return
        sock.settimeout(60)
        peer_der = sock.getpeercert(binary_form=True)
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        streams: Dict[int, dict] = {}
        try:
            sock.sendall(conn.data_to_send())
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        streams[event.stream_id] = dict(event.headers)
                    elif isinstance(event, h2.events.DataReceived):
                        conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    elif isinstance(event, h2.events.StreamEnded):
                        self._respond(conn, event.stream_id, streams.pop(event.stream_id, {}), peer_der,
                                      environment)
                    elif isinstance(event, h2.events.ConnectionTerminated):
                        sock.sendall(conn.data_to_send())
                        return
                sock.sendall(conn.data_to_send())
        except (ConnectionError, ssl.SSLError, socket.timeout, OSError) as exc:
            log.info("%s connection error %s", environment, exc.__class__.__name__)
        except Exception:  # h2 protocol errors: drop the connection, keep serving
            log.exception("%s connection failed", environment)
        finally:
            sock.close()

    def _respond(self, conn, stream_id: int, hdrs: dict, peer_der, environment: str) -> None:
        with self.lock:
            result = self.answer(hdrs, peer_der, environment)
        log.info("%s %s %s topic=%s -> %s", environment, hdrs.get(":method"), hdrs.get(":path"),
                 hdrs.get("apns-topic"), result[:2] if result else "stall")
        if result is None:
            return
        status, reason, extra = result
        apns_id = hdrs.get("apns-id") or str(uuid.uuid4()).upper()
        body = b"" if reason is None else json.dumps(dict(extra, reason=reason)).encode()
        out = [(":status", str(status)), ("apns-id", apns_id)]
        if environment == "sandbox" and status == 200:
            out.append(("apns-unique-id", str(uuid.uuid4())))
        if body:
            out += [("content-type", "application/json"), ("content-length", str(len(body)))]
        conn.send_headers(stream_id, out, end_stream=not body)
        if body:
            conn.send_data(stream_id, body, end_stream=True)


def _linger(sock: socket.socket) -> None:
    """Close after a refused handshake without a reset: the alert already sent stays readable (a close
    with unread client data would send RST, and the client could see a reset instead of the alert)."""
    try:
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(1)
        while socket.socket.recv(sock, 65536):
            pass
    except OSError:
        pass
    finally:
        sock.close()


def _listen_socket(address: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((address, port))
    sock.listen(256)
    return sock


def _accept_loop(emulator: Emulator, lsock: socket.socket, environment: str) -> None:
    while True:
        try:
            conn, _peer = lsock.accept()
        except OSError as exc:
            log.warning("accept: %s", exc)
            time.sleep(0.1)
            continue
        threading.Thread(target=emulator.handle, args=(conn, environment), daemon=True).start()


def serve(config_path: str) -> None:
    emulator = Emulator(config_path)
    cfg = emulator.cfg
    for address, where in cfg["listen"].items():
        for port in cfg["ports"]:
            lsock = _listen_socket(address, port)
            threading.Thread(target=_accept_loop, args=(emulator, lsock, where["environment"]),
                             daemon=True).start()
    log.info("ready: %s ports %s", cfg["listen"], cfg["ports"])
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1):
        pass
    log.info("stopping")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--config", required=True, help="apns.json written by lab.apns.prepare")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    serve(args.config)


if __name__ == "__main__":
    main()
