"""The lab itself: topology, DNS, listeners, files, lifecycle.

Every network check runs *inside* a lab namespace (Python via ``ip netns
exec``) and only ever talks to lab addresses.
"""
from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import textwrap

import pytest

from lab.netns import Lab, _alive, _netns_list

pytestmark = pytest.mark.lab

APPLE4 = ipaddress.ip_network("17.0.0.0/8")
APPLE6 = ipaddress.ip_network("2620:149::/32")


def code(src, **params):
    """A Python snippet with ``params`` bound as JSON-decoded globals."""
    head = "import json\n" + "".join("%s = json.loads(%r)\n" % (k, json.dumps(v)) for k, v in params.items())
    return head + textwrap.dedent(src)


RESOLVE = """
import socket
out = {}
for name in names:
    pair = []
    for fam in (socket.AF_INET, socket.AF_INET6):
        try:
            pair.append(sorted({a[4][0] for a in socket.getaddrinfo(name, 443, fam, socket.SOCK_STREAM)}))
        except socket.gaierror as exc:
            pair.append(exc.errno)
    out[name] = pair
print(json.dumps(out))
"""

HTTPS = """
import socket, ssl
ctx = ssl.create_default_context(cafile=ca)
ctx.set_alpn_protocols(alpn)
out = []
for fam in (socket.AF_INET, socket.AF_INET6):
    addr = socket.getaddrinfo(host, port, fam, socket.SOCK_STREAM)[0][4][:2]
    with socket.create_connection(addr, timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as s:
            chain = s._sslobj.get_verified_chain()      # private in 3.11, public from 3.13
            alpn_got = s.selected_alpn_protocol()
            top = dict(x[0] for x in chain[-1].get_info()["issuer"])["commonName"]
            s.sendall(("GET /probe HTTP/1.1\\r\\nHost: %s\\r\\n\\r\\n" % host).encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    status, _, body = data.partition(b"\\r\\n\\r\\n")
    out.append({"status": status.split(b"\\r\\n")[0].decode(), "body": json.loads(body),
                "top": top, "alpn": alpn_got, "len": len(chain)})
print(json.dumps(out))
"""


def wildcard_probe(name):
    return "lab-probe-1." + name[2:] if name.startswith("*.") else name


# --------------------------------------------------------------- topology
def test_topology_is_closed(lab):
    """net has no default route; no namespace has a link other than lo and the lab veths."""
    net = lab.ns("net")
    for fam in ("-4", "-6"):
        out = subprocess.run(["ip", "-n", net, fam, "route", "show", "default"],
                             capture_output=True, text=True, check=True).stdout
        assert out.strip() == "", "net must have no default route (%s): %s" % (fam, out)
    expected = {"corp": {"lo", "wan0", "lan0"}, "dev": {"lo", "eth0"}, "net": {"lo", "corp0"}}
    for short, devs in expected.items():
        out = subprocess.run(["ip", "-n", lab.ns(short), "-o", "link", "show"],
                             capture_output=True, text=True, check=True).stdout
        names = {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}
        assert names == devs
        peers = {line.split("link-netns ")[1].split()[0] for line in out.splitlines() if "link-netns" in line}
        assert peers <= {lab.ns(n) for n in ("corp", "dev", "net")}, "a veth leads out of the lab: %s" % peers
    corp = subprocess.run(["ip", "-n", lab.ns("corp"), "route", "show", "default"],
                          capture_output=True, text=True, check=False).stdout
    assert "via 100.64.0.1" in corp
    dev6 = subprocess.run(["ip", "-n", lab.ns("dev"), "-6", "route", "show", "default"],
                          capture_output=True, text=True, check=False).stdout
    assert "via fd64:1::1" in dev6


# --------------------------------------------------------------- DNS
def test_every_catalog_name_resolves_to_its_lab_address(lab, in_ns):
    names = sorted({wildcard_probe(n) for n in lab.records}
                   | {"push.apple.com", "api.push.apple.com", "1-courier.push.apple.com", "47-courier.push.apple.com"})
    got = in_ns("corp", code(RESOLVE, names=names))
    for name in names:
        v4, v6 = lab.resolve(name)
        assert got[name] == [[v4], [v6]], name


def test_wildcard_and_exact_entries(lab):
    api, courier = lab.resolve("api.push.apple.com"), lab.resolve("5-courier.push.apple.com")
    assert api == lab.address_for("api.push.apple.com")
    assert courier == lab.address_for("*.push.apple.com") == lab.resolve("push.apple.com")
    assert api != courier, "an exact name keeps its own address under a wildcard"
    assert lab.resolve("x.api.push.apple.com") == courier, "below an exact name the wildcard answers"
    for addr, pool in zip(api, ("17.249.0.0/16", "2620:149:a44::/48")):
        assert ipaddress.ip_address(addr) in ipaddress.ip_network(pool), "push hosts sit in the APNs ranges"


