"""The two-site WAN driven from Python: Mininet's own way of building a network, with
the harness's checks and diagnosis on top. As root:

    .venv/bin/python examples/two_site_wan.py            # keepalive 25 s: all checks pass
    .venv/bin/python examples/two_site_wan.py --broken   # no keepalive, 2 s NAT timeout: diagnosed

The same topology runs from a scenario file: examples/two-site-wan.yaml.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from topos import TwoSiteWAN  # noqa: E402

from harness.mininet import WgNet, check  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broken", action="store_true", help="no keepalive behind a NAT that forgets mappings after 2 s")
    parser.add_argument("--backend", default="auto", help="kernel, wireguard-go or auto (default)")
    args = parser.parse_args()

    topo = TwoSiteWAN(keepalive=0, udp_timeout=2) if args.broken else TwoSiteWAN()
    net = WgNet(topo=topo, backend=args.backend)
    net.start()
    try:
        steps = [
            {"handshake": {"between": ["branch", "hq"], "within": "2s"}},
            {"ping": {"from": "branch", "to": "hq", "count": 3, "interval": "100ms"}},
            {"ping": {"from": "hq", "to": "branch", "count": 3, "interval": "100ms"}},
            {"sleep": "4s"},  # longer than the broken NAT's 2 s mapping lifetime
            {"ping": {"from": "hq", "to": "branch", "count": 3, "interval": "100ms", "timeout": "1s"}},
        ]
        failed = 0
        for index, step in enumerate(steps):
            result = check(net.wireguard, step, index)
            print(f"[{result.outcome}] {result.title}: {result.message}")
            if not result.ok:
                failed += 1
                print("    " + (result.diagnosis or "").replace("\n", "\n    "))
        return 1 if failed else 0
    finally:
        net.stop()


if __name__ == "__main__":
    sys.exit(main())
