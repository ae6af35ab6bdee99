"""results/<run-id>/results.json: one file per run, written as scenarios finish."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.backends import UserspaceCommand
from harness.results.environment import environment

SCHEMA_VERSION = 2  # 2: stable metric keys, repeats, raw samples, artifact pointers (see docs/results.md)


def new_results_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + f"-{os.getpid()}"


class ResultsFile:
    """Collects scenario results and rewrites results.json after each one, so even an
    interrupted run leaves a readable file with what finished."""

    def __init__(
        self,
        results_dir: Path | str | None,
        requested_backend: str,
        run_id: str | None = None,
        userspace: UserspaceCommand | None = None,
        shard: dict[str, int] | None = None,
        *,
        write_document: bool = True,
    ):
        """With results_dir None the document is only kept in memory (`wgh run --no-results --json`).
        `shard`: {"index": I, "count": N} of a sharded run, recorded in its environment.
        With write_document False the run's directory (and its artifacts) is used but
        results.json is left to another process: a pytest-xdist worker, whose entries
        the controller writes."""
        self.run_id = run_id or new_results_id()
        self.directory = Path(results_dir) / self.run_id if results_dir is not None else None
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / "results.json" if self.directory is not None and write_document else None
        self.data: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "run_id": self.run_id,
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "environment": environment(requested_backend, userspace, shard),
            "scenarios": [],
        }
        self._started = time.monotonic()
        self.write()

    def set_workers(self, workers: int) -> None:
        """How many cases ran side by side at most (wgh run -j, pytest -n): their
        measurements shared the machine, except those of cases that ran alone."""
        self.data["environment"]["workers"] = workers
        self.write()

    @property
    def artifacts_dir(self) -> Path | None:
        return self.directory / "artifacts" if self.directory is not None else None

    def add(self, scenario_json: dict[str, Any]) -> None:
        self._relative_artifacts(scenario_json)
        self.data["scenarios"].append(scenario_json)
        self.write()

    def _relative_artifacts(self, scenario_json: dict[str, Any]) -> None:
        """Artifact paths relative to the results directory, so the folder can move."""

        def relative(path: str) -> str:
            if self.directory is None:
                return path
            try:
                return str(Path(path).resolve().relative_to(self.directory.resolve()))
            except ValueError:
                return path

        scenario_json["artifacts"] = [relative(p) for p in scenario_json.get("artifacts", [])]
        for step in scenario_json.get("steps", []):
            step["artifacts"] = [relative(p) for p in step.get("artifacts", [])]

    def write(self) -> None:
        self.data["wall_seconds"] = round(time.monotonic() - self._started, 3)
        counts: dict[str, int] = {}
        for scenario in self.data["scenarios"]:
            counts[scenario["status"]] = counts.get(scenario["status"], 0) + 1
        self.data["summary"] = counts
        if self.path is None:
            return
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, default=str) + "\n")
        os.replace(tmp, self.path)
