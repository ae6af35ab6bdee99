"""`wgh`: run scenarios, check the host, clean up, print the schema."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from harness.backends import AUTO, CHOICES, TemplateError, UserspaceCommand
from harness.engines import CHOICES as ENGINE_CHOICES, DEFAULT as ENGINE_DEFAULT, ENV_VAR as ENGINE_ENV_VAR, EngineChoiceError, choose_engine
from harness import interrupts
from harness.errors import ScenarioError
from harness.interrupts import Interrupted, checkpoint

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_INTERRUPTED = 0, 1, 2, 130


def loads(*modules: str):
    """The modules a command needs before it acts. main() imports them with signals
    held (see interrupts.held): commands import lazily so that `wgh --help` and
    `wgh schema` stay fast, and a signal must not cut such an import in half."""

    def mark(command):
        command.loads = modules
        return command

    return mark


def scenario_files(paths: Sequence[str]) -> list[Path]:
    files: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
        else:
            files.append(path)
    return files


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*row) for row in rows]
    return "\n".join(lines)


def config_notes(cases: Sequence[Any]) -> list[str]:
    """What imported config files lose in a test run (each once, in order)."""
    return list(dict.fromkeys(note for case in cases for note in case.notes))


def _cases_by_needs(cases: list, only: list[str], without: list[str]) -> list:
    """The cases that need every capability of `only` and none of `without` (e.g. the
    netem cases, to run them in a VM where this kernel has no netem, and the rest here)."""
    from harness.run import requirements

    kept = [c for c in cases if set(only) <= (needs := requirements(c)) and not set(without) & needs]
    wanted = " and ".join([f"needing {', '.join(only)}"] * bool(only) + [f"not needing {', '.join(without)}"] * bool(without))
    print(f"wgh run: {len(kept)} of {len(cases)} cases {wanted}", file=sys.stderr)
    return kept


@loads("harness.run", "harness.scenario.load", "harness.results.store", "harness.progress", "harness.caps", "harness.schedule", "harness.configs.world", "harness.pressure", "harness.hosts.inventory", "harness.hosts.engine")
def cmd_run(args: argparse.Namespace) -> int:
    from harness.pressure import stall_threshold
    from harness.run import run_case
    from harness.scenario.load import load_file
    from harness.schedule import ShardError, parse_shard

    try:
        shard = parse_shard(args.shard) if args.shard is not None else None
    except ShardError as exc:
        print(f"wgh run: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if args.durations and shard is None and args.jobs == 1:
        print("wgh run: --durations balances shards and orders -j: give --shard I/N or -j N too", file=sys.stderr)
        return EXIT_INVALID
    files = scenario_files(args.files)
    if not files and args.configs is None:
        print("wgh run: no scenario files given or found", file=sys.stderr)
        return EXIT_INVALID
    if args.behind_nat and args.configs is None:
        print("wgh run: --behind-nat puts nodes of --configs DIR behind NATs: give --configs too", file=sys.stderr)
        return EXIT_INVALID
    if args.strict_load:  # read by every check, in this process and the workers it starts
        os.environ["WGH_STRICT_LOAD"] = "1"
    try:
        stall_threshold()
    except ValueError as exc:
        print(f"wgh run: {exc}", file=sys.stderr)
        return EXIT_INVALID
    checkpoint("validate")
    cases, problems = [], []
    for file in files:  # validate everything before building anything
        try:
            cases += load_file(file)
        except ScenarioError as exc:
            problems += exc.problems
    if args.configs is not None:
        try:
            cases += _configs_world(args.configs, args.behind_nat)
        except ScenarioError as exc:
            problems += exc.problems
        except ValueError as exc:
            print(f"wgh run: --configs: {exc}", file=sys.stderr)
            return EXIT_INVALID
        if args.jobs != 1:  # workers load cases from files, and this one has none
            print("wgh run: --configs: its world runs with the other cases one at a time (-j 1)", file=sys.stderr)
            args.jobs = 1
    inventory = None
    if args.hosts or os.environ.get("WGH_HOSTS"):
        from harness.hosts.inventory import from_environment, load_inventory, placement_problems

        try:
            inventory = load_inventory(args.hosts) if args.hosts else from_environment()
        except ScenarioError as exc:
            problems += exc.problems
        if inventory is not None:
            problems += placement_problems(cases, inventory)
    elif any(case.spec.placement for case in cases):
        print("wgh run: note: `placement:` applies to runs over several hosts (--hosts); here every node runs on this machine", file=sys.stderr)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        return EXIT_INVALID
    for note in config_notes(cases):
        print(f"wgh run: note: {note}", file=sys.stderr)
    if args.only_needing or args.except_needing:
        cases = _cases_by_needs(cases, args.only_needing, args.except_needing)
    if shard is not None:
        cases = _shard_cases(cases, shard, args.durations, args.results_dir)
        if cases is None:
            return EXIT_INVALID

    from harness.results.store import ResultsFile

    choices = _userspace_and_engine(args, "run")  # WGH_ENGINE is checked here, before anything is built
    if choices is None:
        return EXIT_INVALID
    userspace = choices[0]
    results = ResultsFile(
        None if args.no_results else args.results_dir, args.backend, run_id=args.run_id, userspace=userspace,
        shard=shard.to_json() if shard is not None else None,
    )
    # --repeat N: every case N times in a row (a shard keeps all of a case's repeats);
    # each run is its own entry in results.json
    runs = [(case, repeat) for case in cases for repeat in range(1, args.repeat + 1)]
    from harness.progress import RunProgress

    # --json keeps its meaning (the results.json document at the end, nothing else on
    # stdout); --jsonl streams one object per finished scenario and a summary
    mode = "jsonl" if args.jsonl else "quiet" if (args.quiet or args.json) else "normal"
    progress = RunProgress(len(runs), mode)
    if args.backend == "auto" and mode == "normal":
        from harness import caps

        picked = caps.resolve_backend("auto")
        why = "the kernel module loads" if picked == "kernel" else "no kernel WireGuard module here"
        print(f"wgh run: backend auto → {picked} ({why}); nodes with their own `backend:` keep it", file=sys.stderr)
    outcomes: list = []

    def finished(result, record: dict) -> None:
        outcomes.append(result)
        results.add(record)
        marker = {"passed": "PASS", "failed": "FAIL", "inconclusive": "INCONCLUSIVE", "error": "ERROR", "skipped": "SKIP"}[result.status]
        seconds = result.build_seconds + result.steps_seconds + result.teardown_seconds
        progress.finished(result.status, f"{marker:5} {result.case.id}  ({seconds:.2f}s) {result.summary()}", report=result.report(), record=record)

    if args.jobs != 1 and len(runs) > 1:
        stopped = _run_side_by_side(args, runs, userspace, results, progress, finished, inventory)
        if stopped is not None:
            return stopped
        outcomes.sort(key=lambda done: done.number)  # the table in the run's order; results.json as they ended
    else:
        if inventory is not None:
            from harness.hosts.engine import engine_over_hosts
        try:
            for case, repeat in runs:
                progress.update(f"{case.id}: building")

                def on_step(step, case=case) -> None:
                    progress.update(f"{case.id}: step {step.index + 1}/{len(case.spec.steps)} {step.kind} {step.outcome}")

                result = run_case(
                    case, backend=args.backend, userspace=userspace, engine=args.engine,
                    artifacts_dir=results.artifacts_dir, on_step=on_step, repeat=repeat, repeats=args.repeat,
                    **({"engine_factory": engine_over_hosts(inventory, case.id)} if inventory is not None else {}),
                )
                finished(result, result.to_json())
        except Interrupted as exc:
            outcomes.append(exc.result)
            results.add(exc.result.to_json())
            print(f"\nwgh run: {exc.summary()}", file=sys.stderr)
            return EXIT_INTERRUPTED
        except KeyboardInterrupt:  # between scenarios: nothing was built at that moment
            print("\nwgh run: interrupted between scenarios; nothing of this run is left", file=sys.stderr)
            return EXIT_INTERRUPTED

    counts = {s: sum(1 for r in outcomes if r.status == s) for s in ("passed", "failed", "inconclusive", "error", "skipped")}
    summary_line = ", ".join(f"{n} {s}" + (" (machine overloaded)" if s == "inconclusive" else "") for s, n in counts.items() if n) or "no cases"
    summary_line += f"; results: {results.path}" if results.path else ""
    report_path = _write_run_report(results) if results.directory is not None and not args.no_report else None
    if report_path is not None:
        summary_line += f"; report: {report_path}"
    # inconclusive is neither a pass nor a failure (--strict-load makes it a failure)
    exit_code = EXIT_OK if all(r.status in ("passed", "skipped", "inconclusive") for r in outcomes) else EXIT_FAILED
    if args.json:  # the same document as results.json
        print(json.dumps(results.data, indent=2, default=str))
    elif mode != "normal":
        progress.summary(
            {s: n for s, n in counts.items() if n}, summary_line,
            run_id=results.run_id, results=str(results.path) if results.path else None, exit_code=exit_code,
        )
    else:
        rows = []
        for r in outcomes:
            backends = ",".join(sorted(set(r.backends.values()))) or "-"
            rows.append([r.case.id + (f" #{r.repeat}" if r.repeats > 1 else ""), r.status, backends, f"{r.build_seconds:.2f}s", f"{r.steps_seconds:.2f}s", r.summary()[:70]])
        print(_table(rows, ["scenario", "status", "backend", "build", "steps", "summary"]))
        print(summary_line)
    if args.configs is not None and mode == "normal":
        from harness.configs.world import WORLD_FILE, pair_table

        for r in outcomes:
            if r.case.file.endswith(WORLD_FILE) and r.steps:
                print(f"\n{r.case.id}:\n{pair_table(r.case, r)}")
    return exit_code


def _configs_world(directory: str, behind_nat: list[str]) -> list:
    from harness.configs.world import WORLD_FILE, parse_behind_nat, world_scenario
    from harness.scenario.load import load_data

    data = world_scenario(Path(directory), parse_behind_nat(behind_nat))
    return load_data(data, str(Path(directory) / WORLD_FILE))


def _run_side_by_side(args, runs, userspace, results, progress, finished, inventory) -> int | None:
    """`wgh run -j`: the cases in worker processes; an exit code if the run stopped early
    (a signal, unreadable --durations), else None."""
    from harness.scenario.steps.registry import runs_alone
    from harness.workers.capacity import auto_workers
    from harness.workers.pool import CaseRun, FinishedCase, PoolInterrupted, run_cases

    from harness import schedule

    # longest first (by the last results when there are any): the run ends with the
    # longest case, not with a long one started last
    found = _recorded_durations(args.durations, args.results_dir)
    if found is None:
        return EXIT_INVALID
    order = {id(case): position for position, case in enumerate(schedule.longest_first([c for c, _ in runs], found[0]))}
    entries = [CaseRun(n, case, repeat, args.repeat, runs_alone(case.spec)) for n, (case, repeat) in enumerate(runs)]
    entries.sort(key=lambda entry: (order[id(entry.case)], entry.repeat))
    if args.jobs == "auto":
        capacity = auto_workers([len(entry.case.spec.nodes) for entry in entries])
        workers = capacity.workers
        print(f"wgh run: -j auto → {workers} workers (limited by {capacity.limited_by})", file=sys.stderr)
    else:
        workers = args.jobs
    results.set_workers(min(workers, len(entries)))
    alone = sum(1 for e in entries if e.alone)
    if alone and not args.quiet:
        print(f"wgh run: {alone} of {len(entries)} cases measure throughput or timing: they run alone, after the others", file=sys.stderr)
    running: dict[int, str] = {}

    def on_step(run: CaseRun, event: dict) -> None:
        running[run.number] = f"{run.case.id} step {event['index'] + 1}/{len(run.case.spec.steps)} {event['kind']} {event['outcome']}"
        progress.update(f"{len(running)} running: " + "; ".join(running.values()))

    def on_done(done: FinishedCase) -> None:
        running.pop(done.number, None)
        finished(done, done.record)

    try:
        run_cases(
            entries, workers, backend=args.backend, userspace=userspace.template if userspace else None, engine=args.engine,
            hosts=inventory.file if inventory is not None else None,
            artifacts_dir=str(results.artifacts_dir) if results.artifacts_dir else None,
            on_step=on_step, on_done=on_done, on_stderr=progress.message,
        )
    except PoolInterrupted as exc:
        for done in exc.finished:
            if done.status == "error" and done.record not in results.data["scenarios"]:
                results.add(done.record)
        left = [s for s in exc.summaries if "could not remove" in s]
        print(f"\nwgh run: interrupted; {'; '.join(left) if left else 'every case was torn down in its worker'}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return None


def _recorded_durations(durations: list[str], results_dir: str) -> tuple[dict[str, float], list[str]] | None:
    """Case durations from `durations` (default: the newest results.json under
    results_dir, if any), and where they came from; None (after saying why) on
    unreadable results."""
    from harness import schedule
    from harness.results.load import ResultsError, newest_results

    sources = list(durations)
    if not sources:
        newest = newest_results(results_dir)
        sources = [str(newest)] if newest is not None else []
    try:
        return schedule.recorded_durations(sources), sources
    except ResultsError as exc:
        print(f"wgh run: --durations: {exc}", file=sys.stderr)
        return None


def _shard_cases(cases: list, shard, durations: list[str], results_dir: str) -> list | None:
    """This shard's cases (longest first), balanced by the recorded durations (see
    _recorded_durations); says which shard and how many cases on stderr."""
    from harness import schedule

    found = _recorded_durations(durations, results_dir)
    if found is None:
        return None
    recorded, sources = found
    mine = schedule.shard(cases, shard.index, shard.count, recorded)
    timed = sum(1 for case in cases if case.id in recorded)
    basis = f"{timed} of them timed by {', '.join(sources)}, the rest estimated" if sources else "estimated from the scenarios (no --durations)"
    print(
        f"wgh run: shard {shard}: {len(mine)} of {len(cases)} cases, ~{schedule.load(mine, recorded):.0f}s "
        f"({basis})",
        file=sys.stderr,
    )
    return mine


def _write_run_report(results) -> Path | None:
    """results/<run-id>/report.html next to results.json: the main job's report."""
    from harness.report.html import render_html
    from harness.report.inputs import ReportInputError, load_inputs

    path = results.directory / "report.html"
    try:
        path.write_text(render_html(load_inputs([str(results.directory)]), f"wgharness run {results.run_id}"))
    except (ReportInputError, OSError) as exc:
        print(f"wgh run: no report: {exc}", file=sys.stderr)
        return None
    return path


