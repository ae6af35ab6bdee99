"""The pytest plugin (harness.pytest_plugin and the modules of harness.plugin), seen
from inner pytest sessions (pytester): what it registers, what it collects, how it
skips and refuses, and that it leaves the signals alone where no network is built.
Nothing here builds a network; tests/integration/test_pytest_plugin.py does."""

from __future__ import annotations

import inspect
import json
import textwrap

import pytest

import harness.run  # noqa: F401  (loaded here, so in-process inner sessions share the modules they load)
import harness.scenario.load  # noqa: F401
from harness import pytest_plugin
from harness.plugin import alone, autoworkers, collect, fixtures, markers, options, session

pytest_plugins = ["pytester"]

PLUGIN_MODULES = (options, markers, session, collect, fixtures, alone, autoworkers)
INNER = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")  # hypothesis: a second or two per inner session

SCENARIO = textwrap.dedent(
    """
    name: tiny
    nodes: {a: {}, b: {}}
    links: [{name: ab, ends: [a, b]}]
    steps: [{ping: {from: a, to: b, via: underlay}}]
    """
)


@pytest.fixture(autouse=True)
def _no_wgh_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WGH_BACKEND", "WGH_USERSPACE", "WGH_ENGINE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def scenarios(pytester: pytest.Pytester):
    (pytester.path / "scenarios").mkdir()
    (pytester.path / "scenarios" / "tiny.yaml").write_text(SCENARIO)
    return pytester.path / "scenarios"


# --- registration ------------------------------------------------------------------


def test_the_entry_point_registers_every_part_and_pytest_sees_each_hook(pytestconfig: pytest.Config):
    assert pytest_plugin.pytest_plugins == tuple(module.__name__ for module in PLUGIN_MODULES)
    manager = pytestconfig.pluginmanager
    for module in PLUGIN_MODULES:
        assert manager.is_registered(module), module.__name__
        hooks = [name for name, value in vars(module).items() if name.startswith("pytest_") and inspect.isfunction(value)]
        for name in hooks:
            implementations = [impl.function for impl in getattr(pytestconfig.hook, name).get_hookimpls()]
            assert getattr(module, name) in implementations, f"{module.__name__}.{name} is not called by pytest"
    assert sum(1 for m in PLUGIN_MODULES for n in vars(m) if n.startswith("pytest_")) >= 10
    assert manager.get_plugin("harness.plugin.hookspecs") is None, "the hookspecs must not be registered as implementations"


def test_the_hookspec_is_registered(pytestconfig: pytest.Config):
    caller = pytestconfig.hook.pytest_wgh_make_engine
    assert caller.spec is not None and caller.spec.argnames == ("name", "config")
    assert caller.spec.opts["firstresult"]


def test_a_conftest_implementing_the_hook_with_a_wrong_signature_is_rejected(pytester: pytest.Pytester):
    pytester.makeconftest("def pytest_wgh_make_engine(name, cfg):\n    return None\n")
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest(*INNER)
    assert result.ret != 0
    text = result.stdout.str() + result.stderr.str()
    assert "pytest_wgh_make_engine" in text and "cfg" in text


def test_the_fixtures_are_offered(pytester: pytest.Pytester):
    pytester.makepyfile("def test_fixtures(wgh_backend, wgh_engine):\n    assert wgh_backend == 'auto' and wgh_engine is None\n")
    pytester.runpytest(*INNER).assert_outcomes(passed=1)


# --- collection --------------------------------------------------------------------


def _collected(pytester: pytest.Pytester, *args: str) -> list[str]:
    result = pytester.runpytest(*INNER, "--collect-only", "-q", *args)
    return [line for line in result.stdout.lines if "::" in line]


def test_scenario_files_are_collected_by_default(pytester: pytest.Pytester, scenarios):
    (scenarios / "notes.txt").write_text("not a scenario")
    (pytester.path / "elsewhere.yaml").write_text(SCENARIO)  # not under a `scenarios` folder
    assert _collected(pytester) == ["scenarios/tiny.yaml::tiny"]


def test_collection_is_turned_off_by_the_flag(pytester: pytest.Pytester, scenarios):
    pytester.makepyfile("def test_other():\n    pass\n")
    assert _collected(pytester, "--wg-no-collect") == ["test_collection_is_turned_off_by_the_flag.py::test_other"]


@pytest.mark.parametrize("value, expected", [("false", []), ("no", []), ("true", ["scenarios/tiny.yaml::tiny"])])
def test_collection_follows_the_ini_option(pytester: pytest.Pytester, scenarios, value, expected):
    pytester.makeini(f"[pytest]\nwgh_collect_scenarios = {value}\n")
    assert _collected(pytester) == expected


