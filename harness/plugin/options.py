"""The plugin's options (command line and ini), what reads them, and the report header."""

from __future__ import annotations

import os
import sys
from typing import Any, Callable

import pytest

from harness.backends import AUTO, CHOICES, TemplateError, UserspaceCommand
from harness.engines import CHOICES as ENGINE_CHOICES, ENV_VAR as ENGINE_ENV_VAR, EngineChoiceError, choose_engine

COLLECT_INI = "wgh_collect_scenarios"


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
    group.addoption(
        "--wg-hosts",
        default=os.environ.get("WGH_HOSTS") or None,
        metavar="FILE",
        help="spread each scenario over the hosts of this inventory, a worker on each over SSH (default: $WGH_HOSTS); "
        "see docs/multihost.md",
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
        "--wg-shard",
        default=None,
        metavar="I/N",
        help="run only shard I of N (from 1) of the scenario items (other tests are kept): every machine given the same "
        "tests and --wg-durations runs its own share, balanced by duration",
    )
    group.addoption(
        "--wg-durations",
        action="append",
        default=[],
        metavar="RESULTS",
        help="with --wg-shard: results (run folder, results.json, folder of runs, matrix summary; repeatable) whose wall "
        "times balance the shards (default: the newest results.json under --results-dir, if any; else estimates)",
    )
    group.addoption(
        "--wg-no-collect",
        action="store_true",
        help=f"do not collect scenario files (*.yaml under a `scenarios` folder); the same as ini `{COLLECT_INI} = false`",
    )
    group.addoption(
        "--strict-load",
        action="store_true",
        help="a timing or rate check that fails while the CPU was stalled fails the test (default: retried once, then "
        "skipped as inconclusive, machine overloaded); the same as WGH_STRICT_LOAD=1",
    )
    group.addoption(
        "--vm-kernel",
        default=None,
        metavar="SPEC",
        help="run this whole pytest session inside a VM booted from that kernel (path, release, or 6.1 / 6.12); see `wgh vm`",
    )
    group.addoption("--vm-timeout", type=float, default=3600.0, help="kill the VM after this many seconds (default 3600)")
    group.addoption("--vm-cpus", type=int, default=2, help="the VM's CPUs (default 2)")
    group.addoption("--vm-memory", default="2G", help="the VM's memory (default 2G; more for -n with many workers)")
    parser.addini(
        COLLECT_INI,
        type="bool",
        default=True,
        help="collect *.yaml and *.yml under folders named `scenarios` as scenario tests (default: true)",
    )


def pytest_configure(config: pytest.Config) -> None:
    try:
        choose_engine(config.getoption("wg_engine"))  # a wrong WGH_ENGINE stops the session here
    except EngineChoiceError as exc:
        raise pytest.UsageError(str(exc)) from None
    shard_option(config)  # a wrong --wg-shard too
    hosts_inventory(config)  # and a wrong --wg-hosts file
    if config.getoption("strict_load"):  # read by every check, xdist workers and VM guests included
        os.environ["WGH_STRICT_LOAD"] = "1"
    from harness.pressure import stall_threshold

    try:
        stall_threshold()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


def shard_option(config: pytest.Config) -> Any:
    """--wg-shard, parsed (a harness.schedule.Shard), or None; a bad value stops the session."""
    from harness.schedule import ShardError, parse_shard

    text = config.getoption("wg_shard")
    if text is None:
        if config.getoption("wg_durations"):
            raise pytest.UsageError("--wg-durations balances shards: give --wg-shard I/N too")
        return None
    try:
        return parse_shard(text, "--wg-shard")
    except ShardError as exc:
        raise pytest.UsageError(str(exc)) from None


def collects_scenarios(config: pytest.Config) -> bool:
    """Whether scenario files are collected: on unless --wg-no-collect or the ini option says no."""
    return not config.getoption("wg_no_collect") and bool(config.getini(COLLECT_INI))


def userspace_command(config: pytest.Config) -> UserspaceCommand | None:
    """--wg-userspace, parsed; a bad template stops the session with the reason."""
    template = config.getoption("wg_userspace")
    if not template:
        return None
    try:
        return UserspaceCommand.parse(template)
    except TemplateError as exc:
        raise pytest.UsageError(f"--wg-userspace: {exc}") from None


_INVENTORY = pytest.StashKey[Any]()


def hosts_inventory(config: pytest.Config) -> Any:
    """--wg-hosts, read once (a harness.hosts.inventory.Inventory), or None; a bad file
    stops the session naming its line and field."""
    path = config.getoption("wg_hosts")
    if path is None:
        return None
    if _INVENTORY not in config.stash:
        from harness.errors import ScenarioError
        from harness.hosts.inventory import load_inventory

        try:
            config.stash[_INVENTORY] = load_inventory(path)
        except ScenarioError as exc:
            raise pytest.UsageError("--wg-hosts: " + "; ".join(str(p) for p in exc.problems)) from None
    return config.stash[_INVENTORY]


def engine_factory(config: pytest.Config, case_id: str = "") -> Callable[[str], Any]:
    """Engines by name: over --wg-hosts' hosts when given; else a conftest's
    pytest_wgh_make_engine first, else the registry's."""
    inventory = hosts_inventory(config)
    if inventory is not None:
        from harness.hosts.engine import engine_over_hosts

        return engine_over_hosts(inventory, case_id, say=lambda line: print(f"wgharness: {case_id}: {line}", file=sys.stderr))

    def make(name: str) -> Any:
        from harness.engine import make_engine

        return config.hook.pytest_wgh_make_engine(name=name, config=config) or make_engine(name)

    return make


def pytest_report_header(config: pytest.Config) -> str:
    from harness import caps

    backend = config.getoption("wg_backend")
    resolved = caps.resolve_backend(backend) if caps.is_root() else "n/a (not root)"
    command = config.getoption("wg_userspace")
    engine = choose_engine(config.getoption("wg_engine"))
    return f"wgharness: engine {engine}, backend {backend} → {resolved}" + (f" (userspace: {command})" if command else "")
