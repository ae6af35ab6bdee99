"""What the scenario format accepts as a DNS name (pure syntax, shared by the model,
the planner and the DNS code).

Lowercase labels with at least one dot: node names have none, so "server" is a node
and "server.wgh.test" a DNS name. No look-ahead in the pattern (pydantic's regex
engine has none), so the 253-character limit is a separate check.
"""

from __future__ import annotations

import re

DNS_NAME_PATTERN = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$"
DNS_NAME_MAX = 253
_DNS_NAME = re.compile(DNS_NAME_PATTERN)


def is_dns_name(text: str) -> bool:
    return len(text) <= DNS_NAME_MAX and bool(_DNS_NAME.match(text))
