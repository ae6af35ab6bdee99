"""A snapshot of the host's own network namespace and settings, to prove that runs
(killed or not) leave it exactly as they found it."""

from __future__ import annotations

import re
import shutil
import subprocess

# values the kernel changes by itself from one moment to the next
VOLATILE_SYSCTLS = re.compile(r"^(kernel\.random\.|kernel\.ns_last_pid|kernel\.pty\.nr|net\.netfilter\.nf_conntrack_count)")
_COUNTERS = re.compile(r"\[\d+:\d+\]")
# a bridge's timers (a container runtime's or a CI runner's bridge in the host namespace) tick
_BRIDGE_TIMERS = re.compile(r"\b(hello_timer|tcn_timer|topology_change_timer|gc_timer)\s+[\d.]+")


def _run(argv: list[str]) -> str:
    if shutil.which(argv[0]) is None:
        return f"({argv[0]} not installed)"
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    return result.stdout + (f"\n(exit {result.returncode}: {result.stderr.strip()})" if result.returncode else "")


def snapshot() -> dict[str, str]:
    """Links, addresses, routes (all tables), rules, nft and iptables rulesets, net.* and
    kernel.* sysctls of the namespace this process is in (the host's)."""
    sysctls = _run(["sysctl", "-a"])
    return {
        "links": _BRIDGE_TIMERS.sub(r"\1", _run(["ip", "-d", "link", "show"])),
        "addresses": _run(["ip", "address", "show"]),
        "routes4": _run(["ip", "-4", "route", "show", "table", "all"]),
        "routes6": _run(["ip", "-6", "route", "show", "table", "all"]),
        "rules4": _run(["ip", "-4", "rule", "show"]),
        "rules6": _run(["ip", "-6", "rule", "show"]),
        "nft": _run(["nft", "list", "ruleset"]),
        "iptables": _ruleset(_run(["iptables-save"])),
        "ip6tables": _ruleset(_run(["ip6tables-save"])),
        "sysctls": "\n".join(
            line for line in sysctls.splitlines() if line.startswith(("net.", "kernel.")) and not VOLATILE_SYSCTLS.match(line)
        ),
    }


def _ruleset(text: str) -> str:
    """iptables-save without its dated comments and packet counters."""
    return "\n".join(_COUNTERS.sub("", line) for line in text.splitlines() if not line.startswith("#"))


def differences(before: dict[str, str], after: dict[str, str]) -> dict[str, list[str]]:
    """Per part, the lines that appeared or went (empty: unchanged)."""
    out = {}
    for key in before:
        old, new = set(before[key].splitlines()), set(after[key].splitlines())
        changed = sorted(f"- {line}" for line in old - new) + sorted(f"+ {line}" for line in new - old)
        if changed:
            out[key] = changed
    return out
