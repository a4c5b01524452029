"""The lab's "every Apple server": one asyncio process in the net namespace.

It listens on 0.0.0.0 and :: on every catalog TCP port (plus 8080/8443) and
every catalog UDP port.  Because net routes 17.0.0.0/8 & co. to ``lo``
(AnyIP), every address of those ranges answers.

TCP: the first bytes decide.  A TLS ClientHello gets a handshake (lab
certificate for all catalog names; a certificate is minted on the fly for any
other SNI name; ALPN h2, http/1.1, apns-security-v3).  Then HTTP/1.x or
HTTP/2 requests get ``200`` with a JSON body ``{"lab": "mdmlab", "host",
"port", "tls", "addr", ...}``.  Port 22 sends an SSH banner first.  Anything
else is closed after 2 s of silence.  UDP: port 123 answers as an NTP server
(mode 4), other ports echo ``mdmlab udp <port>``; replies leave from the
address the datagram was sent to.

Run: ``python -m lab.listeners --config listeners.json`` (written by Lab.up).

TLS faults on demand (``start_fault``; see lab/README.md "Faults"): one more
process bound to one lab address (SO_REUSEPORT, so that address alone changes)
that answers as ``intercept`` (a corporate inspecting proxy: leaf re-signed by
the lab "Corp SSL Inspection CA", ALPN h2/http/1.1 only), ``no-alpn`` (the
right chain, but ALPN http/1.1 only) or ``plain`` (no TLS at all).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import resource
import signal
import socket
import ssl
import struct
import time
from typing import Dict, Optional

IDLE = 2.0
BANNER = b"SSH-2.0-mdmlab\r\n"
ALPN = ["h2", "http/1.1", "apns-security-v3"]
HTTP_START = re.compile(rb"^[A-Z]{3,7} ")
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)   # lets IPv6 replies leave from an AnyIP address
NTP_EPOCH = 2208988800
log = logging.getLogger("lab.listeners")


# ---------------------------------------------------------------- TLS
class Certificates:
    """Default context for the catalog names; per-name contexts minted for other SNI names."""

    def __init__(self, cfg: dict) -> None:
        self.cfg = cfg
        self.names = set(cfg["names"])
        self.default = self._context(cfg["cert"], cfg["key"])
        self.default.sni_callback = self._sni
        self.minted: Dict[str, ssl.SSLContext] = {}

    @staticmethod
    def _context(cert: str, key: str) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        ctx.set_alpn_protocols(ALPN)
        return ctx

    def covers(self, name: str) -> bool:
        return name in self.names or ("." in name and "*." + name.split(".", 1)[1] in self.names)

    def _sni(self, sslobj, server_name: Optional[str], ctx) -> None:
        sslobj.lab_sni = server_name
        if server_name and not self.covers(server_name.lower()):
            try:
                sslobj.context = self._mint(server_name.lower())
            except Exception:  # keep serving with the default certificate
                log.exception("minting a certificate for %s failed", server_name)

    def _mint(self, name: str) -> ssl.SSLContext:
        if name not in self.minted:
            from cryptography import x509
            from cryptography.hazmat.primitives.serialization import load_pem_private_key
            from lab.pki import Issued, ec_key, issue, name as x509_name
            from cryptography.x509.oid import ExtendedKeyUsageOID
            with open(self.cfg["issuer_cert"], "rb") as f:
                issuer_cert = x509.load_pem_x509_certificate(f.read())
            with open(self.cfg["issuer_key"], "rb") as f:
                issuer = Issued(issuer_cert, load_pem_private_key(f.read(), None))
            leaf = issue(x509_name(name[:64]), issuer, key=ec_key(), san=[name],
                         eku=[ExtendedKeyUsageOID.SERVER_AUTH])
            os.makedirs(self.cfg["mint_dir"], mode=0o700, exist_ok=True)
            base = os.path.join(self.cfg["mint_dir"], re.sub(r"[^a-z0-9.-]", "_", name))
            leaf.write(base + ".pem", base + ".key", with_chain=True)
            self.minted[name] = self._context(base + ".pem", base + ".key")
            log.info("minted certificate for %s", name)
        return self.minted[name]


# ---------------------------------------------------------------- TCP
async def _readable(sock: socket.socket, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    loop.add_reader(sock.fileno(), lambda: fut.done() or fut.set_result(True))
    try:
        return await asyncio.wait_for(fut, timeout)
    except asyncio.TimeoutError:
        return False
    finally:
        loop.remove_reader(sock.fileno())


async def _read(reader: asyncio.StreamReader, timeout: float = IDLE) -> bytes:
    """Next chunk, or b'' on EOF or ``timeout`` seconds of silence."""
    try:
        return await asyncio.wait_for(reader.read(65536), timeout)
    except (asyncio.TimeoutError, ConnectionError, ssl.SSLError):
        return b""


def _host_header(value: str) -> str:
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class TCPServer:
    def __init__(self, cfg: dict, certs: Certificates) -> None:
        self.cfg = cfg
        self.certs = certs
        self.tasks: set = set()

    async def accept(self, lsock: socket.socket, port: int) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _peer = await loop.sock_accept(lsock)
            except OSError as exc:
                log.warning("accept on %s: %s", port, exc)
                await asyncio.sleep(0.1)
                continue
            task = asyncio.ensure_future(self.handle(conn, port))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def handle(self, conn: socket.socket, port: int) -> None:
        loop = asyncio.get_running_loop()
        conn.setblocking(False)
        writer = None
        info = {"lab": "mdmlab", "prefix": self.cfg["prefix"], "host": None, "port": port,
                "tls": False, "addr": conn.getsockname()[0], "alpn": None,
                "peer": conn.getpeername()[0]}
        peer = info["peer"]
        kind = "idle"      # nothing said within 2 s
        try:
            if port == 22:
                await loop.sock_sendall(conn, BANNER)
                kind = "ssh"
            elif not await _readable(conn, IDLE):
                return
            elif conn.recv(1, socket.MSG_PEEK) == b"\x16":
                kind = "tls"
            else:
                kind = "plain"
            reader = asyncio.StreamReader()
            protocol = asyncio.StreamReaderProtocol(reader)
            transport, _proto = await loop.connect_accepted_socket(
                lambda: protocol, conn, ssl=self.certs.default if kind == "tls" else None,
                ssl_handshake_timeout=5 if kind == "tls" else None)
            writer = asyncio.StreamWriter(transport, protocol, reader, loop)
            if kind == "tls":
                sslobj = writer.get_extra_info("ssl_object")
                info.update(tls=True, host=getattr(sslobj, "lab_sni", None),
                            alpn=sslobj.selected_alpn_protocol())
                if info["alpn"] == "h2":
                    kind = "h2"
                    await self.http2(reader, writer, info)
                    return
            first = await _read(reader)
            if HTTP_START.match(first):
                kind = "http"
                await self.http1(first, reader, writer, info)
            else:
                while first:      # anything else: swallow until 2 s of silence
                    first = await _read(reader)
        except (ConnectionError, ssl.SSLError, asyncio.TimeoutError, OSError) as exc:
            kind += " error=%s" % (exc.__class__.__name__,)
        finally:
            log.info("tcp %s:%s from %s %s sni=%s alpn=%s", info["addr"], port, peer, kind,
                     info["host"] if info["tls"] else "-", info["alpn"])
            if writer is not None:
                writer.close()
            else:
                conn.close()

    @staticmethod
    def body(info: dict, method: str, path: str, host: Optional[str]) -> bytes:
        data = dict(info, host=info["host"] or host, method=method, path=path)
        return json.dumps(data, sort_keys=True).encode()

    async def http1(self, buf: bytes, reader, writer, info: dict) -> None:
        while b"\r\n\r\n" not in buf and len(buf) < 65536:
            chunk = await _read(reader, 5)
            if not chunk:
                return
            buf += chunk
        head, _sep, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path = (lines[0].split(" ") + ["", ""])[:2]
        headers = {k.strip().lower(): v.strip() for k, _sep, v in (h.partition(":") for h in lines[1:])}
        length = min(int(headers.get("content-length") or 0), 1 << 20)
        while len(rest) < length:
            chunk = await _read(reader, 5)
            if not chunk:
                break
            rest += chunk
        body = self.body(info, method, path, _host_header(headers.get("host", "")) or None)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nServer: mdmlab\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
                     + (body if method != "HEAD" else b""))
        await writer.drain()

    async def http2(self, reader, writer, info: dict) -> None:
        import h2.config
        import h2.connection
        import h2.events
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False,
                                                                    header_encoding="utf-8"))
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        streams: Dict[int, dict] = {}
        while True:
            data = await _read(reader, 30)
            if not data:
                return
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    streams[event.stream_id] = dict(event.headers)
                elif isinstance(event, h2.events.DataReceived):
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    hdrs = streams.pop(event.stream_id, {})
                    body = self.body(info, hdrs.get(":method", ""), hdrs.get(":path", ""),
                                     _host_header(hdrs.get(":authority", "")) or None)
                    conn.send_headers(event.stream_id, [(":status", "200"),
                                                        ("content-type", "application/json"),
                                                        ("content-length", str(len(body)))])
                    conn.send_data(event.stream_id, body, end_stream=True)
                elif isinstance(event, h2.events.ConnectionTerminated):
                    writer.write(conn.data_to_send())
                    await writer.drain()
                    return
            writer.write(conn.data_to_send())
            await writer.drain()


# ---------------------------------------------------------------- UDP
def ntp_reply(req: bytes) -> Optional[bytes]:
    """A minimal NTPv3/v4 server reply (mode 4, stratum 1, refid LAB) to a client request."""
    if len(req) < 48 or req[0] & 7 != 3:
        return None
    version = (req[0] >> 3) & 7 or 4
    now = time.time() + NTP_EPOCH

    def stamp(t: float) -> bytes:
        return struct.pack("!II", int(t), int((t % 1) * (1 << 32)))

    head = struct.pack("!BBbbII4s", (version << 3) | 4, 1, req[2], -20, 0, 0x10, b"LAB\0")
    return head + stamp(now - 60) + req[40:48] + stamp(now) + stamp(time.time() + NTP_EPOCH)


class UDPServer:
    """One socket per family and port; replies are sent from the datagram's destination."""

    def __init__(self, family: int, port: int) -> None:
        self.port = port
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
            self.sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
            self.sock.bind(("::", port))
        else:
            self.sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
            self.sock.bind(("0.0.0.0", port))
        self.sock.setblocking(False)
        asyncio.get_running_loop().add_reader(self.sock.fileno(), self.on_readable)

    def on_readable(self) -> None:
        try:
            data, anc, _flags, addr = self.sock.recvmsg(65535, socket.CMSG_SPACE(64))
        except (BlockingIOError, InterruptedError):
            return
        reply = ntp_reply(data) if self.port == 123 else None
        reply = reply or b"mdmlab udp %d" % self.port
        cmsgs, dst = [], "?"
        for level, kind, value in anc:
            if level == socket.IPPROTO_IP and kind == IP_PKTINFO:
                _ifindex, _spec, addr4 = struct.unpack("@i4s4s", value[:12])
                dst = socket.inet_ntop(socket.AF_INET, addr4)
                cmsgs.append((level, kind, struct.pack("@i4s4s", 0, addr4, b"\0" * 4)))
            elif level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO:
                addr6 = value[:16]
                dst = socket.inet_ntop(socket.AF_INET6, addr6)
                cmsgs.append((level, kind, struct.pack("@16sI", addr6, 0)))
        try:
            self.sock.sendmsg([reply], cmsgs, 0, addr)
        except OSError as exc:
            log.warning("udp %s:%s reply to %s: %s", dst, self.port, addr[0], exc)
        log.info("udp %s:%s from %s %d bytes", dst, self.port, addr[0], len(data))


