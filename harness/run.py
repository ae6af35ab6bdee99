"""Run one scenario case: plan → build → steps → teardown, always tearing down."""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from harness import caps
from harness.backends import AUTO, USERSPACE, UserspaceCommand
from harness.engine import make_engine
from harness.engine.base import Engine
from harness.engines import ENGINES, choose_engine
from harness.errors import BuildError, MissingCapability, StepTimeout
from harness.interrupts import Interrupted, checkpoint, shielded
from harness.network import Network
from harness.plan.naming import new_run_id
from harness.plan.network import NetworkPlan, build_plan
from harness.scenario.conditions import uses_netem
from harness.scenario.load import ScenarioCase
from harness.scenario.steps.registry import step_needs
from harness.steps.checks import run_step
from harness.steps.result import StepResult
from harness.timebudget import time_budget


@dataclass
class ScenarioResult:
    case: ScenarioCase
    status: str = "passed"  # passed | failed | inconclusive | error | skipped
    steps: list[StepResult] = field(default_factory=list)
    error: str | None = None
    backends: dict[str, str] = field(default_factory=dict)
    engine: str = ""
    spread: Any = None  # over several hosts: where each node ran, the latency between them (harness.plan.share.Spread)
    run_id: str = ""
    build_seconds: float = 0.0
    steps_seconds: float = 0.0
    teardown_seconds: float = 0.0
    leftovers: list[str] = field(default_factory=list)
    repeat: int = 1  # which of `repeats` runs of this case (`wgh run --repeat N`)
    repeats: int = 1
    artifacts_dir: Path | None = None  # this case's artifacts (logs, iperf3 JSON, pcaps)

    @property
    def failed_steps(self) -> list[StepResult]:
        return [s for s in self.steps if s.failed]

    @property
    def inconclusive_steps(self) -> list[StepResult]:
        """Checks that failed while the machine was overloaded (harness.pressure)."""
        return [s for s in self.steps if s.inconclusive]

    def summary(self) -> str:
        if self.status == "skipped":
            return f"skipped: {self.error}"
        if self.error:
            return self.error
        failed = self.failed_steps or self.inconclusive_steps
        if not failed:
            return f"{len(self.steps)} step{'s' if len(self.steps) != 1 else ''} ok"
        return "; ".join(f"step {s.index + 1} ({s.kind}): {s.outcome}: {s.message}" for s in failed)

    def report(self) -> str:
        """The long form, for a failing test: every step and every diagnosis."""
        lines = [f"scenario {self.case.id} ({self.case.file}): {self.status}"]
        if self.backends:
            lines.append(f"engine {self.engine}, backends: " + ", ".join(f"{n}={b}" for n, b in self.backends.items()))
        if self.spread:
            hosts: dict[str, list[str]] = {}
            for node, host in self.spread.placement.items():
                hosts.setdefault(host, []).append(node)
            lines.append("hosts: " + "; ".join(f"{host}: {', '.join(nodes)}" for host, nodes in hosts.items()))
            lines += [f"  {note}" for note in self.spread.notes]
        for s in self.steps:
            lines.append(f"  [{s.outcome}] step {s.index + 1}: {s.title}: {s.message}")
            if s.diagnosis and s.failed:
                lines += ["      " + line for line in s.diagnosis.splitlines()]
        if self.error:
            lines.append(f"  error: {self.error}")
        if self.leftovers:
            lines.append(f"  NOT CLEANED UP: {', '.join(self.leftovers)}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """The scenario's entry in results.json (schema: harness/schema/results.schema.json).
        Artifact paths are absolute here; ResultsFile.add makes them relative to the
        results directory."""
        from harness.results.metrics import metric_keys

        steps = [s.to_json() for s in self.steps]
        keys = metric_keys(steps)
        for step in steps:
            for name, measurement in step["measurements"].items():
                measurement["key"] = keys[(step["index"], name)]
        artifacts = []
        if self.artifacts_dir is not None and self.artifacts_dir.is_dir():
            artifacts = sorted(str(p) for p in self.artifacts_dir.rglob("*") if p.is_file())
        return {
            "key": self.case.id,
            "repeat": self.repeat,
            "repeats": self.repeats,
            "run_id": self.run_id,
            "id": self.case.id,
            "name": self.case.name,
            "file": self.case.file,
            "file_sha256": self.case.file_sha256,
            "case": self.case.case_id,
            "matrix": self.case.matrix_values,
            "status": self.status,
            "error": self.error,
            "backends": self.backends,
            **({"engine": self.engine} if self.engine else {}),
            **({"placement": dict(self.spread.placement), "underlay": [u.to_json() for u in self.spread.underlay]} if self.spread else {}),
            **({"notes": list(self.case.notes)} if self.case.notes else {}),
            "timing": {
                "build": {"value": round(self.build_seconds, 6), "unit": "s"},
                "steps": {"value": round(self.steps_seconds, 6), "unit": "s"},
                "teardown": {"value": round(self.teardown_seconds, 6), "unit": "s"},
            },
            "steps": steps,
            "artifacts": artifacts,
        }


def requirements(case: ScenarioCase) -> set[str]:
    """Capability names (harness/caps.py) a case needs: its own, and each of its steps'."""
    needs = {"root"}
    if case.spec.wireguard:
        needs.add("wireguard")
    if any(uses_netem(link) for link in case.spec.links):
        needs.add("netem")
    for step in case.spec.steps:  # e.g. a `link:` step that adds delay needs netem
        needs |= step_needs(step)
    for wg in case.spec.wireguard.values():
        if wg.backend == "kernel":
            needs.add("kernel_wireguard")
        elif wg.backend == "wireguard-go":
            needs.add("wireguard_go")
        elif wg.backend == USERSPACE:
            needs.add("userspace")
    return needs


def missing_for(
    case: ScenarioCase, backend: str, userspace: UserspaceCommand | None, engine: str | None = None
) -> list[str]:
    """What this host lacks for the case with this backend on its engine (the file's,
    else `engine`, else the default), each with how to get it."""
    needs = requirements(case) | ENGINES[choose_engine(engine, case.spec.engine)].needs
    return caps.missing_for(needs, backend, userspace)


def prepare_network(
    case: ScenarioCase,
    run_id: str,
    *,
    backend: str,
    userspace: UserspaceCommand | None,
    engine: str | None,
    engine_factory: Callable[[str], Engine] = make_engine,
    artifacts_dir: Path | None = None,
    made: Engine | None = None,
) -> tuple[str, Network]:
    """The one way from a case to a network not yet built, for `wgh run`, scenario items
    and the wgh_network fixture alike: the engine chosen (the file's, else the caller's,
    else WGH_ENGINE, else netns) and the plan made. Returns the engine's name too.
    `made`: the engine, already made by `engine_factory`."""
    chosen = choose_engine(engine, case.spec.engine)
    if case.spec.topology is not None:  # a Topo of the user's: WireGuard is planned once Mininet has built it
        from harness.engine.topology import TopologyEngine
        from harness.scenario.topology import load_topology

        topo = load_topology(case.spec.topology.mininet, case.spec.topology.args, case.file)
        skeleton = NetworkPlan(run_id, {}, (), {}, {})
        return chosen, Network(skeleton, engine=TopologyEngine(topo, case.spec.wireguard, backend, userspace), artifacts_dir=artifacts_dir)
    plan = build_plan(case.spec, run_id, backend, userspace)
    return chosen, Network(plan, engine=made or engine_factory(chosen), artifacts_dir=artifacts_dir, secrets=case.secrets)


def run_case(
    case: ScenarioCase,
    *,
    backend: str = AUTO,
    userspace: UserspaceCommand | None = None,
    engine: str | None = None,
    engine_factory: Callable[[str], Engine] = make_engine,
    artifacts_dir: Path | None = None,
    on_step: Callable[[StepResult], None] | None = None,
    repeat: int = 1,
    repeats: int = 1,
) -> ScenarioResult:
    result = ScenarioResult(case, repeat=repeat, repeats=repeats)
    # what the case needs, asked of the machines its engine builds on (over several
    # hosts: theirs), once what making the engine needs here is here (a user's Topo
    # is built here)
    kind = ENGINES[choose_engine(engine, case.spec.engine)]
    made = None
    missing = caps.missing_for(set(kind.needs), backend, userspace)
    if not missing and case.spec.topology is None:
        made = engine_factory(kind.name)
        missing = made.missing(requirements(case) | kind.needs, backend, userspace)
    elif not missing:
        missing = missing_for(case, backend, userspace, engine)
    if missing:
        if made is not None:
            made.close()  # nothing built; an engine over other machines lets go of them
        result.status, result.error = "skipped", "; ".join(missing)
        return result
    result.run_id = new_run_id()
    result.artifacts_dir = artifacts_dir / result.run_id if artifacts_dir else None
    result.engine, network = prepare_network(
        case, result.run_id, backend=backend, userspace=userspace, engine=engine, engine_factory=engine_factory,
        artifacts_dir=result.artifacts_dir, made=made,
    )
    started = time.monotonic()
    interrupted: KeyboardInterrupt | None = None
    try:
        with time_budget(case.spec.timeout) as budget:
            network.build()
            result.backends = dict(network.wireguard.backends)
            result.spread = network.engine.spread()
            result.build_seconds = time.monotonic() - started
            checkpoint("steps", result.run_id)
            steps_started = time.monotonic()
            for index, step in enumerate(case.spec.steps):
                budget.check()  # an alarm that something swallowed still ends the run here
                step_result = run_step(network, index, step)
                result.steps.append(step_result)
                if on_step:
                    on_step(step_result)
            result.steps_seconds = time.monotonic() - steps_started
        result.status = "failed" if result.failed_steps else "inconclusive" if result.inconclusive_steps else "passed"
    except MissingCapability as exc:
        result.status, result.error = "skipped", str(exc)
    except (BuildError, StepTimeout) as exc:
        result.status, result.error = "error", str(exc)
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP: tear down, then stop the run
        interrupted = exc
        result.status, result.error = "error", f"interrupted ({exc or 'SIGINT'})"
    except Exception as exc:  # a harness bug: keep the traceback for the report
        result.status, result.error = "error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
    finally:
        # a signal now is deferred until the teardown is over (a third one aborts it)
        with shielded(network.describe_left) as shield:
            torn = time.monotonic()
            result.leftovers = network.teardown()
            result.teardown_seconds = time.monotonic() - torn
        if result.leftovers and result.status == "passed":
            result.status, result.error = "error", "cleanup left: " + ", ".join(result.leftovers)
    if interrupted is not None or shield.received:
        if interrupted is None:
            result.status, result.error = "error", "interrupted during teardown"
        raise Interrupted(result, shield.received[0] if shield.received else None) from interrupted
    return result
