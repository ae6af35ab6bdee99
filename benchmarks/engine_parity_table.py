#!/usr/bin/env python3
"""The scenario library on every engine, side by side: a Markdown table of scenario case
× engine × verdict (status, and the cause codes its steps' diagnosis named), and
whether the engines agree. The same comparison as tests/integration/test_engine_parity.py,
printed for people (closing notes, release notes).

    sudo .venv/bin/python benchmarks/engine_parity_table.py [--backend wireguard-go] [-j auto] [FILES...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from harness.engines import CHOICES
from harness.results.verdicts import verdicts


def run(engine: str, backend: str, jobs: str, files: list[str]) -> dict:
    argv = [sys.executable, "-m", "harness.cli", "run", "--no-results", "--json", "-q", "-j", jobs, "--engine", engine, "--backend", backend, *files]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        sys.exit(f"wgh run on {engine} failed (exit {done.returncode}): {done.stderr[-2000:]}")
    return verdicts(json.loads(done.stdout))


def cell(verdict: tuple | None) -> str:
    if verdict is None:
        return "—"
    status, steps = verdict
    causes = sorted({cause for _, found in steps for cause in found})
    return status + (f" ({', '.join(causes)})" if causes else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", default=["scenarios/"])
    parser.add_argument("--backend", default="wireguard-go")
    parser.add_argument("-j", "--jobs", default="auto")
    args = parser.parse_args()
    by_engine = {engine: run(engine, args.backend, args.jobs, args.files) for engine in CHOICES}
    cases = sorted(set().union(*by_engine.values()))
    print(f"| case | {' | '.join(CHOICES)} | same |")
    print("| --- |" + " --- |" * (len(CHOICES) + 1))
    differing = 0
    for case in cases:
        found = [by_engine[e].get(case) for e in CHOICES]
        same = all(v == found[0] for v in found)
        differing += not same
        print(f"| {case} | {' | '.join(cell(v) for v in found)} | {'yes' if same else '**no**'} |")
    print(f"\n{len(cases)} cases, backend {args.backend}: {len(cases) - differing} the same on every engine, {differing} different")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
