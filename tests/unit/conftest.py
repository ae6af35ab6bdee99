"""Fixtures the unit tests share."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from harness.diagnosis import tunnel as diagnose
from harness.engine.fake import FakeNetwork
from harness.plan.network import build_plan
from harness.scenario.load import load_file

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


@pytest.fixture
def fake_library_network(monkeypatch) -> Callable[[str], FakeNetwork]:
    """A FakeNetwork of a library scenario (`name`.yaml, its only case, wireguard-go)
    whose underlay answers every probe of the tunnel diagnosis."""
    monkeypatch.setattr(diagnose, "underlay_probe", lambda network, node, endpoint: (True, f"underlay: {endpoint} answers"))

    def make(name: str) -> FakeNetwork:
        (case,) = load_file(SCENARIOS / f"{name}.yaml")
        return FakeNetwork(build_plan(case.spec, "t00001", "wireguard-go"))

    return make
