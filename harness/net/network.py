"""Build a planned network for real, and take it down again.

Order matters: namespaces, links, addresses and routes first; then every WireGuard
device fully configured *without* endpoints; only then are endpoints and keepalives
set. So no initiator can send before every responder is ready, and the first
handshake is never lost to REKEY_TIMEOUT (5 s).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from harness import caps
from harness.cleanup import RunRegistry
from harness.errors import BuildError, MissingCapability
from harness.net import firewall, impair, nat, nsexec
from harness.plan.network import NetworkPlan
from harness.wg import uapi
from harness.wg.backends import KernelDevice, PeerConfig, WgDevice, WireguardGoDevice
from harness.wg.keys import KeyPair

log = logging.getLogger(__name__)

BASE_SYSCTLS = {
    # IPv6 addresses usable at once: duplicate address detection only adds delay here
    "net.ipv6.conf.all.accept_dad": "0",
    "net.ipv6.conf.default.accept_dad": "0",
}
VETH_INDEX_BASE = 1000
FORWARDING_SYSCTLS = {"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1"}


class Network:
    """A running network built from a plan. Use as a context manager: it always tears down."""

    def __init__(self, plan: NetworkPlan, *, artifacts_dir: Path | None = None):
        self.plan = plan
        self.registry: RunRegistry | None = None
        self.iproute: dict[str, Any] = {}
        self.devices: dict[str, WgDevice] = {}
        self.keys: dict[str, KeyPair] = {}
        self.backends: dict[str, str] = {}
        self.work_dir: Path | None = None
        self.artifacts_dir = artifacts_dir
        self.events: list[str] = []

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
            self._build_wireguard()
        except (MissingCapability, BuildError):
            raise
        except Exception as exc:
            raise BuildError(f"building the network failed: {type(exc).__name__}: {exc}") from exc

    def teardown(self) -> list[str]:
        """Remove everything this run created. Safe to call twice. Returns leftovers."""
        from harness.cleanup import process_start_time, stop_processes

        daemons = [d for d in self.devices.values() if isinstance(d, WireguardGoDevice)]
        stop_processes([(d.process.pid, process_start_time(d.process.pid)) for d in daemons])
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
            sysctls = dict(BASE_SYSCTLS)
            if node.forwards:
                sysctls.update(FORWARDING_SYSCTLS)
            sysctls.update(node.sysctls)
            nsexec.write_sysctls(node.namespace, sysctls)

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
            for route in node.routes:
                index = ipr.link_lookup(ifname=route.dev)[0]
                ipr.route("add", dst=str(route.destination), gateway=str(route.gateway) if route.gateway else None, oif=index)
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

        userspace = [name for name, backend in self.backends.items() if backend == "wireguard-go"]
        if userspace:
            self.registry.add_sockets([uapi.socket_path(plan.wireguard[n].ifname) for n in userspace])
        for name, wg in plan.wireguard.items():
            namespace = plan.nodes[name].namespace
            if self.backends[name] == "kernel":
                self.devices[name] = KernelDevice.create(self.iproute[name], namespace, wg.ifname)
            else:
                self.devices[name] = WireguardGoDevice.start(
                    namespace, wg.ifname, self.work_dir, lambda pid: self.registry.add_process(pid, "wireguard-go")
                )
        for device in self.devices.values():  # started together, awaited together
            if isinstance(device, WireguardGoDevice):
                device.wait_ready()

        # phase 1: keys, peers and addresses everywhere, but nobody knows an endpoint yet
        for name, wg in plan.wireguard.items():
            device = self.devices[name]
            device.configure(
                self.keys[name].private,
                wg.listen_port,
                [PeerConfig(self.keys[p.node].public, tuple(map(str, p.allowed_ips))) for p in wg.peers],
            )
            ipr = self.iproute[name]
            index = _address_and_up(ipr, wg.ifname, wg.addresses, wg.mtu)
            for destination in wg.routes:
                ipr.route("replace", dst=str(destination), oif=index)

        # phase 2: every responder is listening; now initiators may send
        for name, wg in plan.wireguard.items():
            for peer in wg.peers:
                if peer.endpoint is not None or peer.persistent_keepalive:
                    self.devices[name].update_peer(
                        self.keys[peer.node].public,
                        endpoint=str(peer.endpoint) if peer.endpoint else None,
                        persistent_keepalive=peer.persistent_keepalive,
                    )

    # --- use ---------------------------------------------------------------------

    def namespace(self, node: str) -> str:
        return self.plan.nodes[node].namespace

    def run(self, node: str, argv: Sequence[str], *, timeout: float = 30.0) -> subprocess.CompletedProcess:
        """Run a command inside a node and wait for it (output captured as text)."""
        return nsexec.run(self.namespace(node), argv, timeout=timeout)

    def popen(self, node: str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen:
        return nsexec.popen(self.namespace(node), argv, **kwargs)

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
