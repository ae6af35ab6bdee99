"""A node's firewall rules as an nftables table in its namespace."""

from __future__ import annotations

from harness.plan.network import FirewallPlan


def apply(namespace: str, rules: tuple[FirewallPlan, ...]) -> None:
    raise NotImplementedError  # filled in by the firewall work (issue 4)
