"""What a run could leave on the host, by run id (shared by the integration tests)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from harness.plan import naming
from harness.processes import command_lines


def harness_objects(run_ids: set[str] | None = None) -> dict[str, list[str]]:
    """Namespaces, wireguard-go and dnsmasq processes and UAPI sockets of the harness on this host
    (of the given runs, or of any run)."""

    def ours(name: str) -> bool:
        run = naming.run_of(name)
        return run is not None and (run_ids is None or run in run_ids)

    netns_dir = Path("/run/netns")
    sockets_dir = Path("/var/run/wireguard")
    return {
        "namespaces": sorted(n for n in (os.listdir(netns_dir) if netns_dir.is_dir() else []) if ours(n)),
        "processes": sorted(f"{pid} {ifname}" for pid, ifname in wireguard_processes() if ours(ifname)),
        "sockets": sorted(s.name for s in (sockets_dir.glob("*.sock") if sockets_dir.is_dir() else []) if ours(s.stem)),
        "dnsmasq": sorted(f"{pid} run {run}" for pid, run in dnsmasq_processes() if run_ids is None or run in run_ids),
        "mininet hosts": sorted(f"{pid} {name}" for pid, name in mininet_shells() if ours(name)),
    }


def built_nodes(run_id: str) -> list[str]:
    """The nodes a live run has on the host, whatever the engine: named namespaces, or
    Mininet host shells holding unnamed ones (both named wgh-<run>-<node>)."""
    objects = harness_objects({run_id})
    return sorted(objects["namespaces"] + [entry.split()[1] for entry in objects["mininet hosts"]])


def wireguard_processes() -> list[tuple[int, str]]:
    """(pid, interface) of every process whose command line names one of the harness's
    WireGuard interfaces: wireguard-go, or any userspace implementation from a template.
    Found by name, independently of the reaper (which finds them by namespace), so a
    process that outlived its namespace is seen too."""
    return [
        (pid, word) for pid, argv in command_lines() for word in argv[1:] if naming.WG_IFNAME_RE.match(word)
    ]


def mininet_shells() -> list[tuple[int, str]]:
    """(pid, host name) of every Mininet host shell (`bash … mininet:<name>`): the
    Mininet engine names its hosts like namespaces, wgh-<run>-<node>."""
    return [(pid, word[len("mininet:"):]) for pid, argv in command_lines() for word in argv[1:] if word.startswith("mininet:")]


_DNS_DIR = re.compile(r"/wgh-(?P<run>[a-z0-9]{6})-dns-")


def dnsmasq_processes() -> list[tuple[int, str]]:
    """(pid, run id) of every dnsmasq the harness started (its files are in /tmp/wgh-<run>-dns-*)."""
    found = []
    for pid, argv in command_lines():
        if not argv[0].endswith("dnsmasq"):
            continue
        match = next((m for m in map(_DNS_DIR.search, argv) if m), None)
        if match:
            found.append((pid, match.group("run")))
    return found


def run_records() -> list[dict]:
    """Every run record now in the registry (a torn or vanishing one is skipped)."""
    import json

    from harness.cleanup import REGISTRY_DIR

    found = []
    for record in REGISTRY_DIR.glob("*.json"):
        try:
            found.append(json.loads(record.read_text()))
        except (OSError, ValueError):
            continue
    return found


def nothing_left(run_ids: set[str] | None = None) -> bool:
    return not any(harness_objects(run_ids).values())


def left_by_finished_runs(stale_after: float | None = None) -> dict[str, list[str]]:
    """Objects of runs that are over and left no record: a leak. Not counted: runs live
    in parallel, and runs whose record is still there (a run SIGKILLed by a test on
    another worker, whose objects the watchdog or `wgh clean` removes by that record,
    checked by that test; a run whose teardown failed says "could not remove"). The
    records are read before and after the objects are listed: a run that starts in
    between (record written, then its first namespace) is in the second reading, one
    that ends in between (namespaces gone, then its record) in the first.
    `stale_after`: a dead run's record older than this many seconds no longer excuses
    its objects (at the end of a session: no test waits that long to clean up)."""
    import time

    from harness.cleanup import REGISTRY_DIR, live_runs

    def excused() -> set[str]:
        runs = set()
        for run, record in live_runs().items():
            try:
                age = time.time() - (REGISTRY_DIR / f"{run}.json").stat().st_mtime
            except OSError:
                age = 0.0
            if record.owner_alive() or stale_after is None or age < stale_after:
                runs.add(run)
        return runs

    before = excused()
    objects = harness_objects()
    running = before | excused()
    return {kind: [x for x in items if not any(run in x for run in running)] for kind, items in objects.items()}


def assert_same_verdicts(elsewhere: list, local: list) -> None:
    """Results of the same cases run elsewhere (a worker, several hosts) and here give
    the same verdicts, at least one compared, and what ran elsewhere left nothing. A
    case the machine's load made inconclusive on either side says nothing either way."""
    from harness.results.verdicts import verdicts

    unsettled = {r.case.id for r in elsewhere + local if r.status == "inconclusive"}

    def as_run(results: list) -> dict:
        return {k: v for k, v in verdicts({"scenarios": [r.to_json() for r in results]}).items() if k not in unsettled}

    assert as_run(elsewhere) == as_run(local), [r.report() for r in elsewhere if r.status != "passed"]
    assert as_run(elsewhere), "every case was inconclusive: nothing compared"
    for result in elsewhere:
        assert not result.leftovers and not any(harness_objects({result.run_id}).values()), result.leftovers
