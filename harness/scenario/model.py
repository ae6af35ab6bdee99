"""The typed scenario model (format v1): the file, its nodes, links and WireGuard.

Pydantic checks shapes and types; `validate.py` checks what refers to what (node
names, neighbours, endpoints). The JSON Schema published for editors is generated
from these classes (`wgh schema`), so the two cannot drift apart.

The steps' models are declared with their kinds in `steps/` (each once, in its theme's
module); `Step` and `STEP_KINDS` are derived from that registry here.
"""

from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import Field, field_validator

from harness.backends import CHOICES
from harness.engines import CHOICES as ENGINE_CHOICES
from harness.nattypes import DEFAULT_NAT_TYPE, NAT_TYPES
from harness.scenario.conditions import Impairment
from harness.scenario.fields import (
    ConfigPath,
    TableSetting,
    WireGuardKeyText,
    DnsName,
    Duration,
    HostInterface,
    HostName,
    Label,
    NodeName,
    Port,
    Strict,
    Subnet,
    SysctlName,
    SysctlValue,
    Text,
)
from harness.scenario.steps import registry

MAX_GROUP_SIZE = 10_000  # members of one node group
MAX_EXPANDED_ENTRIES = 1_000_000  # peer (or allowed_ips) entries groups expand into: a full mesh of 1 000
MAX_LAN_MEMBERS = 1023  # ports of one Linux bridge (the kernel's BR_MAX_PORTS is 1 024, port 0 unused)


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


class LanSpec(Impairment):
    """A shared segment (an office LAN, an ISP access network, a data-centre switch): one
    Linux bridge in a namespace of its own, each member joined to one of its ports by a
    veth pair, all members in one subnet and each other's neighbours. Impairments written
    on the LAN apply to the traffic arriving at each member (so once between any two);
    `towards:` sets one member's arriving traffic, `from:` what one member sends."""

    name: Label | None = Field(None, description="A name for reports and errors (default 'lan<N>', from 1).")
    members: list[NodeName] = Field(
        min_length=2,
        description=f"The nodes on the LAN, in address order (the first gets the subnet's first host address); a "
        f"group's name stands for all its members. At most {MAX_LAN_MEMBERS} (one Linux bridge's ports).",
    )
    subnet: Subnet | None = Field(
        None,
        description="The LAN's IPv4 subnet (default: one from 198.18.0.0/15 that fits every member, a /24 at least).",
    )
    ipv6: bool = Field(False, description="Also give every member an IPv6 address (from 2001:2::/48 unless `subnet6`).")
    subnet6: Subnet | None = Field(None, description="The LAN's IPv6 subnet (implies ipv6).")
    towards: dict[NodeName, Impairment] = Field(
        default_factory=dict, description="Per member: towards: {hub: {rate: 1gbit}} shapes only what arrives at the hub."
    )
    from_: dict[NodeName, Impairment] = Field(
        default_factory=dict, alias="from", description="Per member: from: {spoke3: {loss: 5%}} drops only what spoke3 sends."
    )
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
    preshared_key: Union[Label, Literal[False], None] = Field(
        None,
        description="Use a preshared key with this peer, named here (the key itself is never in a file: the harness "
        "makes a fresh random one per name and run). The other end uses the same one unless its own entry for this "
        "peer names another (two names make the ends disagree, as a stale config would) or says false (none on "
        "that end).",
    )


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
    table: TableSetting = Field(
        "auto",
        description="Where the routes for the peers' AllowedIPs go, as wg-quick's Table: auto adds them to the "
        "main table, except a default route (0.0.0.0/0, ::/0: a full tunnel), which goes to table 51820 (or the "
        "fwmark's number) with fwmark policy routing (device fwmark 51820, `not fwmark 51820 table 51820`, `table main "
        "suppress_prefixlength 0`) so WireGuard's own packets still leave by the underlay; main puts every "
        "route, a default one too, into the main table (no policy routing: a full tunnel then loops); a number puts "
        "every route into that table (no rules, as wg-quick); off adds none.",
    )
    fwmark: int | None = Field(
        None, ge=1, le=2**32 - 1,
        description="The device's firewall mark (wg-quick's FwMark): WireGuard marks its own packets with it. With "
        "table auto and a default route it also names the policy routing table (instead of 51820).",
    )
    config: list[ConfigPath] | None = Field(
        None,
        description="Import this node's WireGuard settings from its own config file: a wg-quick file (`wg0.conf`), or a "
        "systemd-networkd `.netdev` (its `.network` next to it is read too, or give both). Paths are relative to the "
        "scenario's directory. Settings given here next to `config:` override the file's; peers are matched to "
        "nodes by public key (see `configs:`).",
    )

    @field_validator("config", mode="before")
    @classmethod
    def _one_or_more(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class ConfigsSpec(Strict):
    """How the config files that `wireguard.<node>.config` imports are used."""

    keys: Literal["fresh", "as-is"] = Field(
        "fresh",
        description="fresh (default): every key in the files is replaced by a fresh one for this run, consistently "
        "across files, so real secrets never enter a test run; as-is: the files' own private and preshared keys "
        "are used. Either way, keys never appear in results, logs, reports or command lines.",
    )
    hosts: dict[Text, NodeName] = Field(
        default_factory=dict,
        description="Endpoint host names (or addresses) in the files and the nodes they stand for, e.g. "
        "`vpn.example.com: server`. An endpoint whose peer is an imported node needs no entry.",
    )
    peers: dict[WireGuardKeyText, NodeName] = Field(
        default_factory=dict,
        description="Public keys (base64, as in the files) and the nodes they stand for: for peers whose node has "
        "no config file here, or whose file has no PrivateKey to derive it from.",
    )
    hooks: Literal["refuse", "ignore"] = Field(
        "refuse",
        description="wg-quick's PreUp/PostUp/PreDown/PostDown: refuse (default: an error naming the file and line) or "
        "ignore (a note per hook). A scenario file never chooses commands that run as root, so hooks are not run.",
    )


# --- a topology of the user's own -------------------------------------------------


TopologyArg = Union[bool, int, float, Text]


class TopologySpec(Strict):
    """A Mininet `Topo` class from a Python file next to this scenario; its hosts are the
    scenario's nodes (instead of `nodes:` and `links:`), and it is built by the Mininet
    engine. Loading it runs that file's code as root."""

    mininet: str = Field(
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,200}\.py:[A-Za-z_][A-Za-z0-9_]{0,63}$",
        description="'file.py:ClassName', the file relative to this scenario's directory (and inside it).",
    )
    args: dict[Label, TopologyArg] = Field(default_factory=dict, description="Keyword arguments of the Topo's build().")