def test_unknown_names_fail_fast(lab, in_ns):
    got = in_ns("dev", code("""
        import socket, time, dnslib
        out = {}
        for name in ("no-such-host.example", "www.google.com", "apple.com.evil.test"):
            t = time.monotonic()
            try:
                socket.getaddrinfo(name, 443)
                err = None
            except socket.gaierror as exc:
                err = exc.errno
            q = dnslib.DNSRecord.question(name, "A")
            r = dnslib.DNSRecord.parse(q.send(server, 53, timeout=2))
            out[name] = [err, round(time.monotonic() - t, 3), dnslib.RCODE[r.header.rcode]]
        print(json.dumps(out))
    """, server=lab.dns_server))
    for name, (err, seconds, rcode) in got.items():
        # EAI_NONAME: the resolver got an answer (a timeout would be EAI_AGAIN, -3); no
        # duration is asserted (a loaded machine may be slow, never wrong)
        assert err == -2 and rcode == "NXDOMAIN", (name, err, rcode, seconds)
        assert lab.resolve(name) is None


def test_extra_records_and_reload(lab, in_ns):
    try:
        lab.add_records({"mdm.corp-lab.example": "apple", "*.relay.example": "198.51.100.77",
                         "api.push.apple.com": ["17.0.0.10", "2620:149::10"]})
        names = ["mdm.corp-lab.example", "a.relay.example", "api.push.apple.com"]
        got = in_ns("corp", code(RESOLVE, names=names))
        assert got["a.relay.example"][0] == ["198.51.100.77"]
        assert got["api.push.apple.com"] == [["17.0.0.10"], ["2620:149::10"]]
        v4, v6 = lab.resolve("mdm.corp-lab.example")
        assert got["mdm.corp-lab.example"] == [[v4], [v6]] and ipaddress.ip_address(v4) in APPLE4
        # a name outside the lab certificate gets a certificate minted on the fly
        out = in_ns("corp", code(HTTPS, ca=lab.ca_path, host="mdm.corp-lab.example", port=443,
                                 alpn=["http/1.1"]))
        assert out[0]["body"]["host"] == "mdm.corp-lab.example" and out[0]["top"].startswith("USERTrust")
    finally:
        lab.set_records({})
    assert lab.resolve("mdm.corp-lab.example") is None
    assert in_ns("corp", code(RESOLVE, names=["mdm.corp-lab.example"]))["mdm.corp-lab.example"] == [-2, -2]


# --------------------------------------------------------------- listeners
def test_tcp_ports_of_apple_names_answer(lab, in_ns):
    targets = [("api.push.apple.com", p) for p in (443, 2197)] + [
        ("12-courier.push.apple.com", p) for p in (5223, 443)] + [
        ("captive.apple.com", 80), ("albert.apple.com", 443)]
    got = in_ns("corp", code("""
        import socket
        out = []
        for host, port in targets:
            for fam in (socket.AF_INET, socket.AF_INET6):
                addr = socket.getaddrinfo(host, port, fam, socket.SOCK_STREAM)[0][4][:2]
                socket.create_connection(addr, timeout=3).close()
                out.append([host, port, addr[0]])
        print(json.dumps(out))
    """, targets=targets))
    assert len(got) == 2 * len(targets)
    for host, port, addr in got:
        assert addr in lab.resolve(host)


# api.push.apple.com and api.sandbox.push.apple.com are served by the APNs emulator (lab/apns.py, its own
# tests: tests/integration/apns/test_provider_lab.py); other push names by the generic listeners.
def test_tls_push_host_chains_to_usertrust(lab, in_ns):
    out = in_ns("corp", code(HTTPS, ca=lab.ca_path, host="gateway.push.apple.com", port=443,
                             alpn=["http/1.1"]))
    v4, v6 = lab.resolve("gateway.push.apple.com")
    for result, addr in zip(out, (v4, v6)):
        assert result["top"] == "USERTrust RSA Certification Authority"
        assert result["len"] == 3               # leaf, lab "Apple Public Server" CA, USERTrust root
        assert result["status"] == "HTTP/1.1 200 OK" and result["alpn"] == "http/1.1"
        assert result["body"] == dict(result["body"], lab="mdmlab", host="gateway.push.apple.com", port=443,
                                      tls=True, addr=addr, path="/probe")