# ---------------------------------------------------------------- main
async def serve(cfg: dict) -> None:
    loop = asyncio.get_running_loop()
    certs = Certificates(cfg)
    tcp = TCPServer(cfg, certs)
    keep = []
    for port in cfg["tcp"]:
        for host, family in (("0.0.0.0", socket.AF_INET), ("::", socket.AF_INET6)):
            # SO_REUSEPORT lets a later service bind one lab address on the same port
            # (it needs SO_REUSEPORT too); the kernel prefers that specific socket.
            lsock = socket.create_server((host, port), family=family, backlog=256, reuse_port=True)
            lsock.setblocking(False)
            keep.append(asyncio.ensure_future(tcp.accept(lsock, port)))
    for port in cfg["udp"]:
        keep += [UDPServer(socket.AF_INET, port), UDPServer(socket.AF_INET6, port)]
    log.info("ready: tcp %s udp %s", cfg["tcp"], cfg["udp"])
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    await stop
    log.info("stopping")


# ---------------------------------------------------------------- faults
FAULTS = ("intercept", "no-alpn", "plain")
FAULT_PORTS = (443, 5223, 2197)
# Fixed lab addresses (17.0.0.0/24 is kept out of the catalog's pools), one per fault.
FAULT_ADDRESSES = {"intercept": "17.0.0.201", "no-alpn": "17.0.0.202", "plain": "17.0.0.203"}
# Outside every lab range: net neither owns nor routes it, so packets to it vanish (a blackhole).
BLACKHOLE_ADDRESS = "192.0.2.1"
INTERCEPT_NAMES = ["courier.push.apple.com", "*.push.apple.com", "api.push.apple.com",
                   "api.sandbox.push.apple.com", "*.apple.com", "apple.com"]


