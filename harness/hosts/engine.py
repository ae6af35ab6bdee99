"""An engine whose network spans several hosts: the plan is placed over them
(harness.plan.placement), each host's worker builds its share with the netns engine
(harness.plan.share: its nodes, and VXLAN tunnel ends for the links to the other
hosts), and every request about a node goes to that node's host. Links that cross
hosts are changed on both hosts; every host knows which links are down (routes avoid
them wherever they are)."""

from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TypeVar

from harness import caps
from harness.errors import BuildError, MissingCapability
from harness.hosts.inventory import Inventory
from harness.hosts.ssh import HostConnection, greeted
from harness.plan.network import NetworkPlan
from harness.plan.placement import Placement, PlacementError, place
from harness.hosts.underlay import echo_round_trips
from harness.plan.share import Spread, UnderlayLatency, compensation_notes, share_of
from harness.remote.client import RemoteDeviceSite, RemoteEngine

T = TypeVar("T")


class MultiHostEngine:
    name = "netns@hosts"
    elsewhere = True  # each host's worker checks its limits, and has the places and sites of its nodes

    def __init__(
        self,
        inventory: Inventory,
        *,
        hosts: Sequence[str] | None = None,
        fixed: Mapping[str, str] | None = None,
        engine: str = "netns",
        say: Callable[[str], None] | None = None,
    ):
        """`fixed`: nodes placed by hand; `engine`: what each worker builds with (the
        netns engine: a share of several hosts is its); `say`: where each node went."""
        self.inventory = inventory
        self.engine = engine
        self.say = say
        self.host_names = list(hosts or inventory.names)
        self.fixed = dict(fixed or {})
        self.placement: Placement | None = None
        self.plan: NetworkPlan | None = None
        self._connections: dict[str, HostConnection] = {}
        self._engines: dict[str, RemoteEngine] = {}
        self.latencies: dict[frozenset[str], UnderlayLatency] = {}  # between hosts a link crosses
        self.notes: list[str] = []  # those latencies, and how the links' delays take them in
        self._needs: tuple[set[str], str, Any] | None = None  # what the case needs of every host (missing)

    # --- build ----------------------------------------------------------------------

    def missing(self, needs: set[str], backend: str, userspace: Any) -> list[str]:
        """The controller needs only root here (its run record); what the hosts need is
        asked of each, once connected, before anything is built on any (build)."""
        self._needs = (set(needs), backend, userspace)
        return caps.missing_for(set(needs) & {"root"}, backend, userspace)

    def build(self, plan: NetworkPlan, registry: Any) -> None:
        if self.engine != "netns":
            raise BuildError(f"a network over several hosts is built by the netns engine on each, not {self.engine}")
        self.plan = plan
        missing = [h for h in self.host_names if self.inventory.hosts[h].underlay is None]
        if missing:
            raise BuildError(f"hosts {', '.join(missing)} have no `underlay:` address for the links between hosts (inventory {self.inventory.file})")
        try:  # the caller's hand placement over the file's `placement:`
            self.placement = place(plan, self.host_names, {**plan.placement, **self.fixed})
        except PlacementError as exc:
            raise BuildError(str(exc)) from None
        if self.say is not None:
            crossing = len(self.placement.crossing(plan)) + len(self.placement.crossing_lan_ports(plan))
            for line in self.placement.describe():
                self.say(f"placed {line}")
            self.say(f"{crossing} link{'s' if crossing != 1 else ''} between hosts (VXLAN)")
        used = [h for h in self.host_names if self.placement.nodes_on(h)]
        underlays = {h: self.inventory.hosts[h].underlay for h in self.host_names}

        # the control sockets' directory is in the run's record: a killed controller's is reaped
        control_dir = Path(tempfile.mkdtemp(prefix=f"wgh-{plan.run_id}-ssh-"))
        if registry is not None:
            registry.add_dir(str(control_dir))

        # every process is started from this thread (their death signal follows the
        # thread that starts them); the waits, greetings and builds go side by side
        for host in used:
            self._connections[host] = HostConnection(self.inventory.hosts[host], control_dir)
            self._connections[host].start()
        self._each(used, lambda host: self._connections[host].wait_ready())
        workers = {host: self._connections[host].start_worker() for host in used}
        for host, worker in workers.items():  # closed with the engine, greeted or not
            self._engines[host] = RemoteEngine(worker, "netns")
        self._each(used, lambda host: greeted(workers[host]))
        if self._needs is not None:  # a host that lacks something: the case is skipped, naming it
            lacking = [reason for reasons in self._each(used, lambda host: self._engines[host].missing(*self._needs)) for reason in reasons]
            if lacking:
                raise MissingCapability("; ".join(lacking))
        self.latencies = self._measure_underlay(underlays)
        self.notes = [latency.describe() for latency in self.latencies.values()]
        self.notes += compensation_notes(plan, self.placement, self.latencies)
        for note in self.notes if self.say is not None else ():
            self.say(note)
        self._each(used, lambda host: self._engines[host].build(plan, registry, share_of(plan, self.placement, host, underlays, self.latencies)))

    def _measure_underlay(self, underlays: Mapping[str, str]) -> dict[frozenset[str], UnderlayLatency]:
        """The round trip between every two hosts that a link crosses, side by side,
        each from the first host of the pair."""
        assert self.plan is not None and self.placement is not None
        host_of = self.placement.host_of
        lans = {lan.index: lan for lan in self.plan.lans}
        ends = [(self.plan.veths[i].a.node, self.plan.veths[i].b.node) for i in self.placement.crossing(self.plan)]
        ends += [(lans[i].members[0].node, lans[i].members[k].node) for i, k in self.placement.crossing_lan_ports(self.plan)]
        pairs = sorted({tuple(sorted((host_of[a], host_of[b]))) for a, b in ends})

        def measure(pair: tuple[str, str]) -> UnderlayLatency:
            near, far = pair
            sent, rtts = self._engines[near].on_machine(echo_round_trips, underlays[far])
            return UnderlayLatency.of(pair, sent, rtts)

        with ThreadPoolExecutor(max(1, len(pairs))) as pool:
            return {frozenset(pair): latency for pair, latency in zip(pairs, pool.map(measure, pairs))}

    def _each(self, hosts: Sequence[str], action: Callable[[str], T]) -> list[T]:
        """`action` for every host at once; the first failure (in host order) is raised."""
        with ThreadPoolExecutor(max(1, len(hosts))) as pool:
            futures = [pool.submit(action, host) for host in hosts]
        return [future.result() for future in futures]

    # --- nodes, places, devices -----------------------------------------------------

    def _host(self, node: str) -> RemoteEngine:
        assert self.placement is not None
        return self._engines[self.placement.host_of[node]]

    def node(self, name: str) -> Any:
        return self._host(name).node(name)

    def place(self, node: str) -> Any:
        return self._host(node).place(node)

    def device_site(self, node: str) -> RemoteDeviceSite:
        return self._host(node).device_site(node)

    def spread(self) -> Spread | None:
        if self.placement is None:
            return None
        return Spread(dict(self.placement.host_of), tuple(self.latencies.values()), tuple(self.notes))

    # --- the timeline ---------------------------------------------------------------

    @property
    def down_links(self) -> set[int]:
        return set().union(*(engine.down_links for engine in self._engines.values()))

    def port_addresses(self, port: Any) -> tuple:
        return self._host(port.node).port_addresses(port)

    def set_link(self, index: int, *, up: bool | None = None, conditions: Any = None, skip: str | None = None) -> None:
        # every host (but `skip`, which has done it): the ends' hosts change them, and
        # all learn it is down or up (their routes avoid it)
        hosts = [h for h in self._engines if h != skip]
        self._each(hosts, lambda h: self._engines[h].set_link(index, up=up, conditions=conditions))

    def conditions(self, index: int, sender: str) -> Any:
        return self._host(sender).conditions(index, sender)

    def detach(self, node: str, link_index: int) -> None:
        assert self.placement is not None
        self._host(node).detach(node, link_index)  # its addresses go, the link goes down there
        self.set_link(link_index, up=False, skip=self.placement.host_of[node])  # and everywhere else

    def attach(self, node: str, link_index: int) -> None:
        assert self.placement is not None
        self._host(node).attach(node, link_index)
        self.set_link(link_index, up=True, skip=self.placement.host_of[node])

    def reroute(self) -> None:
        self._each(list(self._engines), lambda h: self._engines[h].reroute())

    def renumber(self, node: str, to: Any = None) -> str:
        return self._host(node).renumber(node, to)

    def flush_nat(self, node: str) -> int:
        return self._host(node).flush_nat(node)

    def nat_mappings(self, node: str) -> list:
        return self._host(node).nat_mappings(node)

    def close(self) -> list[str]:
        """Every host's worker tears down its share; then the connections go."""
        leftovers: list[str] = []
        for host, result in zip(self._engines, self._each(list(self._engines), lambda h: self._engines[h].close())):
            leftovers += [f"host {host}: {item}" for item in result or []]
        for connection in self._connections.values():
            connection.close()
        self._engines.clear()
        self._connections.clear()
        return leftovers


def engine_over_hosts(inventory: Inventory, case_id: str, say: Callable[[str], None] | None = None) -> Callable[[str], MultiHostEngine]:
    """The engine factory of a case spread over the inventory's hosts; where each node
    went is said (default: printed to stderr) once it is placed."""
    import sys

    def tell(line: str) -> None:
        print(f"wgh run: {case_id}: {line}", file=sys.stderr)

    def make(name: str) -> MultiHostEngine:
        return MultiHostEngine(inventory, engine=name, say=say or tell)

    return make
