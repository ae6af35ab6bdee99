"""The typed scenario model (format v1).

Pydantic checks shapes and types; `validate.py` checks what refers to what (node
names, neighbours, endpoints). The JSON Schema published for editors is generated
from these classes (`wgh schema`), so the two cannot drift apart.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
)

from harness.backends import CHOICES
from harness.engines import CHOICES as ENGINE_CHOICES
from harness.dnsnames import DNS_NAME_MAX, DNS_NAME_PATTERN
from harness.nattypes import DEFAULT_NAT_TYPE, NAT_TYPES
from harness.sysctls import SYSCTL_NAME_PATTERN, SYSCTL_VALUE_PATTERN, sysctl_name_problem, sysctl_value_problem
from harness.units import MAX_DURATION, parse_duration, parse_percent, parse_rate

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,14}$"
MAX_GROUP_SIZE = 100  # members of one node group; planning a full mesh grows as N³ (100: ~10 s)

Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": MAX_DURATION},
                {"type": "string", "pattern": r"^\d+(\.\d+)?\s*(us|µs|ms|s|m|min|h)?$"},
            ],
            "description": "A duration: '20ms', '3s', '1m'; a bare number means seconds; at most 24h.",
        }
    ),
]
Percent = Annotated[
    float,
    BeforeValidator(parse_percent),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": 100},
                {"type": "string", "pattern": r"^\d+(\.\d+)?\s*%$"},
            ],
            "description": "A percentage: '1%', '0.5%'; a bare number means percent.",
        }
    ),
]

Rate = Annotated[
    float,
    BeforeValidator(parse_rate),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0},
                {"type": "string", "pattern": r"^\d+(\.\d+)?\s*([kmgKMG]?(bit|bps))?$"},
            ],
            "description": "A rate as tc writes it: '100mbit', '1gbit', '500kbit' (bits), '10mbps' (bytes); a bare number is bit/s.",
        }
    ),
]


def _interface(value: Any) -> Any:
    """'198.18.1.2/24' or a bare address (host prefix implied) → ip_interface."""
    if isinstance(value, str):
        try:
            return ipaddress.ip_interface(value)
        except ValueError:
            raise ValueError(f"not an IP address with optional /prefix: {value!r}") from None
    return value


IpInterface = Annotated[
    Union[ipaddress.IPv4Interface, ipaddress.IPv6Interface],
    BeforeValidator(_interface),
    WithJsonSchema({"type": "string", "description": "An IP address with optional /prefix."}),
]


def _usable_host_address(value: Any) -> Any:
    """An address a node can own: not the unspecified, a multicast, a loopback or a
    reserved address, nor the network or broadcast address of its own subnet."""
    address, network = value.ip, value.network
    if address.is_unspecified:
        raise ValueError(f"{value} is the unspecified address: a node cannot have it")
    if address.is_multicast:
        raise ValueError(f"{value} is a multicast address: a node cannot have it as its own")
    if address.is_loopback:
        raise ValueError(f"{value} is a loopback address: it cannot be used on a link or a tunnel")
    if address.version == 4 and (address.is_reserved or address == ipaddress.IPv4Address("255.255.255.255")):
        raise ValueError(f"{value} is a reserved (240.0.0.0/4) or the broadcast address")
    if network.prefixlen == 0:
        raise ValueError(f"{value}: a /0 prefix would make every address this link's or tunnel's own; give the subnet, e.g. /24")
    if address.version == 4 and network.prefixlen <= 30:
        if address == network.network_address:
            raise ValueError(f"{value} is the network address of {network}: use a host address such as {network.network_address + 1}")
        if address == network.broadcast_address:
            raise ValueError(f"{value} is the broadcast address of {network}: use a host address such as {network.broadcast_address - 1}")
    return value


HostInterface = Annotated[
    Union[ipaddress.IPv4Interface, ipaddress.IPv6Interface],
    BeforeValidator(_interface),
    AfterValidator(_usable_host_address),
    WithJsonSchema({"type": "string", "description": "A host's IP address with optional /prefix (not a network, broadcast, multicast or loopback address)."}),
]
Port = Annotated[int, Field(ge=1, le=65535)]
# names a file gives to links, probes, captures, background runs and measurements: they
# end up in file names (pcaps, iperf3 reports), metric keys and test ids, so no '/',
# no spaces, no control characters
LABEL_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"
Label = Annotated[str, Field(pattern=LABEL_PATTERN, description="A name: letters, digits, '_', '.', '-' (at most 64).")]


def _printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError(f"{value!r} contains control characters (newlines, escapes): write plain text on one line")
    return value


Text = Annotated[str, AfterValidator(_printable), Field(max_length=500)]
NodeName = Annotated[str, Field(pattern=NAME_PATTERN)]
DnsName = Annotated[str, Field(pattern=DNS_NAME_PATTERN, max_length=DNS_NAME_MAX, description="A DNS name: lowercase labels with at least one dot, e.g. server.wgh.test.")]
Expectation = Literal["pass", "fail"]


def _allowed(check: Any) -> Any:
    def validate(value: Any) -> Any:
        problem = check(value)
        if problem:
            raise ValueError(problem)
        return value

    return validate


SysctlName = Annotated[
    str,
    AfterValidator(_allowed(sysctl_name_problem)),
    WithJsonSchema({"type": "string", "pattern": SYSCTL_NAME_PATTERN}),
]
SysctlValue = Annotated[
    Union[int, str],
    AfterValidator(_allowed(sysctl_value_problem)),
    WithJsonSchema({"anyOf": [{"type": "integer"}, {"type": "string", "pattern": SYSCTL_VALUE_PATTERN}]}),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --- topology -----------------------------------------------------------------


NatTypeName = Literal[tuple(NAT_TYPES)]  # type: ignore[valid-type]


class NatSpec(Strict):
    """Masquerade everything leaving towards `outside` (a neighbouring node)."""

    outside: NodeName = Field(description="The neighbour on the public side of this NAT.")
    type: NatTypeName = Field(
        DEFAULT_NAT_TYPE,
        description="RFC 4787 behaviour. " + "; ".join(f"{t.name}: {t.description}" for t in NAT_TYPES.values()) + ".",
    )
    hairpin: bool = Field(False, description="Inside hosts can reach each other through the NAT's public address.")
    udp_timeout: Duration | None = Field(
        None, description="Conntrack UDP timeout in this router's namespace (mapping lifetime)."
    )


class FirewallRule(Strict):
    """One rule of a node's firewall (nftables in its namespace), e.g. {drop: udp, port: 51820}."""

    drop: Literal["udp", "tcp", "icmp", "fragments", "all"] | None = Field(
        None,
        description="Silently drop this traffic (icmp: also 'fragmentation needed', making a PMTU black hole; "
        "fragments: IPv4 and IPv6 fragments, before reassembly, as many middleboxes do).",
    )
    allow: Literal["established"] | None = Field(
        None, description="established: only flows started from elsewhere pass; new flows arriving here are dropped."
    )
    port: Port | None = Field(None, description="With drop: udp|tcp, only this destination port.")
    from_: NodeName | None = Field(None, alias="from", description="Only traffic arriving from this neighbour.")


