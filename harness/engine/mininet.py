"""The Mininet engine: the plan becomes a Mininet `Topo` (one host per node, one link
per veth pair, a switch per LAN: a Linux bridge in the switch's own namespace, never
the host's, with a link to each member) built by `Mininet(topo, host=…, link=…, controller=None)`. Its hosts
are unnamed network namespaces held by a shell (/proc/<pid>/ns/net); everything after
that (addresses, conditions through the harness's own tc rendering, read back;
routes, NAT and firewalls through nftables; the timeline) is shared with the netns
engine (harness.engine.underlay), so both engines mean exactly the same by every
setting.

Mininet habits this engine does not inherit, on purpose:
- `Mininet.init()` raises host limits and writes host sysctls (fs.file-max,
  kernel.pty.max, net.core.*mem_max, …): the harness never changes the host, so its
  networks are `SafeMininet`s, on which it counts as done.
- Hosts get no address from Mininet's 10.0.0.0/8 pool and no `ifconfig` calls: the
  plan's addresses go in through netlink, and a rejected setting fails the build
  (Mininet only logs tc errors).
- No `addNAT()` (it edits the host's files), no `mn -c` (it kills and deletes by name
  host-wide): the run's record says what to remove, also after a SIGKILL.

Host names carry the run prefix (wgh-<run>-<node>), so a shell is recognisable in
`ps` (`bash … mininet:wgh-<run>-<node>`) and two runs never collide. Each shell dies
with the harness (SIGHUP, as Mininet itself stops hosts) and is in the run's record.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Any

from mininet.link import Link
from mininet.net import Mininet
from mininet.node import Host, Switch
from mininet.topo import Topo

from harness.cleanup import RunRegistry
from harness.engine.underlay import NamespaceNode, UnderlayEngine, add_lan_port, add_veth, prepare_bridge, prepare_node
from harness.errors import BuildError
from harness.net import nsexec
from harness.plan.naming import lan_namespace_name, namespace_name
from harness.plan.network import NetworkPlan
from harness.plan.types import LanPlan, NodePlan, VethPlan
from harness.processes import marked_env

SHELL_EXIT_TIMEOUT = 5.0


class MininetNode(NamespaceNode):
    """A Mininet node (any class, in its own namespace) as the harness acts on it: by its
    shell's network namespace. `name` is the node's name in the plan (default: the host's)."""

    def __init__(self, host: Any, netlink: Any, name: str | None = None):
        super().__init__(name or host.name, f"/proc/{host.pid}/ns/net", netlink)
        self.host = host


def open_node(host: Any, name: str | None = None) -> MininetNode:
    """A handle on a running Mininet node, with an rtnetlink socket opened inside it."""
    from pyroute2 import IPRoute

    if not getattr(host, "inNamespace", False) or getattr(host, "shell", None) is None or host.shell.poll() is not None:
        raise BuildError(f"Mininet node {host.name!r} is not a running host in its own network namespace (inNamespace=False, or stopped)")
    return MininetNode(host, IPRoute(fileno=nsexec.netlink_fd(f"/proc/{host.pid}/ns/net")), name)


class SafeMininet(Mininet):
    """Mininet without `Mininet.init()`'s host tuning: fixLimits() raises host limits and
    writes host sysctls (fs.file-max, kernel.pty.max, net.core.*mem_max, …), and the
    harness never changes the host. `Mininet.__init__` calls `Mininet.init()`, which
    returns at once when `Mininet.inited` is set: set for that call only, so a plain
    `Mininet(...)` elsewhere in the process still does what Mininet always does."""

    def __init__(self, *args: Any, **kwargs: Any):
        before = Mininet.inited
        Mininet.inited = True
        try:
            super().__init__(*args, **kwargs)
        finally:
            Mininet.inited = before


class DiesWithHarness:
    """A Mininet node (mixed in before its class) whose shell gets SIGHUP when the
    harness's process dies, even by SIGKILL: an interactive bash ignores SIGTERM, and
    SIGHUP is how Mininet itself stops its nodes. So its namespace cannot outlive us."""

    def _popen(self, cmd: Any, **params: Any) -> Any:
        parent = os.getpid()
        params.setdefault("preexec_fn", lambda: nsexec.die_with_parent(signal.SIGHUP, parent))
        params.setdefault("env", marked_env())  # found by its owner if we die (harness.processes)
        return super()._popen(cmd, **params)  # type: ignore[misc]


def dying(cls: Any, registry: RunRegistry | None = None) -> Any:
    """`cls` (a user's node class too: their LinuxRouter must not outlive a killed run)
    with its shell dying with the harness and, given a registry, in the run's record."""
    if not isinstance(cls, type):
        return cls  # a partial or factory: as given
    attributes = {"__doc__": cls.__doc__, "__module__": cls.__module__, "registry": registry}
    bases = (Recorded, cls) if not issubclass(cls, Recorded) else (cls,)
    return type(cls.__name__, bases, attributes)


class Recorded(DiesWithHarness):
    """A node whose shell is in the run's record (`registry`, when the class has one), so
    a run killed by SIGKILL is reaped by PID."""

    registry: RunRegistry | None = None

    def startShell(self, *args: Any, **kwargs: Any) -> None:  # noqa: N802 (Mininet's name)
        super().startShell(*args, **kwargs)  # type: ignore[misc]
        if self.registry is not None:
            self.registry.add_process(self.shell.pid, f"mininet node {self.name}")  # type: ignore[attr-defined]


def stop_shells(nodes: list[Any], timeout: float = 5.0) -> list[Any]:
    """SIGHUP to every node's shell (its process group, as Mininet's `terminate`), all at
    once, then wait for them; returns the nodes whose shell would not exit in time.
    When the last holder of a namespace is gone, the namespace and its links go too."""
    for node in nodes:
        if node.shell is not None and node.shell.poll() is None:
            try:
                os.killpg(node.shell.pid, signal.SIGHUP)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout
    stuck = []
    for node in nodes:
        if node.shell is None:
            continue
        try:
            node.shell.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            stuck.append(node)
            continue
        node.cleanup()  # its pty, as Mininet closes it
    return stuck


class HarnessHost(DiesWithHarness, Host):
    """A Mininet host whose shell dies with the harness and is in the run's record, and
    which prepares itself (loopback, sysctls) as soon as it exists: before any link,
    since links copy conf/default when they are created."""

    def __init__(self, name: str, plan_node: NodePlan | None = None, registry: RunRegistry | None = None, **params: Any):
        self.plan_node = plan_node
        self.registry = registry
        self.handle: MininetNode | None = None
        super().__init__(name, **params)

    def startShell(self, mnopts: Any = None) -> None:  # noqa: N802 (Mininet's name)
        super().startShell(mnopts)
        if self.registry is not None:
            self.registry.add_process(self.shell.pid, f"mininet host {self.name}")
        if self.plan_node is not None:
            self.handle = open_node(self, self.plan_node.name)
            prepare_node(self.handle, self.plan_node)

    def defaultIntf(self) -> Any:  # noqa: N802 (Mininet's name)
        """Mininet warns about a host without links; a plan may have such a node (netns.sh's ns0)."""
        return super().defaultIntf() if self.intfs else None

    def configDefault(self, **moreParams: Any) -> None:  # noqa: N802 (Mininet's name)
        """Nothing: the plan configures the host (no 10.0.0.0/8 address, no ifconfig)."""


class PlannedLink(Link):
    """A Mininet link whose veth pair the harness makes through netlink (`_make`), each
    end created directly in its namespace; Mininet keeps its usual bookkeeping (intfs,
    ports), so its CLI and `net.get(...)` see the link."""

    def __init__(self, node1: Any, node2: Any, **params: Any):
        params1 = dict(params.pop("params1", None) or {}, up=None)  # no `ifconfig up`: the plan brings it up
        params2 = dict(params.pop("params2", None) or {}, up=None)
        super().__init__(node1, node2, params1=params1, params2=params2, **params)

    def makeIntfPair(self, intfname1: str, intfname2: str, addr1: Any = None, addr2: Any = None, node1: Any = None, node2: Any = None, deleteIntfs: bool = True) -> None:  # noqa: N802
        self._make(node1, node2)

    def _make(self, node1: Any, node2: Any) -> None:
        raise NotImplementedError

    def delete(self) -> None:
        """Nothing: a veth goes with the namespaces when the shells exit."""


class VethLink(PlannedLink):
    """A planned link (a veth pair) between two hosts, made as the netns engine makes it."""

    def __init__(self, node1: HarnessHost, node2: HarnessHost, veth: VethPlan | None = None, **params: Any):
        self.veth = veth
        super().__init__(node1, node2, **params)

    def _make(self, node1: Any, node2: Any) -> None:
        if self.veth is None or node1 is None or node2 is None:
            raise BuildError("a harness link needs its planned veth and both hosts")
        add_veth(node1.handle, node2.handle, self.veth)


class LanSwitch(DiesWithHarness, Switch):
    """A LAN as a Mininet switch: a Linux bridge, made through netlink in the switch's
    own namespace (Mininet's switches run in the host's by default, and the harness never
    touches the host's network) as soon as its shell exists; its shell dies with the
    harness and is in the run's record. No controller: the bridge learns by itself."""

    def __init__(self, name: str, lan: LanPlan | None = None, registry: RunRegistry | None = None, **params: Any):
        self.lan = lan
        self.registry = registry
        self.handle: MininetNode | None = None
        self.bridge_index = 0  # its bridge's interface index, once made
        params.update(inNamespace=True, dpid=f"{lan.position if lan else 1:x}")
        super().__init__(name, **params)

    def startShell(self, mnopts: Any = None) -> None:  # noqa: N802 (Mininet's name)
        super().startShell(mnopts)
        if self.registry is not None:
            self.registry.add_process(self.shell.pid, f"mininet switch {self.name}")
        if self.lan is not None:
            self.handle = open_node(self, self.lan.name)
            self.bridge_index = prepare_bridge(self.handle)

    def start(self, controllers: Any) -> None:
        """Nothing: the bridge forwards since the switch started."""

    def stop(self, deleteIntfs: bool = True) -> None:
        """Nothing here: its shell is stopped with the hosts' (its namespace goes with it)."""


class LanLink(PlannedLink):
    """The link of a LAN's member `k` to the LAN's switch, made as the netns engine makes
    it (harness.engine.underlay.add_lan_port)."""

    def __init__(self, node1: HarnessHost, node2: LanSwitch, lan: LanPlan | None = None, member: int = 0, **params: Any):
        self.lan, self.member = lan, member
        super().__init__(node1, node2, **params)

    def _make(self, node1: Any, node2: Any) -> None:
        if self.lan is None or node1 is None or node2 is None or node2.handle is None:
            raise BuildError("a harness LAN link needs its planned LAN, the member and the LAN's running switch")
        add_lan_port(node2.handle, node2.bridge_index, node1.handle, self.lan, self.member)


class PlanTopo(Topo):
    """A plan as Mininet's declaration: a host per node, a link per veth pair, a switch
    per LAN with a link to each member."""

    def build(self, plan: NetworkPlan, names: dict[str, str], registry: RunRegistry | None = None) -> None:  # type: ignore[override]
        for node in plan.nodes.values():
            self.addHost(names[node.name], cls=HarnessHost, ip=None, plan_node=node, registry=registry)
        for veth in plan.veths:
            self.addLink(
                names[veth.a.node], names[veth.b.node], cls=VethLink, veth=veth, intfName1=veth.a.ifname, intfName2=veth.b.ifname
            )
        for lan in plan.lans:
            switch = self.addSwitch(lan_namespace_name(plan.run_id, lan.position), cls=LanSwitch, lan=lan, registry=registry)
            for k, port in enumerate(lan.members):
                self.addLink(
                    names[port.node], switch, cls=LanLink, lan=lan, member=k, intfName1=port.ifname, intfName2=lan.bridge_port(k)
                )


class MininetEngine(UnderlayEngine):
    name = "mininet"

    def __init__(self) -> None:
        super().__init__()
        self.net: Mininet | None = None

    def _create(self, plan: NetworkPlan, registry: RunRegistry) -> None:
        if self.share is not None:
            raise BuildError("the Mininet engine builds a whole network on one machine: a share of several hosts is the netns engine's")
        names = {node: namespace_name(plan.run_id, node) for node in plan.nodes}
        topo = PlanTopo(plan, names, registry)
        # built in two steps so that a failing build still leaves the hosts it started in our hands
        self.net = SafeMininet(topo=topo, host=HarnessHost, link=VethLink, controller=None, build=False, waitConnected=False)
        try:
            self.net.build()
        finally:
            for node, name in names.items():
                host = self.net.nameToNode.get(name)
                if host is not None and host.handle is not None:
                    self._nodes[node] = host.handle
            for lan in plan.lans:
                switch = self.net.nameToNode.get(lan_namespace_name(plan.run_id, lan.position))
                if switch is not None and switch.handle is not None:
                    self._bridges[lan.index] = switch.handle
        missing = sorted(set(names) - set(self._nodes)) + sorted(lan.name for lan in plan.lans if lan.index not in self._bridges)
        if missing:
            raise BuildError(f"Mininet did not start nodes for {', '.join(missing)}")

    def _configure(self, plan: NetworkPlan) -> None:
        super()._configure(plan)
        # Mininet's own view (its CLI, `h.IP()`) learns the addresses the plan gave
        for veth in plan.veths:
            for port in (veth.a, veth.b):
                intf = self._nodes[port.node].host.nameToIntf.get(port.ifname)
                first = next((a for a in port.addresses if a.version == 4), None)
                if intf is not None and first is not None:
                    intf.ip, intf.prefixLen = str(first.ip), first.network.prefixlen

    def close(self) -> None:
        """Netlink handles closed, then every host's shell stopped and waited for (a
        stuck one is stopped by the run's record: SIGTERM, then SIGKILL)."""
        super().close()
        if self.net is None:
            return
        stop_shells(self.net.hosts + self.net.switches, SHELL_EXIT_TIMEOUT)
        self.net = None
