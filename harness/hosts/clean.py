"""`wgh clean --hosts`: what crashed runs left on each host of an inventory, removed
by that host's own `wgh clean` over SSH (a worker that lost its controller tears down
by itself, and its watchdog reaps it if it is killed; this is for what is left when
both died), every host at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from harness.errors import HarnessError
from harness.hosts.inventory import Host, Inventory
from harness.hosts.ssh import HostConnection

CLEAN_TIMEOUT = 600.0  # a host with thousands of leftovers takes a while


@dataclass(frozen=True)
class HostCleanup:
    host: str
    ok: bool
    report: str  # what that host's `wgh clean` said, or why it could not be run

    def lines(self) -> list[str]:
        text = self.report.strip() or "(no output)"
        return [f"host {self.host}: {line}" for line in text.splitlines()]


def clean_host(host: Host) -> HostCleanup:
    try:
        connection = HostConnection(host).open()
    except HarnessError as exc:
        return HostCleanup(host.name, False, f"not cleaned: {exc}")
    try:
        done = connection.run(host.command("clean"), timeout=CLEAN_TIMEOUT)
    except Exception as exc:  # a timeout, ssh gone: say so for this host, go on with the others
        return HostCleanup(host.name, False, f"not cleaned: {type(exc).__name__}: {exc}")
    finally:
        connection.close()
    output = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        return HostCleanup(host.name, False, f"`{' '.join(host.command('clean'))}` exited with {done.returncode}: {output}")
    return HostCleanup(host.name, True, output)


def clean_hosts(inventory: Inventory) -> list[HostCleanup]:
    """Every host cleaned, side by side; in the inventory's order. (Each thread keeps
    its host's connection until it is done with it: the master's death signal follows
    the thread that starts it.)"""
    hosts = list(inventory.hosts.values())
    with ThreadPoolExecutor(max(1, min(len(hosts), 16))) as pool:
        return list(pool.map(clean_host, hosts))
