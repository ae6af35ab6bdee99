#!/usr/bin/env python3
"""Soak: the flake rate of the scenario library and of the test suite, on a busy machine.

Runs the scenario library (`wgh run -j auto`) N times and a pytest command (by default
the README's test command, `pytest -n 4 tests/ scenarios/`) M times, with background
load beside them, records every verdict and prints a table: runs, verdicts, flaky
verdicts (a case whose verdict differs between runs), inconclusive ones (checks that
failed on an overloaded CPU: no verdict, see harness/pressure.py), and each flaky case
with its verdicts, failure message and cause codes. Every run's verdicts and CPU
stall go to a JSON file that `wgh report SOAK.json` shows again. Exit 1 when a case was
flaky or a test-suite run failed: a short soak gates CI.

Load (--load, default cpu):
  cpu      stress-ng --cpu N beside the runs (N = --stress-cpus, default 2);
  harness  a second `wgh run -j auto` of the library, over and over, beside them;
  both     the two together;  none  nothing.

    sudo .venv/bin/python benchmarks/soak.py [--library-runs 20] [--suite-runs 3] [--load cpu]
        [--suite-args "-n 4 tests/ scenarios/"] [--backend wireguard-go] [--out FILE] [FILES...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from harness import pressure
from harness.processes import stop_children
from harness.results.flakes import (
    SOAK_KIND, SOAK_VERSION, Verdict, junit_verdicts, scenario_verdicts, summarize, summary_json, verdicts_json,
)

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
README_TEST_ARGS = "-n 4 tests/ scenarios/"


class Load:
    """What runs beside the soak: started in their own process groups, stopped by PID."""

    def __init__(self, kind: str, stress_cpus: int, files: list[str], backend: str):
        self.kind = kind
        self.processes: list[subprocess.Popen] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._files, self._backend = files, backend
        self.harness_runs = 0
        if kind in ("cpu", "both"):
            if shutil.which("stress-ng") is None:
                sys.exit("soak: --load cpu needs stress-ng: apt-get install stress-ng")
            self.processes.append(subprocess.Popen(
                ["stress-ng", "--cpu", str(stress_cpus), "--timeout", "0", "--quiet"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            ))
        if kind in ("harness", "both"):
            self._thread = threading.Thread(target=self._harness_loop, name="soak-load", daemon=True)
            self._thread.start()

    def describe(self, stress_cpus: int) -> str:
        return {
            "cpu": f"stress-ng --cpu {stress_cpus} beside it",
            "harness": "a second `wgh run -j auto` of the library beside it",
            "both": f"stress-ng --cpu {stress_cpus} and a second `wgh run -j auto` beside it",
            "none": "no added load",
        }[self.kind]

    def _harness_loop(self) -> None:
        while not self._stop.is_set():
            process = subprocess.Popen(
                [str(BIN / "wgh"), "run", "-q", "--no-results", "-j", "auto", "--backend", self._backend, *self._files],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO, start_new_session=True,
            )
            self.processes.append(process)
            while process.poll() is None and not self._stop.is_set():
                self._stop.wait(0.5)
            if process.poll() is None:  # SIGTERM: it tears its cases down
                process.send_signal(signal.SIGTERM)
                process.wait()
            self.processes.remove(process)
            self.harness_runs += 1

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=120)
        stop_children(list(self.processes), grace=60)


def run_to_end(command: list[str], directory: Path) -> subprocess.CompletedProcess:
    """subprocess.run, except when the soak is interrupted: subprocess.run would SIGKILL
    the run, leaving its cases built; this sends SIGTERM, which tears them down, and waits.
    Output goes to files, not pipes, so a run that writes while it tears down never blocks."""
    with open(directory / "stdout", "w+") as stdout, open(directory / "stderr", "w+") as stderr:
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, text=True, cwd=REPO)
        try:
            process.wait()
        except BaseException:
            stop_children([process], grace=120)
            raise
        stdout.seek(0)
        stderr.seek(0)
        return subprocess.CompletedProcess(command, process.returncode, stdout.read(), stderr.read())


def run_library(files: list[str], jobs: str, backend: str, directory: Path) -> tuple[dict[str, Verdict], int, str]:
    done = run_to_end(
        [str(BIN / "wgh"), "run", "-q", "--no-report", "-j", jobs, "--backend", backend, "--results-dir", str(directory), *files],
        directory,
    )
    found = sorted(directory.glob("*/results.json"))
    if not found:
        return {}, done.returncode, done.stderr[-2000:]
    return scenario_verdicts(json.loads(found[-1].read_text())), done.returncode, ""


def run_suite(args: list[str], directory: Path) -> tuple[dict[str, Verdict], int, str]:
    report = directory / "junit.xml"
    done = run_to_end(
        [str(BIN / "pytest"), "-q", "-p", "no:cacheprovider", "--no-results", f"--junitxml={report}", *args],
        directory,
    )
    if not report.exists():
        return {}, done.returncode, (done.stdout + done.stderr)[-2000:]
    return junit_verdicts(report.read_text()), done.returncode, ""


def soak_set(name: str, count: int, once, log) -> dict:
    runs = []
    for index in range(1, count + 1):
        with tempfile.TemporaryDirectory(prefix="wgh-soak-") as tmp:
            before = pressure.read()
            started = time.monotonic()
            verdicts, code, trouble = once(Path(tmp))
            seconds = time.monotonic() - started
            stall = pressure.between(before, pressure.read())
        summary = summarize([verdicts])
        log(
            f"soak: {name} run {index}/{count}: {len(verdicts)} verdicts, {summary.failures} failures, "
            f"{summary.inconclusive} inconclusive, exit {code}, {seconds:.0f}s, CPU stalled {stall.share or 0:.0%}"
            + (f": {trouble}" if trouble else "")
        )
        for case, verdict in sorted(verdicts.items()):
            if verdict.verdict not in ("passed", "skipped"):  # named now: a long soak's later runs may never finish
                first_line = verdict.message.splitlines()[0][:300] if verdict.message else "(no message)"
                log(f"      {case}: {verdict.verdict}: {first_line}")
        runs.append({"index": index, "seconds": round(seconds, 1), "exit": code, "cpu_stall": stall.to_json()["cpu_stall"], "trouble": trouble, "verdicts": verdicts_json(verdicts)})
    return {"name": name, "runs": runs}


def table(sets: list[dict]) -> str:
    from harness.results.flakes import verdicts_from_json

    lines = [f"{'set':<12} {'runs':>4} {'verdicts':>8} {'flaky':>5} {'inconclusive':>12} {'failures':>8} {'CPU stall (median)':>18}"]
    details = []
    for entry in sets:
        summary = summarize([verdicts_from_json(r["verdicts"]) for r in entry["runs"]])
        entry["summary"] = summary_json(summary)
        stalls = [r["cpu_stall"] for r in entry["runs"] if r["cpu_stall"] is not None]
        median = f"{statistics.median(stalls):.0%}" if stalls else "-"
        lines.append(f"{entry['name']:<12} {summary.runs:>4} {summary.verdicts:>8} {len(summary.flaky):>5} {summary.inconclusive:>12} {summary.failures:>8} {median:>18}")
        for flaky in summary.flaky:
            seen = ", ".join(f"{verdict} ×{n}" for verdict, n in flaky.verdicts.items())
            details.append(f"  flaky {entry['name']}: {flaky.id}: {seen}" + (f"; causes: {', '.join(flaky.causes)}" if flaky.causes else ""))
            details += [f"      {message.splitlines()[0][:300] if message else '(no message)'}" for message in flaky.messages]
    return "\n".join(lines + details)


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", default=["scenarios/"], help="scenario files or folders (default scenarios/)")
    parser.add_argument("--library-runs", type=int, default=20)
    parser.add_argument("--suite-runs", type=int, default=3)
    parser.add_argument("--suite-args", default=README_TEST_ARGS, help=f"the pytest command's arguments (default: the README's, {README_TEST_ARGS!r})")
    parser.add_argument("--load", choices=["cpu", "harness", "both", "none"], default="cpu")
    parser.add_argument("--stress-cpus", type=int, default=2)
    parser.add_argument("--jobs", default="auto", help="wgh run -j for the library runs (default auto)")
    parser.add_argument("--backend", default=os.environ.get("WGH_BACKEND", "wireguard-go"))
    parser.add_argument("--out", default=None, help="the soak's JSON (default results/soak-<time>.json)")
    args = parser.parse_args(argv)

    out = Path(args.out) if args.out else REPO / "results" / f"soak-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    log = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    load = Load(args.load, args.stress_cpus, args.files, args.backend)
    started = time.time()
    sets: list[dict] = []
    signal.signal(signal.SIGTERM, _interrupted)  # a cancelled CI job stops the soak as Ctrl-C does
    try:
        if args.library_runs:
            sets.append(soak_set("library", args.library_runs, lambda d: run_library(args.files, args.jobs, args.backend, d), log))
        if args.suite_runs:
            suite = shlex.split(args.suite_args)
            sets.append(soak_set("test suite", args.suite_runs, lambda d: run_suite(suite, d), log))
    except KeyboardInterrupt:
        log("soak: interrupted: the run in progress was stopped and torn down; no figures written")
        return 130
    finally:
        load.stop()
    text = table(sets)
    document = {
        "kind": SOAK_KIND, "version": SOAK_VERSION,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)), "seconds": round(time.time() - started),
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "stall_threshold": pressure.stall_threshold()},
        "load": load.describe(args.stress_cpus),
        "commands": {
            "library": f"wgh run -j {args.jobs} --backend {args.backend} {' '.join(args.files)}",
            "test suite": f"pytest {args.suite_args}",
        },
        "sets": sets,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=1))
    print(f"soak: {load.describe(args.stress_cpus)}; {document['seconds']}s")
    print(text)
    print(f"soak: {out} (wgh report {out.relative_to(REPO) if out.is_relative_to(REPO) else out})")
    bad = any(s["summary"]["flaky"] for s in sets) or any(r["exit"] not in (0,) for s in sets if s["name"] == "test suite" for r in s["runs"])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
