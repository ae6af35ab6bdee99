"""Build a planned network for real, and take it down again.

Order matters: namespaces, links, addresses and routes first; then every WireGuard
device fully configured *without* endpoints; only then are endpoints and keepalives
set. So no initiator can send before every responder is ready, and the first
handshake is never lost to REKEY_TIMEOUT (5 s).
"""

from __future__ import annotations

import ipaddress
import logging
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from pyroute2.netlink.exceptions import NetlinkError

from harness import caps
from harness.backends import BACKENDS, USERSPACE
from harness.cleanup import RunRegistry
from harness.context import ContextAccess, RunContext
from harness.engine.netns import NetnsNode
from harness.errors import BuildError, MissingCapability
from harness.interrupts import Interrupted, checkpoint, shielded
from harness.net import dns, firewall, impair, nat, nlbatch, nsexec, policy
from harness.net.linkmove import move_link
from harness.plan.network import NetworkPlan, Port
from harness.processes import stop_children
from harness.scenario.conditions import Impairment
from harness.wg import uapi
from harness.wg.backends import KernelDevice, UserspaceDevice, WgDevice, userspace_argv, wireguard_go_argv
from harness.wg.config import PeerChange, PeerConfig
from harness.wg.keys import KeyPair

log = logging.getLogger(__name__)

BASE_SYSCTLS = {
    # IPv6 addresses usable at once: duplicate address detection only adds delay here
    "net.ipv6.conf.all.accept_dad": "0",
    "net.ipv6.conf.default.accept_dad": "0",
    # renumbering adds the new address before removing the old: keep the new one
    "net.ipv4.conf.all.promote_secondaries": "1",
    "net.ipv4.conf.default.promote_secondaries": "1",
}
# A new namespace copies the host's IPv4 conf/all and conf/default (and IPv6's too where
# net.core.devconf_inherit_init_net is 1), so a host where Docker turned on forwarding or
# systemd set rp_filter would change what every scenario means. Every setting that
# changes how a node treats packets is therefore set explicitly, to the kernel's
# defaults, before any link exists (links copy conf/default when they are created).
_PRISTINE_IPV4_CONF = {
    "rp_filter": "0",
    "accept_redirects": "1",
    "send_redirects": "1",
    "secure_redirects": "1",
    "accept_local": "0",
    "route_localnet": "0",
    "src_valid_mark": "0",
    "log_martians": "0",
    "arp_ignore": "0",
    "arp_announce": "0",
    "arp_filter": "0",
    "arp_accept": "0",
    "proxy_arp": "0",
    "bc_forwarding": "0",
}
PRISTINE_SYSCTLS = {
    f"net.ipv4.conf.{scope}.{key}": value for scope in ("all", "default") for key, value in _PRISTINE_IPV4_CONF.items()
}
PRISTINE_SYSCTLS.update({"net.ipv6.conf.all.accept_redirects": "1", "net.ipv6.conf.default.accept_redirects": "1"})
VETH_INDEX_BASE = 1000
# ip_forward first: writing it resets every conf/*/forwarding of IPv4
FORWARDING_SYSCTLS = {"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1", "net.ipv6.conf.default.forwarding": "1"}
NO_FORWARDING_SYSCTLS = {key: "0" for key in FORWARDING_SYSCTLS}


def node_sysctls(forwards: bool, extra: dict[str, str]) -> dict[str, str]:
    """Every sysctl a node gets, in write order: forwarding, then the pristine
    settings, then the harness's own, then the scenario's (which win)."""
    sysctls = dict(FORWARDING_SYSCTLS if forwards else NO_FORWARDING_SYSCTLS)
    sysctls.update(PRISTINE_SYSCTLS)
    sysctls.update(BASE_SYSCTLS)
    sysctls.update(extra)
    return sysctls


@dataclass
class _TeardownOutcome:
    """What an Interrupted raised by a lone teardown carries (no scenario result there)."""

    run_id: str
    leftovers: list[str]