class NodeSpec(Strict):
    """A host: one network namespace."""

    router: bool = Field(False, description="Forward packets (underlay transit, tunnel hubs).")
    nat: NatSpec | None = Field(None, description="Make this node a NAT router (implies router).")
    firewall: list[FirewallRule] = Field(
        default_factory=list, description="Filtering on this node: traffic to it and through it."
    )
    sysctls: dict[SysctlName, SysctlValue] = Field(
        default_factory=dict,
        description="Extra sysctls in this namespace, e.g. net.ipv4.conf.all.rp_filter: 2. Only per-network-namespace "
        "keys under net. are allowed (anything else would change the host).",
    )
    count: int | None = Field(
        None,
        ge=1,
        le=MAX_GROUP_SIZE,
        description="Make this a group of nodes named <name>1 … <name><count>; the group's name in links, "
        "wireguard, peers and `reach: {among: ...}` stands for each member (expanded before validation).",
    )
    gateway: NodeName | None = Field(
        None,
        description="A neighbour this node sends everything through: it gets one default route via that "
        "neighbour (per family its link carries) instead of a route per subnet, like a host behind a home "
        "router. Safe: its links only lead to other nodes of the scenario.",
    )
    dns: dict[DnsName, NodeName] = Field(
        default_factory=dict,
        description="Run a DNS server (dnsmasq) on this node answering these names with the nodes' current "
        "underlay addresses, e.g. {server.wgh.test: server}; records follow a node when it roams. Endpoints "
        "given as 'server.wgh.test:51820' are resolved through it.",
    )

    @property
    def forwards(self) -> bool:
        return self.router or self.nat is not None


