"""NAT rules for a router namespace: nftables text (pure) and applying it.

The four RFC 4787 behaviours; the translation is one `table inet wgh_nat`:

| type            | mapping (RFC 4787 §4.1)       | filtering (§5)                | how                                   |
| --------------- | ----------------------------- | ----------------------------- | ------------------------------------- |
| port-restricted | endpoint-independent          | address-and-port-dependent    | plain `masquerade`                    |
| restricted-cone | endpoint-independent          | address-dependent             | masquerade + `mappings` + `contacted` |
| full-cone       | endpoint-independent          | endpoint-independent          | masquerade + `mappings`               |
| symmetric       | address-and-port-dependent    | address-and-port-dependent    | `masquerade fully-random`             |

- `masquerade` keeps the inside source port when it is free and reuses the
  conntrack entry per (inside, remote) flow: every remote sees the same external
  address:port (endpoint-independent mapping), and conntrack only lets replies
  from the exact remote address:port back in.
- `fully-random` draws a new external port for every new flow, i.e. per remote
  address:port: a symmetric NAT.
- The cone types remember each UDP mapping after SNAT in the dynamic map
  `mappings` (external port → inside address . port; written in a filter chain
  at srcnat + 10, where the packet already carries its external source port) and
  DNAT inbound UDP on the outside interface to it. Restricted-cone also records
  `external port . remote address` in the set `contacted` and DNATs only from
  those addresses (any port). Entries are refreshed by outbound packets and
  expire after the NAT's UDP timeout (the conntrack default of 120 s when none
  is given), like the conntrack mapping itself.
- Every NAT also gets `table inet wgh_nat_guard` (`guard_ruleset`): new UDP
  from the outside for the router itself is dropped unless a local socket wants
  it. Without it, plain masquerade loses its endpoint-independent mapping as soon
  as the remote sends first (hole punching: both WireGuard peers behind NATs
  sending to each other's public endpoint): conntrack confirms an entry for the
  unsolicited packet, its tuple is exactly the reply tuple the inside host's
  mapping would need, so masquerade picks another port. For the cones, that
  entry would also catch the remote's later packets instead of the DNAT (nat
  chains only see a flow's first packet). Home routers drop such packets too.
- Hairpin: UDP from an inside interface to the outside address and a mapped
  port is DNATed to the inside host owning the mapping, and SNATed to the
  outside address, so the target sees (and answers) the sender's public side
  and the replies come back through the NAT. The hairpin path does not filter
  (any inside host may use any mapping).

Limits: the cone and hairpin parts are for UDP over IPv4 (WireGuard's transport
on the default underlay). The `masquerade` (or `fully-random`) rule translates
TCP and IPv6 leaving the outside interface too, so TCP and IPv6 through any NAT
behave as port-restricted (or symmetric); IPv6 NAT types are not built.
"""

from __future__ import annotations

import shutil

from harness.errors import BuildError, MissingCapability
from harness.net import conntrack, nsexec
from harness.nattypes import ADDRESS_DEPENDENT, ENDPOINT_INDEPENDENT, NAT_TYPES, NatType
from harness.plan.network import NatPlan
from harness.plan.types import PlanError

TABLE = "wgh_nat"
GUARD_TABLE = "wgh_nat_guard"
NFT_TIMEOUT = 180.0
DEFAULT_MAPPING_TIMEOUT = 120.0  # the kernel's nf_conntrack_udp_timeout_stream



def mapping_timeout(nat: NatPlan) -> int:
    """Seconds a recorded cone/hairpin mapping lives without outbound traffic."""
    return max(1, round(nat.udp_timeout if nat.udp_timeout is not None else DEFAULT_MAPPING_TIMEOUT))


def _outside_v4(nat: NatPlan) -> str | None:
    return next((str(a.ip) for a in nat.outside_addresses if a.version == 4), None)


def nat_type(nat: NatPlan) -> NatType:
    try:
        return NAT_TYPES[nat.type]
    except KeyError:
        raise PlanError(("nat", "type"), f"unknown NAT type {nat.type!r} (known: {', '.join(NAT_TYPES)})") from None