def _vm_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, default=1800.0, help="kill the guest after this many seconds (default 1800)")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--memory", default="2G")
    parser.add_argument("--kvm", choices=["auto", "on", "off"], default="auto", help="auto: use KVM only where it works")
    parser.add_argument("--rwdir", action="append", default=[], help="another directory the guest may write (results/ always is)")


def _vm_setup(args: argparse.Namespace, results_dir: str = "results"):
    """The VM's options; ValueError naming a malformed --link."""
    from harness.vm.runner import VmLink, VmOptions

    results = Path(results_dir).resolve()
    results.mkdir(parents=True, exist_ok=True)
    return VmOptions(
        cpus=args.cpus,
        memory=args.memory,
        timeout=args.timeout,
        kvm=args.kvm,
        cwd=Path.cwd(),
        writable=[results] + [Path(d).resolve() for d in args.rwdir],
        links=tuple(VmLink.parse(text) for text in getattr(args, "link", [])),  # `wgh vm`'s own
    )


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@loads("harness.kernels.resolve", "harness.vm.runner")
def cmd_vm(args: argparse.Namespace) -> int:
    from harness.errors import MissingCapability
    from harness.kernels.resolve import KernelSpecError, resolve
    from harness.vm.runner import run_in_vm

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        print("wgh vm: give the command after --, e.g. wgh vm --kernel 6.1 -- pytest scenarios/", file=sys.stderr)
        return EXIT_INVALID
    try:
        kernel = resolve(args.kernel)
        outcome = run_in_vm(kernel, command, _vm_setup(args), log=_log)
    except (KernelSpecError, MissingCapability, ValueError) as exc:
        print(f"wgh vm: {exc}", file=sys.stderr)
        return EXIT_INVALID
    _log(f"wgh vm: guest exited with {outcome.returncode} after {outcome.boot_and_run_seconds:.1f}s ({outcome.accel})")
    return outcome.returncode