Distribution = Literal["uniform", "normal", "pareto", "paretonormal"]


class GilbertElliott(Strict):
    """Bursty loss: a good and a bad state (netem 'loss gemodel p r 1-h 1-k')."""

    p: Percent = Field(description="Chance per packet of going from the good to the bad state.")
    r: Percent = Field(description="Chance per packet of going from the bad back to the good state.")
    bad_loss: Percent = Field(100.0, description="Loss in the bad state (1-h).")
    good_loss: Percent = Field(0.0, description="Loss in the good state (1-k).")


class Impairment(Strict):
    """Network conditions for one direction of a link (netem, tbf). Delay is one-way."""

    delay: Duration | None = Field(None, description="One-way delay added in this direction.")
    jitter: Duration | None = Field(None, description="Random variation of the delay.")
    distribution: Distribution | None = Field(None, description="Shape of the jitter (netem's tables).")
    delay_correlation: Percent | None = None
    loss: Percent | None = Field(None, description="Random loss.")
    loss_correlation: Percent | None = None
    gilbert_elliott: GilbertElliott | None = Field(None, description="Bursty loss instead of `loss`.")
    reorder: Percent | None = Field(None, description="Share of packets sent at once, ahead of delayed ones (needs delay).")
    duplicate: Percent | None = None
    corrupt: Percent | None = None
    rate: Rate | None = Field(None, description="Bandwidth limit (token bucket).")
    queue: int | None = Field(None, ge=1, le=1_000_000, description="Queue limit in packets.")

    @property
    def needs_netem(self) -> bool:
        return any(
            getattr(self, name) is not None
            for name in ("delay", "jitter", "loss", "gilbert_elliott", "reorder", "duplicate", "corrupt")
        )

    @property
    def empty(self) -> bool:
        return all(getattr(self, name) is None for name in Impairment.model_fields)


class LinkSpec(Impairment):
    """A veth pair between two nodes; one subnet from 198.18.0.0/15 unless addresses are given.
    Impairments written on the link apply to both directions; `towards` sets one direction."""

    ends: tuple[NodeName, NodeName]
    name: Label | None = Field(None, description="A name for steps to refer to (default 'a-b' from ends).")
    towards: dict[NodeName, Impairment] = Field(
        default_factory=dict, description="Per direction: towards: {b: {delay: 50ms}} slows only traffic going to b."
    )
    addresses: tuple[HostInterface, HostInterface] | None = Field(
        None, description="Addresses of the two ends, in the order of `ends`."
    )
    ipv6: bool = Field(False, description="Also give both ends IPv6 addresses (from 2001:2::/48 unless given).")
    mtu: int | None = Field(None, ge=576, le=65535)


# --- WireGuard ------------------------------------------------------------------


# a file names an implementation (harness/backends.py); the userspace backend's command
# comes from the command line, never from a file
Backend = Literal[CHOICES]  # type: ignore[valid-type]


class PeerSpec(Strict):
    endpoint: str | None = Field(
        None,
        description="Where to send: a node name (its underlay address and listen port), "
        "'node:port', 'address:port', or 'dns.name:port' (resolved once, through a `dns:` node, when the "
        "interface is configured, as wg(8) does). Without it the peer only answers.",
    )
    allowed_ips: list[str] | None = Field(
        None, description="CIDRs or node names (their tunnel addresses). Default: the peer's tunnel addresses."
    )
    persistent_keepalive: int = Field(0, ge=0, le=65535, description="Seconds; 0 turns it off.")


