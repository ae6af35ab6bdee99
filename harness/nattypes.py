"""The NAT types a node can be, by RFC 4787 behaviour (pure).

One table for everything that names or tells them apart: the file format's `type:`,
the nftables rendering (harness/net/nat.py asks a type for its mapping and filtering,
never for its name), and the probe that classifies a NAT from outside
(harness/steps/natprobe.py). A new type is a row here plus its rendering there.
"""

from __future__ import annotations

from dataclasses import dataclass

# RFC 4787 §4.1 (mapping) and §5 (filtering) behaviours
ENDPOINT_INDEPENDENT = "endpoint-independent"
ADDRESS_DEPENDENT = "address-dependent"
ADDRESS_AND_PORT_DEPENDENT = "address-and-port-dependent"
BEHAVIOURS = (ENDPOINT_INDEPENDENT, ADDRESS_DEPENDENT, ADDRESS_AND_PORT_DEPENDENT)


@dataclass(frozen=True)
class NatType:
    name: str
    mapping: str
    filtering: str
    needs_nftables: bool  # iptables' masquerade can only give the conntrack-filtered types

    @property
    def description(self) -> str:
        if self.mapping == self.filtering:
            return f"{self.mapping} mapping and filtering"
        return f"{self.mapping} mapping, {self.filtering} filtering"

    @property
    def cone(self) -> bool:
        """Reachable through a mapping by hosts the inside never sent to (the harness keeps a map of mappings)."""
        return self.mapping == ENDPOINT_INDEPENDENT and self.filtering != ADDRESS_AND_PORT_DEPENDENT

    @property
    def new_port_per_destination(self) -> bool:
        return self.mapping == ADDRESS_AND_PORT_DEPENDENT


NAT_TYPES: dict[str, NatType] = {
    t.name: t
    for t in (
        NatType("port-restricted", ENDPOINT_INDEPENDENT, ADDRESS_AND_PORT_DEPENDENT, needs_nftables=False),
        NatType("restricted-cone", ENDPOINT_INDEPENDENT, ADDRESS_DEPENDENT, needs_nftables=True),
        NatType("full-cone", ENDPOINT_INDEPENDENT, ENDPOINT_INDEPENDENT, needs_nftables=True),
        NatType("symmetric", ADDRESS_AND_PORT_DEPENDENT, ADDRESS_AND_PORT_DEPENDENT, needs_nftables=False),
    )
}
DEFAULT_NAT_TYPE = "port-restricted"


def by_behaviour(mapping: str, filtering: str) -> NatType | None:
    """The type with this mapping and filtering, if the harness has one."""
    return next((t for t in NAT_TYPES.values() if (t.mapping, t.filtering) == (mapping, filtering)), None)
