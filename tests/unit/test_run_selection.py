"""`wgh run --only-needing / --except-needing`: the netem cases apart from the rest
(the workflow runs those in a VM where the runner's kernel has no netem)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import _cases_by_needs, build_parser
from harness.scenario.load import load_file

ROOT = Path(__file__).resolve().parents[2]
FILES = ["direct.yaml", "lossy-link.yaml", "loss-delay-grid.yaml", "nat.yaml"]


@pytest.fixture(scope="module")
def cases():
    return [case for name in FILES for case in load_file(ROOT / "scenarios" / name)]


def test_the_two_selections_split_the_cases(cases, capsys):
    netem = _cases_by_needs(cases, ["netem"], [])
    rest = _cases_by_needs(cases, [], ["netem"])
    assert {c.id for c in netem} == {"lossy-link"} | {c.id for c in cases if c.id.startswith("loss-delay-grid[")}
    assert {c.id for c in rest} == {"direct", "nat"}
    assert len(netem) + len(rest) == len(cases)
    assert "wgh run: 7 of 9 cases needing netem" in capsys.readouterr().err
    assert _cases_by_needs(cases, ["netem"], ["netem"]) == []


def test_the_options_take_known_capabilities_only():
    args = build_parser().parse_args(["run", "--only-needing", "netem", "--except-needing", "kernel_wireguard", "scenarios/"])
    assert args.only_needing == ["netem"] and args.except_needing == ["kernel_wireguard"]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--only-needing", "nettem", "scenarios/"])