@loads("harness.matrix", "harness.vm.runner")
def cmd_matrix(args: argparse.Namespace) -> int:
    from harness.matrix import run_matrix

    return run_matrix(args, _vm_setup(args, args.results_dir), log=_log)


@loads("harness.bisect", "harness.kernels.resolve", "harness.matrix", "harness.vm.runner")
def cmd_bisect(args: argparse.Namespace) -> int:
    """wgh bisect --kernels A..B | --configs V1 V2 ... -- FILES | pytest ARGS."""
    import functools
    from datetime import datetime, timezone

    from harness.bisect import MetricJudge, Trial, bisect, format_bisection, judge_verdicts, max_steps, write_summary
    from harness.errors import MissingCapability
    from harness.kernels.resolve import KernelSpecError, expand, offer, resolve
    from harness.matrix import run_child, slug, wgh_run_argv

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if bool(args.kernels) == bool(args.configs):
        print("wgh bisect: give --kernels A..B (kernels booted in turn) or --configs V1 V2 ... (config versions, in order)", file=sys.stderr)
        return EXIT_INVALID
    if not command and not args.configs:
        print("wgh bisect: give what to run after --: scenario files or folders, or pytest and its arguments", file=sys.stderr)
        return EXIT_INVALID
    pytest_selection = bool(command) and command[0] in ("pytest", "py.test")
    if pytest_selection and args.metric:
        print("wgh bisect: --metric needs scenario runs (their results), not a pytest selection", file=sys.stderr)
        return EXIT_INVALID
    if args.metric and args.repeat is not None and args.repeat < 2:
        print("wgh bisect: --metric judges each step by a t-test: --repeat 2 or more (default 3)", file=sys.stderr)
        return EXIT_INVALID
    results_dir = Path(args.results_dir).resolve()
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    repeat = args.repeat or (3 if args.metric else 1)

    def argv_for(candidate: str, run_id: str) -> list[str]:
        if pytest_selection:
            return [sys.executable, "-m", "pytest", *command[1:]]
        argv = wgh_run_argv(args.backend, results_dir, run_id, command, quiet=True, jobs=args.jobs, repeat=repeat)
        return argv + (["--configs", candidate] if args.configs else [])

    def finished(run_id: str, exit_code: int | None, error: str = "") -> Trial:
        path = results_dir / run_id / "results.json"
        results = None
        if not pytest_selection:
            try:
                results = json.loads(path.read_text())
            except (OSError, ValueError):
                error = error or f"no results at {path} (exit {exit_code})"
        return Trial(exit_code, results, error)

    if args.kernels:
        from harness.vm.runner import run_in_vm

        offered = functools.cache(offer)
        try:
            candidates = expand(args.kernels, offered)
            options = _vm_setup(args, str(results_dir))
        except (KernelSpecError, MissingCapability, ValueError) as exc:
            print(f"wgh bisect: --kernels {args.kernels}: {exc}", file=sys.stderr)
            return EXIT_INVALID

        def try_candidate(spec: str) -> Trial:
            run_id = f"{stamp}-bisect-{slug(spec)}"
            try:
                kernel = resolve(spec, offered=offered)
            except (KernelSpecError, MissingCapability) as exc:
                return Trial(None, error=f"kernel {spec}: {exc}")
            outcome = run_in_vm(kernel, argv_for(spec, run_id), options, log=_log)
            return finished(run_id, outcome.returncode, f"timed out after {options.timeout:g}s" if outcome.timed_out else "")
    else:
        candidates = list(args.configs)
        missing = [c for c in candidates if not Path(c).is_dir()]
        if missing:
            print(f"wgh bisect: --configs: not a folder of config files: {', '.join(missing)}", file=sys.stderr)
            return EXIT_INVALID

        def try_candidate(version: str) -> Trial:
            run_id = f"{stamp}-bisect-{slug(Path(version).name)}"
            return finished(run_id, run_child(argv_for(version, run_id), sys.stderr))

    if len(candidates) < 2:
        print(f"wgh bisect: {len(candidates)} candidate{'s' if len(candidates) != 1 else ''} ({', '.join(candidates) or 'none'}): a good and a bad one at least", file=sys.stderr)
        return EXIT_INVALID
    judge = MetricJudge(args.metric, args.threshold, args.alpha, min(repeat, 3)) if args.metric else judge_verdicts
    _log(f"wgh bisect: {len(candidates)} candidates, {candidates[0]} (good) … {candidates[-1]} (bad): at most "
         f"{max_steps(len(candidates), with_good_end=bool(args.check_good or args.metric))} steps")
    result = bisect(candidates, try_candidate, judge, check_good=args.check_good, log=_log)
    print(format_bisection(result))
    summary = results_dir / f"{stamp}-bisect.json"
    write_summary(result, summary)
    print(f"bisect: {summary}")
    return EXIT_OK if result.found else EXIT_FAILED


