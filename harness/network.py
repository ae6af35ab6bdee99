"""One run's network: an engine's underlay, the WireGuard fleet on it, and the steps'
run context, built in order and always torn down.

Order matters: nodes, links, addresses and routes first (the engine); then DNS
servers; then every WireGuard device fully configured *without* endpoints; then
endpoints given by name are resolved inside their nodes; only then are endpoints and
keepalives set. So no initiator can send before every responder is ready, and the
first handshake is never lost to REKEY_TIMEOUT (5 s).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from harness.cleanup import RunRegistry
from harness.context import ContextAccess, RunContext
from harness.engine.base import Engine, Node
from harness.engine.place import Here, LocalPlace
from harness.errors import BuildError, MissingCapability, StepTimeout
from harness.hostlimits import ensure_room_for
from harness.interrupts import Interrupted, checkpoint, shielded
from harness.net import dns
from harness.plan.network import NetworkPlan, PlanErrors
from harness.wg.fleet import WireGuardFleet
from harness.wg.site import DeviceSite

log = logging.getLogger(__name__)


@dataclass
class _TeardownOutcome:
    """What an Interrupted raised by a lone teardown carries (no scenario result there)."""

    run_id: str
    leftovers: list[str]


class Network(ContextAccess):
    """A running network built from a plan by an engine. Use as a context manager: it
    always tears down. `engine` builds the underlay, `wireguard` holds the devices,
    `context` the steps' events and background resources."""

    def __init__(self, plan: NetworkPlan, *, engine: Engine | None = None, artifacts_dir: Path | None = None, secrets: Any = None):
        from harness.engine import make_engine
        from harness.engines import DEFAULT

        self.plan = plan
        self.engine: Engine = engine if engine is not None else make_engine(DEFAULT)
        self.wireguard: WireGuardFleet | None = None  # from build() on
        self.registry: RunRegistry | None = None
        self.work_dir: Path | None = None
        self.artifacts_dir = artifacts_dir
        self._secrets = secrets  # imported files' keys (keys: as-is), for the fleet only
        # the steps' own state: events, and background resources closed at teardown, last first
        self.context = RunContext()
        self._local_place: LocalPlace | None = None

    # --- lifecycle ------------------------------------------------------------------

    def __enter__(self) -> "Network":
        try:
            self.build()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.teardown()

    def build(self) -> None:
        from harness.cleanup import reap

        # before anything exists: a limit too low is said, not hit halfway (the 129th
        # wireguard-go); nodes on other machines are counted there, by their workers
        if not self.engine.elsewhere:
            ensure_room_for(self.plan)
        reap()  # leftovers of crashed runs go first, so names and resources are free
        self.registry = RunRegistry(self.plan.run_id)
        self.work_dir = Path(tempfile.mkdtemp(prefix=f"wgh-{self.plan.run_id}-"))
        self.registry.add_dir(str(self.work_dir))
        try:
            found = self.engine.build(self.plan, self.registry)
            if found is not None:  # an engine over a network it found (a user's Mininet) plans WireGuard on it
                self.plan = found
            self.wireguard = WireGuardFleet(self.plan, self._device_sites(), imported_keys=self._secrets)
            checkpoint("build", self.plan.run_id)
            dns.start_servers(self)  # before WireGuard: endpoints given by name are resolved through them
            if self.plan.wireguard:
                self.wireguard.create()
                resolved = dns.resolve_endpoints(self)  # names resolved once, inside each node, as wg(8) does
                self.wireguard.connect(resolved)
                self._export_configs()
        except (MissingCapability, BuildError, StepTimeout):  # the time budget is not a build failure
            raise
        except PlanErrors as exc:  # WireGuard planned on a network found at build time (a user's Mininet)
            raise BuildError("; ".join(f"{'.'.join(map(str, e.path))}: {e}" for e in exc.errors)) from exc
        except Exception as exc:
            raise BuildError(f"building the network failed: {type(exc).__name__}: {exc}") from exc

    def place(self, node: str) -> Any:
        """Where `node` is (harness.engine.place): the engine's place for a node on
        another machine, else this machine."""
        remote = self.engine.place(node)
        if remote is not None:
            return remote
        if self._local_place is None:
            self._local_place = LocalPlace(Here(self.node, self.registry, self.work_dir))
        return self._local_place

    def _device_sites(self) -> Callable[[str], Any]:
        """Where each node's WireGuard device is made: the engine's site for a node
        on another machine (its worker's), else this machine."""
        site = DeviceSite(self.plan, self.node, self.registry, self.work_dir)
        return lambda name: self.engine.device_site(name) or site

    def teardown(self) -> list[str]:
        """Remove everything this run created. Safe to call twice. Returns leftovers.
        Signals that arrive meanwhile are deferred (see harness.interrupts): called on
        its own, it raises KeyboardInterrupt once everything is removed."""
        with shielded(self.describe_left) as shield:
            leftovers = self._teardown()
        if shield.received and not shield.nested:
            raise Interrupted(_TeardownOutcome(self.plan.run_id, leftovers), shield.received[0])
        return leftovers

    def describe_left(self) -> str:
        """What this run still has on the host, from its record (for an aborted teardown)."""
        if self.registry is None:
            return "nothing"
        return f"{self.registry.record.describe()}, its record {self.registry.path}"

    def _teardown(self) -> list[str]:
        checkpoint("teardown-start", self.plan.run_id)
        self.context.close()  # probes, iperf3, captures, re-resolvers, DNS servers: newest first
        if self.wireguard is not None:
            self.wireguard.close()
        self._keep_logs()
        left_elsewhere = self.engine.close() or []  # an engine on other machines says what it could not remove there
        checkpoint("teardown-middle", self.plan.run_id)
        leftovers = (self.registry.release() if self.registry else []) + left_elsewhere
        self.registry = None
        return leftovers

    def _export_configs(self) -> None:
        """Each node's effective config in wg-quick form among the run's artifacts, keys
        left out, so a person can see (and with `wgh export`, rebuild) what ran."""
        if self.artifacts_dir is None or self.wireguard is None:
            return
        from harness.configs.export import write_configs

        header = f"the effective config of run {self.plan.run_id} (wgharness), keys left out"
        write_configs(self.artifacts_dir / "configs", self.plan.wireguard, self.wireguard.export_keys(), header=header)

    def _keep_logs(self) -> None:
        if self.artifacts_dir is None or self.work_dir is None or not self.work_dir.exists():
            return
        for log_file in self.work_dir.glob("*.log"):
            if log_file.stat().st_size:
                self.artifacts_dir.mkdir(parents=True, exist_ok=True)
                shutil.copy(log_file, self.artifacts_dir / log_file.name)

    # --- use ---------------------------------------------------------------------

    def node(self, name: str) -> Node:
        """The handle steps and the diagnosis act through (see harness.engine.base.Node)."""
        return self.engine.node(name)

    def run(self, node: str, argv: Sequence[str], *, timeout: float = 30.0) -> subprocess.CompletedProcess:
        """Run a command inside a node and wait for it (output captured as text)."""
        return self.node(node).run(argv, timeout=timeout)

    def popen(self, node: str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen:
        return self.node(node).popen(argv, **kwargs)