def nft_ruleset(nat: NatPlan) -> str:
    """The NAT's nftables table, as text for `nft -f -`. Rendered from the type's
    mapping and filtering behaviour, not its name."""
    kind = nat_type(nat)
    out = f'"{nat.outside_dev}"'
    public = _outside_v4(nat)
    hairpin = nat.hairpin and public is not None
    records = kind.cone or hairpin
    random = " fully-random" if kind.new_port_per_destination else ""
    masquerade = f"masquerade{random}"
    address_filtered = kind.cone and kind.filtering == ADDRESS_DEPENDENT

    if not records:
        # the plain NATs: one rule
        return (
            f"table inet {TABLE} {{\n"
            f"  # {kind.name}: {kind.description}\n"
            "  chain postrouting {\n"
            "    type nat hook postrouting priority srcnat; policy accept;\n"
            f"    oifname {out} {masquerade}\n"
            "  }\n"
            "}\n"
        )

    timeout = mapping_timeout(nat)
    lines = [
        f"table inet {TABLE} {{",
        f"  # {kind.name}: {kind.description}" + ("; hairpin" if hairpin else ""),
        "",
        "  # UDP mappings: external port -> inside address . port (refreshed by outbound packets)",
        "  map mappings {",
        "    type inet_service : ipv4_addr . inet_service",
        "    flags dynamic,timeout",
        f"    timeout {timeout}s",
        "  }",
    ]
    if address_filtered:
        lines += [
            "",
            f"  # {kind.name}: external port . remote address the inside host has sent to",
            "  set contacted {",
            "    type inet_service . ipv4_addr",
            "    flags dynamic,timeout",
            f"    timeout {timeout}s",
            "  }",
        ]

    # a port missing from the map makes a `dnat … map @mappings` rule not match; a
    # separate lookup such as `udp dport @mappings` is refused on a map by 6.1 kernels
    lines += [
        "",
        "  # inbound: send packets for a mapping to the inside host that owns it",
        "  chain prerouting {",
        "    type nat hook prerouting priority dstnat; policy accept;",
    ]
    if kind.cone and kind.filtering == ENDPOINT_INDEPENDENT:
        lines.append(f"    # {kind.name}: anyone outside may use a mapping")
        lines.append(f"    iifname {out} meta nfproto ipv4 dnat ip to udp dport map @mappings")
    elif address_filtered:
        lines.append(f"    # {kind.name}: only addresses the mapping has sent to, from any port")
        lines.append(f"    iifname {out} udp dport . ip saddr @contacted dnat ip to udp dport map @mappings")
    if hairpin:
        lines.append("    # hairpin: inside hosts reaching a mapping through the public address")
        lines.append(f"    iifname != {out} ip daddr {public} dnat ip to udp dport map @mappings")
    lines.append("  }")

    lines += [
        "",
        "  # outbound: translate the source",
        "  chain postrouting {",
        "    type nat hook postrouting priority srcnat; policy accept;",
    ]
    if hairpin:
        lines.append("    # hairpin: the target sees the sender's public address, and answers through the NAT")
        lines.append(f"    iifname != {out} oifname != {out} ct status dnat snat ip to {public}{random}")
    lines.append(f"    oifname {out} {masquerade}")
    lines.append("  }")

    lines += [
        "",
        "  # after SNAT (the packet carries its external port): record the mapping",
        "  chain record {",
        "    type filter hook postrouting priority srcnat + 10; policy accept;",
        f"    oifname {out} meta nfproto ipv4 ct direction original ct status snat meta l4proto udp update @mappings {{ udp sport : ct original ip saddr . ct original proto-src }}",
        "    # replies of flows a cone let in keep their mapping alive too",
        f"    oifname {out} meta nfproto ipv4 ct direction reply ct status dnat meta l4proto udp update @mappings {{ udp sport : ct reply ip saddr . ct reply proto-src }}",
    ]
    if address_filtered:
        lines.append(f"    oifname {out} meta l4proto udp ct status snat,dnat update @contacted {{ udp sport . ip daddr }}")
    lines.append("  }")

    lines.append("}")
    return "\n".join(lines) + "\n"


