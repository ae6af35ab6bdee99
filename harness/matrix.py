"""`wgh matrix`: the same scenarios across kernels × backends × engines, each
combination in its own VM, and one table of all results. Every combination writes an
ordinary results.json that records its kernel release, backend and engine, so they
stay comparable."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from harness.backends import CHOICES, USERSPACE, TemplateError, UserspaceCommand
from harness.engines import CHOICES as ENGINE_CHOICES
from harness.engines import DEFAULT as DEFAULT_ENGINE
from harness.errors import MissingCapability


def engine_suffix(engine: str, separator: str = "/") -> str:
    """How a combination names its engine: not at all for the default one (labels and run
    ids of single-engine matrices stay as they were), else `/mininet` or `-mininet`."""
    return "" if engine == DEFAULT_ENGINE else f"{separator}{engine}"


@dataclass
class Combination:
    kernel_spec: str
    backend: str
    run_id: str
    exit_code: int | None = None
    results: dict[str, Any] | None = None
    error: str | None = None
    seconds: float = 0.0
    engine: str = DEFAULT_ENGINE

    @property
    def label(self) -> str:
        release = (self.results or {}).get("environment", {}).get("kernel_release") or self.kernel_spec
        return f"{release}/{self.backend}{engine_suffix(self.engine)}"


def wgh_run_argv(
    backend: str,
    results_dir: Path,
    run_id: str,
    files: list[str],
    quiet: bool = False,
    userspace: str | None = None,
    jobs: int | str = 1,
    engine: str = DEFAULT_ENGINE,
    repeat: int = 1,
) -> list[str]:
    quiet_flag = ["--quiet"] if quiet else []
    userspace_flag = ["--userspace", userspace] if userspace else []
    jobs_flag = ["-j", str(jobs)] if jobs != 1 else []
    repeat_flag = ["--repeat", str(repeat)] if repeat != 1 else []
    return [
        sys.executable, "-m", "harness.cli", "run", "--backend", backend, "--engine", engine, *userspace_flag, *jobs_flag,
        *repeat_flag, "--results-dir", str(results_dir), "--run-id", run_id, *quiet_flag, *files,
    ]


def shard_of(items: list, index: int, count: int) -> list:
    """Shard `index` (from 1) of `count`: every count-th item, in order. Combinations
    take about as long as each other (the same scenarios), so dealing them round-robin
    balances the machines, and every machine computes the same deal."""
    return items[index - 1 :: count]


def run_matrix(args, options, log: Callable[[str], None]) -> int:
    from harness.kernels.resolve import HOST, KernelSpecError, expand, offer, resolve
    from harness.vm.runner import run_in_vm

    offered = functools.cache(offer)  # apt asked once for every kernel of the matrix
    try:
        kernels = expand(args.kernels, offered)
    except (KernelSpecError, MissingCapability) as exc:
        log(f"wgh matrix: --kernels {args.kernels}: {exc}")
        return 2
    if kernels != [k.strip() for k in args.kernels.split(",") if k.strip()]:
        log(f"wgh matrix: --kernels {args.kernels}: {len(kernels)} kernel{'s' if len(kernels) != 1 else ''}: {', '.join(kernels)}")
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in CHOICES]
    if unknown:
        log(f"wgh matrix: unknown backend(s) {unknown}; use {', '.join(CHOICES)}")
        return 2
    engines = [e.strip() for e in (getattr(args, "engines", None) or DEFAULT_ENGINE).split(",") if e.strip()]
    unknown = [e for e in engines if e not in ENGINE_CHOICES]
    if unknown:
        log(f"wgh matrix: unknown engine(s) {unknown}; use {', '.join(ENGINE_CHOICES)}")
        return 2
    userspace = getattr(args, "userspace", None)
    if USERSPACE in backends:
        try:
            userspace = UserspaceCommand.parse(userspace or "").template
        except TemplateError as exc:
            log(f"wgh matrix: the userspace backend needs --userspace TEMPLATE: {exc}")
            return 2
    all_combos = [(k, b, e) for k in kernels for b in backends for e in engines]
    shard_text = getattr(args, "shard", None)
    if shard_text:
        from harness.schedule import ShardError, parse_shard

        try:
            shard = parse_shard(shard_text)
        except ShardError as exc:
            log(f"wgh matrix: {exc}")
            return 2
        if shard.count > len(all_combos):
            log(f"wgh matrix: --shard {shard}: only {len(all_combos)} combinations to share; use at most {len(all_combos)} shards")
            return 2
        all_combos = shard_of(all_combos, shard.index, shard.count)
        kernels = list(dict.fromkeys(k for k, _, _ in all_combos))
        log(f"wgh matrix: shard {shard}: " + ", ".join(f"{k}/{b}{engine_suffix(e)}" for k, b, e in all_combos))
    results_dir = Path(args.results_dir).resolve()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    resolved = {}
    for spec in kernels:  # fail early, before any VM boots
        if spec == HOST:
            continue
        try:
            resolved[spec] = resolve(spec, offered=offered)
        except (KernelSpecError, MissingCapability) as exc:
            log(f"wgh matrix: {exc}")
            return 2
        if missing := resolved[spec].missing_features():
            log(f"wgh matrix: kernel {spec} has no {' and no '.join(missing)} module: its cases that need them will be skipped")
    combos = [Combination(k, b, f"{stamp}-{slug(k)}-{b}{engine_suffix(e, '-')}", engine=e) for k, b, e in all_combos]
    from harness.progress import RunProgress

    mode = "jsonl" if getattr(args, "jsonl", False) else "quiet" if getattr(args, "quiet", False) else "normal"
    progress = RunProgress(len(combos), mode, live=False)  # guests stream their own lines: no live line
    vm_log = log if mode == "normal" else (lambda text: None)
    # JSON Lines own stdout: the guests' output goes to stderr instead
    guest_stdout = sys.stderr if mode == "jsonl" else sys.stdout
    for combo in combos:
        if mode == "normal":
            log("wgh matrix: " + progress.status_line(f"kernel {combo.kernel_spec}, backend {combo.backend}, engine {combo.engine}"))
        argv = wgh_run_argv(
            combo.backend, results_dir, combo.run_id, args.files, quiet=mode != "normal", userspace=userspace,
            jobs=getattr(args, "jobs", 1), engine=combo.engine, repeat=getattr(args, "repeat", 1),
        )
        t0 = time.monotonic()
        if combo.kernel_spec == HOST:
            combo.exit_code = run_child(argv, guest_stdout)
        else:
            with contextlib.redirect_stdout(guest_stdout):  # the runner pumps the guest's stdout to sys.stdout
                outcome = run_in_vm(resolved[combo.kernel_spec], argv, options, log=vm_log)
            combo.exit_code = outcome.returncode
            if outcome.timed_out:
                combo.error = f"timed out after {options.timeout:g}s"
        combo.seconds = time.monotonic() - t0
        path = results_dir / combo.run_id / "results.json"
        try:
            combo.results = json.loads(path.read_text())
        except (OSError, ValueError):
            combo.error = combo.error or f"no results at {path} (exit {combo.exit_code})"
        _report_combination(progress, combo, path)
    print(combined_table(combos), file=sys.stderr if mode == "jsonl" else sys.stdout)
    summary_path = results_dir / f"{stamp}-matrix.json"
    summary_path.write_text(
        json.dumps(
            {
                "kernels": kernels,
                "backends": backends,
                "engines": engines,
                "combinations": [
                    {
                        "kernel_spec": c.kernel_spec,
                        "kernel_release": (c.results or {}).get("environment", {}).get("kernel_release"),
                        "backend": c.backend,
                        "engine": c.engine,
                        # beside this file: the folder stays readable wherever it is moved (a CI artifact)
                        "results": f"{c.run_id}/results.json",
                        "exit_code": c.exit_code,
                        "error": c.error,
                        "seconds": round(c.seconds, 1),
                    }
                    for c in combos
                ],
            },
            indent=2,
        )
        + "\n"
    )
    exit_code = 0 if all(c.exit_code == 0 and not c.error for c in combos) else 1
    if mode == "jsonl":
        counts: dict[str, int] = {}
        for combo in combos:
            for scenario in (combo.results or {}).get("scenarios", []):
                counts[scenario.get("status", "?")] = counts.get(scenario.get("status", "?"), 0) + 1
        progress.summary(counts, "", matrix=str(summary_path), exit_code=exit_code, combinations=[c.label for c in combos])
    else:
        print(f"matrix: {summary_path}")
    return exit_code


def _report_combination(progress, combo: Combination, path: Path) -> None:
    """One finished combination: in JSON Lines one object per scenario (tagged with
    the kernel and backend), then one for the combination; otherwise a line."""
    scenarios = (combo.results or {}).get("scenarios", [])
    tags = {"kernel_spec": combo.kernel_spec, "kernel_release": (combo.results or {}).get("environment", {}).get("kernel_release"), "backend": combo.backend, "engine": combo.engine}
    for scenario in scenarios:
        progress.emit({"event": "scenario", **tags, **scenario})
    counts: dict[str, int] = {}
    for scenario in scenarios:
        counts[scenario.get("status", "?")] = counts.get(scenario.get("status", "?"), 0) + 1
    status = "error" if combo.error else "failed" if combo.exit_code else "passed"
    outcome = combo.error or ", ".join(f"{n} {s}" for s, n in counts.items()) or f"exit {combo.exit_code}"
    line = f"wgh matrix: {combo.label} done in {combo.seconds:.0f}s: {outcome}"
    record = {**tags, "results": str(path), "exit_code": combo.exit_code, "error": combo.error, "seconds": round(combo.seconds, 1), "counts": counts}
    progress.finished(status, line, record=record, event="combination")


def run_child(argv: list[str], stdout) -> int:
    """A `wgh run` on this host. Interrupted, it gets SIGTERM (one per signal we get) and
    is waited for, so it tears down; subprocess.run would SIGKILL it and leave its network
    behind. Its own process group: a terminal's Ctrl-C reaches it only through us (not
    twice), and it dies with us (PR_SET_PDEATHSIG) if we are killed."""
    import signal

    from harness.net.nsexec import die_with_parent

    parent = os.getpid()

    def setup() -> None:
        os.setpgid(0, 0)
        die_with_parent(parent=parent)

    process = subprocess.Popen(argv, stdout=stdout, preexec_fn=setup)
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.send_signal(signal.SIGTERM)
        while True:
            try:
                process.wait()
                break
            except KeyboardInterrupt:  # more signals: the child defers them during its teardown
                process.send_signal(signal.SIGTERM)
        raise


def slug(spec: str) -> str:
    return "".join(ch if ch.isalnum() or ch in ".-" else "_" for ch in spec)


def combined_table(combos: list[Combination]) -> str:
    """Scenario rows × combination columns: status and the handshake / build time."""
    columns = [c.label for c in combos]
    rows: dict[str, dict[str, str]] = {}
    for combo in combos:
        for scenario in (combo.results or {}).get("scenarios", []):
            cell = scenario["status"]
            handshake = next(
                (s["measurements"]["time_to_handshake"]["value"] for s in scenario["steps"] if "time_to_handshake" in s["measurements"]),
                None,
            )
            if handshake is not None:
                cell += f" hs {handshake * 1000:.0f}ms"
            rows.setdefault(scenario["id"], {})[combo.label] = cell
    header = ["scenario"] + columns
    body = [[name] + [cells.get(col, "-") for col in columns] for name, cells in rows.items()]
    footer = ["(combination)"] + [c.error or f"exit {c.exit_code}, {c.seconds:.0f}s" for c in combos]
    widths = [max(len(str(r[i])) for r in body + [header, footer]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*row) for row in body]
    lines += [fmt.format(*("-" * w for w in widths)), fmt.format(*footer)]
    return "\n".join(lines)
