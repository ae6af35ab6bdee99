"""What spans the session: results.json, the expected-failure summary, the
pytest-benchmark feed, the signal handlers (only where networks get built), and the
--vm-kernel re-run of the whole session inside a VM."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from harness.plugin.options import shard_option, userspace_command

_results_key = pytest.StashKey[Any]()
_expected_failures_key = pytest.StashKey[list]()
_saved_handlers_key = pytest.StashKey[dict]()
HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGHUP)  # pytest turns SIGINT into KeyboardInterrupt itself


# --- results.json, the expected-failure summary, pytest-benchmark -------------------------


def results_file(config: pytest.Config) -> Any:
    """The session's ResultsFile, made when the first scenario runs; None with --no-results.
    Under pytest-xdist every worker keeps its entries (and writes its artifacts into the
    controller's run directory); the controller writes the one results.json."""
    if config.getoption("no_results"):
        return None
    if config.stash.get(_results_key, None) is None:
        from harness.results.store import ResultsFile

        directory = Path(config.getoption("results_dir"))
        if not directory.is_absolute():
            directory = Path(config.invocation_params.dir) / directory
        worker = getattr(config, "workerinput", None)
        shard = shard_option(config)
        config.stash[_results_key] = ResultsFile(
            directory, config.getoption("wg_backend"), userspace=userspace_command(config), shard=shard.to_json() if shard else None,
            run_id=_xdist_run_id(config) if worker is None else worker[_RUN_ID], write_document=worker is None,
        )
    return config.stash[_results_key]


# --- pytest-xdist: workers run the scenarios, the controller writes results.json ---------

_RUN_ID = "wgh_results_run_id"
_run_id_key = pytest.StashKey[str]()
_workers_key = pytest.StashKey[int]()  # the controller's count of xdist workers


def _xdist_run_id(config: pytest.Config) -> str | None:
    """The run id the controller gave its workers (None without xdist: a new one)."""
    return config.stash.get(_run_id_key, None)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Controller: every worker writes artifacts under one run directory."""
    from harness.results.store import new_results_id

    config = node.config
    if _run_id_key not in config.stash:
        config.stash[_run_id_key] = new_results_id()
    node.workerinput[_RUN_ID] = config.stash[_run_id_key]
    config.stash[_workers_key] = config.stash.get(_workers_key, 0) + 1


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """Controller: a worker's entries and expected failures join the session's."""
    output = getattr(node, "workeroutput", None) or {}
    records = output.get("wgh_records", [])
    results = results_file(node.config) if records else None
    if results is not None:
        results.set_workers(node.config.stash.get(_workers_key, 1))
    for record in records:
        results.add(record)
    node.config.stash.setdefault(_expected_failures_key, []).extend(output.get("wgh_expected", []))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Worker: hand what it recorded to the controller."""
    output = getattr(session.config, "workeroutput", None)
    if output is None:
        return
    results = session.config.stash.get(_results_key, None)
    output["wgh_records"] = results.data["scenarios"] if results is not None else []
    output["wgh_expected"] = session.config.stash.get(_expected_failures_key, [])


def record_case(item: pytest.Item, result: Any, runs: list[dict[str, Any]]) -> None:
    """What the session keeps of a scenario item's last run (its expected failures, for
    the summary) and of all its runs (their timings, for pytest-benchmark)."""
    from harness.results.bench import feed

    _note_expected_failures(item, result)
    feed(item, runs, lambda: _environment(item.config))  # made only if pytest-benchmark asks


_environment_key = pytest.StashKey[dict]()


def _environment(config: pytest.Config) -> dict[str, Any]:
    """The session's results.json environment (made once, also with --no-results): the
    pytest-benchmark entries' history key."""
    results = results_file(config)
    if results is not None:
        return results.data["environment"]
    if _environment_key not in config.stash:
        from harness.results.environment import environment

        config.stash[_environment_key] = environment(config.getoption("wg_backend"), userspace_command(config))
    return config.stash[_environment_key]


def _note_expected_failures(item: pytest.Item, result: Any) -> None:
    """A negative scenario passes because its check failed for the stated cause:
    show that diagnosis, as a user would see it in a real failure."""
    lines = [
        f"{item.nodeid}: step {step.index + 1}: {step.title}: {step.message}"
        for step in result.steps
        if step.outcome == "expected-fail"
    ]
    if lines:
        item.config.stash.setdefault(_expected_failures_key, []).extend(lines)
        details = [step.diagnosis for step in result.steps if step.outcome == "expected-fail" and step.diagnosis]
        item.add_report_section("call", "diagnosis", "\n".join(lines + details))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    expected = config.stash.get(_expected_failures_key, [])
    if expected:
        terminalreporter.section("wgharness: expected failures, diagnosed")
        for line in expected:
            terminalreporter.write_line(line)
    results = config.stash.get(_results_key, None)
    if results is not None:
        terminalreporter.write_line(f"wgharness results: {results.path}")


# --- signals: only in a session that builds networks -----------------------------------


def builds_networks(item: pytest.Item) -> bool:
    """A scenario item, or a test that asks for `wgh_network`."""
    return item.get_closest_marker("wgh_scenario") is not None or "wgh_network" in getattr(item, "fixturenames", ())


def handle_signals(config: pytest.Config) -> None:
    """SIGTERM and SIGHUP unwind like Ctrl-C, so fixtures and scenario teardown run;
    during a teardown all three are deferred (harness.interrupts). From the main thread
    only, and never over a handler someone else set (or ours, already installed)."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return
    from harness import interrupts

    config.stash[_saved_handlers_key] = {signum: signal.getsignal(signum) for signum in HANDLED_SIGNALS}
    interrupts.install(HANDLED_SIGNALS)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Install the handlers before the first test when any selected test builds networks;
    a session of other tests keeps the signals as it found them."""
    if not session.config.getoption("collectonly") and any(builds_networks(item) for item in session.items):
        handle_signals(session.config)


def pytest_unconfigure(config: pytest.Config) -> None:
    saved = config.stash.get(_saved_handlers_key, {})
    if saved and threading.current_thread() is threading.main_thread():
        for signum, handler in saved.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


# --- --vm-kernel: the whole session inside a VM ---------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """With --vm-kernel, run the same pytest command inside a VM and report its exit code."""
    spec = config.getoption("vm_kernel")
    if not spec or os.environ.get("WGH_IN_VM"):
        return None
    from harness.errors import MissingCapability
    from harness.kernels.resolve import KernelSpecError, resolve
    from harness.vm.runner import VmOptions, run_in_vm

    args = without_vm_options(list(config.invocation_params.args))
    here = Path(config.invocation_params.dir)
    results = Path(config.getoption("results_dir"))
    results = results if results.is_absolute() else here / results
    results.mkdir(parents=True, exist_ok=True)
    try:
        kernel = resolve(spec)
        outcome = run_in_vm(
            kernel,
            [sys.executable, "-m", "pytest", *args],
            VmOptions(
                cwd=here, writable=[results], timeout=config.getoption("vm_timeout"),
                cpus=config.getoption("vm_cpus"), memory=config.getoption("vm_memory"),
                # pytest in the guest knows it runs in CI as the host's does: whole
                # assertion messages in the log, not cut after 8 lines
                env={name: os.environ[name] for name in CI_VARIABLES if name in os.environ},
            ),
            log=lambda text: print(text, file=sys.stderr, flush=True),
        )
    except (KernelSpecError, MissingCapability) as exc:
        raise pytest.UsageError(f"--vm-kernel {spec}: {exc}") from None
    return outcome.returncode


VM_OPTIONS = ("--vm-kernel", "--vm-timeout", "--vm-cpus", "--vm-memory")
CI_VARIABLES = ("CI", "BUILD_NUMBER")  # what pytest reads to know it runs in CI


def without_vm_options(args: list[str]) -> list[str]:
    """The pytest arguments for the guest: the same, less the options of the VM itself."""
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in VM_OPTIONS:
            skip = True
            continue
        if arg.startswith(tuple(f"{option}=" for option in VM_OPTIONS)):
            continue
        out.append(arg)
    return out