@loads("harness.scenario.load")
def cmd_validate(args: argparse.Namespace) -> int:
    from harness.scenario.load import load_file

    bad = 0
    for file in scenario_files(args.files):
        try:
            cases = load_file(file)
            print(f"{file}: ok ({len(cases)} case{'s' if len(cases) != 1 else ''})")
            for note in config_notes(cases):
                print(f"{file}: note: {note}", file=sys.stderr)
        except ScenarioError as exc:
            bad += 1
            for problem in exc.problems:
                print(problem, file=sys.stderr)
    return EXIT_INVALID if bad else EXIT_OK


def _one_case(args: argparse.Namespace, command: str) -> Any:
    """The one case of `args.file` that `--case` names (or its only one); None, having
    said why on stderr."""
    from harness.scenario.load import load_file

    try:
        cases = load_file(args.file)
    except ScenarioError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None
    chosen = [c for c in cases if args.case in (c.id, c.case_id)] if args.case is not None else cases
    if len(chosen) != 1:
        names = ", ".join(c.id for c in cases)
        print(f"wgh {command}: {args.file} has {'these' if len(chosen) else 'no such'} cases: {names}; choose one with --case", file=sys.stderr)
        return None
    return chosen[0]


@loads("harness.configs.export", "harness.scenario.load")
def cmd_export(args: argparse.Namespace) -> int:
    from harness.configs.export import export_case

    case = _one_case(args, "export")
    if case is None:
        return EXIT_INVALID
    try:
        written = export_case(case, Path(args.directory), form=args.format)
    except (ValueError, OSError) as exc:
        print(f"wgh export: {exc}", file=sys.stderr)
        return EXIT_INVALID
    for path in written:
        print(path)
    return EXIT_OK


@loads("harness.shell", "harness.run", "harness.scenario.load", "harness.caps")
def cmd_shell(args: argparse.Namespace) -> int:
    from harness.shell import open_shell

    case = _one_case(args, "shell")
    if case is None:
        return EXIT_INVALID
    choices = _userspace_and_engine(args, "shell", case.spec.engine)
    if choices is None:
        return EXIT_INVALID
    userspace, engine = choices
    return open_shell(case, until=args.until, backend=args.backend, userspace=userspace, engine=engine)


def _userspace_and_engine(args: argparse.Namespace, command: str, file_engine: str | None = None) -> tuple[UserspaceCommand | None, str] | None:
    """--userspace and the engine (--engine, else WGH_ENGINE, else the default; a file's
    own wins), checked before anything is built: None, after saying why, if either is wrong."""
    try:
        userspace = UserspaceCommand.parse(args.userspace) if args.userspace else None
    except TemplateError as exc:
        print(f"wgh {command}: --userspace: {exc}", file=sys.stderr)
        return None
    try:
        return userspace, choose_engine(args.engine, file_engine)
    except EngineChoiceError as exc:
        print(f"wgh {command}: {exc}", file=sys.stderr)
        return None


@loads("harness.doctor")
def cmd_doctor(args: argparse.Namespace) -> int:
    from harness.doctor import checks

    rows = []
    for cap in checks():
        rows.append(["yes" if cap.ok else "NO", cap.name, cap.detail, "" if cap.ok else cap.how_to_get])
    print(_table(rows, ["ok", "capability", "detail", "how to get it"]))
    return EXIT_OK


@loads("harness.remote.worker")
def cmd_worker(args: argparse.Namespace) -> int:
    from harness.remote.worker import main as serve

    return serve()


@loads("harness.cleanup", "harness.hosts.inventory", "harness.hosts.clean")
def cmd_clean(args: argparse.Namespace) -> int:
    from harness.cleanup import reap

    inventory = None
    if args.hosts or os.environ.get("WGH_HOSTS"):  # read first: a wrong file cleans nothing
        from harness.errors import ScenarioError
        from harness.hosts.inventory import from_environment, load_inventory

        try:
            inventory = load_inventory(args.hosts) if args.hosts else from_environment()
        except ScenarioError as exc:
            print(f"wgh clean: {exc}", file=sys.stderr)
            return EXIT_INVALID
    report = reap(sweep=True)
    if report.empty and not report.failures:
        print("nothing to clean")
    else:
        if report.runs:
            print(f"runs reaped: {', '.join(report.runs)}")
        for what, items in (("namespaces removed", report.namespaces), ("processes ended", report.processes), ("sockets removed", report.sockets)):
            if items:
                print(f"{what}: {', '.join(items)}")
        for failure in report.failures:
            print(f"could not remove: {failure}", file=sys.stderr)
    failed = bool(report.failures)
    if inventory is not None:
        from harness.hosts.clean import clean_hosts

        for host in clean_hosts(inventory):
            for line in host.lines():
                print(line, file=sys.stdout if host.ok else sys.stderr)
            failed = failed or not host.ok
    return EXIT_FAILED if failed else EXIT_OK


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _jobs(text: str) -> int | str:
    return "auto" if text == "auto" else _positive_int(text)


