"""Probe lists shaped like the modules' results, for the report writers' tests.

``push_probes()`` is what push_connectivity (issue 9 item 5) returns: every
layer, every finding the admin must be able to act on.  ``network_probe_result()``
is a registered network_probe result with ``tls: true``.  Both are data only.
"""
from __future__ import annotations

COURIER = "1-courier.push.apple.com"
HOSTILE = '<script>alert("x")</script> & "quotes" \'single\'\nsecond line \\ back\x07slash'


def _p(service, host, port, layer, status, latency_ms=None, remedy="", detail="", name=None, address="17.57.146.20"):
    return {"service": service, "host": host, "name": name or host, "address": address, "port": port,
            "layer": layer, "status": status, "latency_ms": latency_ms, "remedy": remedy, "detail": detail}


def push_probes():
    dm, pp = "device_management", "push_provider"
    return [
        _p(dm, "*.push.apple.com", None, "dns", "ok", 3.2, name=COURIER),
        _p(dm, "*.push.apple.com", 5223, "tcp", "ok", 21.4, name=COURIER),
        _p(dm, "*.push.apple.com", 5223, "tls", "intercepted", 48.0, name=COURIER,
           remedy="Exempt courier.push.apple.com from TLS/HTTPS inspection on the proxy or firewall whose CA is "
                  "'Corp Inspection CA': Apple requires push hosts not be inspected.",
           detail="HTTPS inspection on 1-courier.push.apple.com:5223: the chain ends at 'Corp Inspection CA', "
                  "not at USERTrust RSA Certification Authority or Apple Root CA"),
        _p(dm, "*.push.apple.com", 443, "tcp", "ok", 22.0, name=COURIER),
        _p(dm, "*.push.apple.com", 443, "tls", "ok", 51.3, name=COURIER),
        _p(dm, "*.push.apple.com", 2197, "tcp", "timeout", 3000.0, name=COURIER,
           remedy="No answer within the timeout: a firewall silently drops TCP 2197 to 1-courier.push.apple.com; "
                  "allow it.", detail="timed out"),
        _p(dm, "deviceenrollment.apple.com", None, "dns", "ok", 2.9, address="17.32.194.4"),
        _p(dm, "deviceenrollment.apple.com", 443, "tcp", "ok", 19.9, address="17.32.194.4"),
        _p(dm, "deviceenrollment.apple.com", 443, "tls", "ok", 44.0, address="17.32.194.4"),
        _p(dm, "mdmenrollment.apple.com", None, "dns", "nxdomain", 1.1, address=None,
           remedy="mdmenrollment.apple.com does not exist for this host's resolvers: check DNS filtering or a split "
                  "horizon.", detail="dns: Name or service not known"),
        _p(dm, "gdmf.apple.com", 443, "tcp", "refused", 0.6, address="17.253.83.203",
           remedy="The connection was refused (reset or rejected): open TCP 443 to gdmf.apple.com on the firewalls "
                  "between this host and Apple.", detail="[Errno 111] Connection refused"),
        _p(pp, "api.push.apple.com", None, "dns", "ok", 2.5, address="17.188.143.34"),
        _p(pp, "api.push.apple.com", 443, "tcp", "ok", 18.7, address="17.188.143.34"),
        _p(pp, "api.push.apple.com", 443, "tls", "ok", 40.2, address="17.188.143.34"),
        _p(pp, "api.push.apple.com", 443, "provider", "ok", 95.5, address="17.188.143.34",
           detail="400 BadDeviceToken: the certificate and topic were accepted"),
        _p(pp, "api.push.apple.com", 2197, "tcp", "ok", 19.1, address="17.188.143.34"),
        _p(pp, "api.push.apple.com", 2197, "tls", "ok", 41.0, address="17.188.143.34"),
        _p(pp, "api.push.apple.com", 2197, "provider", "wrong_environment", 90.0, address="17.188.143.34",
           remedy="The certificate is for the other APNs environment: use api.push.apple.com with a production "
                  "certificate (MDM push certificates are production-only).",
           detail="400 BadCertificateEnvironment"),
        _p(pp, "api.sandbox.push.apple.com", 443, "provider", "topic_disallowed", 88.0, address="17.188.138.73",
           remedy="APNs refuses pushes to this topic with this certificate: renew the MDM push certificate "
                  "with the same Apple Account and check apns-topic.", detail="400 TopicDisallowed"),
        _p("mdm_server", "mdm.example.com", 443, "ats", "ats_failed", 60.0, address="192.0.2.10",
           remedy="Serve TLS 1.2 or later with a SHA-256, RSA 2048-bit (or ECC 256-bit) certificate.",
           detail="TLS 1.1 only; certificate signed with sha1WithRSAEncryption"),
        _p("ntp", "time.apple.com", 123, "udp", "no_answer", 3000.0, address="17.253.14.125",
           detail="no UDP answer (inconclusive)"),
    ]


def network_probe_result():
    """A registered network_probe result (tls: true), as the module returns it."""
    def r(host, port, protocol, status, latency, error=None, name="", address="17.57.146.20", layer=None, tls=None):
        out = {"service": "device_management", "host": host, "name": host if name == "" else name, "port": port,
               "protocol": protocol, "addresses": [address] if address else [], "address": address,
               "status": status, "latency_ms": latency, "error": error, "layer": layer or protocol, "tls": tls}
        return out
    tls_bad = {"sni": "courier.push.apple.com", "alpn_offered": ["apns-security-v3"], "alpn": None,
               "tls_version": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384", "chain": [], "chain_source": "leaf_only",
               "root": "Corp Inspection CA", "chain_verified": False, "verify_error": "unable to get local issuer",
               "detail": "HTTPS inspection on 1-courier.push.apple.com:5223: the chain ends at 'Corp Inspection CA'",
               "remedy": "Exempt courier.push.apple.com from TLS/HTTPS inspection on the proxy or firewall whose CA "
                         "is 'Corp Inspection CA': Apple requires push hosts not be inspected."}
    results = [
        r("*.push.apple.com", 5223, "tcp", "intercepted", 30.1, error=tls_bad["detail"], name=COURIER, layer="tls",
          tls=tls_bad),
        r("*.push.apple.com", 80, "tcp", "ok", 12.0, name=COURIER),
        r("gdmf.apple.com", 443, "tcp", "refused", 0.4, error="[Errno 111] Connection refused", layer="tcp"),
        r("mdmenrollment.apple.com", 443, "tcp", "dns_failed", None, error="dns: Name or service not known",
          address=None),
        r("*.appattest.apple.com", 443, "tcp", "skipped", None,
          error="wildcard host: give a concrete name for it in `names`", name=None, address=None),
    ]
    return {"changed": False, "results": results, "summary": {}, "failed_probes": [], "table": []}


CERTIFICATE = {"topic": "com.apple.mgmt.External.3f1c6d2e-8a4b-4b6a-9d1e-2f7c5a9b0c11",
               "not_after": "2027-01-10T10:00:00Z", "days_remaining": 410}
GENERATED_AT = "2026-11-25T21:30:00Z"
FAIL_ON = ["intercepted", "refused", "timeout", "nxdomain", "dns_failed", "wrong_environment",
           "topic_disallowed", "certificate_rejected", "ats_failed"]
