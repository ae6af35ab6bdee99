"""Every step kind the file format accepts has exactly one runner, found by name."""

from __future__ import annotations

import pytest

from harness.scenario.model import STEP_KINDS
from harness.steps import registry


def test_every_step_kind_of_the_format_has_a_runner_and_no_runner_is_orphaned():
    assert registry.registered_kinds() == frozenset(STEP_KINDS)


def test_a_second_runner_for_a_kind_is_refused():
    first = registry.runner("sleep")

    def impostor(network, index, args):
        raise AssertionError("never runs")

    with pytest.raises(ValueError, match="two runners"):
        registry.runs("sleep")(impostor)
    assert registry.runner("sleep") is first


def test_an_unknown_kind_names_the_known_ones():
    with pytest.raises(LookupError, match="no runner registered for step kind 'teleport'.*handshake"):
        registry.runner("teleport")
