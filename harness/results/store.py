"""results/<run-id>/results.json: one file per run, written as scenarios finish."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.results.environment import environment

SCHEMA_VERSION = 1


def new_results_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + f"-{os.getpid()}"


class ResultsFile:
    """Collects scenario results and rewrites results.json after each one, so even an
    interrupted run leaves a readable file with what finished."""

    def __init__(self, results_dir: Path | str, requested_backend: str, run_id: str | None = None):
        self.run_id = run_id or new_results_id()
        self.directory = Path(results_dir) / self.run_id
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / "results.json"
        self.data: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "run_id": self.run_id,
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "environment": environment(requested_backend),
            "scenarios": [],
        }
        self._started = time.monotonic()
        self.write()

    @property
    def artifacts_dir(self) -> Path:
        return self.directory / "artifacts"

    def add(self, scenario_json: dict[str, Any]) -> None:
        self.data["scenarios"].append(scenario_json)
        self.write()

    def write(self) -> None:
        self.data["wall_seconds"] = round(time.monotonic() - self._started, 3)
        counts: dict[str, int] = {}
        for scenario in self.data["scenarios"]:
            counts[scenario["status"]] = counts.get(scenario["status"], 0) + 1
        self.data["summary"] = counts
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, default=str) + "\n")
        os.replace(tmp, self.path)
