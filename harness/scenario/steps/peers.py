"""Peer steps: one side forgets a peer, goes back to an old key, or reports how old its
latest handshake is."""

from __future__ import annotations

from pydantic import Field

from harness.scenario.fields import CheckArgs, Duration, NodeName, Strict
from harness.scenario.steps.checking import StepCheck
from harness.scenario.steps.registry import step


class RemovePeerArgs(Strict):
    """One side forgets a peer (as when its key is revoked); the other side is not told."""

    node: NodeName = Field(description="The node whose WireGuard interface drops the peer.")
    peer: NodeName = Field(description="The peer it drops.")


class ReuseOldKeyArgs(Strict):
    """The node goes back to the key pair it had before its last rotate_key (or restart with a new key);
    its peers are not told, so it presents a key they no longer accept."""

    node: NodeName


class HandshakeAgeArgs(CheckArgs):
    """One side's view only, as a monitoring exporter sees it: the latest handshake with a peer is recent."""

    node: NodeName = Field(description="Whose view of the tunnel.")
    peer: NodeName
    max: Duration = Field(description="The latest handshake must be at most this old.")


def _check_pair(args: RemovePeerArgs | HandshakeAgeArgs, c: StepCheck) -> None:
    c.need_wireguard(args.node, args.peer)


def _check_reuse_old_key(args: ReuseOldKeyArgs, c: StepCheck) -> None:
    if c.need_wireguard(args.node) and args.node not in c.round.rekeyed:
        c.problem(f"'{args.node}' has no old key: rotate it first (`- rotate_key: {{node: {args.node}}}`)", "node")


step("remove_peer", RemovePeerArgs, check=_check_pair)
step("reuse_old_key", ReuseOldKeyArgs, check=_check_reuse_old_key)
step("handshake_age", HandshakeAgeArgs, check=_check_pair)
