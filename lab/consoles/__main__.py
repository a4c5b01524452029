"""Run one console emulator: python -m lab.consoles --kind nanomdm --listen ADDR --port N --state DIR ..."""
from __future__ import annotations

import argparse

from lab.consoles import KINDS, handler_for
from lab.consoles._server import ConsoleServer


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kind", choices=KINDS, required=True)
    parser.add_argument("--variant", choices=("current", "old"), default="current")
    parser.add_argument("--listen", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", required=True, help="state directory (log, faults, store)")
    parser.add_argument("--api-key-file", required=True, help="file holding the API key (not on the command line)")
    parser.add_argument("--cert", help="TLS certificate (with chain); plain HTTP without")
    parser.add_argument("--key", help="TLS key")
    args = parser.parse_args(argv)
    with open(args.api_key_file) as f:
        api_key = f.read().strip()
    handler, user = handler_for(args.kind)
    tls = (args.cert, args.key) if args.cert else None
    server = ConsoleServer((args.listen, args.port), handler, args.state, api_key, user, args.variant, tls)
    print("console emulator %s (%s) on %s" % (args.kind, args.variant, server.url), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