class WireGuardSpec(Strict):
    backend: Backend | None = Field(None, description="Overrides the run's backend for this node.")
    listen_port: Port = 51820
    address: list[HostInterface] | None = Field(
        None, description="Tunnel addresses. Default: 100.64.0.N/32 and fd00:64::N/128."
    )
    mtu: int | None = Field(None, ge=1280, le=65535)
    peers: dict[NodeName, PeerSpec] = Field(default_factory=dict)
    socket_in: NodeName | None = Field(
        None,
        description="Create the interface in this other node's namespace and move it here, as WireGuard's netns.sh "
        "does: its UDP socket stays behind there, so the underlay is that node's (two peers sharing one socket "
        "node talk over its 127.0.0.1 / ::1).",
    )
    table: Literal["auto", "main", "off"] = Field(
        "auto",
        description="Where the routes for the peers' AllowedIPs go, as wg-quick's Table: auto adds them to the "
        "main table, except a default route (0.0.0.0/0, ::/0: a full tunnel), which goes to table 51820 with "
        "fwmark policy routing (device fwmark 51820, `not fwmark 51820 table 51820`, `table main "
        "suppress_prefixlength 0`) so WireGuard's own packets still leave by the underlay; main puts every "
        "route, a default one too, into the main table (no policy routing: a full tunnel then loops); off adds none.",
    )


# --- steps ----------------------------------------------------------------------


class CheckArgs(Strict):
    expect: Expectation = Field("pass", description="'fail' makes a failing check the expected outcome.")
    cause: Text | None = Field(
        None,
        description="With expect: fail, text the diagnosis must contain (case-insensitive), "
        "so the check fails for the reason the scenario is about and no other.",
    )


class HandshakeArgs(CheckArgs):
    between: tuple[NodeName, NodeName]
    within: Duration = 5.0


class PingArgs(CheckArgs):
    from_: NodeName = Field(alias="from")
    to: str = Field(description="A node name or an IP address.")
    via: Literal["tunnel", "underlay"] = "tunnel"
    family: Literal[4, 6] = 4
    count: int = Field(3, ge=1, le=100000)
    interval: Duration = 0.2
    timeout: Duration = Field(2.0, description="How long to wait for the last reply.")
    size: int | None = Field(None, ge=0, le=65507, description="ICMP payload bytes.")
    max_loss: Percent = 0.0
    record: Label | None = Field(None, description="Name under which the RTT is recorded.")
    source: str | None = Field(
        None,
        description="Send from this address of `from` (ping -I): one of its tunnel addresses (via: tunnel) or "
        "underlay addresses (via: underlay). Default: the address the kernel picks.",
    )


# --- timeline: actions that change the network while it runs --------------------


class LinkArgs(Impairment):
    """Take a link down or up, or change its conditions (both directions, or `towards`)."""

    name: Label = Field(description="The link: its `name:`, or 'a-b' from its ends.")
    up: bool | None = Field(None, description="false: both ends go down (a cable pulled); true: back up.")
    towards: dict[NodeName, Impairment] = Field(default_factory=dict)
    clear: bool = Field(False, description="Remove all conditions first (the link becomes clean).")


class RoamArgs(Strict):
    """A node's underlay changes under its WireGuard interface."""

    node: NodeName
    via: Label | None = Field(None, description="Move to this other link of the node: the links it used go down, routes follow.")
    renumber: Union[bool, IpInterface] = Field(
        False,
        description="Give the node a new IPv4 address on the link it uses now (the old one goes): true picks one, or give "
        "it, e.g. 127.212.121.99/8. A node without links renumbers its loopback (127.0.0.1/8).",
    )


class NatRebindArgs(Strict):
    node: NodeName = Field(description="A NAT router: its UDP mappings are flushed, as on a router reboot or timeout.")


class RestartArgs(Strict):
    node: NodeName = Field(description="Its WireGuard interface is destroyed and created again.")
    key: Literal["same", "new"] = Field("same", description="new: with a new key pair (peers are told the new public key).")


class RotateKeyArgs(Strict):
    node: NodeName = Field(description="Gets a new key pair in place; its peers are updated to the new public key.")


class EndpointArgs(Strict):
    node: NodeName
    peer: NodeName
    to: str = Field(description="New endpoint: a node name, 'node:port' or 'address:port'.")


