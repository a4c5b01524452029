"""Bring the lab network up and down: three namespaces, DNS, listeners, files.

::

    dev (eth0 100.64.1.2) ── lan0 corp wan0 (100.64.0.2) ── corp0 net (100.64.0.1)
                                                               lo: 17/8, 203.0.113/24, 198.51.100/24 ...

``Lab`` is the whole API; see lab/README.md.  Needs root (``ip netns``).
"""
from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from typing import Dict, Iterable, List, Mapping, Optional, Sequence

from lab import addresses, dns
from lab.collection import REPO, collections_root

PREFIX_ENV = "MDMOPS_LAB_PREFIX"
STATE_ENV = "MDMOPS_LAB_STATE"
STATE_ROOT = "/run/mdmops-lab"
DEFAULT_PREFIX = "mdmlab"
NAMESPACES = ("corp", "dev", "net")
TEST_TCP_PORTS = (8080, 8443)
INTERNET_ADDRESS = "198.51.100.10"          # any 198.51.100.x answers; this one is documented
DNS_SERVER = ("100.64.0.1", "fd64::1")

# (ns, interface, ipv4, ipv6) pairs joined by one veth each
LINKS = (
    (("corp", "wan0", "100.64.0.2/30", "fd64::2/64"), ("net", "corp0", "100.64.0.1/30", "fd64::1/64")),
    (("dev", "eth0", "100.64.1.2/24", "fd64:1::2/64"), ("corp", "lan0", "100.64.1.1/24", "fd64:1::1/64")),
)
ROUTES = {
    "corp": (("default", "100.64.0.1"), ("default", "fd64::1")),
    "dev": (("default", "100.64.1.1"), ("default", "fd64:1::1")),
    "net": (("100.64.1.0/24", "100.64.0.2"), ("fd64:1::/64", "fd64::2")),
}
# no IPv6 duplicate address detection (it delays the first packets by ~2 s); corp routes dev
NO_DAD = ("net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
SYSCTLS = {"corp": ("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")}


class LabError(RuntimeError):
    """Anything that stops the lab from coming up, with a message for humans."""


def _alive(pid: int) -> bool:
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


class Lab:
    """One lab instance, named by ``prefix`` (namespaces ``<prefix>-corp`` ...)."""

    def __init__(self, prefix: Optional[str] = None, state_dir: Optional[str] = None,
                 entries: Optional[Sequence[Mapping]] = None) -> None:
        self.prefix = prefix or os.environ.get(PREFIX_ENV) or DEFAULT_PREFIX
        if not re.match(r"^[a-z][a-z0-9-]{0,19}$", self.prefix):
            raise LabError("bad lab prefix %r (lower-case letters, digits, '-', max 20)" % self.prefix)
        self.state_dir = (state_dir or (os.environ.get(STATE_ENV) if not prefix else None)
                          or os.path.join(STATE_ROOT, self.prefix))
        self._entries = entries
        self.dns_server = DNS_SERVER[0]
        self.dns_server6 = DNS_SERVER[1]

    # ------------------------------------------------------------ naming/paths
    def ns(self, short: str) -> str:
        if short not in NAMESPACES:
            raise LabError("unknown lab namespace %r (one of %s)" % (short, ", ".join(NAMESPACES)))
        return "%s-%s" % (self.prefix, short)

    def path(self, *parts: str) -> str:
        return os.path.join(self.state_dir, *parts)

    @property
    def ca_path(self) -> str:
        return self.path("ca.pem")

    @property
    def inventory(self) -> str:
        return self.path("inventory.ini")

    def interpreter(self, short: str) -> str:
        return self.path("bin", "python-" + short)

    @property
    def info(self) -> dict:
        """Contents of lab.json (empty dict when the lab is down)."""
        try:
            with open(self.path("lab.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    @property
    def records(self) -> Dict[str, tuple]:
        """The DNS records the running lab serves: ``{name: (ipv4, ipv6)}``."""
        with open(self.path("records.json")) as f:
            return {k: tuple(v) for k, v in json.load(f)["records"].items()}

    def resolve(self, name: str):
        """What the lab DNS answers for ``name``: ``(ipv4, ipv6)`` or None (NXDOMAIN)."""
        return addresses.resolve_lab(name, self.records)

    def address_for(self, host: str):
        return addresses.address_for(host, self.records)

    @property
    def entries(self) -> List[Mapping]:
        if self._entries is None:
            self._entries = addresses.catalog_entries()
        return list(self._entries)

    # ------------------------------------------------------------ running things
    def env(self) -> Dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [REPO, collections_root()] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        env["MDMOPS_LAB_STATE"] = self.state_dir
        env["MDMOPS_LAB_PREFIX"] = self.prefix
        return env

    def run(self, short: str, argv: Sequence[str], *, check: bool = False, timeout: float = 60,
            **kw) -> subprocess.CompletedProcess:
        """Run ``argv`` inside namespace ``short``; output captured as text by default."""
        kw.setdefault("capture_output", "stdout" not in kw and "stderr" not in kw)
        kw.setdefault("text", True)
        kw.setdefault("env", self.env())
        return subprocess.run(["ip", "netns", "exec", self.ns(short)] + list(argv),
                              check=check, timeout=timeout, **kw)

    def python(self, short: str, code: str, **kw) -> subprocess.CompletedProcess:
        """Run a Python snippet inside namespace ``short`` with this Python (lab + collection importable)."""
        return self.run(short, [sys.executable, "-c", code], **kw)

    def spawn(self, short: str, name: str, argv: Sequence[str], *, tcp_ports: Iterable[int] = (),
              udp_ports: Iterable[int] = (), timeout: float = 15, env: Optional[Mapping] = None) -> int:
        """Start a long-running service in ``short`` (detached, pid file ``pids/<name>.pid``,
        output ``logs/<name>.log``), wait until its ports listen, return its pid.
        ``down()`` stops it; so does ``stop(name)``."""
        self.stop(name)
        pidfile, log = self.path("pids", name + ".pid"), self.path("logs", name + ".log")
        run_env = self.env()
        run_env.update(env or {})
        with open(log, "ab") as out:
            subprocess.run(["ip", "netns", "exec", self.ns(short), "setsid", "-f", "sh", "-c",
                            'echo $$ > "$0"; exec "$@"', pidfile] + list(argv),
                           stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=run_env,
                           cwd=REPO, check=True, timeout=10)
        want = {"t": set(tcp_ports), "u": set(udp_ports)}
        deadline = time.monotonic() + timeout
        pid = 0
        while True:
            pid = pid or self.pid(name, check_alive=False) or 0
            if pid and not _alive(pid):
                raise LabError("%s exited at start; %s says:\n%s" % (name, log, _tail(log)))
            if pid and all(want[k] <= self.listening(short, k, pid) for k in want if want[k]):
                return pid
            if time.monotonic() > deadline:
                raise LabError("%s not ready after %ss (ports %s); %s says:\n%s"
                               % (name, timeout, sorted(want["t"] | want["u"]), log, _tail(log)))
            time.sleep(0.05)

    def listening(self, short: str, proto: str = "t", pid: Optional[int] = None) -> set:
        """Ports with a listening (tcp, ``'t'``) or bound (udp, ``'u'``) socket in ``short``
        (only sockets of process ``pid`` if given)."""
        out = self.run(short, ["ss", "-Hlnp" + proto], check=True).stdout
        return {int(line.split()[3].rsplit(":", 1)[1]) for line in out.splitlines()
                if line.strip() and (pid is None or "pid=%d," % pid in line)}

    def pid(self, name: str, check_alive: bool = True) -> Optional[int]:
        try:
            with open(self.path("pids", name + ".pid")) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return None
        return pid if (not check_alive or _alive(pid)) else None

    def stop(self, name: str) -> None:
        pid = self.pid(name)
        if pid and self._in_lab(pid):
            _kill([pid])
        try:
            os.unlink(self.path("pids", name + ".pid"))
        except FileNotFoundError:
            pass

    def _ns_inodes(self) -> set:
        found = set()
        for short in NAMESPACES:
            try:
                st = os.stat("/run/netns/" + self.ns(short))
                found.add((st.st_dev, st.st_ino))
            except OSError:
                pass
        return found

    def _in_lab(self, pid: int) -> bool:
        try:
            st = os.stat("/proc/%d/ns/net" % pid)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) in self._ns_inodes()

    # ------------------------------------------------------------ DNS
    def set_records(self, extra: Optional[Mapping] = None) -> Dict[str, tuple]:
        """Serve the catalog plus ``extra`` (see addresses.build_records); restarts DNS."""
        if not os.path.isdir(self.path("pids")):
            raise LabError("lab %s is not up (no %s)" % (self.prefix, self.state_dir))
        records = addresses.build_records(self.entries, extra)
        self._write_json("records.json", {"extra": _jsonable(extra or {}), "records": records})
        with open(self.path("dnsmasq.conf"), "w") as f:
            f.write(dns.render(records, DNS_SERVER, self.path("logs", "dnsmasq.log"),
                               self.path("dnsmasq.d")))
        if self.pid("dnsmasq"):
            self.reload_dns()
        return records

    def add_records(self, extra: Mapping) -> Dict[str, tuple]:
        """Merge ``extra`` into the records added so far and restart DNS."""
        with open(self.path("records.json")) as f:
            merged = json.load(f)["extra"]
        merged.update(extra)
        return self.set_records(merged)

    def reload_dns(self) -> int:
        """(Re)start dnsmasq, e.g. after dropping a file into ``dnsmasq.d/``."""
        return self.spawn("net", "dnsmasq", dns.argv(self.path("dnsmasq.conf")), tcp_ports=[53],
                          udp_ports=[53])

    # ------------------------------------------------------------ lifecycle
    def is_up(self, partial: bool = False) -> bool:
        """All namespaces exist and lab.json is written (``partial``: namespaces only)."""
        have = set(_netns_list())
        if not all(self.ns(s) in have for s in NAMESPACES):
            return False
        if partial:
            return True
        return bool(self.info) and all(self.pid(n) for n in ("dnsmasq", "listeners"))

    def up(self, extra_records: Optional[Mapping] = None) -> "Lab":
        """Bring the lab up (idempotent: when already up, only ``extra_records`` are applied)."""
        _need_root()
        if self.is_up():
            if extra_records is not None:
                self.set_records(extra_records)
            return self
        self.down()
        try:
            self._build(extra_records)
        except BaseException as exc:
            detail = str(exc)
            self.down()
            if isinstance(exc, subprocess.CalledProcessError):
                raise LabError("lab up failed: %s: %s" % (" ".join(exc.cmd), (exc.stderr or "").strip()))
            if isinstance(exc, LabError):
                raise LabError("lab up failed: " + detail) from None
            raise
        return self

    def _build(self, extra_records: Optional[Mapping]) -> None:
        t0 = time.monotonic()
        for sub in ("", "pids", "logs", "bin", "dnsmasq.d"):
            os.makedirs(self.path(sub), exist_ok=True)
        os.makedirs(self.path("pki"), mode=0o700, exist_ok=True)
        self._network()
        records = self.set_records(extra_records)
        ports = addresses.catalog_ports(self.entries)
        tcp = sorted((set(ports["tcp"]) | set(TEST_TCP_PORTS)) - {53})
        udp = sorted(set(ports["udp"]) - {53})
        self._pki(records)
        self.reload_dns()
        self._write_json("listeners.json", {
            "prefix": self.prefix, "tcp": tcp, "udp": udp,
            "cert": self.path("pki", "server.pem"), "key": self.path("pki", "server.key"),
            "issuer_cert": self.path("pki", "apple_server.pem"),
            "issuer_key": self.path("pki", "apple_server.key"),
            "mint_dir": self.path("pki", "minted"), "names": self._cert_names(records)})
        self.spawn("net", "listeners", [sys.executable, "-m", "lab.listeners",
                                        "--config", self.path("listeners.json")],
                   tcp_ports=tcp, udp_ports=udp)
        from lab import apns
        apns.start(self)        # the APNs provider API on api(.sandbox).push.apple.com:443/2197
        self._client_files()
        self._wait_links()
        self._write_json("lab.json", {
            "prefix": self.prefix, "state_dir": self.state_dir, "python": sys.executable,
            "namespaces": {s: self.ns(s) for s in NAMESPACES},
            "links": [[dict(zip(("ns", "dev", "ipv4", "ipv6"), end)) for end in link] for link in LINKS],
            "dns_server": {"ipv4": DNS_SERVER[0], "ipv6": DNS_SERVER[1]},
            "ca_path": self.ca_path, "pki_dir": self.path("pki"), "inventory": self.inventory,
            "interpreters": {s: self.interpreter(s) for s in NAMESPACES},
            "ports": {"tcp": tcp, "udp": udp, "test_tcp": list(TEST_TCP_PORTS)},
            "pools": addresses.POOLS, "local_prefixes": list(addresses.LOCAL_PREFIXES),
            "internet_address": INTERNET_ADDRESS,
            "pids": {n: self.pid(n) for n in ("dnsmasq", "listeners", "apns")},
            "seconds_to_up": round(time.monotonic() - t0, 2)})

    def _network(self) -> None:
        for short in NAMESPACES:
            _ip("netns", "add", self.ns(short))
            _ip("-n", self.ns(short), "link", "set", "lo", "up")
            self.run(short, ["sysctl", "-qw"] + list(NO_DAD), check=True)
        for (a, b) in LINKS:
            _ip("link", "add", a[1], "netns", self.ns(a[0]), "type", "veth",
                "peer", "name", b[1], "netns", self.ns(b[0]))
            for ns, dev, v4, v6 in (a, b):
                n = self.ns(ns)
                _ip("-n", n, "addr", "add", v4, "dev", dev)
                _ip("-n", n, "-6", "addr", "add", v6, "dev", dev, "nodad")
                _ip("-n", n, "link", "set", dev, "up")
        for short, routes in ROUTES.items():
            for dst, via in routes:
                _ip("-n", self.ns(short), "-6" if ":" in via else "-4", "route", "add", dst, "via", via)
        for prefix in addresses.LOCAL_PREFIXES:
            _ip("-n", self.ns("net"), "-6" if ":" in prefix else "-4", "route", "add", "local", prefix,
                "dev", "lo")
        for short, values in SYSCTLS.items():
            self.run(short, ["sysctl", "-qw"] + list(values), check=True)

    def _wait_links(self, timeout: float = 5) -> None:
        """Wait until the kernel has activated every veth (qdisc attached, IPv6 link-local up).

        Link activation is batched by the kernel (up to 1 s after 'link set up');
        before it, packets sent out of the link are dropped."""
        deadline = time.monotonic() + timeout
        pending = [end[:2] for link in LINKS for end in link]
        while pending:
            ns, dev = pending[0]
            link = subprocess.run(["ip", "-n", self.ns(ns), "-o", "link", "show", "dev", dev],
                                  capture_output=True, text=True, check=False).stdout
            addr = subprocess.run(["ip", "-n", self.ns(ns), "-o", "-6", "addr", "show", "dev", dev,
                                   "scope", "link"], capture_output=True, text=True, check=False).stdout
            if "state UP" in link and "qdisc noop" not in link and addr and "tentative" not in addr:
                pending.pop(0)
            elif time.monotonic() > deadline:
                raise LabError("link %s in %s not ready after %ss: %s" % (dev, self.ns(ns), timeout,
                                                                          link.strip()))
            else:
                time.sleep(0.05)

    def _pki(self, records: Mapping[str, tuple]) -> None:
        from lab.pki import AppleLabPKI
        pki = AppleLabPKI()
        for attr in ("usertrust", "apple_server", "intercept"):
            getattr(pki, attr).write(self.path("pki", attr + ".pem"), self.path("pki", attr + ".key"))
        server = pki.server(self._cert_names(records) + self._cert_ips(records))
        server.write(self.path("pki", "server.pem"), self.path("pki", "server.key"), with_chain=True)
        with open(self.ca_path, "wb") as f:
            f.write(pki.usertrust.cert_pem())

    @staticmethod
    def _cert_names(records: Mapping[str, tuple]) -> List[str]:
        names = set(records)
        names.update(n[2:] for n in records if n.startswith("*."))   # DNS answers the base too
        return sorted(names)

    @staticmethod
    def _cert_ips(records: Mapping[str, tuple]) -> List[str]:
        ips = set(a for pair in records.values() for a in pair if a)
        ips.update(DNS_SERVER + (INTERNET_ADDRESS,))
        return sorted(ips)

    def _client_files(self) -> None:
        for short in ("corp", "dev"):
            etc = "/etc/netns/" + self.ns(short)
            os.makedirs(etc, exist_ok=True)
            with open(os.path.join(etc, "resolv.conf"), "w") as f:
                f.write(dns.nameserver_conf(DNS_SERVER))
        lines = ["# generated by lab/netns.py", "[lab]"]
        for short in NAMESPACES:
            wrapper = self.interpreter(short)
            with open(wrapper, "w") as f:
                f.write("#!/bin/sh\nexec ip netns exec %s %s \"$@\"\n" % (self.ns(short), sys.executable))
            os.chmod(wrapper, 0o755)
            if short != "net":
                lines.append("%s ansible_connection=local ansible_python_interpreter=%s lab_netns=%s"
                             % (short, wrapper, self.ns(short)))
        lines += ["", "[lab:vars]", "lab_prefix=" + self.prefix, "lab_state_dir=" + self.state_dir,
                  "lab_ca_path=" + self.ca_path, "lab_dns_server=" + DNS_SERVER[0], ""]
        with open(self.inventory, "w") as f:
            f.write("\n".join(lines))

    def down(self) -> None:
        """Stop every lab process, delete namespaces, /etc/netns dirs and the state dir."""
        _need_root()
        pids = []
        if os.path.isdir(self.path("pids")):
            for fn in os.listdir(self.path("pids")):
                pid = self.pid(fn[:-4]) if fn.endswith(".pid") else None
                if pid and self._in_lab(pid):
                    pids.append(pid)
        existing = [self.ns(s) for s in NAMESPACES if self.ns(s) in _netns_list()]
        for ns in existing:
            out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, check=False).stdout
            pids += [int(p) for p in out.split() if p.isdigit() and int(p) != os.getpid()]
        _kill(pids)
        for ns in existing:
            _ip("netns", "del", ns)
        for short in NAMESPACES:
            shutil.rmtree("/etc/netns/" + self.ns(short), ignore_errors=True)
        if os.path.isdir(self.state_dir) and self._is_our_state_dir():
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def _is_our_state_dir(self) -> bool:
        # never rm -rf a directory we did not make (MDMOPS_LAB_STATE could point anywhere)
        return (self.state_dir.startswith(STATE_ROOT + "/")
                or os.path.exists(self.path("lab.json")) or os.path.exists(self.path("pids")))

    def status(self) -> dict:
        have = set(_netns_list())
        return {"prefix": self.prefix, "up": self.is_up(), "state_dir": self.state_dir,
                "namespaces": {s: self.ns(s) in have for s in NAMESPACES},
                "processes": {n: self.pid(n) for n in ("dnsmasq", "listeners")},
                "inventory": self.inventory if os.path.exists(self.inventory) else None,
                "ca_path": self.ca_path if os.path.exists(self.ca_path) else None}

    def _write_json(self, name: str, data) -> None:
        tmp = self.path(name + ".tmp")
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, self.path(name))


# ---------------------------------------------------------------- helpers
def _need_root() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (ip netns); run it as root or with sudo")
    if not shutil.which("ip"):
        raise LabError("the lab needs iproute2 ('ip' not found)")


def _ip(*args: str) -> None:
    try:
        subprocess.run(["ip"] + list(args), check=True, capture_output=True, text=True, timeout=20)
    except subprocess.CalledProcessError as exc:
        raise LabError("'ip %s' failed: %s" % (" ".join(args), exc.stderr.strip())) from None


def _netns_list() -> List[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    if out.returncode:
        raise LabError("'ip netns list' failed: %s" % out.stderr.strip())
    return [line.split()[0] for line in out.stdout.splitlines() if line.strip()]


def _kill(pids: Iterable[int], grace: float = 2.0) -> None:
    pids = sorted(set(p for p in pids if p > 1))
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError as exc:
                if exc.errno != errno.ESRCH:
                    raise
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.02)
        pids = [p for p in pids if _alive(p)]
        if not pids:
            return


def _jsonable(extra: Mapping) -> dict:
    return {k: (list(v) if isinstance(v, (list, tuple, set)) else v) for k, v in extra.items()}
