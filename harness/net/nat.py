"""NAT rules for a router namespace: nftables text (pure) and applying it."""

from __future__ import annotations

import shutil

from harness.errors import BuildError, MissingCapability
from harness.net import nsexec
from harness.plan.network import NatPlan

TABLE = "wgh_nat"


def nft_ruleset(nat: NatPlan) -> str:
    """Masquerade everything that leaves through the outside interface."""
    return (
        f"table inet {TABLE} {{\n"
        "  chain postrouting {\n"
        "    type nat hook postrouting priority srcnat; policy accept;\n"
        f'    oifname "{nat.outside_dev}" masquerade\n'
        "  }\n"
        "}\n"
    )


def conntrack_sysctls(nat: NatPlan) -> dict[str, str]:
    """The UDP mapping lifetime: both the unreplied and the 'stream' (assured) timeout,
    since WireGuard traffic flows both ways and becomes a stream at once."""
    if nat.udp_timeout is None:
        return {}
    seconds = str(max(1, round(nat.udp_timeout)))
    return {
        "net.netfilter.nf_conntrack_udp_timeout": seconds,
        "net.netfilter.nf_conntrack_udp_timeout_stream": seconds,
    }


def apply(namespace: str, nat: NatPlan) -> None:
    nft = shutil.which("nft")
    if nft is not None:
        result = nsexec.run(namespace, [nft, "-f", "-"], input=nft_ruleset(nat))
        if result.returncode != 0:
            raise BuildError(f"nft refused the NAT rules in {namespace}: {result.stderr.strip()}")
    else:
        iptables = shutil.which("iptables")
        if iptables is None:
            raise MissingCapability("NAT needs nftables or iptables: apt-get install nftables")
        result = nsexec.run(namespace, [iptables, "-t", "nat", "-A", "POSTROUTING", "-o", nat.outside_dev, "-j", "MASQUERADE"])
        if result.returncode != 0:
            raise BuildError(f"iptables refused the NAT rule in {namespace}: {result.stderr.strip()}")
    sysctls = conntrack_sysctls(nat)
    if sysctls:
        nsexec.write_sysctls(namespace, sysctls)
