"""Which pairs `reach` checks: all of them in a small group, a seeded sample that still
tests every node both ways in a large one (pure)."""

from collections import Counter

import pytest

from harness.errors import ScenarioError
from harness.scenario.load import load_text
from harness.scenario.steps.mesh import ALL_PAIRS_UP_TO, SAMPLED_PER_NODE, ReachArgs, reach_pairs, sample_seed

FILE = "scenarios/x.yaml"


def names(n):
    return [f"peer{i}" for i in range(1, n + 1)]


def test_a_group_up_to_the_limit_checks_every_pair():
    nodes = names(ALL_PAIRS_UP_TO)
    pairs = reach_pairs(nodes, ReachArgs())
    assert len(pairs) == len(set(pairs)) == ALL_PAIRS_UP_TO * (ALL_PAIRS_UP_TO - 1)


def test_a_larger_group_checks_a_sample_in_which_every_node_sends_and_answers_twice():
    nodes = names(1000)
    pairs = reach_pairs(nodes, ReachArgs())
    assert len(pairs) == len(set(pairs)) == SAMPLED_PER_NODE * 1000
    assert all(a != b and a in nodes and b in nodes for a, b in pairs)
    sends, answers = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    assert set(sends) == set(answers) == set(nodes)
    assert min(sends.values()) >= 2 and min(answers.values()) >= 2
    # the random cycle and its way back: a → b is checked with b → a for the first 2·N
    assert all((b, a) in set(pairs) for a, b in pairs[: len(nodes)])


def test_the_sample_is_the_same_every_run_and_the_seed_changes_it():
    nodes = names(500)
    first, again = reach_pairs(nodes, ReachArgs()), reach_pairs(list(nodes), ReachArgs())
    assert first == again
    other = reach_pairs(nodes, ReachArgs(seed=7))
    assert other == reach_pairs(nodes, ReachArgs(seed=7)) and set(other) != set(first)
    assert sample_seed(nodes, ReachArgs(seed=7)) == 7 and sample_seed(nodes, ReachArgs()) == sample_seed(nodes, None)


def test_pairs_all_or_a_number_overrides_the_default():
    nodes = names(150)
    assert len(reach_pairs(nodes, ReachArgs(pairs="all"))) == 150 * 149
    assert len(reach_pairs(nodes, ReachArgs(pairs=50))) == 50
    assert len(reach_pairs(names(5), ReachArgs(pairs=1000))) == 20  # more than there are: all
    # nearly all of them: drawn from the rest, distinct, without retrying collisions forever
    most = reach_pairs(names(120), ReachArgs(pairs=120 * 119 - 3))
    assert len(set(most)) == 120 * 119 - 3


def test_a_sampled_plan_check_names_the_pairs_it_checked():
    text = f"""\
nodes:
  switch: {{router: true}}
  peer: {{count: 120}}
  lone: {{}}
links:
  - {{ends: [peer, switch]}}
  - {{ends: [lone, switch]}}
wireguard:
  peer: {{}}
  lone: {{}}
steps:
  - reach: {{among: [peer1, peer2, lone], pairs: 2}}
"""
    with pytest.raises(ScenarioError) as exc:
        load_text(text, FILE)
    (problem,) = [str(p) for p in exc.value.problems]
    assert "2 of 2 pairs checked cannot pass" in problem, problem


@pytest.mark.parametrize("value", ["0", "some", "-3"])
def test_a_bad_pairs_value_is_a_file_line_error(value):
    text = f"""\
nodes:
  switch: {{router: true}}
  peer: {{count: 3}}
links:
  - {{ends: [peer, switch]}}
wireguard:
  peer:
    peers:
      peer: {{endpoint: peer}}
steps:
  - reach: {{among: peer, pairs: {value}}}
"""
    with pytest.raises(ScenarioError) as exc:
        load_text(text, FILE)
    assert any(str(p).startswith(f"{FILE}:11: steps[0].reach.pairs") for p in exc.value.problems), exc.value.problems
