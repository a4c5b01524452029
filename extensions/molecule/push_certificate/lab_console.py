"""The push_certificate scenario's lab side: ``up`` starts the NanoMDM emulator in the lab's net
(https://198.51.100.230:9000, lab CA), issues a push certificate under the lab's push PKI (the one
the lab APNs emulator trusts) and puts it in the console, as the certificate of the past year,
then writes its renewal (same topic, a later expiry) for converge to install. ``state`` prints
what the emulator holds. Run from the repository root with the lab's prefix in MDMOPS_LAB_PREFIX.
Writes ``<lab state>/molecule-push/seed.json`` (paths, URL, topic; the API key stays in its file)."""
from __future__ import annotations

import datetime as dt
import json
import os
import sys

from cryptography import x509

from lab import consoles
from lab.consoles._server import go_time
from lab.netns import Lab
from lab.apns import lab_push_pki


def up(lab: Lab) -> dict:
    endpoint = consoles.start(lab, "nanomdm")
    pki = lab_push_pki(lab)
    current = pki.push(days=200)
    renewal = pki.renewal(current, days=365)
    base = lab.path("molecule-push")
    os.makedirs(base, mode=0o700, exist_ok=True)
    files = {}
    for stem, issued in (("current", current), ("renewal", renewal)):
        for kind, data in (("pem", issued.cert_pem()), ("key", issued.key_pem())):
            path = os.path.join(base, "%s.%s" % (stem, kind))
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            files["%s_%s" % (stem, kind)] = path
    # the certificate of the past year, as a NanoMDM upload would have stored it
    endpoint.control.set_held({current.topic: {"cert_pem": current.cert_pem().decode(),
                                               "key_pem": current.key_pem().decode(),
                                               "stored_at": go_time(dt.datetime.now(dt.timezone.utc))}})
    seed = dict(files, url=endpoint.url, topic=current.topic,
                api_key_file=os.path.join(lab.path("consoles", "nanomdm"), "api_key"),
                ca_path=lab.ca_path, backup_dir=os.path.join(base, "backups"),
                renewal_not_after=renewal.cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
                renewal_serial=str(renewal.cert.serial_number))
    os.makedirs(seed["backup_dir"], mode=0o700, exist_ok=True)
    with open(os.path.join(base, "seed.json"), "w") as f:
        json.dump(seed, f, indent=2)
    return seed


def held(lab: Lab) -> dict:
    control = consoles.Control(lab.path("consoles", "nanomdm"))
    out = {}
    for topic, entry in control.held().items():
        cert = x509.load_pem_x509_certificate(entry["cert_pem"].encode())
        out[topic] = {"serial": str(cert.serial_number),
                      "not_after": cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")}
    return {"held": out, "writes": len(control.writes())}


if __name__ == "__main__":
    the_lab = Lab(os.environ["MDMOPS_LAB_PREFIX"])
    print(json.dumps(up(the_lab) if sys.argv[1] == "up" else held(the_lab)))
