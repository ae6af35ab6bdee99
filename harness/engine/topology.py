"""The engine of a scenario file with `topology: {mininet: "file.py:Class"}`: Mininet
builds the user's Topo (their node classes, addresses and links; switches as `Bridge`s
in their own namespaces unless the Topo names a class), then everything goes as on a
Mininet network of the user's own (harness.engine.adopted): WireGuard planned on what
the hosts have, the same steps and diagnosis. The harness owns this network: every
node's shell dies with the harness and is in the run's record, and close stops them.
"""

from __future__ import annotations

from typing import Any, Mapping

from harness.backends import AUTO, UserspaceCommand
from harness.cleanup import RunRegistry
from harness.engine.adopted import AdoptedMininet
from harness.engine.mininet import SHELL_EXIT_TIMEOUT, SafeMininet, dying, stop_shells
from harness.errors import BuildError
from harness.net import conntrack
from harness.plan.network import NetworkPlan
from harness.plan.observed import ObservedPlan
from harness.scenario.model import WireGuardSpec


class RecordedMininet(SafeMininet):
    """A SafeMininet whose every node, of whatever class, is `dying` and recorded."""

    def __init__(self, *args: Any, registry: RunRegistry, **kwargs: Any):
        self.registry = registry
        super().__init__(*args, **kwargs)

    def addHost(self, name: str, cls: Any = None, **params: Any) -> Any:  # noqa: N802 (Mininet's name)
        return super().addHost(name, cls=dying(cls or self.host, self.registry), **params)

    def addSwitch(self, name: str, cls: Any = None, **params: Any) -> Any:  # noqa: N802 (Mininet's name)
        return super().addSwitch(name, cls=dying(cls or self.switch, self.registry), **params)


class TopologyEngine(AdoptedMininet):
    """Builds `topo` with Mininet, then WireGuard on it (see the module doc)."""

    def __init__(self, topo: Any, wireguard: Mapping[str, WireGuardSpec], backend: str = AUTO, userspace: UserspaceCommand | None = None):
        super().__init__(None, wireguard, backend, userspace)
        self.topo = topo

    def build(self, plan: NetworkPlan, registry: RunRegistry) -> ObservedPlan:  # type: ignore[override]
        from mininet.node import Host

        from harness.mininet import Bridge

        # built in steps so that a failing build still leaves the nodes it started in our hands
        self.net = RecordedMininet(
            topo=self.topo, host=Host, switch=Bridge, controller=None, build=False, waitConnected=False, registry=registry
        )
        try:
            self.net.build()
            self.net.start()
        except Exception as exc:
            raise BuildError(f"Mininet could not build the topology: {type(exc).__name__}: {exc}") from exc
        observed = super().build(plan, registry)
        # this network is ours: its NATs record when each mapping was made, as the
        # harness's own do (a user's running network, adopted, is left as it is)
        for name, node in observed.nodes.items():
            if node.nat is not None:
                try:
                    conntrack.record_start_times(self._nodes[name])
                except OSError:  # no conntrack there after all: the diagnosis goes without start times
                    pass
        return observed

    def close(self) -> None:
        super().close()  # WireGuard off the hosts, handles closed
        if self.net is not None:
            stop_shells(self.net.hosts + self.net.switches, SHELL_EXIT_TIMEOUT)
            self.net = None
