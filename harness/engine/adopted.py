"""An engine over a Mininet network the harness did not build: a user's own, from any
`Topo`, started by the user's code (harness.mininet.add_wireguard) or by a scenario
file's `topology:` (then the harness owns it, see harness.engine.topology).

It builds no underlay: it opens a handle on every host (its shell's network namespace),
reads what each one has (harness.engine.observe) and plans WireGuard on that
(harness.plan.observed). Everything after that (the WireGuard fleet, the steps, the
diagnosis, NAT mappings read from conntrack) is the same code as on the harness's own
networks. At close it removes what the harness added to the user's hosts (WireGuard
interfaces with their routes, wg-quick's policy rules) and leaves the rest as it was.
"""

from __future__ import annotations

from typing import Any, Mapping

from pyroute2.netlink.exceptions import NetlinkError

from harness.backends import AUTO, UserspaceCommand
from harness.cleanup import RunRegistry
from harness.engine.observe import find_node
from harness.engine.mininet import open_node
from harness.engine.underlay import NamespaceNode, UnderlayEngine
from harness.errors import BuildError
from harness.net import policy
from harness.plan.network import NetworkPlan
from harness.plan.observed import ObservedPlan, plan_over
from harness.scenario.model import WireGuardSpec


class AdoptedMininet(UnderlayEngine):
    """The hosts of a running `Mininet` object as a harness network's nodes."""

    name = "mininet"

    def __init__(
        self,
        net: Any,
        wireguard: Mapping[str, WireGuardSpec],
        backend: str = AUTO,
        userspace: UserspaceCommand | None = None,
    ):
        super().__init__()
        self.net = net
        self.wireguard = dict(wireguard)
        self.backend = backend
        self.userspace = userspace

    def build(self, plan: NetworkPlan, registry: RunRegistry) -> ObservedPlan:  # type: ignore[override]
        """Handles on the hosts and the plan of WireGuard over what they have."""
        try:
            for host in self.net.hosts:
                self._nodes[host.name] = open_node(host)
            found = {name: find_node(node) for name, node in self._nodes.items()}
        except BuildError:
            raise
        except Exception as exc:
            raise BuildError(f"reading the Mininet network failed: {type(exc).__name__}: {exc}") from exc
        self.plan = plan_over(found, self.wireguard, plan.run_id, self.backend, self.userspace)
        return self.plan

    def close(self) -> None:
        """What the harness added to the hosts goes (a userspace device went with its
        daemon, a kernel one is deleted here, its routes with it); then the handles."""
        if self.plan is not None:
            for wg in self.plan.wireguard.values():
                node = self._nodes.get(wg.node)
                if node is not None:
                    _remove_wireguard(node, wg)
        super().close()

    # the underlay is the user's: the timeline's link, roaming and renumbering steps
    # would change what the harness does not own
    def _not_ours(self, *args: Any, **kwargs: Any) -> Any:
        raise BuildError("this Mininet network was built outside the harness: change its links with Mininet's own API (net.configLinkStatus, link.intf1.config)")

    set_link = detach = attach = reroute = renumber = _not_ours


def _remove_wireguard(node: NamespaceNode, wg: Any) -> None:
    ipr = node.netlink
    for index in ipr.link_lookup(ifname=wg.ifname):
        try:
            ipr.link("del", index=index)
        except NetlinkError:  # gone already (a userspace device's tun goes with its daemon)
            pass
    for rule in policy.policy_rules(wg):
        try:
            ipr.rule("del", **rule)
        except NetlinkError:
            pass