def test_disabling_the_plugin_disables_every_part(pytester: pytest.Pytester, scenarios):
    assert _collected(pytester, "-p", "no:wgharness") == []
    result = pytester.runpytest(*INNER, "-p", "no:wgharness", "--wg-backend", "kernel")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_a_bad_scenario_file_is_a_collection_error_naming_file_and_line(pytester: pytest.Pytester, scenarios):
    (scenarios / "bad.yaml").write_text("name: bad\nnodes: {a: {}, b: {}}\nlinks: [{name: ab, ends: [a, c]}]\n")
    result = pytester.runpytest(*INNER, "--collect-only")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*ERROR collecting scenarios/bad.yaml*", "*scenarios/bad.yaml:3: *unknown node 'c'*"])
    assert "Traceback" not in result.stdout.str(), "the reason, not a traceback"


def test_scenario_items_carry_their_markers(pytester: pytest.Pytester, scenarios):
    items, _ = pytester.inline_genitems(*INNER)
    (item,) = items
    assert isinstance(item, collect.ScenarioItem)
    assert item.get_closest_marker("wgh_scenario") is not None
    assert "root" in item.get_closest_marker("requires").args
    assert session.builds_networks(item)


# --- markers and options -----------------------------------------------------------


def test_an_unmet_requirement_skips_with_the_reason(pytester: pytest.Pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.requires("userspace")
        def test_needs_a_userspace_command():
            raise AssertionError("must not run")
        """
    )
    result = pytester.runpytest(*INNER, "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*the userspace backend needs a command*--wg-userspace*"])


def test_an_unknown_requirement_is_a_usage_error(pytester: pytest.Pytester):
    pytester.makepyfile("import pytest\n\n@pytest.mark.requires('moon')\ndef test_x():\n    pass\n")
    result = pytester.runpytest(*INNER)
    assert "unknown requirement(s) ['moon']" in result.stdout.str() + result.stderr.str()


def test_an_unknown_engine_is_a_usage_error(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest(*INNER, "--wg-engine", "nosuch")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--wg-engine" in result.stderr.str() and "invalid choice: 'nosuch'" in result.stderr.str()
    monkeypatch.setenv("WGH_ENGINE", "nosuch")
    result = pytester.runpytest(*INNER)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "nosuch" in result.stderr.str()


def test_a_bad_userspace_template_is_a_usage_error_when_read(pytester: pytest.Pytester):
    pytester.makepyfile("from harness.plugin.options import userspace_command\n\ndef test_x(request):\n    userspace_command(request.config)\n")
    result = pytester.runpytest(*INNER, "--wg-userspace", "wireguard-go")
    assert "--wg-userspace:" in result.stdout.str() + result.stderr.str()


# --- sharding ------------------------------------------------------------------------


def _sharded_suite(pytester: pytest.Pytester, scenarios) -> set[str]:
    """Six scenario items (one with a long sleep) and one plain test; the scenario node ids."""
    for name in ("b", "c", "d", "e", "f"):
        (scenarios / f"{name}.yaml").write_text(SCENARIO.replace("name: tiny", f"name: {name}"))
    long_one = SCENARIO.replace("name: tiny", "name: f").replace("steps: [{ping", "steps: [{sleep: 60s}, {ping")
    (scenarios / "f.yaml").write_text(long_one)
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    return {f"scenarios/{name}.yaml::{name}" for name in ("tiny", "b", "c", "d", "e", "f")}


def test_wg_shard_deselects_other_shards_scenario_items_only(pytester: pytest.Pytester, scenarios):
    everything = _sharded_suite(pytester, scenarios)
    seen: list[str] = []
    for index in (1, 2, 3):
        result = pytester.runpytest(*INNER, "--collect-only", "-q", "--wg-shard", f"{index}/3")
        collected = [line for line in result.stdout.lines if "::" in line]
        assert "test_plain.py::test_plain" in collected  # plain tests are never sharded
        mine = [line for line in collected if line.startswith("scenarios/")]
        result.stdout.fnmatch_lines([f"wgharness: shard {index}/3: {len(mine)} of 6 scenario items (balanced by estimates*", f"*({6 - len(mine)} deselected)*"])
        if index == 1:  # the longest goes first, to shard 1, alone; the five others share 2 and 3
            assert mine == ["scenarios/f.yaml::f"]
        seen += mine
    assert sorted(seen) == sorted(everything)


def test_wg_shard_reports_deselected_items_to_other_plugins(pytester: pytest.Pytester, scenarios):
    _sharded_suite(pytester, scenarios)
    _, reprec = pytester.inline_genitems(*INNER, "--wg-shard", "2/3")
    items = reprec.getcall("pytest_collection_finish").session.items
    deselected = [item for call in reprec.getcalls("pytest_deselected") for item in call.items]
    assert len(deselected) == 3 and not set(deselected) & set(items)
    assert len(items) == 4  # three scenario items and the plain test


def test_wg_durations_balance_the_shards(pytester: pytest.Pytester, scenarios):
    _sharded_suite(pytester, scenarios)
    timing = {"build": {"value": 0, "unit": "s"}, "steps": {"value": 500, "unit": "s"}, "teardown": {"value": 0, "unit": "s"}}
    document = {"schema_version": 2, "environment": {}, "scenarios": [{"key": "b", "status": "passed", "timing": timing}]}
    (pytester.path / "old").mkdir()
    (pytester.path / "old" / "results.json").write_text(json.dumps(document))
    result = pytester.runpytest(*INNER, "--collect-only", "-q", "--wg-shard", "1/3", "--wg-durations", "old")
    assert [line for line in result.stdout.lines if line.startswith("scenarios/")] == ["scenarios/b.yaml::b"]
    result.stdout.fnmatch_lines(["*shard 1/3: 1 of 6 scenario items (balanced by old)"])


@pytest.mark.parametrize(
    "args, message",
    [
        (("--wg-shard", "0/3"), "--wg-shard 0/3: I must be between 1 and 3 (shards are numbered from 1)"),
        (("--wg-shard", "x/y"), "--wg-shard 'x/y': expected I/N"),
        (("--wg-durations", "old"), "--wg-durations balances shards: give --wg-shard I/N too"),
        (("--wg-shard", "1/2", "--wg-durations", "nowhere"), "--wg-durations: nowhere: no such file or folder"),
    ],
)
def test_bad_shard_options_are_usage_errors(pytester: pytest.Pytester, scenarios, args, message):
    result = pytester.runpytest(*INNER, "--collect-only", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


# --- signals: only in sessions that build networks ------------------------------------

HANDLER_CHECK = textwrap.dedent(
    """
    import signal


    def where():
        handler = signal.getsignal(signal.SIGTERM)
        return "default" if handler is signal.SIG_DFL else getattr(handler, "__module__", None) or repr(handler)
    """
)


def _handler_seen(pytester: pytest.Pytester, test: str, *args: str) -> str:
    pytester.makeconftest(HANDLER_CHECK + test)
    result = pytester.runpytest_subprocess(*INNER, *args)
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED), result.stdout.str() + result.stderr.str()
    return (pytester.path / "handler").read_text()


def test_no_signal_handler_in_a_session_without_scenarios_or_networks(pytester: pytest.Pytester):
    pytester.makepyfile("def test_plain():\n    pass\n")
    seen = _handler_seen(pytester, "\ndef pytest_runtest_call(item):\n    open('handler', 'w').write(where())\n")
    assert seen == "default"


def test_no_signal_handler_when_scenarios_are_only_collected(pytester: pytest.Pytester, scenarios):
    seen = _handler_seen(pytester, "\ndef pytest_collection_finish(session):\n    open('handler', 'w').write(where())\n", "--collect-only")
    assert seen == "default"


def test_the_signal_handler_in_a_session_that_runs_a_scenario(pytester: pytest.Pytester, scenarios):
    # looked at just before the scenario would run, then skipped: nothing is built
    test = (
        "\nimport pytest\n\n@pytest.hookimpl(tryfirst=True)\ndef pytest_runtest_setup(item):\n"
        "    open('handler', 'w').write(where())\n    pytest.skip('looked')\n"
    )
    assert _handler_seen(pytester, test) == "harness.interrupts"


def test_the_signal_handler_in_a_session_that_uses_wgh_network(pytester: pytest.Pytester):
    pytester.makepyfile("def test_networks(wgh_network):\n    pass\n")  # asks for it, builds nothing
    seen = _handler_seen(pytester, "\ndef pytest_runtest_call(item):\n    open('handler', 'w').write(where())\n")
    assert seen == "harness.interrupts"


def test_the_handlers_are_given_back_when_the_session_ends(pytester: pytest.Pytester):
    pytester.makepyfile("def test_networks(wgh_network):\n    pass\n")
    seen = _handler_seen(pytester, "\nimport pytest\n\n@pytest.hookimpl(trylast=True)\ndef pytest_unconfigure(config):\n    open('handler', 'w').write(where())\n")
    assert seen == "default"


def test_the_signal_handler_when_wgh_network_is_asked_for_at_run_time(pytester: pytest.Pytester):
    pytester.makepyfile("def test_late(request):\n    request.getfixturevalue('wgh_network')\n    open('handler', 'w').write(__import__('conftest').where())\n")
    assert _handler_seen(pytester, "") == "harness.interrupts"