def guard_ruleset(nat: NatPlan) -> str:
    """The NAT router's own input policy (a table of its own, `wgh_nat_guard`): new UDP
    from the outside for the router itself is dropped unless a local socket wants it.

    Translation is not filtering, so this is not in `wgh_nat`, but without it no
    NAT here would keep an endpoint-independent mapping when the remote sends first,
    as in hole punching: conntrack would confirm an entry for the unsolicited packet
    (remote:r → public:p), and when the inside host then sends from p to remote:r,
    masquerade finds the tuple taken and picks another port (and a cone's DNAT, which
    only sees a flow's first packet, would never see that remote's later packets)."""
    out = f'"{nat.outside_dev}"'
    return (
        f"table inet {GUARD_TABLE} {{\n"
        "  # unsolicited UDP for the router itself leaves no conntrack entry behind\n"
        "  chain input {\n"
        "    type filter hook input priority filter; policy accept;\n"
        "    # a local socket (a WireGuard peer on this node) still gets its packets\n"
        f"    iifname {out} meta l4proto udp ct state new socket transparent 0 accept\n"
        f"    iifname {out} meta l4proto udp ct state new socket transparent 1 accept\n"
        f"    iifname {out} meta l4proto udp ct state new drop\n"
        "  }\n"
        "}\n"
    )


def iptables_commands(nat: NatPlan) -> list[list[str]]:
    """The same without nftables (the types conntrack alone filters, without hairpin)."""
    kind = nat_type(nat)
    if kind.needs_nftables or nat.hairpin:
        raise MissingCapability(
            f"a {nat.type} NAT{' with hairpin' if nat.hairpin else ''} needs nftables: apt-get install nftables"
        )
    random = ["--random-fully"] if kind.new_port_per_destination else []
    dev = nat.outside_dev
    return [
        ["-t", "nat", "-A", "POSTROUTING", "-o", dev, "-j", "MASQUERADE", *random],
        ["-A", "INPUT", "-i", dev, "-p", "udp", "-m", "conntrack", "--ctstate", "NEW", "-m", "socket", "--nowildcard", "-j", "ACCEPT"],
        ["-A", "INPUT", "-i", dev, "-p", "udp", "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP"],
    ]


def conntrack_sysctls(nat: NatPlan) -> dict[str, str]:
    """Start times on the NAT's mappings (so that the diagnosis can tell a mapping
    made after a check's packets were dropped from one they found), and the UDP
    mapping lifetime: both the unreplied and the 'stream' (assured) timeout, since
    WireGuard traffic flows both ways and becomes a stream at once."""
    sysctls = {conntrack.TIMESTAMP_SYSCTL: "1"}
    if nat.udp_timeout is not None:
        seconds = str(max(1, round(nat.udp_timeout)))
        sysctls["net.netfilter.nf_conntrack_udp_timeout"] = seconds
        sysctls["net.netfilter.nf_conntrack_udp_timeout_stream"] = seconds
    return sysctls


def apply(node: nsexec.InNamespace, nat: NatPlan) -> None:
    """The NAT's rules and conntrack timeouts, inside `node`."""
    nft = shutil.which("nft")
    if nft is not None:
        rules = nft_ruleset(nat) + guard_ruleset(nat)  # one transaction: all or nothing
        # generous timeout: the first nft in a fresh VM loads its modules, slowly under TCG
        result = node.run([nft, "-f", "-"], input=rules, timeout=NFT_TIMEOUT)
        if result.returncode != 0:
            raise BuildError(f"nft refused the NAT rules in {node.netns_path}: {result.stderr.strip()}")
    else:
        iptables = shutil.which("iptables")
        if iptables is None:
            raise MissingCapability("NAT needs nftables or iptables: apt-get install nftables")
        for command in iptables_commands(nat):
            result = node.run([iptables, *command])
            if result.returncode != 0:
                raise BuildError(f"iptables refused the NAT rule {' '.join(command)} in {node.netns_path}: {result.stderr.strip()}")
    nsexec.write_sysctls(node.netns_path, conntrack_sysctls(nat))
