"""pytest integration: `pytest scenarios/` collects every scenario file (one test per
file and matrix case), skips cleanly where the host lacks something, records results,
and offers the `wgh_network` fixture for scenarios written as Python tests."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from harness.backends import AUTO, CHOICES, TemplateError, UserspaceCommand
from harness.engines import CHOICES as ENGINE_CHOICES, ENV_VAR as ENGINE_ENV_VAR, EngineChoiceError, choose_engine
from harness.errors import HarnessError, ScenarioError
from harness.interrupts import Interrupted

SCENARIO_DIR_NAME = "scenarios"
REQUIREMENTS = ("root", "wireguard", "kernel_wireguard", "wireguard_go", "userspace", "netem", "vm")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("wgharness", "WireGuard scenarios (wgharness)")
    group.addoption(
        "--wg-backend",
        default=os.environ.get("WGH_BACKEND", AUTO),
        choices=CHOICES,
        help="WireGuard implementation for nodes that do not pick one (default: auto = kernel if it loads)",
    )
    group.addoption(
        "--wg-userspace",
        default=os.environ.get("WGH_USERSPACE") or None,
        metavar="TEMPLATE",
        help="the command that starts the userspace backend, with {ifname}, e.g. 'boringtun-cli --foreground {ifname}'",
    )
    group.addoption(
        "--wg-engine",
        default=None,
        choices=ENGINE_CHOICES,
        help=f"what builds the networks of files that name no `engine:` (default: ${ENGINE_ENV_VAR}, else netns)",
    )
    group.addoption("--results-dir", default="results", help="where results/<run-id>/results.json goes (default: results)")
    group.addoption("--no-results", action="store_true", help="do not write results.json")
    group.addoption(
        "--wg-repeat",
        type=int,
        default=1,
        metavar="N",
        help="run each scenario case N times, keeping every run's measurements (and N rounds in pytest-benchmark)",
    )
    group.addoption(
        "--vm-kernel",
        default=None,
        metavar="SPEC",
        help="run this whole pytest session inside a VM booted from that kernel (path, release, or 6.1 / 6.12); see `wgh vm`",
    )
    group.addoption("--vm-timeout", type=float, default=3600.0, help="kill the VM after this many seconds (default 3600)")


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from harness import pytest_hooks

    pluginmanager.add_hookspecs(pytest_hooks)


def engine_factory(config: pytest.Config) -> Callable[[str], Any]:
    """Engines by name: a conftest's pytest_wgh_make_engine first, else the registry's."""

    def make(name: str) -> Any:
        from harness.engine import make_engine

        return config.hook.pytest_wgh_make_engine(name=name, config=config) or make_engine(name)

    return make


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """With --vm-kernel, run the same pytest command inside a VM and report its exit code."""
    spec = config.getoption("vm_kernel")
    if not spec or os.environ.get("WGH_IN_VM"):
        return None
    import sys

    from harness.errors import MissingCapability
    from harness.vm.kernels import KernelSpecError, resolve
    from harness.vm.runner import VmOptions, run_in_vm

    args = _without_vm_options(list(config.invocation_params.args))
    here = Path(config.invocation_params.dir)
    results = Path(config.getoption("results_dir"))
    results = results if results.is_absolute() else here / results
    results.mkdir(parents=True, exist_ok=True)
    try:
        kernel = resolve(spec)
        outcome = run_in_vm(
            kernel,
            [sys.executable, "-m", "pytest", *args],
            VmOptions(cwd=here, writable=[results], timeout=config.getoption("vm_timeout")),
            log=lambda text: print(text, file=sys.stderr, flush=True),
        )
    except (KernelSpecError, MissingCapability) as exc:
        raise pytest.UsageError(f"--vm-kernel {spec}: {exc}") from None
    return outcome.returncode


def _without_vm_options(args: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in ("--vm-kernel", "--vm-timeout"):
            skip = True
            continue
        if arg.startswith(("--vm-kernel=", "--vm-timeout=")):
            continue
        out.append(arg)
    return out


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "wgh_scenario: a test generated from a scenario file")
    config.addinivalue_line(
        "markers", f"requires(*what): skip unless the host has all of: {', '.join(REQUIREMENTS)}"
    )
    config.stash[_results_key] = None
    try:
        choose_engine(config.getoption("wg_engine"))  # a wrong WGH_ENGINE stops the session here
    except EngineChoiceError as exc:
        raise pytest.UsageError(str(exc)) from None
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        # SIGTERM and SIGHUP unwind like Ctrl-C, so fixtures and scenario teardown run;
        # during a teardown all three are deferred (harness.interrupts)
        from harness import interrupts

        interrupts.install((signal.SIGTERM, signal.SIGHUP))


_results_key = pytest.StashKey[Any]()
_expected_failures_key = pytest.StashKey[list]()


def _results(config: pytest.Config):
    if config.getoption("no_results"):
        return None
    if config.stash[_results_key] is None:
        from harness.results.store import ResultsFile

        directory = Path(config.getoption("results_dir"))
        if not directory.is_absolute():
            directory = Path(config.invocation_params.dir) / directory
        config.stash[_results_key] = ResultsFile(directory, config.getoption("wg_backend"), userspace=userspace_command(config))
    return config.stash[_results_key]


def userspace_command(config: pytest.Config) -> UserspaceCommand | None:
    """--wg-userspace, parsed; a bad template stops the session with the reason."""
    template = config.getoption("wg_userspace")
    if not template:
        return None
    try:
        return UserspaceCommand.parse(template)
    except TemplateError as exc:
        raise pytest.UsageError(f"--wg-userspace: {exc}") from None


def pytest_report_header(config: pytest.Config) -> str:
    from harness import caps

    backend = config.getoption("wg_backend")
    resolved = caps.resolve_backend(backend) if caps.is_root() else "n/a (not root)"
    command = config.getoption("wg_userspace")
    engine = choose_engine(config.getoption("wg_engine"))
    return f"wgharness: engine {engine}, backend {backend} → {resolved}" + (f" (userspace: {command})" if command else "")


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    expected = config.stash.get(_expected_failures_key, [])
    if expected:
        terminalreporter.section("wgharness: expected failures, diagnosed")
        for line in expected:
            terminalreporter.write_line(line)
    results = config.stash.get(_results_key, None)
    if results is not None:
        terminalreporter.write_line(f"wgharness results: {results.path}")


# --- requirement markers --------------------------------------------------------


def pytest_runtest_setup(item: pytest.Item) -> None:
    from harness import caps

    needs: set[str] = set()
    for marker in item.iter_markers("requires"):
        unknown = set(marker.args) - set(REQUIREMENTS)
        if unknown:
            raise pytest.UsageError(f"{item.nodeid}: unknown requirement(s) {sorted(unknown)}; known: {REQUIREMENTS}")
        needs.update(marker.args)
    missing = caps.missing_for(needs, item.config.getoption("wg_backend"), userspace_command(item.config)) if needs else []
    if missing:
        pytest.skip("; ".join(missing))


# --- scenario files ---------------------------------------------------------------


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix in (".yaml", ".yml") and SCENARIO_DIR_NAME in file_path.parts:
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        from harness.run import requirements
        from harness.scenario.load import load_file

        for case in load_file(self.path):
            item = ScenarioItem.from_parent(self, name=case.id, case=case)
            item.add_marker("wgh_scenario")
            item.add_marker(pytest.mark.requires(*sorted(requirements(case))))
            yield item

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str:  # type: ignore[override]
        if isinstance(excinfo.value, ScenarioError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class ScenarioFailed(HarnessError):
    def __init__(self, result: Any):
        self.result = result
        super().__init__(result.summary())


class ScenarioItem(pytest.Item):
    # pytest-benchmark treats items using its fixture as benchmarks: scenario items
    # feed it (harness.results.bench), so --benchmark-only runs them and
    # --benchmark-skip skips them, as it does for benchmark tests
    fixturenames = ("benchmark",)

    def __init__(self, *, case: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.case = case

    def runtest(self) -> None:
        from harness.run import run_case

        results = _results(self.config)
        repeats = self.config.getoption("wg_repeat")
        if repeats < 1:
            raise pytest.UsageError(f"--wg-repeat must be at least 1, not {repeats}")
        runs = []
        for repeat in range(1, repeats + 1):  # stop at the first run that does not pass
            try:
                result = run_case(
                    self.case,
                    backend=self.config.getoption("wg_backend"),
                    userspace=userspace_command(self.config),
                    engine=self.config.getoption("wg_engine"),
                    engine_factory=engine_factory(self.config),
                    artifacts_dir=results.artifacts_dir if results else None,
                    repeat=repeat,
                    repeats=repeats,
                )
            except Interrupted as exc:  # torn down; keep its entry, say what (if anything) is left
                if results is not None:
                    results.add(exc.result.to_json())
                sys.stderr.write(f"\nwgharness: {self.case.id}: {exc.summary()}\n")
                raise
            runs.append(result.to_json())
            if results is not None:
                results.add(runs[-1])
            if result.status != "passed":
                break
        self.user_properties.append(("wgh_status", result.status))
        self._show_expected_failures(result)
        self._feed_benchmark(runs)
        if result.status == "skipped":
            pytest.skip(result.error or "skipped")
        if result.status != "passed":
            raise ScenarioFailed(result)

    def _show_expected_failures(self, result: Any) -> None:
        """A negative scenario passes because its check failed for the stated cause:
        show that diagnosis, as a user would see it in a real failure."""
        lines = [
            f"{self.nodeid}: step {step.index + 1}: {step.title}: {step.message}"
            for step in result.steps
            if step.outcome == "expected-fail"
        ]
        if lines:
            self.config.stash.setdefault(_expected_failures_key, []).extend(lines)
            details = [step.diagnosis for step in result.steps if step.outcome == "expected-fail" and step.diagnosis]
            self.add_report_section("call", "diagnosis", "\n".join(lines + details))

    def _feed_benchmark(self, runs: list[dict[str, Any]]) -> None:
        """Timings to pytest-benchmark, when it is installed and asked for results."""
        from harness.results.bench import feed

        feed(self, runs)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:  # type: ignore[override]
        if isinstance(excinfo.value, ScenarioFailed):
            return excinfo.value.result.report()
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"scenario {self.case.id}"


# --- fixtures for Python-written scenarios ---------------------------------------------


@pytest.fixture
def wgh_backend(request: pytest.FixtureRequest) -> str:
    return request.config.getoption("wg_backend")


@pytest.fixture
def wgh_engine(request: pytest.FixtureRequest) -> str | None:
    """The engine `wgh_network` builds with for files that name none (--wg-engine);
    a conftest may parametrise it to run the same tests on every engine."""
    return request.config.getoption("wg_engine")


@pytest.fixture
def wgh_network(request: pytest.FixtureRequest, wgh_backend: str, wgh_engine: str | None) -> Iterator[Callable[..., Any]]:
    """Build networks from a scenario file or dict; all are torn down after the test.

        def test_custom(wgh_network):
            net = wgh_network({"nodes": {...}, "links": [...], "wireguard": {...}})
            assert net.run("a", ["ping", "-c1", str(net.plan.tunnel_address("b"))]).returncode == 0
    """
    from harness import caps
    from harness.network import Network
    from harness.plan.naming import new_run_id
    from harness.plan.network import build_plan
    from harness.run import requirements
    from harness.scenario.load import load_data, load_file

    built: list[Network] = []

    def build(source: str | Path | dict, case: str | None = None) -> Network:
        cases = load_data(source) if isinstance(source, dict) else load_file(source)
        chosen = next((c for c in cases if c.case_id == case), None) if case else cases[0]
        if chosen is None:
            raise LookupError(f"no matrix case {case!r}; cases: {[c.case_id for c in cases]}")
        userspace = userspace_command(request.config)
        missing = caps.missing_for(requirements(chosen), wgh_backend, userspace)
        if missing:
            pytest.skip("; ".join(missing))
        engine = engine_factory(request.config)(choose_engine(wgh_engine, chosen.spec.engine))
        network = Network(build_plan(chosen.spec, new_run_id(), wgh_backend, userspace), engine=engine)
        network.case = chosen
        built.append(network)
        network.build()
        return network

    yield build
    from harness.interrupts import shielded

    with shielded() as shield:  # every network goes, even if a signal arrives meanwhile
        left = [item for network in reversed(built) for item in network.teardown()]
    if shield.received:
        raise KeyboardInterrupt(f"interrupted during teardown; {'left: ' + ', '.join(left) if left else 'everything was torn down'}")
