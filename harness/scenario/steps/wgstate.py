"""WireGuard state: a peer's byte counters, the endpoint a node learned, a new listen port."""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from harness.endpoint import Endpoint
from harness.scenario.fields import CheckArgs, Label, NodeName, Port, Strict
from harness.scenario.steps.checking import StepCheck
from harness.scenario.steps.registry import step

NonNegativeBytes = Annotated[int, Field(ge=0)]


class ByteBounds(Strict):
    min: NonNegativeBytes | None = None
    max: NonNegativeBytes | None = None


ByteCount = Union[NonNegativeBytes, list[NonNegativeBytes], ByteBounds]


class TransferArgs(CheckArgs):
    """Check a peer's byte counters (`wg show <dev> transfer`), as netns.sh does after its pings."""

    node: NodeName = Field(description="Whose counters: this node's view of `peer`.")
    peer: NodeName
    rx: ByteCount | None = Field(None, description="Bytes received from the peer: exact, a list of allowed values, or {min, max}.")
    tx: ByteCount | None = Field(None, description="Bytes sent to the peer: exact, a list of allowed values, or {min, max}.")
    record: Label | None = Field(None, description="Name prefix for the recorded rx_bytes/tx_bytes.")


class LearnedEndpointArgs(CheckArgs):
    """Check the endpoint a node has for a peer now (`wg show <dev> endpoints`), e.g. after the peer roamed."""

    node: NodeName
    peer: NodeName
    is_: str = Field(alias="is", description="The expected endpoint: 'address:port' or '[v6]:port'.")


class ListenPortArgs(Strict):
    """Change a node's listen port while it runs; its peers learn the new source port from its next packet."""

    node: NodeName
    port: Port


def _check_transfer(args: TransferArgs, c: StepCheck) -> None:
    if not c.need_wireguard(args.node, args.peer, first_only=True):
        return
    if args.rx is None and args.tx is None:
        c.problem("check something: `rx:` and/or `tx:` (bytes: exact, a list, or {min, max})")
    for field in ("rx", "tx"):
        bounds = getattr(args, field)
        if getattr(bounds, "min", None) is not None and getattr(bounds, "max", None) is not None and bounds.min > bounds.max:
            c.problem(f"min {bounds.min} is above max {bounds.max}", field)
        elif bounds is not None and not isinstance(bounds, (int, list)) and bounds.min is None and bounds.max is None:
            c.problem("give `min:` and/or `max:`", field)
        elif isinstance(bounds, list) and not bounds:
            c.problem("an empty list allows no value", field)


def _check_learned_endpoint(args: LearnedEndpointArgs, c: StepCheck) -> None:
    if not c.need_wireguard(args.node, args.peer, first_only=True):
        return
    try:
        Endpoint.parse(args.is_)
    except ValueError as exc:
        c.problem(str(exc), "is")


def _check_listen_port(args: ListenPortArgs, c: StepCheck) -> None:
    c.need_wireguard(args.node, first_only=True)


step("transfer", TransferArgs, check=_check_transfer)
step("learned_endpoint", LearnedEndpointArgs, check=_check_learned_endpoint)
step("listen_port", ListenPortArgs, check=_check_listen_port)
