"""Timeline actions: change the network while it runs (links, roaming, NAT rebinding,
restarts, keys, endpoints)."""

from __future__ import annotations

from typing import Literal, Union

from pydantic import Field

from harness.scenario.conditions import Impairment, impairment_problems, uses_netem
from harness.scenario.fields import IpInterface, Label, NodeName, Strict
from harness.scenario.steps.checking import StepCheck, StepPlanCheck
from harness.scenario.steps.registry import step


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


def _check_link(args: LinkArgs, c: StepCheck) -> None:
    c.need_link("name", args.name)
    for field, message in impairment_problems(args):
        c.problem(message, field)
    if args.up is None and args.empty and not args.towards and not args.clear:
        c.problem("this step changes nothing: give `up:`, conditions (delay, loss, ...), `towards:` or `clear: true`")


def _link_needs(args: LinkArgs) -> set[str]:
    return {"netem"} if uses_netem(args) else set()


def _check_roam(args: RoamArgs, c: StepCheck) -> None:
    if not c.need_node("node", args.node):
        return
    lan = c.lan_of(args.node)
    if lan is not None:
        c.problem(f"'{args.node}' is on LAN '{lan}': a LAN member cannot roam (give the roaming node links of its own)", "node")
        return
    if args.via is not None:
        index = c.need_link("via", args.via)
        if index is not None and args.node not in c.spec.links[index].ends:
            c.problem(f"'{args.via}' is not one of {args.node}'s links", "via")
    if args.via is None and not args.renumber:
        c.problem("say how the node roams: `via: <another link>` and/or `renumber: true`")
    if args.renumber is not True and args.renumber is not False and args.renumber.version != 4:
        c.problem("renumbering gives a new IPv4 address: write one such as 198.18.1.200/24", "renumber")


def _check_nat_rebind(args: NatRebindArgs, c: StepCheck) -> None:
    if c.need_node("node", args.node) and c.spec.nodes[args.node].nat is None:
        c.problem(f"'{args.node}' is not a NAT router", "node")


def _check_restart(args: RestartArgs, c: StepCheck) -> None:
    if args.key == "new":
        c.round.rekeyed.add(args.node)
    c.need_node("node", args.node, wireguard=True)


def _check_rotate_key(args: RotateKeyArgs, c: StepCheck) -> None:
    c.round.rekeyed.add(args.node)
    c.need_node("node", args.node, wireguard=True)


def _check_endpoint(args: EndpointArgs, c: StepCheck) -> None:
    if c.need_node("node", args.node, wireguard=True) and c.need_node("peer", args.peer, wireguard=True):
        c.need_peers(args.node, args.peer, "peer")


def _check_endpoint_plan(args: EndpointArgs, c: StepPlanCheck) -> None:
    c.resolve_endpoint(args.to, args.node, c.path + ("to",))


step("link", LinkArgs, check=_check_link, needs=_link_needs)
step("roam", RoamArgs, check=_check_roam)
step("nat_rebind", NatRebindArgs, check=_check_nat_rebind)
step("restart", RestartArgs, check=_check_restart)
step("rotate_key", RotateKeyArgs, check=_check_rotate_key)
step("endpoint", EndpointArgs, check=_check_endpoint, check_plan=_check_endpoint_plan)