class RemovePeerArgs(Strict):
    """One side forgets a peer (as when its key is revoked); the other side is not told."""

    node: NodeName = Field(description="The node whose WireGuard interface drops the peer.")
    peer: NodeName = Field(description="The peer it drops.")


class ReuseOldKeyArgs(Strict):
    """The node goes back to the key pair it had before its last rotate_key (or restart with a new key);
    its peers are not told, so it presents a key they no longer accept."""

    node: NodeName


class HandshakeAgeArgs(CheckArgs):
    """One side's view only, as a monitoring exporter sees it: the latest handshake with a peer is recent."""

    node: NodeName = Field(description="Whose view of the tunnel.")
    peer: NodeName
    max: Duration = Field(description="The latest handshake must be at most this old.")


class ProbeArgs(Strict):
    """Start a continuous, timestamped ICMP echo stream in the background."""

    name: Label = Field(description="Refer to it in `stop:`.")
    from_: NodeName = Field(alias="from")
    to: str = Field(description="A node name or an IP address.")
    via: Literal["tunnel", "underlay"] = "tunnel"
    family: Literal[4, 6] = 4
    interval: Duration = Field(0.01, description="Time between probes (10 ms gives 10 ms resolution for recovery times).")
    timeout: Duration = Field(1.0, description="A reply later than this counts as lost.")


class CaptureArgs(Strict):
    """Capture an underlay link's traffic in the background (AF_PACKET)."""

    name: Label = Field(description="Refer to it in `stop:`.")
    link: Label = Field(description="The link: its `name:`, or 'a-b' from its ends.")
    at: NodeName | None = Field(None, description="Which end's interface (default: the link's first end).")


class NoCleartext(Strict):
    """Send a random marker inside the tunnel; it must not appear on the captured link."""

    from_: NodeName = Field(alias="from")
    to: NodeName


class StopArgs(CheckArgs):
    """Stop a probe stream, a capture or a re-resolution, or collect a background iperf3, and check what it saw."""

    probe: Label | None = None
    iperf3: Label | None = Field(None, description="A background iperf3 (its `background:` name): wait for it to end.")
    capture: Label | None = Field(None, description="A capture (its `name:`): count WireGuard's messages, check them.")
    reresolve: NodeName | None = Field(None, description="A node's background re-resolution (`reresolve:`): stop it, record what it did.")
    keepalive: Duration | None = Field(
        None, description="Capture: the keepalive interval seen must be this, within 10%; 0: no keepalive may be seen."
    )
    max_frame: int | None = Field(None, ge=60, description="Capture: no WireGuard frame may be larger (bytes on the wire).")
    largest_frame: int | None = Field(
        None, ge=60, description="Capture: the largest WireGuard frame must be exactly this (what the tunnel MTU implies)."
    )
    min_initiations: int | None = Field(None, ge=0, description="Capture: at least this many handshake initiations.")
    max_initiations: int | None = Field(None, ge=0, description="Capture: at most this many handshake initiations.")
    no_cleartext: NoCleartext | None = Field(None, description="Capture: a marker sent through the tunnel never shows in clear.")
    keep_pcap: bool = Field(False, description="Capture: keep the pcap even when the check passes.")
    max_loss: Percent = Field(100.0, description="Fail if more probes than this were lost.")
    max_outage: Duration | None = Field(None, description="Fail if the longest run of lost probes lasted longer.")
    record: Label | None = None


class WaitUntilArgs(CheckArgs):
    """Repeat a check until it passes, and record how long that took."""

    within: Duration
    handshake: tuple[NodeName, NodeName] | None = Field(None, description="Both nodes report a handshake newer than this step.")
    ping: PingArgs | None = None
    record: Label | None = None


class ReachArgs(CheckArgs):
    """Every ordered pair of these nodes reaches the other through the tunnel; the time
    until the last pair answered is the convergence time."""

    among: Union[NodeName, list[NodeName], None] = Field(
        None, description="A node group's name, or a list of WireGuard nodes (default: every WireGuard node)."
    )
    within: Duration = Field(30.0, description="Deadline for every pair to answer.")
    family: Literal[4, 6] = 4
    interval: Duration = Field(0.5, description="Time between retries to a pair that has not answered yet.")
    record: Label | None = Field(None, description="Name of the measurements (default: convergence).")


