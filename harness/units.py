"""Parsing of the human units used in scenario files (pure functions)."""

from __future__ import annotations

import math
import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|µs|ms|s|m|min|h)?\s*$")
_DURATION_SCALE = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
MAX_DURATION = 86400.0  # one day: longer would overflow timers (setitimer, poll) and no scenario needs it
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def parse_duration(value: object) -> float:
    """'20ms' → 0.02, '3s' → 3.0, 2 → 2.0 (bare numbers are seconds); at most MAX_DURATION."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '500ms' or '3s', got {value!r}")
    seconds: float | None = None
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"a duration must be a finite number ≥ 0, got {value!r}")
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            seconds = float(match.group(1)) * _DURATION_SCALE[match.group(2) or "s"]
    if seconds is None:
        raise ValueError(f"expected a duration like '500ms' or '3s', got {value!r}")
    if seconds > MAX_DURATION:
        raise ValueError(f"a duration is at most {MAX_DURATION / 3600:g}h, got {value!r}")
    return seconds


def parse_percent(value: object) -> float:
    """'1%' → 1.0 (percent points); bare numbers are percent points too. Range 0..100."""
    if isinstance(value, bool):
        raise ValueError(f"expected a percentage like '1%', got {value!r}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"expected a percentage like '1%', got {value!r}")
        number = float(value)
    elif isinstance(value, str) and _PERCENT.match(value):
        number = float(_PERCENT.match(value).group(1))
    else:
        raise ValueError(f"expected a percentage like '1%', got {value!r}")
    if not 0.0 <= number <= 100.0:
        raise ValueError(f"percentage must be within 0%..100%, got {value!r}")
    return number


_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)?\s*$", re.IGNORECASE)
_RATE_SCALE = {"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "bps": 8, "kbps": 8e3, "mbps": 8e6, "gbps": 8e9}


MAX_RATE = 1e12  # 1 tbit/s: beyond anything a veth carries, well inside tc's 64-bit rates


def parse_rate(value: object) -> float:
    """'100mbit' → 1e8 bits/s (tc's units: kbit/mbit/gbit are bits, kbps/mbps are bytes);
    a bare number is bits per second; at most MAX_RATE."""
    if isinstance(value, bool):
        raise ValueError(f"expected a rate like '100mbit', got {value!r}")
    bits: float | None = None
    if isinstance(value, (int, float)) and math.isfinite(value) and value > 0:
        bits = float(value)
    elif isinstance(value, str):
        match = _RATE.match(value)
        if match and float(match.group(1)) > 0:
            bits = float(match.group(1)) * _RATE_SCALE[(match.group(2) or "bit").lower()]
    if bits is None:
        raise ValueError(f"expected a rate like '100mbit', '1gbit' or '500kbit', got {value!r}")
    if bits > MAX_RATE:
        raise ValueError(f"a rate is at most 1tbit, got {value!r}")
    return bits


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    return f"{seconds:g}s"