def fault_context(mode: str, pki_dir: str, out_dir: str) -> Optional[ssl.SSLContext]:
    """The server context of a fault listener (None for ``plain``)."""
    if mode == "plain":
        return None
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from lab.pki import Issued, tls_server
    ca = "intercept" if mode == "intercept" else "apple_server"
    with open(os.path.join(pki_dir, ca + ".pem"), "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    with open(os.path.join(pki_dir, ca + ".key"), "rb") as f:
        issuer = Issued(cert, load_pem_private_key(f.read(), None))
    leaf = tls_server(issuer, INTERCEPT_NAMES)
    os.makedirs(out_dir, mode=0o700, exist_ok=True)
    base = os.path.join(out_dir, "fault-" + mode)
    leaf.write(base + ".pem", base + ".key", with_chain=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(base + ".pem", base + ".key")
    ctx.set_alpn_protocols(["h2", "http/1.1"] if mode == "intercept" else ["http/1.1"])
    return ctx


async def serve_fault(mode: str, address: str, ports, pki_dir: str, out_dir: str) -> None:
    ctx = fault_context(mode, pki_dir, out_dir)

    async def handle(reader, writer) -> None:
        sslobj = writer.get_extra_info("ssl_object")
        log.info("fault %s %s from %s alpn=%s", mode, writer.get_extra_info("sockname"),
                 writer.get_extra_info("peername"), sslobj.selected_alpn_protocol() if sslobj else "-")
        try:
            await _read(reader, 5)
            writer.write(b"HTTP/1.1 400 Bad Request\r\nServer: mdmlab-fault\r\nContent-Length: 0\r\n"
                         b"Connection: close\r\n\r\n")
            await writer.drain()
        except (ConnectionError, ssl.SSLError, OSError):
            pass
        finally:
            writer.close()

    servers = [await asyncio.start_server(handle, address, port, ssl=ctx, reuse_port=True,
                                          ssl_handshake_timeout=5 if ctx else None) for port in ports]
    log.info("fault %s ready on %s ports %s", mode, address, list(ports))
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    await stop
    for server in servers:
        server.close()


def start_fault(lab, mode: str, address: Optional[str] = None, ports=FAULT_PORTS) -> str:
    """Start fault listener ``mode`` on ``address`` (default FAULT_ADDRESSES[mode]) in net; returns the address.

    ``lab.stop("fault-" + mode)`` (or ``lab.down()``) removes it.
    """
    import sys
    if mode not in FAULTS:
        raise ValueError("fault %r: one of %s" % (mode, ", ".join(FAULTS)))
    address = address or FAULT_ADDRESSES[mode]
    lab.spawn("net", "fault-" + mode,
              [sys.executable, "-m", "lab.listeners", "--fault", mode, "--listen", address,
               "--ports", ",".join(str(p) for p in ports), "--pki", lab.path("pki"),
               "--out", lab.path("pki", "faults")], tcp_ports=ports)
    return address


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--config", help="listeners.json written by Lab.up")
    parser.add_argument("--fault", choices=FAULTS, help="run one fault listener instead")
    parser.add_argument("--listen", help="fault: the lab address to bind")
    parser.add_argument("--ports", default=",".join(str(p) for p in FAULT_PORTS), help="fault: TCP ports")
    parser.add_argument("--pki", help="fault: the lab's pki directory")
    parser.add_argument("--out", help="fault: where to write the fault's certificate")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.fault:
        if not (args.listen and args.pki and args.out):
            parser.error("--fault needs --listen, --pki and --out")
        asyncio.run(serve_fault(args.fault, args.listen, [int(p) for p in args.ports.split(",")],
                                args.pki, args.out))
        return
    if not args.config:
        parser.error("--config is required")
    with open(args.config) as f:
        cfg = json.load(f)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(serve(cfg))


if __name__ == "__main__":
    main()
