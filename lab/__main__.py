"""``python -m lab up|down|status|exec|resolve|push-cert`` -- see lab/README.md.

The prefix comes from --prefix or $MDMOPS_LAB_PREFIX (default mdmlab).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

from lab.netns import NAMESPACES, Lab, LabError


def _push_cert(lab, out, environment):
    """A lab push certificate (+chain) and key in ``out``; the key is 0600 from its first byte."""
    from lab import apns
    if not lab.status()["up"]:
        raise LabError("the lab is not up: run 'python -m lab up' first")
    apns.prepare(lab)
    cert = apns.push_certificate(apns.lab_push_pki(lab), environment=environment)
    os.makedirs(out, mode=0o700, exist_ok=True)
    paths = {"certificate_path": os.path.join(out, "push.pem"), "privatekey_path": os.path.join(out, "push.key")}
    for path, data, mode in ((paths["privatekey_path"], cert.key_pem(), 0o600),
                             (paths["certificate_path"], cert.cert_pem() + cert.chain_pem(), 0o644)):
        fd, tmp = tempfile.mkstemp(dir=out, prefix=".push-")       # 0600 from the first byte
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    paths["topic"] = cert.topic
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab", description="the mdmops.apple network lab")
    parser.add_argument("--prefix", help="namespace prefix (default $MDMOPS_LAB_PREFIX or mdmlab)")
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="bring the lab up (idempotent)")
    up.add_argument("--records", metavar="JSON_FILE",
                    help="extra DNS records: {name: ip | [ips] | network | null}")
    sub.add_parser("down", help="stop and remove everything (idempotent)")
    sub.add_parser("status", help="print the lab's state as JSON; exit 1 unless up")
    ex = sub.add_parser("exec", help="run a command inside a lab namespace")
    ex.add_argument("ns", choices=NAMESPACES)
    ex.add_argument("argv", nargs=argparse.REMAINDER)
    res = sub.add_parser("resolve", help="what the lab DNS answers for a name")
    res.add_argument("name")
    pc = sub.add_parser("push-cert", help="write a lab MDM push certificate and its key (0600), "
                                          "issued by the lab's push PKI that the APNs emulator trusts")
    pc.add_argument("--out", required=True, metavar="DIR", help="directory for push.pem and push.key")
    pc.add_argument("--environment", choices=("production", "sandbox", "both"), default="production")
    args = parser.parse_args(argv)

    try:
        lab = Lab(args.prefix)
        if args.cmd == "up":
            extra = None
            if args.records:
                with open(args.records) as f:
                    extra = json.load(f)
            lab.up(extra_records=extra)
            info = lab.info
            print("lab %s up: namespaces %s; DNS %s; CA %s; inventory %s"
                  % (lab.prefix, ", ".join(info["namespaces"].values()), lab.dns_server,
                     lab.ca_path, lab.inventory))
        elif args.cmd == "down":
            lab.down()
            print("lab %s down" % lab.prefix)
        elif args.cmd == "status":
            status = lab.status()
            print(json.dumps(status, indent=2))
            return 0 if status["up"] else 1
        elif args.cmd == "exec":
            cmd = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
            if not cmd:
                parser.error("exec needs a command")
            os.execvp("ip", ["ip", "netns", "exec", lab.ns(args.ns)] + cmd)
        elif args.cmd == "resolve":
            print(json.dumps(lab.resolve(args.name)))
        elif args.cmd == "push-cert":
            print(json.dumps(_push_cert(lab, args.out, args.environment)))
    except LabError as exc:
        print("lab: %s" % exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
