"""The building blocks of the scenario model: value types (durations, rates, names,
addresses), the strict base model, and the fields every check step shares.

Below both the file model (`model.py`) and the step kinds (`steps/`), which both use them.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from harness.dnsnames import DNS_NAME_MAX, DNS_NAME_PATTERN
from harness.sysctls import SYSCTL_NAME_PATTERN, SYSCTL_VALUE_PATTERN, sysctl_name_problem, sysctl_value_problem
from harness.units import MAX_DURATION, parse_duration, parse_percent, parse_rate

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,14}$"


def _quantity(parse: Any, number: dict[str, Any], pattern: str, description: str) -> Any:
    """A number a file may also write with its unit ('20ms', '1%'), parsed by `parse`."""
    text = {"type": "string", "pattern": pattern}
    return Annotated[float, BeforeValidator(parse), WithJsonSchema({"anyOf": [number, text], "description": description})]


Duration = _quantity(
    parse_duration,
    {"type": "number", "minimum": 0, "maximum": MAX_DURATION},
    r"^\d+(\.\d+)?\s*(us|µs|ms|s|m|min|h)?$",
    "A duration: '20ms', '3s', '1m'; a bare number means seconds; at most 24h.",
)
Percent = _quantity(
    parse_percent,
    {"type": "number", "minimum": 0, "maximum": 100},
    r"^\d+(\.\d+)?\s*%$",
    "A percentage: '1%', '0.5%'; a bare number means percent.",
)
Rate = _quantity(
    parse_rate,
    {"type": "number", "exclusiveMinimum": 0},
    r"^\d+(\.\d+)?\s*([kmgKMG]?(bit|bps))?$",
    "A rate as tc writes it: '100mbit', '1gbit', '500kbit' (bits), '10mbps' (bytes); a bare number is bit/s.",
)


def _interface(value: Any) -> Any:
    """'198.18.1.2/24' or a bare address (host prefix implied) → ip_interface."""
    if isinstance(value, str):
        try:
            return ipaddress.ip_interface(value)
        except ValueError:
            raise ValueError(f"not an IP address with optional /prefix: {value!r}") from None
    return value


IpInterface = Annotated[
    Union[ipaddress.IPv4Interface, ipaddress.IPv6Interface],
    BeforeValidator(_interface),
    WithJsonSchema({"type": "string", "description": "An IP address with optional /prefix."}),
]


def _usable_host_address(value: Any) -> Any:
    """An address a node can own: not the unspecified, a multicast, a loopback or a
    reserved address, nor the network or broadcast address of its own subnet."""
    address, network = value.ip, value.network
    if address.is_unspecified:
        raise ValueError(f"{value} is the unspecified address: a node cannot have it")
    if address.is_multicast:
        raise ValueError(f"{value} is a multicast address: a node cannot have it as its own")
    if address.is_loopback:
        raise ValueError(f"{value} is a loopback address: it cannot be used on a link or a tunnel")
    if address.version == 4 and (address.is_reserved or address == ipaddress.IPv4Address("255.255.255.255")):
        raise ValueError(f"{value} is a reserved (240.0.0.0/4) or the broadcast address")
    if network.prefixlen == 0:
        raise ValueError(f"{value}: a /0 prefix would make every address this link's or tunnel's own; give the subnet, e.g. /24")
    if address.version == 4 and network.prefixlen <= 30:
        if address == network.network_address:
            raise ValueError(f"{value} is the network address of {network}: use a host address such as {network.network_address + 1}")
        if address == network.broadcast_address:
            raise ValueError(f"{value} is the broadcast address of {network}: use a host address such as {network.broadcast_address - 1}")
    return value


HostInterface = Annotated[
    Union[ipaddress.IPv4Interface, ipaddress.IPv6Interface],
    BeforeValidator(_interface),
    AfterValidator(_usable_host_address),
    WithJsonSchema({"type": "string", "description": "A host's IP address with optional /prefix (not a network, broadcast, multicast or loopback address)."}),
]
Port = Annotated[int, Field(ge=1, le=65535)]


def _subnet(value: Any) -> Any:
    """'10.1.0.0/22' → ip_network; host bits set are a mistake, said as one."""
    if isinstance(value, str):
        try:
            return ipaddress.ip_network(value)
        except ValueError:
            try:
                near = ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise ValueError(f"not a subnet (address/prefix): {value!r}") from None
            raise ValueError(f"{value} has host bits set: the subnet is {near}") from None
    return value


Subnet = Annotated[
    Union[ipaddress.IPv4Network, ipaddress.IPv6Network],
    BeforeValidator(_subnet),
    WithJsonSchema({"type": "string", "description": "A subnet: address/prefix with no host bits set, e.g. 10.1.0.0/22."}),
]
# names a file gives to links, probes, captures, background runs and measurements: they
# end up in file names (pcaps, iperf3 reports), metric keys and test ids, so no '/',
# no spaces, no control characters
LABEL_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"
Label = Annotated[str, Field(pattern=LABEL_PATTERN, description="A name: letters, digits, '_', '.', '-' (at most 64).")]


def _printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError(f"{value!r} contains control characters (newlines, escapes): write plain text on one line")
    return value


Text = Annotated[str, AfterValidator(_printable), Field(max_length=500)]
NodeName = Annotated[str, Field(pattern=NAME_PATTERN)]
# a host of a `--hosts` inventory: part of names and of a prefix on that host
HOST_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,30}$"
HostName = Annotated[str, Field(pattern=HOST_NAME_PATTERN, description="A host of the run's inventory (`wgh run --hosts`).")]
DnsName = Annotated[str, Field(pattern=DNS_NAME_PATTERN, max_length=DNS_NAME_MAX, description="A DNS name: lowercase labels with at least one dot, e.g. server.wgh.test.")]
Expectation = Literal["pass", "fail"]


def _allowed(check: Any) -> Any:
    def validate(value: Any) -> Any:
        problem = check(value)
        if problem:
            raise ValueError(problem)
        return value

    return validate


SysctlName = Annotated[
    str,
    AfterValidator(_allowed(sysctl_name_problem)),
    WithJsonSchema({"type": "string", "pattern": SYSCTL_NAME_PATTERN}),
]
SysctlValue = Annotated[
    Union[int, str],
    AfterValidator(_allowed(sysctl_value_problem)),
    WithJsonSchema({"anyOf": [{"type": "integer"}, {"type": "string", "pattern": SYSCTL_VALUE_PATTERN}]}),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CheckArgs(Strict):
    expect: Expectation = Field("pass", description="'fail' makes a failing check the expected outcome.")
    cause: Text | None = Field(
        None,
        description="With expect: fail, text the diagnosis must contain (case-insensitive), "
        "so the check fails for the reason the scenario is about and no other.",
    )



# a routing table by number, as wg-quick's Table = 1234 (not 0, nor local's 255 or main's 254: say main)
def _table_setting(value: Any) -> Any:
    if value in ("auto", "main", "off"):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value < 2**32:
        if value in (253, 254, 255):
            kernel = {253: "default", 254: "main", 255: "local"}[value]
            raise ValueError(f"table {value} is the kernel's {kernel} table: say main, or use another number")
        return value
    raise ValueError(f"expected auto, main, off or a routing table number (1 to 4294967295), got {value!r}")


# wg-quick's Table: auto, main, off, or a table by number (not 0, nor the kernel's 253-255)
TableSetting = Annotated[
    Union[str, int],
    BeforeValidator(_table_setting),
    WithJsonSchema({"anyOf": [{"enum": ["auto", "main", "off"]}, {"type": "integer", "minimum": 1, "maximum": 2**32 - 1}]}),
]
KEY_PATTERN = r"^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$"
CONFIG_PATH_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,200}$"
WireGuardKeyText = Annotated[str, Field(pattern=KEY_PATTERN, description="A WireGuard public key in base64 (44 characters).")]
ConfigPath = Annotated[
    str,
    Field(
        pattern=CONFIG_PATH_PATTERN,
        description="A config file's path relative to the scenario's directory (no leading '/').",
    ),
]