def test_http2_and_courier_alpn(lab, in_ns):
    got = in_ns("corp", code("""
        import httpx, socket, ssl
        with httpx.Client(http2=True, verify=ca) as client:
            r = client.post("https://gateway.push.apple.com:2197/3/device/00", json={})
        ctx = ssl.create_default_context(cafile=ca)
        ctx.set_alpn_protocols(["apns-security-v3"])
        with ctx.wrap_socket(socket.create_connection(("7-courier.push.apple.com", 5223), timeout=5),
                             server_hostname="7-courier.push.apple.com") as s:
            alpn = s.selected_alpn_protocol()
        print(json.dumps([r.http_version, r.status_code, r.json(), alpn]))
    """, ca=lab.ca_path))
    version, status, body, alpn = got
    assert (version, status, body["port"], body["alpn"], body["method"]) == ("HTTP/2", 200, 2197, "h2", "POST")
    assert alpn == "apns-security-v3"


def test_cdn_name_is_outside_apple_and_answers(lab, in_ns):
    cdn = sorted(e["host"] for e in lab.entries if e["network"] != "apple" and not e["host"].startswith("*"))
    assert cdn, "the catalog has non-Apple hosts"
    host = cdn[0]
    v4, v6 = lab.resolve(host)
    assert ipaddress.ip_address(v4) not in APPLE4 and ipaddress.ip_address(v6) not in APPLE6
    out = in_ns("corp", code(HTTPS, ca=lab.ca_path, host=host, port=443, alpn=["http/1.1"]))
    assert [o["body"]["addr"] for o in out] == [v4, v6]


def test_plain_http_ssh_banner_and_idle_close(lab, in_ns):
    got = in_ns("corp", code("""
        import socket, time
        s = socket.create_connection(("gdmf.apple.com", 22), timeout=5)
        banner = s.recv(100).decode()
        t = time.monotonic(); rest = s.recv(100); idle = time.monotonic() - t
        s = socket.create_connection(("17.1.2.3", 5223), timeout=5)
        t = time.monotonic(); silent = s.recv(100); quiet = time.monotonic() - t
        s = socket.create_connection(("captive.apple.com", 80), timeout=5)
        s.sendall(b"GET /hotspot-detect.html HTTP/1.0\\r\\nHost: captive.apple.com\\r\\n\\r\\n")
        data = b""
        while True:
            c = s.recv(4096)
            if not c:
                break
            data += c
        print(json.dumps([banner, rest.decode(), idle, silent.decode(), quiet, data.decode()]))
    """))
    banner, rest, idle, silent, quiet, http = got
    # both connections were closed by the listener (recv returned EOF; a connection left
    # open would have raised socket.timeout after 5 s); how long that took is not asserted
    assert banner == "SSH-2.0-mdmlab\r\n" and rest == "" and idle >= 0
    assert silent == "" and quiet >= 0
    body = json.loads(http.split("\r\n\r\n", 1)[1])
    assert body["tls"] is False and body["host"] == "captive.apple.com" and body["port"] == 80


def test_udp_ntp_and_echo(lab, in_ns):
    got = in_ns("corp", code("""
        import socket
        out = []
        for fam, host in ((socket.AF_INET, "time.apple.com"), (socket.AF_INET6, "time.apple.com")):
            addr = socket.getaddrinfo(host, 123, fam, socket.SOCK_DGRAM)[0][4][:2]
            s = socket.socket(fam, socket.SOCK_DGRAM); s.settimeout(3); s.connect(addr)
            s.send(b"\\x23" + b"\\0" * 47)          # NTPv4 client request
            reply = s.recv(512)
            e = socket.socket(fam, socket.SOCK_DGRAM); e.settimeout(3); e.connect((addr[0], 443))
            e.send(b"quic?")
            out.append([len(reply), reply[0] & 7, reply[1], reply[12:16].hex(), e.recv(100).decode()])
        print(json.dumps(out))
    """))
    for length, mode, stratum, refid, echo in got:
        assert (length, mode, stratum, refid) == (48, 4, 1, b"LAB\0".hex())
        assert echo == "mdmlab udp 443"


def test_internet_negative_target_answers(lab, in_ns):
    got = in_ns("corp", code("""
        import httpx
        a = httpx.get("https://198.51.100.10:8443/x", verify=False).json()
        b = httpx.get("http://[2001:db8:100::10]:8080/y").json()
        print(json.dumps([a, b]))
    """))
    assert got[0]["addr"] == "198.51.100.10" and got[0]["tls"] is True and got[0]["port"] == 8443
    assert got[1]["addr"] == "2001:db8:100::10" and got[1]["tls"] is False and got[1]["port"] == 8080
    v4, _v6 = lab.resolve("www.example.com")
    assert ipaddress.ip_address(v4) in ipaddress.ip_network("198.51.100.0/24")