class Network(ContextAccess):
    """A running network built from a plan. Use as a context manager: it always tears down."""

    def __init__(self, plan: NetworkPlan, *, artifacts_dir: Path | None = None):
        self.plan = plan
        self.registry: RunRegistry | None = None
        self.iproute: dict[str, Any] = {}
        self.devices: dict[str, WgDevice] = {}
        self.keys: dict[str, KeyPair] = {}
        self.previous_keys: dict[str, KeyPair] = {}  # before the last key change, for reuse_old_key
        self.backends: dict[str, str] = {}
        self.work_dir: Path | None = None
        self.artifacts_dir = artifacts_dir
        # state changed by timeline steps
        self.down_links: set[int] = set()
        self.routes: dict[str, tuple] = {}
        self.addresses: dict[tuple[str, str], tuple] = {}
        self.endpoints: dict[tuple[str, str], object] = {}
        self.listen_ports: dict[str, int] = {}  # changed by listen_port steps
        # the steps' own state: events, and background resources closed at teardown, last first
        self.context = RunContext()
        self._conditions: dict[tuple[int, str], Impairment | None] = {}
        self._nodes: dict[str, NetnsNode] = {}

    # --- lifecycle ------------------------------------------------------------------

    def __enter__(self) -> "Network":
        try:
            self.build()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.teardown()

    def build(self) -> None:
        from harness.cleanup import reap

        reap()  # leftovers of crashed runs go first, so names and resources are free
        self.registry = RunRegistry(self.plan.run_id)
        self.work_dir = Path(tempfile.mkdtemp(prefix=f"wgh-{self.plan.run_id}-"))
        self.registry.add_dir(str(self.work_dir))
        try:
            self._build_underlay()
            checkpoint("build", self.plan.run_id)
            dns.start_servers(self)  # before WireGuard: endpoints given by name are resolved through them
            self._build_wireguard()
        except (MissingCapability, BuildError):
            raise
        except Exception as exc:
            raise BuildError(f"building the network failed: {type(exc).__name__}: {exc}") from exc

    def teardown(self) -> list[str]:
        """Remove everything this run created. Safe to call twice. Returns leftovers.
        Signals that arrive meanwhile are deferred (see harness.interrupts): called on
        its own, it raises KeyboardInterrupt once everything is removed."""
        with shielded(self.describe_left) as shield:
            leftovers = self._teardown()
        if shield.received and not shield.nested:
            raise Interrupted(_TeardownOutcome(self.plan.run_id, leftovers), shield.received[0])
        return leftovers

    def describe_left(self) -> str:
        """What this run still has on the host, from its record (for an aborted teardown)."""
        if self.registry is None:
            return "nothing"
        record = self.registry.record
        parts = [f"run {record.run_id}"]
        if record.namespaces:
            parts.append(f"{len(record.namespaces)} namespaces ({', '.join(record.namespaces[:3])}{', …' if len(record.namespaces) > 3 else ''})")
        if record.processes:
            parts.append(f"{len(record.processes)} processes ({', '.join(f'{p.what} {p.pid}' for p in record.processes[:3])})")
        parts.append(f"its record {self.registry.path}")
        return ", ".join(parts)

    def _teardown(self) -> list[str]:
        checkpoint("teardown-start", self.plan.run_id)

        self.context.close()  # probes, iperf3, captures, re-resolvers, DNS servers: newest first
        daemons = [d for d in self.devices.values() if isinstance(d, UserspaceDevice)]
        stop_children([d.process for d in daemons])  # all at once: their shutdowns overlap
        for device in self.devices.values():
            try:
                device.close()
            except Exception as exc:  # keep going: the registry removes the rest
                log.warning("closing %s: %s", device.ifname, exc)
        self._keep_logs()
        self.devices.clear()
        for ipr in self.iproute.values():
            ipr.close()
        self.iproute.clear()
        self._nodes.clear()
        checkpoint("teardown-middle", self.plan.run_id)
        leftovers = self.registry.release() if self.registry else []
        self.registry = None
        return leftovers

    def _keep_logs(self) -> None:
        if self.artifacts_dir is None or self.work_dir is None or not self.work_dir.exists():
            return
        for log_file in self.work_dir.glob("*.log"):
            if log_file.stat().st_size:
                self.artifacts_dir.mkdir(parents=True, exist_ok=True)
                shutil.copy(log_file, self.artifacts_dir / log_file.name)

    # --- underlay -------------------------------------------------------------------

    def _build_underlay(self) -> None:
        from pyroute2 import IPRoute

        plan = self.plan
        namespaces = [node.namespace for node in plan.nodes.values()]
        self.registry.add_namespaces(namespaces)
        for node in plan.nodes.values():
            self.iproute[node.name] = ipr = IPRoute(fileno=nsexec.create_namespace(node.namespace))
            ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
            nsexec.write_sysctls(node.namespace, node_sysctls(node.forwards, node.sysctls))

        for veth in plan.veths:
            peer_ns = str(nsexec.netns_path(plan.nodes[veth.b.node].namespace))
            self.iproute[veth.a.node].link(
                "add",
                ifname=veth.a.ifname,
                kind="veth",
                # the kernel's link watcher handles a veth's carrier change at once only
                # when its ifindex differs from its peer's; in fresh namespaces both
                # would be 2, and the 1/s rate limit would delay IPv6 by up to 1 s
                index=VETH_INDEX_BASE + veth.index,
                peer={"ifname": veth.b.ifname, "net_ns_fd": peer_ns},
            )
        for veth in plan.veths:
            for port in (veth.a, veth.b):
                _address_and_up(self.iproute[port.node], port.ifname, port.addresses, veth.mtu)
                conditions = veth.egress(port.node)
                if conditions is not None:
                    impair.apply(plan.nodes[port.node].namespace, port.ifname, conditions, veth.mtu or 1500)
        if any(a.version == 6 for v in plan.veths for p in (v.a, v.b) for a in p.addresses):
            self._wait_operstate_up()
        for node in plan.nodes.values():
            ipr = self.iproute[node.name]
            # one batch per node: a mesh behind one router has hundreds (see nlbatch)
            nlbatch.install_routes(node.namespace, _route_requests(ipr, node.routes))
            if node.nat is not None:
                nat.apply(node.namespace, node.nat)
            if node.firewall:
                firewall.apply(node.namespace, node.firewall)

    def _wait_operstate_up(self, timeout: float = 3.0) -> None:
        """IPv6 only uses a link once the kernel's link watcher has marked it up
        (it batches carrier events, ~0.1-0.3 s); until then the first neighbour
        solicitation is lost and the first packet waits a 1 s retransmission."""
        deadline = time.monotonic() + timeout
        pending = {(p.node, p.ifname) for v in self.plan.veths for p in (v.a, v.b)}
        while pending and time.monotonic() < deadline:
            for node in {n for n, _ in pending}:
                for link in self.iproute[node].get_links():
                    if link.get("state") == "up" and link.get_attr("IFLA_OPERSTATE") == "UP":
                        pending.discard((node, link.get_attr("IFLA_IFNAME")))
            if pending:
                time.sleep(0.005)
        if pending:
            raise BuildError(f"links did not come up within {timeout:g}s: {sorted(pending)}")

    # --- WireGuard ------------------------------------------------------------------

    def _build_wireguard(self) -> None:
        plan = self.plan
        if not plan.wireguard:
            return
        for name, wg in plan.wireguard.items():
            self.backends[name] = caps.resolve_backend(wg.backend)
            self.keys[name] = KeyPair.generate()

        userspace = [name for name, backend in self.backends.items() if BACKENDS[backend].userspace]
        if userspace:
            self.registry.add_sockets([uapi.socket_path(plan.wireguard[n].ifname) for n in userspace])
        for name in plan.wireguard:
            self._create_device(name)
        for device in self.devices.values():  # started together, awaited together
            if isinstance(device, UserspaceDevice):
                device.wait_ready()
        # phase 1: keys, peers and addresses everywhere, but nobody knows an endpoint yet
        for name in plan.wireguard:
            self._configure_device(name)
        # phase 2: every responder is listening; now initiators may send
        dns.resolve_endpoints(self)  # names resolved once, inside each node, as wg(8) does
        for name in plan.wireguard:
            self._set_endpoints(name)

    def _create_device(self, name: str) -> None:
        wg = self.plan.wireguard[name]
        namespace = self.plan.nodes[name].namespace
        # socket_in: born in another node's namespace and moved here; its UDP socket stays there
        born_in = wg.socket_node
        if self.backends[name] == "kernel":
            self.devices[name] = KernelDevice.create(self.iproute[born_in], namespace, wg.ifname)
            if born_in != name:
                move_link(self.iproute[born_in], wg.ifname, namespace)
        else:
            backend = self.backends[name]
            if backend == USERSPACE:
                if wg.userspace is None:
                    raise MissingCapability(f"'{name}' uses the userspace backend, which needs a command: --userspace 'wireguard-go -f {{ifname}}'")
                argv = userspace_argv(wg.userspace, wg.ifname)
            else:
                argv = wireguard_go_argv(wg.ifname)
            what = f"{backend} ({Path(argv[0]).name})" if backend == USERSPACE else backend
            self.devices[name] = UserspaceDevice.start(
                namespace,
                wg.ifname,
                argv,
                self.work_dir,
                lambda pid: self.registry.add_process(pid, what),
                backend=backend,
                socket_namespace=self.plan.nodes[born_in].namespace if born_in != name else None,
            )

    def _peer_configs(self, name: str, with_endpoints: bool = False) -> list[PeerConfig]:
        """The node's peers; with_endpoints for a device that is up and carrying traffic:
        a peer configured without its endpoint for a moment makes the next packet's
        handshake fail ("no known endpoint"), and the retry waits REKEY_TIMEOUT (5 s)."""
        configs = []
        for peer in self.plan.wireguard[name].peers:
            endpoint = self.endpoints.get((name, peer.node), peer.endpoint) if with_endpoints else None
            configs.append(
                PeerConfig(
                    self.keys[peer.node].public,
                    tuple(map(str, peer.allowed_ips)),
                    endpoint=str(endpoint) if endpoint is not None else None,
                    persistent_keepalive=peer.persistent_keepalive if with_endpoints else 0,
                )
            )
        return configs

    def _configure_device(self, name: str) -> None:
        wg = self.plan.wireguard[name]
        self.devices[name].configure(self.keys[name].private, self.listen_port(name), self._peer_configs(name))
        ipr = self.iproute[name]
        if wg.fwmark is not None:  # before any endpoint is set: no packet leaves unmarked
            self.devices[name].set_fwmark(wg.fwmark)
        policy.prepare(ipr, self.namespace(name), wg)
        index = _address_and_up(ipr, wg.ifname, wg.addresses, wg.mtu)
        # the routes for AllowedIPs; a full tunnel gets wg-quick's fwmark policy routing
        policy.install(ipr, self.namespace(name), wg, index)

    def _set_endpoints(self, name: str) -> None:
        changes = []
        for peer in self.plan.wireguard[name].peers:
            endpoint = self.endpoints.get((name, peer.node), peer.endpoint)  # a step may have changed it
            if endpoint is not None or peer.persistent_keepalive:
                changes.append(
                    PeerChange(
                        self.keys[peer.node].public,
                        endpoint=str(endpoint) if endpoint is not None else None,
                        persistent_keepalive=peer.persistent_keepalive,
                    )
                )
        self.devices[name].update_peers(changes)  # in batches, as the configuration: a mesh node has hundreds

    # --- changes while running (timeline steps) ----------------------------------

    def set_link(self, index: int, *, up: bool | None = None, conditions: dict[str, Impairment | None] | None = None) -> None:
        """Take a link's two ends down or up, and/or replace its conditions per sending end."""
        veth = self.plan.veths[index]
        for port in (veth.a, veth.b):
            ipr = self.iproute[port.node]
            if up is not None:
                ipr.link("set", index=ipr.link_lookup(ifname=port.ifname)[0], state="up" if up else "down")
            if conditions is not None and port.node in conditions:
                impair.apply(self.namespace(port.node), port.ifname, conditions[port.node], veth.mtu or 1500)
        if conditions is not None:
            self._conditions.update({(index, node): c for node, c in conditions.items()})
        if up is False:
            self.down_links.add(index)
        elif up is True:
            self.down_links.discard(index)
            # the kernel deleted the static routes through the ends when they went down
            for port in (veth.a, veth.b):
                for route in self.routes.get(port.node, self.plan.nodes[port.node].routes):
                    if route.dev == port.ifname:
                        _install_route(self.iproute[port.node], route, replace=True)

    def conditions(self, index: int, sender: str) -> Impairment | None:
        """The conditions now on traffic that `sender` puts on link `index`."""
        return self._conditions.get((index, sender), self.plan.veths[index].egress(sender))

    def detach(self, node: str, link_index: int) -> None:
        """The node leaves a link: its end goes down and loses its addresses, as when
        Wi-Fi disconnects (a stale source address would otherwise keep being used)."""
        port = next(p for p in self.plan.ports[node] if p.link_index == link_index)
        ipr = self.iproute[node]
        index = ipr.link_lookup(ifname=port.ifname)[0]
        for address in self.addresses.get((node, port.ifname), port.addresses):
            ipr.addr("del", index=index, address=str(address.ip), prefixlen=address.network.prefixlen)
        self.addresses[(node, port.ifname)] = ()
        self.set_link(link_index, up=False)

    def attach(self, node: str, link_index: int) -> None:
        """The node joins a link again with its planned addresses."""
        port = next(p for p in self.plan.ports[node] if p.link_index == link_index)
        ipr = self.iproute[node]
        if self.addresses.get((node, port.ifname)) == ():  # addresses first: routes need them
            index = ipr.link_lookup(ifname=port.ifname)[0]
            for address in port.addresses:
                ipr.addr("add", index=index, address=str(address.ip), prefixlen=address.network.prefixlen)
            del self.addresses[(node, port.ifname)]
        self.set_link(link_index, up=True)

    def reroute(self) -> None:
        """Recompute every node's routes around the links that are down, and install them."""
        wanted = self.plan.routes_avoiding(self.down_links)
        for name, routes in wanted.items():
            ipr = self.iproute[name]
            current = self.routes.get(name, self.plan.nodes[name].routes)
            for route in current:
                if route not in routes:
                    try:
                        ipr.route("del", dst=str(route.destination), oif=ipr.link_lookup(ifname=route.dev)[0])
                    except (NetlinkError, IndexError):  # already gone with its link
                        pass
            for route in routes:
                _install_route(ipr, route, replace=True)
            self.routes[name] = routes

    def renumber(self, node: str, to: Any = None) -> str:
        """Move `node` to a fresh IPv4 address (or `to`, an ip_interface) in the subnet it
        uses now; returns it. A node without links renumbers its loopback, as netns.sh
        does with the namespace that holds the WireGuard sockets."""
        ipr = self.iproute[node]
        port = next((p for p in self.plan.ports[node] if p.link_index not in self.down_links), None)
        if port is None:
            port = Port(node, "lo", (ipaddress.ip_interface("127.0.0.1/8"),), -1)
        old = next(a for a in self.addresses.get((node, port.ifname), port.addresses) if a.version == 4)
        used = {a.ip for p in self.plan.ports.values() for q in p for a in q.addresses} | {a.ip for a in self.addresses_in_use()}
        new = to or next(
            ipaddress.ip_interface(f"{host}/{old.network.prefixlen}") for host in old.network.hosts() if host not in used and int(host) % 256 >= 100
        )
        index = ipr.link_lookup(ifname=port.ifname)[0]
        scope = {"scope": 254} if new.ip.is_loopback else {}  # the kernel wants 127/8 in host scope (as `ip` sets it)
        ipr.addr("add", index=index, address=str(new.ip), prefixlen=new.network.prefixlen, **scope)
        ipr.addr("del", index=index, address=str(old.ip), prefixlen=old.network.prefixlen)
        self.addresses[(node, port.ifname)] = tuple(a for a in self.addresses.get((node, port.ifname), port.addresses) if a != old) + (new,)
        # the old address took the node's routes with it: put them back
        for route in self.routes.get(node, self.plan.nodes[node].routes):
            _install_route(ipr, route, replace=True)
        return str(new.ip)

    def addresses_in_use(self) -> list:
        return [a for addrs in self.addresses.values() for a in addrs]

    def restart_wireguard(self, node: str, new_key: bool = False) -> None:
        """Destroy the node's WireGuard interface and create it again (same or new key)."""
        device = self.devices.pop(node)
        device.close()
        if isinstance(device, KernelDevice):
            ipr = self.iproute[node]
            ipr.link("del", index=ipr.link_lookup(ifname=device.ifname)[0])
        old_public = self.keys[node].public
        if new_key:
            self.previous_keys[node] = self.keys[node]
            self.keys[node] = KeyPair.generate()
            self._tell_peers_new_key(node, old_public)
        self._create_device(node)
        if isinstance(self.devices[node], UserspaceDevice):
            self.devices[node].wait_ready()
        self._configure_device(node)
        # as at build time: endpoints only once both sides can answer, so no
        # initiation is lost and costs REKEY_TIMEOUT (5 s)
        self._set_endpoints(node)
        if new_key:
            self._peers_set_endpoints(node)

    def rotate_key(self, node: str) -> None:
        """A new key pair for `node`, in place; its peers learn the new public key."""
        old_public = self.keys[node].public
        self.previous_keys[node] = self.keys[node]
        self.keys[node] = KeyPair.generate()
        self._tell_peers_new_key(node, old_public)
        self.devices[node].set_private_key(self.keys[node].private)
        self._peers_set_endpoints(node)

    def reuse_old_key(self, node: str) -> None:
        """`node` goes back to the key pair it had before its last key change, and its
        peers are NOT told: it presents a revoked key, as a stale config would."""
        self.keys[node], self.previous_keys[node] = self.previous_keys.pop(node), self.keys[node]
        self.devices[node].set_private_key(self.keys[node].private)

    def remove_peer(self, node: str, peer: str) -> None:
        """`node` forgets `peer` (a revoked key); `peer` is not told and keeps its session."""
        self.devices[node].remove_peer(self.keys[peer].public)

    def _tell_peers_new_key(self, node: str, old_public: bytes) -> None:
        """Peers swap the old public key for the new one (no endpoint yet, see below)."""
        for other, wg in self.plan.wireguard.items():
            peer = wg.peer(node)
            if peer is None or other not in self.devices:
                continue
            # one request: the old key out, the new one in
            self.devices[other].update_peers(
                [PeerChange(old_public, remove=True), PeerChange(self.keys[node].public, allowed_ips=tuple(map(str, peer.allowed_ips)))]
            )

    def _peers_set_endpoints(self, node: str) -> None:
        for other, wg in self.plan.wireguard.items():
            peer = wg.peer(node)
            if peer is None or other not in self.devices:
                continue
            endpoint = self.endpoints.get((other, node), peer.endpoint)
            if endpoint is not None or peer.persistent_keepalive:
                self.devices[other].update_peer(
                    self.keys[node].public,
                    endpoint=str(endpoint) if endpoint is not None else None,
                    persistent_keepalive=peer.persistent_keepalive,
                )

    def listen_port(self, node: str) -> int:
        """The node's listen port now (a listen_port step may have changed the planned one)."""
        return self.listen_ports.get(node, self.plan.wireguard[node].listen_port)

    def set_listen_port(self, node: str, port: int) -> None:
        """The node listens on another port; peers are not told (they learn it from its next packet)."""
        self.devices[node].set_listen_port(port)
        self.listen_ports[node] = port

    def set_endpoint(self, node: str, peer: str, endpoint) -> None:
        self.endpoints[(node, peer)] = endpoint
        self.devices[node].update_peer(self.keys[peer].public, endpoint=str(endpoint))

    def flush_nat(self, node: str) -> int:
        """Forget every connection the NAT tracks (its mappings); returns how many."""
        from harness.net.conntrack import flush

        return flush(self.namespace(node))

    # --- use ---------------------------------------------------------------------

    def namespace(self, node: str) -> str:
        return self.plan.nodes[node].namespace

    def node(self, name: str) -> NetnsNode:
        """The handle steps and the diagnosis act through (see harness.engine.base.Node)."""
        node = self._nodes.get(name)
        if node is None:
            node = self._nodes[name] = NetnsNode(name, self.plan.nodes[name].namespace, self.iproute[name])
        return node

    def run(self, node: str, argv: Sequence[str], *, timeout: float = 30.0) -> subprocess.CompletedProcess:
        """Run a command inside a node and wait for it (output captured as text)."""
        return self.node(node).run(argv, timeout=timeout)

    def popen(self, node: str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen:
        return self.node(node).popen(argv, **kwargs)

    def public_key(self, node: str) -> bytes:
        return self.keys[node].public


def _address_and_up(ipr: Any, ifname: str, addresses: Sequence[Any], mtu: int | None) -> int:
    """Add addresses to an interface, set its MTU, bring it up; returns its index."""
    index = ipr.link_lookup(ifname=ifname)[0]
    for address in addresses:
        ipr.addr("add", index=index, address=str(address.ip), prefixlen=address.network.prefixlen)
    settings: dict[str, Any] = {"state": "up"}
    if mtu:
        settings["mtu"] = mtu
    ipr.link("set", index=index, **settings)
    return index


def _route_requests(ipr: Any, routes: Sequence[Any]) -> list[dict[str, Any]]:
    """pyroute2 `route()` keywords for planned routes (interface indexes looked up once)."""
    indexes = {link.get_attr("IFLA_IFNAME"): link["index"] for link in ipr.get_links()} if routes else {}
    return [
        {"dst": str(r.destination), "gateway": str(r.gateway) if r.gateway else None, "oif": indexes[r.dev]} for r in routes
    ]


def _install_route(ipr: Any, route: Any, replace: bool = False) -> None:
    index = ipr.link_lookup(ifname=route.dev)[0]
    gateway = str(route.gateway) if route.gateway else None
    ipr.route("replace" if replace else "add", dst=str(route.destination), gateway=gateway, oif=index)