# --- steps ----------------------------------------------------------------------


STEP_KINDS = registry.names()
Step = registry.step_union()
step_kind = registry.step_kind
step_args = registry.step_args


# --- the file -------------------------------------------------------------------


class ScenarioSpec(Strict):
    """One scenario file (after matrix expansion)."""

    name: Label | None = None
    description: Text | None = None
    nodes: dict[NodeName, NodeSpec] = Field(min_length=1)
    links: list[LinkSpec] = Field(default_factory=list)
    lans: list[LanSpec] = Field(
        default_factory=list,
        description="Shared segments: any number of nodes on one bridge and one subnet (a hub's thousand spokes on one LAN).",
    )
    wireguard: dict[NodeName, WireGuardSpec] = Field(default_factory=dict)
    steps: list[Step] = Field(default_factory=list)
    matrix: Union[dict[str, list[Any]], list[dict[str, Any]], None] = Field(
        None,
        description="Either dotted paths into this file, each with a list of values (one case per combination), "
        "or a list of cases, each a mapping of dotted paths to values (and optionally `case: <name>`, the case's id).",
    )
    timeout: Duration = Field(300.0, description="Time budget for the whole scenario.")
    exclusive: bool = Field(
        False,
        description="Run this case alone when cases run side by side (`wgh run -j`): it measures what other cases would distort. "
        "Cases with an iperf3 step that checks or records the rate (min_rate, max_loss, ratio_to, min_ratio, record), "
        "or a capture checked for the keepalive interval, are exclusive anyway.",
    )
    configs: ConfigsSpec = Field(
        default_factory=ConfigsSpec, description="How imported config files (`wireguard.<node>.config`) are used."
    )
    topology: TopologySpec | None = Field(
        None, description="Build a Mininet Topo of your own instead of `nodes:` and `links:` (its hosts are the nodes)."
    )
    engine: Literal[ENGINE_CHOICES] | None = Field(  # type: ignore[valid-type]
        None, description="The engine that builds this scenario's network, whatever the run's `--engine` says (default: the run's)."
    )
    placement: dict[HostName, list[NodeName]] = Field(
        default_factory=dict,
        description="Where nodes run when the network spans several hosts (`wgh run --hosts`): host → its nodes (a group "
        "stands for all its members). The rest are placed automatically, a NAT with what is behind it and a peer pair "
        "together where balance allows. Ignored on one machine.",
    )