def test_dev_reaches_net_through_corp(lab, in_ns):
    got = in_ns("dev", code("""
        import httpx
        print(json.dumps([httpx.get("https://gateway.push.apple.com/", verify=ca).json(),
                          httpx.get("http://[%s]/" % v6).json()]))
    """, ca=lab.ca_path, v6=lab.resolve("captive.apple.com")[1]))
    assert got[0]["peer"] == "100.64.1.2" and got[0]["host"] == "gateway.push.apple.com"
    assert got[1]["peer"] == "fd64:1::2"
    assert lab.run("corp", ["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip() == "1"


SERVICE = """
import asyncio
async def hello(reader, writer):
    writer.write(b"special service\\n")
    await writer.drain()
    writer.close()
async def main():
    server = await asyncio.start_server(hello, "17.0.0.10", 443, reuse_port=True)
    await server.serve_forever()
asyncio.run(main())
"""


def test_spawned_service_takes_over_its_address(lab, in_ns):
    probe = code("""
        import socket
        out = []
        for addr in ("17.0.0.10", "17.0.0.11"):
            s = socket.create_connection((addr, 443), timeout=5)
            s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
            out.append(s.recv(100).decode())
        print(json.dumps(out))
    """)
    pid = lab.spawn("net", "test-service", [sys.executable, "-c", SERVICE], tcp_ports=[443])
    try:
        special, other = in_ns("corp", probe)
        assert special == "special service\n" and other.startswith("HTTP/1.1 200 OK")
    finally:
        lab.stop("test-service")
    assert not _alive(pid) and lab.pid("test-service") is None
    assert in_ns("corp", probe)[0].startswith("HTTP/1.1 200 OK")


# --------------------------------------------------------------- files and API
def test_state_files_inventory_and_interpreter(lab):
    info = lab.info
    assert info["namespaces"]["corp"] == lab.ns("corp") and info["dns_server"]["ipv4"] == "100.64.0.1"
    with open(lab.ca_path) as f:
        ca = f.read()
    assert ca.count("BEGIN CERTIFICATE") == 1 and "PRIVATE" not in ca
    pki = lab.path("pki")
    for fn in os.listdir(pki):
        if fn.endswith(".key"):
            assert os.stat(os.path.join(pki, fn)).st_mode & 0o077 == 0, fn
    assert not lab.state_dir.startswith(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    with open(lab.inventory) as f:
        inv = f.read()
    assert "corp ansible_connection=local ansible_python_interpreter=%s" % lab.interpreter("corp") in inv
    assert "dev ansible_connection=local" in inv
    wrapper = lab.interpreter("corp")
    ino = subprocess.run([wrapper, "-c", "import os; print(os.stat('/proc/self/ns/net').st_ino)"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert int(ino) == os.stat("/run/netns/" + lab.ns("corp")).st_ino
    resolv = subprocess.run([wrapper, "-c", "print(open('/etc/resolv.conf').read())"],
                            capture_output=True, text=True, check=True).stdout
    assert "nameserver 100.64.0.1" in resolv


def test_up_is_idempotent(lab):
    pids = dict(lab.status()["processes"])
    lab.up()
    # nothing was restarted (same processes): that is what idempotent means here, not a duration
    assert lab.status()["processes"] == pids and lab.is_up()


@pytest.mark.slow
def test_second_lab_coexists_recovers_from_leftovers_and_goes_down(lab, in_ns):
    other = Lab(lab.prefix + "-b")
    other.down()
    # leftovers of a crashed run: a namespace with a process in it, no state dir
    subprocess.run(["ip", "netns", "add", other.ns("net")], check=True)
    stale = subprocess.Popen(["ip", "netns", "exec", other.ns("net"), "sleep", "300"])
    try:
        other.up()
        assert stale.wait(timeout=5) is not None, "the stale process was stopped"
        assert other.is_up() and lab.is_up()
        got = json.loads(other.python("corp", code(RESOLVE, names=["api.push.apple.com"])).stdout)
        assert got["api.push.apple.com"][0] == [other.resolve("api.push.apple.com")[0]]
        pids = [other.pid(n) for n in ("dnsmasq", "listeners")]
        assert all(pids)
    finally:
        other.down()
        if stale.poll() is None:
            stale.kill()
    assert not [ns for ns in _netns_list() if ns.startswith(other.prefix + "-")]
    assert not any(_alive(p) for p in pids)
    assert not os.path.exists(other.state_dir)
    assert not any(os.path.exists("/etc/netns/" + other.ns(s)) for s in ("corp", "dev", "net"))
    other.down()                                    # idempotent
    # the session lab was not disturbed
    assert in_ns("corp", code(RESOLVE, names=["albert.apple.com"]))["albert.apple.com"][0] == \
        [lab.resolve("albert.apple.com")[0]]