class Iperf3Args(CheckArgs):
    """Throughput with iperf3 between two nodes; its JSON report is kept as an artifact."""

    from_: NodeName = Field(alias="from", description="The sending client (with reverse: the receiver).")
    to: NodeName = Field(description="Where the iperf3 server runs.")
    via: Literal["tunnel", "underlay"] = "tunnel"
    family: Literal[4, 6] = 4
    protocol: Literal["tcp", "udp"] = "tcp"
    seconds: Duration = Field(3.0, description="Length of the test.")
    bitrate: Rate | None = Field(None, description="Target rate (UDP: default 1 Mbit/s as iperf3's; TCP: unlimited).")
    parallel: int = Field(1, ge=1, le=64)
    reverse: bool = Field(False, description="The server sends.")
    min_rate: Rate | None = Field(None, description="Fail below this received throughput.")
    max_loss: Percent | None = Field(None, description="UDP: fail above this loss.")
    record: Label | None = None
    ratio_to: Label | None = Field(
        None,
        description="The `record:` of an earlier iperf3 step (e.g. the bare path, via: underlay): records "
        "<record>.ratio, this throughput over that one (the tunnel's cost).",
    )
    min_ratio: float | None = Field(None, gt=0, description="With ratio_to: fail below this ratio (0.9 = 90% of it).")
    background: Label | None = Field(
        None, description="Run in the background under this name while the next steps happen; `stop: {iperf3: name}` collects it."
    )


class HandshakeStep(Strict):
    handshake: HandshakeArgs


class PingStep(Strict):
    ping: PingArgs


class SleepStep(Strict):
    sleep: Duration


class Iperf3Step(Strict):
    iperf3: Iperf3Args


class LinkStep(Strict):
    link: LinkArgs


class RoamStep(Strict):
    roam: RoamArgs


class NatRebindStep(Strict):
    nat_rebind: NatRebindArgs


class RestartStep(Strict):
    restart: RestartArgs


class RotateKeyStep(Strict):
    rotate_key: RotateKeyArgs


class EndpointStep(Strict):
    endpoint: EndpointArgs


class ProbeStep(Strict):
    probe: ProbeArgs


class CaptureStep(Strict):
    capture: CaptureArgs


class StopStep(Strict):
    stop: StopArgs


class WaitUntilStep(Strict):
    wait_until: WaitUntilArgs


class ReachStep(Strict):
    reach: ReachArgs


class RemovePeerStep(Strict):
    remove_peer: RemovePeerArgs


class ReuseOldKeyStep(Strict):
    reuse_old_key: ReuseOldKeyArgs


class HandshakeAgeStep(Strict):
    handshake_age: HandshakeAgeArgs


NonNegativeBytes = Annotated[int, Field(ge=0)]


class ByteBounds(Strict):
    min: NonNegativeBytes | None = None
    max: NonNegativeBytes | None = None


ByteCount = Union[NonNegativeBytes, list[NonNegativeBytes], ByteBounds]


class TransferArgs(CheckArgs):
    """Check a peer's byte counters (`wg show <dev> transfer`), as netns.sh does after its pings."""

    node: NodeName = Field(description="Whose counters: this node's view of `peer`.")
    peer: NodeName
    rx: ByteCount | None = Field(None, description="Bytes received from the peer: exact, a list of allowed values, or {min, max}.")
    tx: ByteCount | None = Field(None, description="Bytes sent to the peer: exact, a list of allowed values, or {min, max}.")
    record: Label | None = Field(None, description="Name prefix for the recorded rx_bytes/tx_bytes.")


class LearnedEndpointArgs(CheckArgs):
    """Check the endpoint a node has for a peer now (`wg show <dev> endpoints`), e.g. after the peer roamed."""

    node: NodeName
    peer: NodeName
    is_: str = Field(alias="is", description="The expected endpoint: 'address:port' or '[v6]:port'.")


class ListenPortArgs(Strict):
    """Change a node's listen port while it runs; its peers learn the new source port from its next packet."""

    node: NodeName
    port: Port


class TransferStep(Strict):
    transfer: TransferArgs


class LearnedEndpointStep(Strict):
    learned_endpoint: LearnedEndpointArgs


