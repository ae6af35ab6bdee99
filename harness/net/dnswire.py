"""DNS on the wire, for endpoints given by name (pure: no sockets, no processes).

The harness resolves an endpoint's name the way wg(8) does when it configures a
peer, but through the scenario's own DNS server, never the host's resolver: one
UDP query built here, sent from inside the node's namespace (harness/net/dns.py),
and the answer parsed here. scapy's DNS layer does the encoding.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Iterable, Union

from harness.errors import HarnessError

Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
QTYPES = {"A": 1, "AAAA": 28}


class DnsError(HarnessError):
    """A name could not be resolved (no answer, an error code, or a malformed reply)."""


@dataclass(frozen=True)
class Answer:
    """What one query got back."""

    rcode: int
    addresses: tuple[Address, ...]
    ttl: int | None = None  # the smallest TTL among the records used

    @property
    def status(self) -> str:
        return RCODES.get(self.rcode, f"rcode {self.rcode}")


def load() -> None:
    """Import scapy's DNS layer now. The first import takes ~1 s on metal and tens of
    seconds in an emulated VM: do it before anything waits on a deadline."""
    import scapy.layers.dns  # noqa: F401


def build_query(name: str, qtype: str, query_id: int) -> bytes:
    """A recursive query for one record type ('A' or 'AAAA') of `name`."""
    from scapy.layers.dns import DNS, DNSQR

    if qtype not in QTYPES:
        raise ValueError(f"unsupported query type {qtype!r}")
    return bytes(DNS(id=query_id, rd=1, qd=DNSQR(qname=name, qtype=qtype)))


def parse_response(data: bytes, name: str, qtype: str, query_id: int) -> Answer:
    """The addresses of type `qtype` for `name` in a reply to our query `query_id`.
    Raises DnsError for anything that is not a reply to that query (the caller
    waits for the next datagram or retries)."""
    from scapy.layers.dns import DNS

    try:
        reply = DNS(data)
    except Exception as exc:  # scapy raises various errors on truncated input
        raise DnsError(f"malformed DNS reply: {exc}") from None
    if reply.id != query_id or not reply.qr:
        raise DnsError(f"not a reply to query {query_id}")
    wanted = QTYPES[qtype]
    # follow CNAMEs inside the answer section: records for the name they point to count
    names = {name.rstrip(".").lower()}
    addresses: list[Address] = []
    ttls: list[int] = []
    records = list(reply.an or [])
    for _ in range(8):  # bounded: a CNAME loop must not hang us
        grew = False
        for record in records:
            owner = _text(record.rrname).rstrip(".").lower()
            if owner in names and record.type == 5:  # CNAME
                target = _text(record.rdata).rstrip(".").lower()
                if target not in names:
                    names.add(target)
                    grew = True
        if not grew:
            break
    for record in records:
        owner = _text(record.rrname).rstrip(".").lower()
        if owner in names and record.type == wanted:
            try:
                addresses.append(ipaddress.ip_address(_text(record.rdata)))
            except ValueError:
                raise DnsError(f"malformed {qtype} record for {name}: {record.rdata!r}") from None
            ttls.append(int(record.ttl))
    return Answer(int(reply.rcode), tuple(addresses), min(ttls) if ttls else None)


def _text(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def hosts_file(records: dict[str, Iterable[Address]]) -> str:
    """The records in hosts(5) format, as dnsmasq's --addn-hosts reads them."""
    lines = ["# written by wgharness: DNS records of this scenario (dnsmasq re-reads it on SIGHUP)"]
    for name in sorted(records):
        for address in records[name]:
            lines.append(f"{address} {name}")
    return "\n".join(lines) + "\n"
