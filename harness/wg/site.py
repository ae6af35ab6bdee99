"""Where a run's WireGuard devices are: the machine their nodes are on. A `DeviceSite`
makes the devices of those nodes (kernel interfaces, userspace daemons recorded in
that machine's run record), gives them their addresses, routes and policy rules, and
removes them. The fleet (harness.wg.fleet) decides what each device is configured
with (keys, peers, endpoints) and talks to its device through the site; a site on
another machine is a worker's (harness.remote), reached through the same methods.

It acts on nodes through their `Node` handles only, so it runs where they are.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Mapping

from harness import caps
from harness.backends import BACKENDS, USERSPACE
from harness.cleanup import RunRegistry
from harness.errors import MissingCapability
from harness.net import nlbatch, policy
from harness.net.linkmove import move_link
from harness.plan.network import NetworkPlan
from harness.processes import stop_children
from harness.wg import uapi
from harness.wg.backends import KernelDevice, UserspaceDevice, WgDevice, userspace_argv, wireguard_go_argv

if TYPE_CHECKING:
    from harness.engine.base import Node

log = logging.getLogger(__name__)


class DeviceSite:
    """The WireGuard devices of the nodes on one machine."""

    def __init__(self, plan: NetworkPlan, node: Callable[[str], "Node"], registry: RunRegistry, work_dir: Path):
        self.plan = plan
        self._node = node
        self._registry = registry
        self._work_dir = work_dir
        self.devices: dict[str, WgDevice] = {}

    def resolve_backends(self, names: Iterable[str]) -> dict[str, str]:
        """The backend each device runs on this machine ('auto': kernel if it has
        the module, else wireguard-go)."""
        return {name: caps.resolve_backend(self.plan.wireguard[name].backend) for name in names}

    def create(self, backends: Mapping[str, str]) -> None:
        """Every device of `backends` (name → backend), started together, awaited together."""
        userspace = [name for name, backend in backends.items() if BACKENDS[backend].userspace]
        if userspace:
            self._registry.add_sockets([uapi.socket_path(self.plan.wireguard[n].ifname) for n in userspace])
        try:
            for name, backend in backends.items():
                self._create_device(name, backend, persist=False)
        finally:
            self._registry.persist()  # once for all the daemons (see RunRegistry.add_process)
        for name in backends:
            self.wait_ready(name)

    def wait_ready(self, name: str) -> None:
        device = self.devices[name]
        if isinstance(device, UserspaceDevice):
            device.wait_ready()

    def _create_device(self, name: str, backend: str, *, persist: bool = True) -> None:
        wg = self.plan.wireguard[name]
        here = self._node(name)
        # socket_in: born in another node's namespace and moved here; its UDP socket stays there
        born_in = self._node(wg.socket_node)
        if backend == "kernel":
            self.devices[name] = KernelDevice.create(born_in.netlink, here.netns_path, wg.ifname)
            if born_in.name != name:
                move_link(born_in.netlink, wg.ifname, here.netns_path)
            return
        if backend == USERSPACE:
            if wg.userspace is None:
                raise MissingCapability(f"'{name}' uses the userspace backend, which needs a command: --userspace 'wireguard-go -f {{ifname}}'")
            argv = userspace_argv(wg.userspace, wg.ifname)
        else:
            argv = wireguard_go_argv(wg.ifname)
        what = f"{backend} ({Path(argv[0]).name})" if backend == USERSPACE else backend
        self.devices[name] = UserspaceDevice.start(
            here.netns_path,
            wg.ifname,
            argv,
            self._work_dir,
            lambda pid: self._registry.add_process(pid, what, persist=persist),
            backend=backend,
            socket_namespace=born_in.netns_path if born_in.name != name else None,
        )

    def configure_routing(self, name: str) -> None:
        """The device's addresses, its being up, and the routes of its AllowedIPs (raw
        netlink only: any thread)."""
        wg = self.plan.wireguard[name]
        node = self._node(name)
        policy.prepare(node, wg)
        index = nlbatch.addresses_and_up(node, [(wg.ifname, wg.addresses, wg.mtu)])[0]
        policy.install_routes(node, wg, index)

    def configure_rules(self, name: str) -> None:
        """A full tunnel's fwmark policy routing, as wg-quick sets it (pyroute2: the
        thread that owns the node's handle)."""
        policy.install_rules(self._node(name), self.plan.wireguard[name])

    def recreate(self, name: str, backend: str) -> None:
        """Destroy the device's interface and make it again, unconfigured (a restart)."""
        device = self.devices.pop(name)
        device.close()
        if isinstance(device, KernelDevice):
            ipr = self._node(name).netlink
            ipr.link("del", index=ipr.link_lookup(ifname=device.ifname)[0])
        self._create_device(name, backend)
        self.wait_ready(name)

    def close(self) -> None:
        """Stop every device; failures are logged (the run's registry removes what is left)."""
        daemons = [d for d in self.devices.values() if isinstance(d, UserspaceDevice)]
        stop_children([d.process for d in daemons])  # all at once: their shutdowns overlap
        for device in self.devices.values():
            try:
                device.close()
            except Exception as exc:  # keep going: the registry removes the rest
                log.warning("closing %s: %s", device.ifname, exc)
        self.devices.clear()