class ListenPortStep(Strict):
    listen_port: ListenPortArgs


class ReresolveArgs(Strict):
    """In the background, as wireguard-tools' contrib/reresolve-dns does: every `every`, each
    peer of `node` whose endpoint was given by DNS name and whose latest handshake is older
    than `stale_after` gets its endpoint set again from a fresh resolution."""

    node: NodeName = Field(description="The WireGuard node whose peers' DNS endpoints are re-resolved.")
    every: Duration = Field(30.0, gt=0, description="Time between rounds (reresolve-dns.sh is usually run by a 30 s timer).")
    stale_after: Duration = Field(
        135.0, ge=0, description="Re-resolve only peers whose latest handshake is older (reresolve-dns.sh: 135 s)."
    )


class ReresolveStep(Strict):
    reresolve: ReresolveArgs


def _step_kind(value: Any) -> str | None:
    if isinstance(value, dict) and len(value) == 1:
        return next(iter(value))
    if isinstance(value, BaseModel):
        return next(iter(type(value).model_fields))
    return None


STEP_KINDS = (
    "handshake", "ping", "sleep", "iperf3", "link", "roam", "nat_rebind", "restart", "rotate_key", "endpoint", "probe", "capture", "stop", "wait_until",
    "remove_peer", "reuse_old_key", "handshake_age",
    "reach",
    "transfer", "learned_endpoint", "listen_port",
    "reresolve",
)

Step = Annotated[
    Union[
        Annotated[HandshakeStep, Tag("handshake")],
        Annotated[PingStep, Tag("ping")],
        Annotated[SleepStep, Tag("sleep")],
        Annotated[Iperf3Step, Tag("iperf3")],
        Annotated[LinkStep, Tag("link")],
        Annotated[RoamStep, Tag("roam")],
        Annotated[NatRebindStep, Tag("nat_rebind")],
        Annotated[RestartStep, Tag("restart")],
        Annotated[RotateKeyStep, Tag("rotate_key")],
        Annotated[EndpointStep, Tag("endpoint")],
        Annotated[ProbeStep, Tag("probe")],
        Annotated[CaptureStep, Tag("capture")],
        Annotated[StopStep, Tag("stop")],
        Annotated[WaitUntilStep, Tag("wait_until")],
        Annotated[RemovePeerStep, Tag("remove_peer")],
        Annotated[ReuseOldKeyStep, Tag("reuse_old_key")],
        Annotated[HandshakeAgeStep, Tag("handshake_age")],
        Annotated[ReachStep, Tag("reach")],
        Annotated[TransferStep, Tag("transfer")],
        Annotated[LearnedEndpointStep, Tag("learned_endpoint")],
        Annotated[ListenPortStep, Tag("listen_port")],
        Annotated[ReresolveStep, Tag("reresolve")],
    ],
    Discriminator(
        _step_kind,
        custom_error_type="step_kind",
        custom_error_message=f"a step is a mapping with one key, one of: {', '.join(STEP_KINDS)}",
    ),
]


def step_kind(step: BaseModel) -> str:
    return next(iter(type(step).model_fields))


def step_args(step: BaseModel) -> Any:
    return getattr(step, step_kind(step))


# --- the file -------------------------------------------------------------------


class ScenarioSpec(Strict):
    """One scenario file (after matrix expansion)."""

    name: Label | None = None
    description: Text | None = None
    nodes: dict[NodeName, NodeSpec] = Field(min_length=1)
    links: list[LinkSpec] = Field(default_factory=list)
    wireguard: dict[NodeName, WireGuardSpec] = Field(default_factory=dict)
    steps: list[Step] = Field(default_factory=list)
    matrix: Union[dict[str, list[Any]], list[dict[str, Any]], None] = Field(
        None,
        description="Either dotted paths into this file, each with a list of values (one case per combination), "
        "or a list of cases, each a mapping of dotted paths to values (and optionally `case: <name>`, the case's id).",
    )
    timeout: Duration = Field(300.0, description="Time budget for the whole scenario.")
    engine: Literal[ENGINE_CHOICES] | None = Field(  # type: ignore[valid-type]
        None, description="The engine that builds this scenario's network, whatever the run's `--engine` says (default: the run's)."
    )
