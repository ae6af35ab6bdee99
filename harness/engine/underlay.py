"""What every engine whose nodes are Linux network namespaces shares: the node handle
(a namespace reached by its path), how a node is prepared (loopback up, its sysctls,
before any link exists), how a link is made (a veth pair through netlink), and
everything done to the underlay once nodes and links exist: addresses, conditions,
routes, NAT, firewalls, and the timeline's changes. A LAN is a Linux bridge in a
namespace of its own (never the host's) with a veth pair to each member.

An engine only says how its nodes come to be (`_create`): the netns engine makes named
namespaces under /run/netns, the Mininet engine lets Mininet start its hosts' shells
(unnamed namespaces, /proc/<pid>/ns/net) and links. Whatever made them, a node is acted
on through its namespace's path, so both mean exactly the same by every setting.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import subprocess
import time
from typing import Any, Callable, Sequence, TypeVar

from pyroute2.netlink.exceptions import NetlinkError

from harness.cleanup import RunRegistry
from harness.engine.base import OnThisMachine
from harness.errors import BuildError
from harness.net import conntrack, firewall, impair, nat, nlbatch, nsexec
from harness.net.iface import add_address, install_route, route_requests
from harness.net.nodesettings import node_sysctls
from harness.net.queries import NetlinkQueries
from harness.plan.addressing import spare_address
from harness.plan.network import NetworkPlan, Port
from harness.plan.share import VXLAN_PORT, CrossLink, HostShare, compensated
from harness.plan.types import Conditions, LanPlan, NodePlan, VethPlan

T = TypeVar("T")

# the kernel's link watcher handles a veth's carrier change at once only when its
# ifindex differs from its peer's; in fresh namespaces both would be 2, and the 1/s
# rate limit would delay IPv6 by up to 1 s
VETH_INDEX_BASE = 1000
# a bridge's ports: far above any member's own interfaces, for the same reason
LAN_PORT_INDEX_BASE = 1_000_000
BRIDGE = "br0"
# the bridge only forwards: no IPv6 address on it or its ports (no DAD, no router or
# multicast listener solicitations of its own on the LAN)
BRIDGE_SYSCTLS = {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"}


class NamespaceNode(NetlinkQueries):
    """A node that is a network namespace, named (`ip netns` style) or given by path
    (/proc/<pid>/ns/net of the process that holds it); `netlink` is the engine's own
    rtnetlink handle opened inside it."""

    clock_offset = 0.0  # on this machine

    def __init__(self, name: str, namespace: nsexec.Namespace, netlink: Any):
        self.name = name
        self.namespace = namespace
        self._netlink = netlink

    @property
    def netns_path(self) -> str:
        return str(nsexec.netns_path(self.namespace))

    def run(self, argv: Sequence[str], *, timeout: float = 30.0, input: str | None = None) -> subprocess.CompletedProcess:
        return nsexec.run(self.namespace, argv, timeout=timeout, input=input)

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen:
        return nsexec.popen(self.namespace, argv, **kwargs)

    def socket(self, family: int, kind: int, proto: int = 0) -> socket.socket:
        return nsexec.call_in(self.namespace, lambda: socket.socket(family, kind, proto))

    def read_proc_net(self, name: str) -> str:
        return nsexec.call_in(self.namespace, nsexec.read_proc_net, name)

    def apply(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return function(self, *args, **kwargs)

    def start(self, factory: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return factory(self, *args, **kwargs)

    @property
    def netlink(self) -> Any:
        return self._netlink

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.netns_path!r})"


def prepare_node(node: NamespaceNode, plan: NodePlan) -> None:
    """Loopback up and the node's sysctls: before any link exists, since a link copies
    conf/default when it is created (see harness.net.nodesettings)."""
    ipr = node.netlink
    ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
    nsexec.write_sysctls(node.namespace, node_sysctls(plan.forwards, plan.sysctls))


def add_veth(a: NamespaceNode, b: NamespaceNode, veth: VethPlan) -> None:
    """The veth pair of one planned link, each end created directly in its node."""
    a.netlink.link(
        "add",
        ifname=veth.a.ifname,
        kind="veth",
        index=VETH_INDEX_BASE + veth.index,
        peer={"ifname": veth.b.ifname, "net_ns_fd": b.netns_path},
    )


def add_tunnel_end(here: Any, node: NamespaceNode, link: CrossLink) -> None:
    """This host's end of a link to a node on another host: a VXLAN device made
    directly in `node` under the link's interface name, its UDP socket in this
    process's own namespace (the host's, on the physical network), so that the link
    looks like a veth end to everything else. `here`: an rtnetlink handle in this
    process's namespace. The physical interface must carry the file's MTU plus the
    encapsulation: a build that cannot is stopped, never given a smaller MTU."""
    route = here.route("get", dst=link.remote)[0]
    oif = route.get_attr("RTA_OIF")
    physical = int(here.link("get", index=oif)[0].get_attr("IFLA_MTU"))
    if physical < link.outer_mtu:
        raise BuildError(
            f"link {link.index} ({link.node}'s {link.ifname}) goes to another host over a physical MTU of {physical}, "
            f"but an inner MTU of {link.inner_mtu} needs {link.outer_mtu} with VXLAN: raise the MTU on the hosts' "
            f"network (jumbo frames) or give the link `mtu: {physical - (link.outer_mtu - link.inner_mtu)}` in the file"
        )
    six = "6" if ":" in link.remote else ""
    here.link(
        "add", ifname=link.ifname, kind="vxlan", vxlan_id=link.vni, vxlan_port=VXLAN_PORT, vxlan_learning=0,
        mtu=link.inner_mtu, net_ns_fd=node.netns_path, **{f"vxlan_local{six}": link.local, f"vxlan_group{six}": link.remote},
    )


def prepare_bridge(node: NamespaceNode) -> int:
    """The bridge of a LAN, up, in its own namespace: no spanning tree (a LAN has no
    loops, and STP would hold every port in listening for 15 s) and no multicast
    snooping (without a querier on the LAN it would only delay IPv6 neighbour discovery).
    Returns its interface index (the ports' master)."""
    nsexec.write_sysctls(node.namespace, BRIDGE_SYSCTLS)
    node.netlink.link("add", ifname=BRIDGE, kind="bridge", br_stp_state=0, br_mcast_snooping=0, br_forward_delay=0)
    index = node.netlink.link_lookup(ifname=BRIDGE)[0]
    node.netlink.link("set", index=index, state="up")
    return index


def add_lan_port(bridge: NamespaceNode, bridge_index: int, member: NamespaceNode, lan: LanPlan, k: int) -> None:
    """The veth pair of a LAN's member `k` (from 0): the bridge's end (`p<k>`) made in the
    bridge's namespace (`bridge_index`: the bridge's, from prepare_bridge), enslaved and
    up in the same request; the member's end created directly in the member."""
    port = lan.members[k]
    bridge.netlink.link(
        "add",
        ifname=lan.bridge_port(k),
        kind="veth",
        index=LAN_PORT_INDEX_BASE + k,
        master=bridge_index,
        state="up",
        peer={"ifname": port.ifname, "net_ns_fd": member.netns_path},
        **({"mtu": lan.mtu} if lan.mtu else {}),
    )


class UnderlayEngine(OnThisMachine):
    """An engine's shared part: subclasses create the nodes and links (`_create`), and
    this configures and changes them. See harness.engine.base.Engine."""

    name = ""

    def __init__(self) -> None:
        self.plan: NetworkPlan | None = None
        self.share: HostShare | None = None  # this host's part, when the network spans several
        self.down_links: set[int] = set()  # of the whole network: routes avoid them wherever they are
        self._nodes: dict[str, NamespaceNode] = {}
        self._bridges: dict[int, NamespaceNode] = {}  # a LAN's link index → its bridge's namespace
        self._conditions: dict[tuple[int, str], Conditions | None] = {}
        # what the timeline changed: routes and addresses now, where they differ from the plan
        self._routes: dict[str, tuple] = {}
        self._addresses: dict[tuple[str, str], tuple] = {}

    # --- build ----------------------------------------------------------------------

    def build(self, plan: NetworkPlan, registry: RunRegistry, share: HostShare | None = None) -> None:
        """`share`: only this host's part of a network placed over several hosts (its
        nodes; tunnels for the links to the others); None: the whole network."""
        self.plan = plan
        self.share = share
        self._create(plan, registry)
        self._configure(plan)

    def _on_this_end(self, index: int, conditions: Conditions | None) -> Conditions | None:
        """What tc sets for `conditions` on this host's end of link `index`: on a tunnel
        to another host, the delay less what the hosts' own network adds."""
        link = self.share.cross.get(index) if self.share is not None else None
        return compensated(conditions, link.underlay_delay) if link is not None else conditions

    def _here(self, node: str) -> bool:
        """Is `node` built by this engine (not on another host)?"""
        return self.share is None or node in self.share.nodes

    def _create(self, plan: NetworkPlan, registry: RunRegistry) -> None:
        """Every node (prepared: see `prepare_node`) in self._nodes, and every veth
        pair; each recorded in `registry` before it exists."""
        raise NotImplementedError

    def _configure(self, plan: NetworkPlan) -> None:
        # every node's interfaces: addresses, MTU and up in one batch per node
        interfaces: dict[str, list[tuple[str, tuple, int | None]]] = {}
        for veth in plan.veths:
            for port in (veth.a, veth.b):
                if self._here(port.node):
                    interfaces.setdefault(port.node, []).append((port.ifname, port.addresses, veth.mtu))
        for lan in plan.lans:
            for port in lan.members:
                if self._here(port.node):  # its LAN's bridge here, or reached by a tunnel
                    interfaces.setdefault(port.node, []).append((port.ifname, port.addresses, lan.mtu))
        for node, its_interfaces in interfaces.items():
            nlbatch.addresses_and_up(self._nodes[node], its_interfaces)
        for veth in plan.veths:
            for port in (veth.a, veth.b):
                conditions = self._on_this_end(veth.index, veth.egress(port.node))
                if conditions is not None and self._here(port.node):
                    impair.apply(self._nodes[port.node], port.ifname, conditions, veth.mtu or 1500)
        for lan in plan.lans:
            bridge_here = lan.index in self._bridges
            for k, port in enumerate(lan.members):
                # on a tunnel to or from the bridge's host, less what the hosts' network adds
                crossing = self.share.lan_ends.get((lan.index, k)) if self.share is not None else None
                delay = crossing.underlay_delay if crossing is not None else 0.0
                if port.node in lan.sending and self._here(port.node):
                    impair.apply(self._nodes[port.node], port.ifname, compensated(lan.sending[port.node], delay), lan.mtu or 1500)
                if port.node in lan.arriving and bridge_here:
                    impair.apply(self._bridges[lan.index], lan.bridge_port(k), compensated(lan.arriving[port.node], delay), lan.mtu or 1500)
        if any(a.version == 6 for p in self._underlay_ports(plan) for a in p.addresses):
            self._wait_operstate_up()
        for node in plan.nodes.values():
            if not self._here(node.name):
                continue
            # one batch per node: a mesh behind one router has hundreds (see nlbatch)
            built = self._nodes[node.name]
            nlbatch.install_routes(built, route_requests(built.netlink, node.routes))
            if node.nat is not None:
                nat.apply(built, node.nat)
            if node.firewall:
                firewall.apply(built, node.firewall)

    def _wait_operstate_up(self, timeout: float = 3.0) -> None:
        """IPv6 only uses a link once the kernel's link watcher has marked it up
        (it batches carrier events, ~0.1-0.3 s); until then the first neighbour
        solicitation is lost and the first packet waits a 1 s retransmission."""
        deadline = time.monotonic() + timeout
        pending = {(p.node, p.ifname) for p in self._underlay_ports(self.plan) if self._here(p.node)}
        while pending and time.monotonic() < deadline:
            for node in {n for n, _ in pending}:
                for link in self._ipr(node).get_links():
                    # a VXLAN end (a link to another host) has no carrier of its own: UNKNOWN once up
                    if link.get("state") == "up" and link.get_attr("IFLA_OPERSTATE") in ("UP", "UNKNOWN"):
                        pending.discard((node, link.get_attr("IFLA_IFNAME")))
            if pending:
                time.sleep(0.005)
        if pending:
            raise BuildError(f"links did not come up within {timeout:g}s: {sorted(pending)}")

    @staticmethod
    def _underlay_ports(plan: NetworkPlan) -> list[Port]:
        """Every node's end of every link and LAN."""
        return [p for v in plan.veths for p in (v.a, v.b)] + [p for lan in plan.lans for p in lan.members]

    def _lans(self, plan: NetworkPlan) -> list[LanPlan]:
        """The LANs whose bridge is built here (over several hosts: on its first
        member's host; a member elsewhere reaches it by a tunnel)."""
        return [lan for lan in plan.lans if self.share is None or self.share.bridge_here(lan.index)]

    def _create_lans(self, plan: NetworkPlan, namespaces: dict[int, tuple[str, Any]]) -> None:
        """Each LAN's bridge, prepared, and its members' veth pairs; `namespaces`: a LAN's
        index → (its namespace, as nsexec takes it; an rtnetlink handle inside it).
        Over several hosts, the tunnels of the members on other hosts: their ends in the
        bridge's namespace (enslaved to it), or in the member here."""
        ends = self.share.lan_ends if self.share is not None else {}
        with contextlib.ExitStack() as stack:
            here = None
            if ends:  # this process's namespace: the host's, where the tunnels' sockets live
                from pyroute2 import IPRoute

                here = stack.enter_context(IPRoute())
            for lan in self._lans(plan):
                namespace, netlink = namespaces[lan.index]
                bridge = NamespaceNode(lan.name, namespace, netlink)
                self._bridges[lan.index] = bridge
                bridge_index = prepare_bridge(bridge)
                for k, port in enumerate(lan.members):
                    if (lan.index, k) in ends:  # the member is on another host
                        add_tunnel_end(here, bridge, ends[(lan.index, k)])
                        port_index = netlink.link_lookup(ifname=lan.bridge_port(k))[0]
                        netlink.link("set", index=port_index, master=bridge_index, state="up")
                    else:
                        add_lan_port(bridge, bridge_index, self._nodes[port.node], lan, k)
            for (index, k), end in ends.items():
                if end.node:  # a member here, its LAN's bridge on another host
                    add_tunnel_end(here, self._nodes[end.node], end)

    # --- use ------------------------------------------------------------------------

    def node(self, name: str) -> NamespaceNode:
        return self._nodes[name]

    def _ipr(self, node: str) -> Any:
        return self._nodes[node].netlink

    def port_addresses(self, port: Port) -> tuple:
        return self._addresses.get((port.node, port.ifname), port.addresses)

    def _routes_of(self, node: str) -> tuple:
        return self._routes.get(node, self.plan.nodes[node].routes)

    def close(self) -> None:
        for node in list(self._nodes.values()) + list(self._bridges.values()):
            node.netlink.close()
        self._nodes.clear()
        self._bridges.clear()

    # --- the timeline ----------------------------------------------------------------

    def set_link(self, index: int, *, up: bool | None = None, conditions: dict[str, Conditions | None] | None = None) -> None:
        veth = self.plan.veths[index]
        for port in (veth.a, veth.b):
            if not self._here(port.node):
                continue  # that end's host changes it
            ipr = self._ipr(port.node)
            if up is not None:
                ipr.link("set", index=ipr.link_lookup(ifname=port.ifname)[0], state="up" if up else "down")
            if conditions is not None and port.node in conditions:
                impair.apply(self._nodes[port.node], port.ifname, self._on_this_end(index, conditions[port.node]), veth.mtu or 1500)
        if conditions is not None:
            self._conditions.update({(index, node): c for node, c in conditions.items()})
        if up is False:
            self.down_links.add(index)
        elif up is True:
            self.down_links.discard(index)
            # the kernel deleted the static routes through the ends when they went down
            for port in (veth.a, veth.b):
                if not self._here(port.node):
                    continue
                for route in self._routes_of(port.node):
                    if route.dev == port.ifname:
                        install_route(self._ipr(port.node), route, replace=True)

    def conditions(self, index: int, sender: str) -> Conditions | None:
        return self._conditions.get((index, sender), self.plan.veths[index].egress(sender))

    def detach(self, node: str, link_index: int) -> None:
        """As when Wi-Fi disconnects: a stale source address would otherwise keep being used."""
        port = self._port(node, link_index)
        ipr = self._ipr(node)
        index = ipr.link_lookup(ifname=port.ifname)[0]
        for address in self.port_addresses(port):
            ipr.addr("del", index=index, address=str(address.ip), prefixlen=address.network.prefixlen)
        self._addresses[(node, port.ifname)] = ()
        self.set_link(link_index, up=False)

    def attach(self, node: str, link_index: int) -> None:
        port = self._port(node, link_index)
        ipr = self._ipr(node)
        if self._addresses.get((node, port.ifname)) == ():  # addresses first: routes need them
            index = ipr.link_lookup(ifname=port.ifname)[0]
            for address in port.addresses:
                add_address(ipr, index, address)
            del self._addresses[(node, port.ifname)]
        self.set_link(link_index, up=True)

    def _port(self, node: str, link_index: int) -> Port:
        return next(p for p in self.plan.ports[node] if p.link_index == link_index)

    def reroute(self) -> None:
        wanted = self.plan.routes_avoiding(self.down_links)
        for name, routes in wanted.items():
            if not self._here(name):
                continue
            ipr = self._ipr(name)
            for route in self._routes_of(name):
                if route not in routes:
                    try:
                        ipr.route("del", dst=str(route.destination), oif=ipr.link_lookup(ifname=route.dev)[0])
                    except (NetlinkError, IndexError):  # already gone with its link
                        pass
            for route in routes:
                install_route(ipr, route, replace=True)
            self._routes[name] = routes

    def renumber(self, node: str, to: Any = None) -> str:
        """A node without links renumbers its loopback, as netns.sh does with the
        namespace that holds the WireGuard sockets."""
        ipr = self._ipr(node)
        port = next((p for p in self.plan.ports[node] if p.link_index not in self.down_links), None)
        if port is None:
            port = Port(node, "lo", (ipaddress.ip_interface("127.0.0.1/8"),), -1)
        now = self.port_addresses(port)
        old = next(a for a in now if a.version == 4)
        used = {a.ip for p in self.plan.ports.values() for q in p for a in q.addresses}
        used |= {a.ip for addresses in self._addresses.values() for a in addresses}
        if to is None:
            spare = spare_address(old.network, used)
            if spare is None:
                raise BuildError(f"renumber {node}: {old.network} has no free address left; give one: `renumber: <address/prefix>`")
            to = ipaddress.ip_interface(f"{spare}/{old.network.prefixlen}")
        new = to
        index = ipr.link_lookup(ifname=port.ifname)[0]
        scope = {"scope": 254} if new.ip.is_loopback else {}  # the kernel wants 127/8 in host scope (as `ip` sets it)
        # the old address goes first, as when a DHCP lease or a network changes: no moment
        # with both, when a reply could already name the new one as its source (wireguard-go
        # learns its sticky source from what it receives: with such a window its recovery
        # from a renumbering became a race)
        ipr.addr("del", index=index, address=str(old.ip), prefixlen=old.network.prefixlen)
        add_address(ipr, index, new, **scope)
        self._addresses[(node, port.ifname)] = tuple(a for a in now if a != old) + (new,)
        # the old address took the node's routes with it: put them back
        for route in self._routes_of(node):
            install_route(ipr, route, replace=True)
        return str(new.ip)

    def flush_nat(self, node: str) -> int:
        return conntrack.flush(self._nodes[node])

    def nat_mappings(self, node: str) -> list[conntrack.UdpMapping]:
        return conntrack.udp_mappings(self._nodes[node])