def _at_least_two(text: str) -> int:
    value = _positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError("at least 2 (a t-test needs 2 values a side)")
    return value


def _probability(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"a probability between 0 and 1 (e.g. 0.01), not {text}")
    return value


def _fraction(text: str) -> float:
    """`5%` or a bare `5` (percent) → 0.05."""
    from harness.units import parse_percent

    try:
        return parse_percent(text) / 100
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


@loads("harness.pressure", "harness.results.compare", "harness.results.history", "harness.results.load")
def cmd_compare(args: argparse.Namespace) -> int:
    from harness.results.compare import compare, format_report
    from harness.results.load import ResultsError

    if args.history:
        return _compare_with_history(args)
    if args.base or args.new:
        if not (args.base and args.new) or args.sets:
            print("wgh compare: give BASE NEW, or --base RESULTS... and --new RESULTS... (not both forms)", file=sys.stderr)
            return EXIT_INVALID
        base_paths, new_paths = args.base, args.new
    elif args.cases and len(args.sets) == 1:  # two cases of one run
        base_paths, new_paths = args.sets, args.sets
    elif len(args.sets) != 2:
        print(
            f"wgh compare: give BASE NEW (two results, {len(args.sets)} given), or several a side as "
            "--base RESULTS... --new RESULTS..., or a folder of runs as one side",
            file=sys.stderr,
        )
        return EXIT_INVALID
    else:
        base_paths, new_paths = args.sets[:1], args.sets[1:]
    if not args.cases:
        try:
            base_runs, new_runs = _runs_of(base_paths), _runs_of(new_paths)
        except ResultsError as exc:
            print(f"wgh compare: {exc}", file=sys.stderr)
            return EXIT_INVALID
        # separate runs, not a matrix's combinations nor a shard without its run
        separate = not any(s.label or (s.data.get("environment") or {}).get("shard") for s in base_runs + new_runs)
        if separate and max(len(base_runs), len(new_runs)) > 1:
            return _compare_runs(args, base_runs, new_runs)
    try:
        base, new = _compare_side("--base", base_paths), _compare_side("--new", new_paths)
    except ResultsError as exc:
        print(f"wgh compare: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if args.cases:
        from harness.results.compare import one_case

        base_case, new_case = args.cases
        try:
            base, new = one_case(base, base_case, f"{base_case} → {new_case}"), one_case(new, new_case, f"{base_case} → {new_case}")
        except ValueError as exc:
            print(f"wgh compare: --cases: {exc}", file=sys.stderr)
            return EXIT_INVALID
    for note in dict.fromkeys(note for s in base + new for note in s.notes):
        print(f"wgh compare: note: {note}", file=sys.stderr)
    report = compare(base, new, **_judging(args))
    if sum(row.p_value is not None for row in report.rows) > 1:
        report.notes.append(
            "run against run: the repeats within a run do not measure how much runs differ from each other (RTTs and "
            "handshake times on a shared machine do, more than within a run); several runs a side do (--base R1 R2 R3 "
            "--new R4 R5 R6), or a history of runs: wgh history add, then wgh compare --history (docs/regressions.md#calibration)"
        )
    return _print_comparison(args, report)


def _compare_runs(args: argparse.Namespace, base_runs: list, new_runs: list) -> int:
    """Several separate runs a side: each run one observation (compare.compare_runs)."""
    from harness.results.compare import compare_runs
    from harness.results.load import identity

    for option, runs in (("--base", base_runs), ("--new", new_runs)):
        kinds = {identity(r.data.get("environment") or {}) for r in runs}
        if len(kinds) > 1:
            print(f"wgh compare: {option}: its runs were taken in different environments ({'; '.join(sorted(kinds))}): "
                  "compare each environment's runs on their own", file=sys.stderr)
            return EXIT_INVALID
    for note in dict.fromkeys(note for s in base_runs + new_runs for note in s.notes):
        print(f"wgh compare: note: {note}", file=sys.stderr)
    report = compare_runs(base_runs, new_runs, **_judging(args))
    report.notes.append(f"runs against runs: {len(base_runs)} against {len(new_runs)}, each run's value one observation")
    return _print_comparison(args, report)


def _judging(args: argparse.Namespace) -> dict:
    """wgh compare's statistics options, as compare_sides takes them."""
    from harness import pressure

    judged_whatever_the_load = args.strict_load or pressure.strict_load()
    return {
        "threshold": args.threshold, "alpha": args.alpha, "family": args.family, "min_samples": args.min_samples,
        "stall_threshold": None if judged_whatever_the_load else pressure.stall_threshold(),
    }


def _print_comparison(args: argparse.Namespace, report) -> int:
    from harness.results.compare import format_report

    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(format_report(report, verbose=args.all))
    return EXIT_FAILED if report.regressions else EXIT_OK


def _compare_with_history(args: argparse.Namespace) -> int:
    """wgh compare --history DIR NEW...: the new runs against the stored runs of their environments."""
    from harness.results.history import compare_with_history
    from harness.results.load import ResultsError

    if args.base or args.cases:
        print("wgh compare: --history is the baseline: give only the new results (NEW... or --new), not --base or --cases", file=sys.stderr)
        return EXIT_INVALID
    paths = args.sets + args.new
    if not paths:
        print("wgh compare: --history DIR needs the new results to judge (NEW...)", file=sys.stderr)
        return EXIT_INVALID
    try:
        new = _runs_of(paths)
        report = compare_with_history(Path(args.history), new, window=args.window, host_class=args.host_class, **_judging(args))
    except ResultsError as exc:
        print(f"wgh compare: {exc}", file=sys.stderr)
        return EXIT_INVALID
    for note in dict.fromkeys(note for s in new for note in s.notes):
        print(f"wgh compare: note: {note}", file=sys.stderr)
    return _print_comparison(args, report)


def _runs_of(paths: list[str]) -> list:
    """The runs among compare's inputs, each one observation: every input its own run
    (a folder of runs is one, merged, as load_result_sets reads it), and a sharded
    run's shards given one by one (the same environment and shard count, as the
    workflow passes them) merged into one, named after their common folder."""
    from harness.results.load import identity, load_result_sets, merge_runs

    runs, shards = [], {}
    for result_set in (s for path in paths for s in load_result_sets(path)):
        shard = (result_set.data.get("environment") or {}).get("shard")
        if shard and not result_set.label:
            shards.setdefault((identity(result_set.data.get("environment") or {}), shard.get("count")), []).append(result_set)
        else:
            runs.append(result_set)
    for group in shards.values():
        if len(group) == 1:
            runs += group
            continue
        merged = merge_runs(Path(os.path.commonpath([str(s.path) for s in group])), [(s.path, s.data) for s in group])
        merged.notes[:0] = [note for s in group for note in s.notes]
        runs.append(merged)
    return runs


def _as_one_run(run_id: str, sets: list) -> list:
    """Result sets (e.g. a CI run's shards) as one run named `run_id`, per environment
    (the shards' cases on the runner, and netem's in a VM, stay apart)."""
    from harness.results.load import identity, merge_runs

    by_environment: dict[str, list] = {}
    for result_set in sets:
        by_environment.setdefault(identity(result_set.data.get("environment") or {}), []).append(result_set)
    return [merge_runs(Path(run_id), [(s.path, s.data) for s in group]) for group in by_environment.values()]


@loads("harness.results.history", "harness.results.load")
def cmd_history(args: argparse.Namespace) -> int:
    """wgh history add DIR RESULTS... / wgh history show DIR."""
    from harness.results.history import add, keys
    from harness.results.load import ResultsError

    directory = Path(args.directory)
    try:
        if args.action == "show":
            if not directory.is_dir():
                raise ResultsError(f"{directory}: no such history folder")
            held = keys(directory)
            for key, runs in held:
                print(f"{runs:4d} runs  {key.describe()}  ({key.filename})")
            if not held:
                print(f"{directory}: no runs yet (wgh history add {directory} RESULTS...)")
            return EXIT_OK
        if not args.results:
            print("wgh history add: give the results to add (run folders, results.json, matrix summaries, folders of runs)", file=sys.stderr)
            return EXIT_INVALID
        sets = [s for path in args.results for s in _compare_side("results", [path])]
        if args.run_id:
            sets = _as_one_run(args.run_id, sets)
        for key, run_id, added in add(directory, sets, args.host_class):
            print(f"{'added' if added else 'already there'}: {run_id} → {key.describe()}")
    except ResultsError as exc:
        print(f"wgh history: {exc}", file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK


def _compare_side(option: str, paths: list[str]) -> list:
    """One side of wgh compare: its inputs' result sets, the plain runs among them
    merged into one (as a folder of runs is: the same environment, shards noted)."""
    from harness.results.load import load_result_sets, merge_runs

    sets = [s for path in paths for s in load_result_sets(path)]
    plain = [s for s in sets if not s.label]
    if len(plain) < 2:
        return sets
    merged = merge_runs(Path(option), [(s.path, s.data) for s in plain])
    merged.notes[:0] = [note for s in plain for note in s.notes]
    return [s for s in sets if s.label] + [merged]


@loads("harness.scenario.schema")
def cmd_schema(args: argparse.Namespace) -> int:
    from harness.scenario.schema import schema_json

    sys.stdout.write(schema_json())
    return EXIT_OK


def _choices_epilog() -> str:
    """What each --backend and --engine choice is, from their tables."""
    from harness.backends import BACKENDS
    from harness.engines import ENGINES

    lines = ["backends:"] + [f"  {k.name:<14} {k.description}" for k in BACKENDS.values()]
    lines += ["engines:"] + [f"  {k.name:<14} {k.description}" for k in ENGINES.values()]
    return "\n".join(lines)


NEEDS_CHOICES = ("netem", "kernel_wireguard", "wireguard_go", "userspace")


def build_parser() -> argparse.ArgumentParser:
    from harness import __version__

    parser = argparse.ArgumentParser(prog="wgh", description="WireGuard test harness")
    parser.add_argument("--version", action="version", version=f"wgharness {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run", help="build, check and tear down scenarios", epilog=_choices_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    run.add_argument("files", nargs="*", help="scenario files or directories")
    run.add_argument(
        "--configs", metavar="DIR", default=None,
        help="also run a world built around the wg-quick (*.conf) and networkd (*.netdev) files in DIR: one node per "
        "file on an emulated internet, a handshake and pings per peer pair, and a peer-pair table (runs one case at a time)",
    )
    run.add_argument(
        "--behind-nat", metavar="NODE[=TYPE]", action="append", default=[],
        help="with --configs: put this node behind its own NAT (default type port-restricted); repeatable",
    )
    run.add_argument("--backend", default=os.environ.get("WGH_BACKEND", AUTO), choices=CHOICES, help="WireGuard implementation for nodes that pick none (default: auto = kernel if it loads)")
    run.add_argument(
        "--engine", choices=ENGINE_CHOICES, default=None,
        help=f"what builds the network for files that name no `engine:` (default: ${ENGINE_ENV_VAR}, else {ENGINE_DEFAULT})",
    )
    run.add_argument(
        "--hosts", metavar="FILE", default=None,
        help="spread each case over the hosts of this inventory, a worker on each over SSH (default: the file "
        "WGH_HOSTS names, if set); prints where each node went. See docs/multihost.md",
    )
    run.add_argument(
        "--userspace",
        default=os.environ.get("WGH_USERSPACE") or None,
        metavar="TEMPLATE",
        help="the command that starts the userspace backend, with {ifname}, e.g. 'boringtun-cli --foreground {ifname}' (run without a shell)",
    )
    run.add_argument("--results-dir", default="results")
    run.add_argument("--no-results", action="store_true", help="do not write results.json")
    run.add_argument("--no-report", action="store_true", help="do not write report.html next to results.json")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress, no table: only failures (stderr) and the summary line")
    output = run.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the results.json document on stdout at the end (nothing else)")
    output.add_argument("--jsonl", action="store_true", help="JSON Lines on stdout for CI: one object per finished scenario, then a summary object")
    run.add_argument("--run-id", default=None, help="name of the results folder (default: time and PID)")
    run.add_argument("--repeat", type=_positive_int, default=1, metavar="N", help="run each scenario case N times, keeping every run's measurements (for wgh compare)")
    run.add_argument(
        "--strict-load", action="store_true", default=None,
        help="a timing or rate check that fails while the CPU was stalled counts as a failure, not as inconclusive "
        "(default: retried once, then inconclusive; $WGH_STRICT_LOAD=1 does the same; threshold: $WGH_STALL_THRESHOLD, default 0.5)",
    )
    run.add_argument(
        "-j", "--jobs", type=_jobs, default=1, metavar="N",
        help="run up to N cases side by side in worker processes, or `auto` (by memory, files and namespaces allowed; "
        "cases mostly wait on timers, so several per CPU); cases that measure throughput or keepalive timing run alone (default 1)",
    )
    for flag, what in (("--only-needing", "only the cases that need"), ("--except-needing", "only the cases that do not need")):
        run.add_argument(
            flag, action="append", default=[], choices=NEEDS_CHOICES, metavar="CAPABILITY",
            help=f"{what} this ({', '.join(NEEDS_CHOICES)}; repeatable): e.g. the netem cases in a VM, the rest on a "
            "runner whose kernel lacks netem (selected before --shard deals them)",
        )
    run.add_argument(
        "--shard", default=None, metavar="I/N",
        help="run only shard I of N (from 1): every machine given the same files and --durations runs its own share of the cases, balanced by duration",
    )
    run.add_argument(
        "--durations", action="append", default=[], metavar="RESULTS",
        help="with --shard: results (a run folder, results.json, a folder of runs or a matrix summary; repeatable) whose "
        "wall times balance the shards (default: the newest results.json under --results-dir, if any; else estimates)",
    )
    run.set_defaults(func=cmd_run)

    vm = sub.add_parser("vm", help="run a command inside a VM booted from a chosen kernel")
    vm.add_argument(
        "--kernel", required=True,
        help="a version (6.1, 6.1.0-53, 6.12.115, latest: Debian's archive on Debian, Ubuntu's on Ubuntu), a kernel image, "
        "a .deb or a folder of .debs, a kernel build tree, or an installed release",
    )
    _vm_options(vm)
    vm.add_argument(
        "--link", action="append", default=[], metavar="LOCAL:REMOTE",
        help="an Ethernet to another VM (in the guest: wghlink0, then wghlink1, …): this VM's unix datagram socket LOCAL, the other's "
        "REMOTE (that VM gets --link REMOTE:LOCAL); nothing touches the host's network",
    )
    vm.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    vm.set_defaults(func=cmd_vm)

    matrix = sub.add_parser("matrix", help="run scenarios across kernels x backends x engines, each combination in its own VM")
    matrix.add_argument("files", nargs="*", default=["scenarios"], help="scenario files or directories (default: scenarios)")
    matrix.add_argument(
        "--kernels", required=True,
        help="comma-separated kernel specs: versions (6.1, 6.1.0-53, 6.12.115), 'latest', 'all' (every kernel this host's apt offers), "
        "ranges (6.1.0-47..6.1.0-57), paths (an image, a .deb, a kernel build tree); 'host' runs without a VM",
    )
    matrix.add_argument("--backends", default="kernel,wireguard-go", help=f"comma-separated, of {', '.join(CHOICES)} (default: kernel,wireguard-go)")
    matrix.add_argument(
        "--engines", default=ENGINE_DEFAULT, help=f"comma-separated, of {', '.join(ENGINE_CHOICES)} (default: {ENGINE_DEFAULT}): each is a column of its own"
    )
    matrix.add_argument("--userspace", default=os.environ.get("WGH_USERSPACE") or None, metavar="TEMPLATE", help="the userspace backend's command, as for wgh run")
    matrix.add_argument("--results-dir", default="results")
    matrix.add_argument("-j", "--jobs", type=_jobs, default=1, metavar="N", help="each combination's wgh run runs N cases side by side (or auto), as wgh run -j")
    matrix.add_argument(
        "--repeat", type=_positive_int, default=1, metavar="N",
        help="each combination runs every case N times, as wgh run --repeat (3 a side are enough for wgh compare)",
    )
    matrix.add_argument(
        "--shard", default=None, metavar="I/N",
        help="run only shard I of N (from 1) of the combinations (kernel × backend, in their order, dealt round-robin): "
        "one CI machine per shard, each booting only its own VMs",
    )
    matrix_output = matrix.add_mutually_exclusive_group()
    matrix_output.add_argument("-q", "--quiet", action="store_true", help="only failures and the final table")
    matrix_output.add_argument("--jsonl", action="store_true", help="JSON Lines on stdout: one object per scenario and per combination, then a summary")
    _vm_options(matrix)
    matrix.set_defaults(func=cmd_matrix)

    bis = sub.add_parser(
        "bisect", help="find the first bad kernel (booted in turn) or config version between a good and a bad one",
        description="The first candidate is taken as good, the last is checked first; each step halves the range "
        "(13 kernels: 5 boots). A step is bad when a case fails (or the pytest selection fails), or with --metric "
        "when that metric regressed against the good end's runs. Exit 0 with the first bad one found, 1 otherwise.",
    )
    bis.add_argument("--kernels", default=None, help="a kernel range (6.1.0-47..6.12.118) or comma-separated specs, oldest (good) first, as for wgh matrix")
    bis.add_argument("--configs", nargs="+", default=None, metavar="DIR", help="config versions (folders of config files, as wgh run --configs), oldest (good) first")
    bis.add_argument("--backend", default=os.environ.get("WGH_BACKEND", AUTO), choices=CHOICES)
    bis.add_argument("--metric", default=None, help="judge by this metric (a key such as bulk.throughput, or 'scenario :: metric') instead of verdicts")
    bis.add_argument("--threshold", type=_fraction, default=0.05, help="with --metric: the smallest change that counts (default 5%%)")
    bis.add_argument("--alpha", type=_probability, default=0.01, help="with --metric: the t-test's level (default 0.01)")
    bis.add_argument("--repeat", type=_positive_int, default=None, metavar="N", help="runs of each case per step (default 1; 3 with --metric)")
    bis.add_argument("--check-good", action="store_true", help="boot the good end too (default: taken as good)")
    bis.add_argument("-j", "--jobs", type=_jobs, default=1, metavar="N", help="cases side by side in each step's run, as wgh run -j")
    bis.add_argument("--results-dir", default="results")
    _vm_options(bis)
    bis.add_argument("command", nargs=argparse.REMAINDER, help="after --: scenario files or folders, or pytest and its arguments")
    bis.set_defaults(func=cmd_bisect)

    shell = sub.add_parser(
        "shell",
        help="build a scenario's network, run its steps up to --until, then a prompt inside it (debug by hand)",
        description="Build the network, run steps 1..N, then a prompt: '<node> <command>' runs in a node; nodes, "
        "diagnose A B, steps (the rest), mininet (Mininet's CLI, on that engine); exit, Ctrl-D or Ctrl-C tear it down.",
    )
    shell.add_argument("file", help="a scenario file")
    shell.add_argument("--case", default=None, help="which matrix case (its name or id), if the file has several")
    shell.add_argument("--until", type=int, default=0, metavar="N", help="run steps 1..N before the prompt (default 0: none)")
    shell.add_argument("--backend", default=os.environ.get("WGH_BACKEND", AUTO), choices=CHOICES)
    shell.add_argument("--engine", choices=ENGINE_CHOICES, default=None)
    shell.add_argument("--userspace", default=os.environ.get("WGH_USERSPACE") or None, metavar="TEMPLATE")
    shell.set_defaults(func=cmd_shell)

    export = sub.add_parser(
        "export",
        help="write every node's config of a scenario, with keys, as wg-quick (or networkd) files to bring up by hand",
        description="Files are 0600 in a 0700 directory and hold private keys made for this export (or, with "
        "configs: {keys: as-is}, the imported files' own): keep them private. Endpoints are the addresses the "
        "harness gives the nodes.",
    )
    export.add_argument("file", help="a scenario file")
    export.add_argument("directory", help="where to write <node>.conf (or <node>.netdev and <node>.network)")
    export.add_argument("--case", default=None, help="which matrix case (its name or id), if the file has several")
    export.add_argument("--format", choices=("wg-quick", "networkd"), default="wg-quick")
    export.set_defaults(func=cmd_export)

    validate = sub.add_parser("validate", help="check scenario files without building anything")
    validate.add_argument("files", nargs="+")
    validate.set_defaults(func=cmd_validate)

    sub.add_parser("doctor", help="what this host can do, and how to get what it lacks").set_defaults(func=cmd_doctor)
    clean = sub.add_parser("clean", help="remove what crashed runs left behind (here, and on --hosts)")
    clean.add_argument(
        "--hosts", metavar="FILE", default=None,
        help="also on every host of this inventory, over SSH (default: the file WGH_HOSTS names, if set)",
    )
    clean.set_defaults(func=cmd_clean)
    sub.add_parser("schema", help="print the scenario JSON Schema").set_defaults(func=cmd_schema)
    sub.add_parser(
        "worker",
        help="serve a controller on stdin/stdout (a controller starts it, over SSH on another machine)",
        description="Builds the part of a run's network the controller sends, answers for its nodes, and removes "
        "everything when the connection ends. Not for interactive use: it speaks frames, not text.",
    ).set_defaults(func=cmd_worker)

    comp = sub.add_parser(
        "compare", help="compare two result sets metric by metric; exit 1 on a regression",
        description="Each side is a run folder, its results.json, a wgh matrix summary, or a folder of runs (e.g. the "
        "shards of one run), merged into one set; --base and --new take several (merged likewise).",
    )
    comp.add_argument("sets", nargs="*", metavar="BASE NEW", help="the baseline, then the candidate")
    comp.add_argument("--base", nargs="+", action="extend", default=[], metavar="RESULTS", help="the baseline as several results, merged (e.g. its shards)")
    comp.add_argument("--new", nargs="+", action="extend", default=[], metavar="RESULTS", help="the candidate as several results, merged")
    comp.add_argument("--threshold", type=_fraction, default=0.05, help="smallest relative change of the medians that counts (default 5%%)")
    comp.add_argument(
        "--alpha", type=_probability, default=0.01,
        help="false-alarm rate over all the metrics of the comparison (default 0.01; see --family)",
    )
    comp.add_argument(
        "--family", choices=("bh", "holm", "none"), default="bh",
        help="how the metrics' p-values are adjusted for being tested together: bh (Benjamini-Hochberg, default: with "
        "nothing changed, a false alarm in at most alpha of comparisons; of what it flags, at most alpha false), holm "
        "(at most alpha chance of any false flag, whatever else changed), none (alpha per metric)",
    )
    comp.add_argument("--min-samples", type=_at_least_two, default=3, help="runs needed on each side to judge a metric (default 3, at least 2)")
    comp.add_argument(
        "--history", metavar="DIR",
        help="judge NEW against a results history (wgh history add) of the same host class, kernel, backend and engine, "
        "instead of a BASE",
    )
    comp.add_argument("--window", type=_positive_int, default=20, metavar="RUNS", help="with --history: the newest RUNS runs are the baseline (default 20)")
    comp.add_argument("--host-class", metavar="NAME", help="with --history: judge against this host class's runs (default: the one NEW recorded)")
    comp.add_argument("--all", action="store_true", help="list unchanged metrics too")
    comp.add_argument(
        "--strict-load", action="store_true",
        help="judge a change measured while the machine was overloaded (default: inconclusive, not a regression; "
        "$WGH_STRICT_LOAD=1 does the same; threshold: $WGH_STALL_THRESHOLD, default 0.5)",
    )
    comp.add_argument("--json", action="store_true", help="print the comparison as JSON")
    comp.add_argument(
        "--cases", nargs=2, metavar=("BASE_CASE", "NEW_CASE"), default=None,
        help="compare these two cases with each other (ids such as 'name[v1]', or matrix case names), e.g. two config "
        "versions of one matrix; then one RESULTS serves as both sides",
    )
    comp.set_defaults(func=cmd_compare)

    hist = sub.add_parser(
        "history", help="keep runs in a results history, the baseline of wgh compare --history",
        description="A history is a folder of JSON Lines files, one per host class, kernel, backend and engine; each "
        "run is added once. The host class is $WGH_HOST_CLASS when the run was taken, else the machine's CPU count and model.",
    )
    hist.add_argument("action", choices=("add", "show"), help="add: append runs; show: the environments held and their run counts")
    hist.add_argument("directory", metavar="DIR", help="the history folder (created by add)")
    hist.add_argument("results", nargs="*", metavar="RESULTS", help="add: run folders, results.json files, matrix summaries or folders of runs")
    hist.add_argument("--host-class", metavar="NAME", help="add: file the runs under this host class instead of the one they recorded")
    hist.add_argument(
        "--run-id", metavar="ID",
        help="add: all RESULTS are one run (e.g. a CI run's shards), stored once under this id, one per environment",
    )
    hist.set_defaults(func=cmd_history)

    from harness.report.command import add_parser as add_report_parser

    add_report_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None, *, early_signals: Sequence[int] = ()) -> int:
    """`early_signals`: a list harness.entry fills with the signals that came while the
    harness was being imported, read once main's own handlers are installed."""
    # first thing: a SIGTERM while arguments or files are still being read exits 130 too
    interrupts.install()
    try:
        with interrupts.held():
            if early_signals:  # nothing is built yet
                raise KeyboardInterrupt
            args = build_parser().parse_args(argv)
            checkpoint("startup")
            for module in getattr(args.func, "loads", ()):
                importlib.import_module(module)
        return args.func(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `wgh schema | head`
        sys.stderr.close()
        return EXIT_OK


def console_main(early_signals: Sequence[int] = ()) -> None:
    """What the `wgh` script runs (through harness.entry). Everything is torn down and
    written by the time main() returns, so skip the interpreter's slow teardown of a
    large heap (~0.1 s of a ~0.5 s run)."""
    code = main(early_signals=early_signals)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):
        pass
    os._exit(code)


if __name__ == "__main__":
    console_main()
