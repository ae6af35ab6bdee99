"""A conftest supplies the engine through `pytest_wgh_make_engine`: scenario items and
the `wgh_network` fixture both build with it (pytester runs an inner session)."""

from __future__ import annotations

import textwrap

import pytest

from .placement import host_only

pytest_plugins = ["pytester"]
pytestmark = [pytest.mark.requires("root"), host_only]  # the plugin's mechanics, not the kernel's

CONFTEST = textwrap.dedent(
    """
    from pathlib import Path

    from harness.engine import make_engine

    LOG = Path(__file__).parent / "engines.log"


    class Recording:
        # the registered engine, with every build and timeline operation written down
        def __init__(self, inner):
            self._inner = inner

        def __getattr__(self, name):
            attribute = getattr(self._inner, name)
            if callable(attribute):
                def recorded(*args, **kwargs):
                    with LOG.open("a") as log:
                        log.write(f"{self._inner.name} {name}\\n")
                    return attribute(*args, **kwargs)
                return recorded
            return attribute


    def pytest_wgh_make_engine(name, config):
        return Recording(make_engine(name))
    """
)

SCENARIO = textwrap.dedent(
    """
    name: hooked
    nodes: {a: {}, b: {}}
    links: [{name: ab, ends: [a, b]}]
    steps:
      - ping: {from: a, to: b, via: underlay}
      - link: {name: ab, up: false}
    """
)

FIXTURE_TEST = textwrap.dedent(
    """
    def test_fixture_builds_with_the_hook(wgh_network):
        net = wgh_network({"nodes": {"x": {}, "y": {}}, "links": [{"ends": ["x", "y"]}]})
        assert type(net.engine).__name__ == "Recording"
    """
)


def test_the_hook_supplies_the_engine_of_scenarios_and_fixtures(pytester: pytest.Pytester):
    pytester.makeconftest(CONFTEST)
    (pytester.path / "scenarios").mkdir()
    (pytester.path / "scenarios" / "hooked.yaml").write_text(SCENARIO)
    pytester.makepyfile(test_fixture=FIXTURE_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--no-results", "-q")
    result.assert_outcomes(passed=2)
    log = (pytester.path / "engines.log").read_text().split("\n")
    assert log.count("netns build") == 2, log
    assert "netns set_link" in log, "the timeline's link step went through the supplied engine"
    assert log.count("netns close") == 2, "both networks were let go of through it"
