"""`address:port` text, as wg(8) writes endpoints: '198.18.1.2:51820', '[fd00::2]:51820'.

Every place that reads or writes such text goes through here, so IPv6 brackets and
port checks are handled once (pure; no I/O)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Union

Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]


def split_host_port(text: str) -> tuple[str, str | None]:
    """'host:port' → ('host', 'port'); '[v6]:port' → ('v6', 'port'); a host alone (a
    node or DNS name, an IPv6 address without brackets) → (text, None). The port is
    not checked: callers that accept names decide what a missing port means."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, port
    return text, None


def valid_port(text: str | None) -> int | None:
    """The port number in `text` if it is one (1-65535), else None."""
    if text is None or not text.isdigit() or not 1 <= int(text) <= 65535:
        return None
    return int(text)


@dataclass(frozen=True)
class Endpoint:
    """An IP address and a UDP port."""

    address: Address
    port: int

    @classmethod
    def parse(cls, text: str) -> "Endpoint":
        """'127.0.0.1:2' or '[::1]:2'; ValueError with a readable message otherwise."""
        host, port_text = split_host_port(text)
        if port_text is None and not text.startswith("[") and text.count(":") > 1:
            raise ValueError(f"{text!r}: write an IPv6 endpoint as '[address]:port'")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"{text!r} is not 'address:port' or '[v6 address]:port'") from None
        port = valid_port(port_text)
        if port is None:
            raise ValueError(f"{text!r}: the port must be 1-65535")
        return cls(address, port)

    @property
    def host(self) -> str:
        return str(self.address)

    def __str__(self) -> str:
        return format_endpoint(self.address, self.port)


def format_endpoint(host: Union[Address, str], port: int) -> str:
    """wg(8)'s form: IPv6 addresses in brackets."""
    text = str(host)
    return f"[{text}]:{port}" if ":" in text else f"{text}:{port}"


def endpoint_host(text: str) -> str:
    """The address part of an endpoint wg(8) printed, without brackets."""
    return Endpoint.parse(text).host
