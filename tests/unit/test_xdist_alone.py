"""Under pytest-xdist, scenario cases that run alone wait until every worker is idle
and then go one at a time; everything else is dealt as xdist deals it (no root: the
workers are simulated)."""

from __future__ import annotations

import textwrap
from types import SimpleNamespace

import pytest

pytest.importorskip("xdist")

from harness.plugin.alone import ScenarioCasesAlone, alone_last_scheduling  # noqa: E402


class Worker:
    def __init__(self, name: str):
        self.gateway = SimpleNamespace(id=name)
        self.shutting_down = False
        self.queue: list[int] = []

    def send_runtest_some(self, indices: list[int]) -> None:
        self.queue += indices

    def shutdown(self) -> None:
        self.shutting_down = True


def _simulate(collection: list[str], alone: set[str], workers: int = 3) -> list[list[str]]:
    """Run the scheduler to the end with workers that behave as xdist's: each round a
    worker runs its queue's head only if it knows the next item or was told to stop
    (pytest needs the next item to tear fixtures down), and a stopped worker with an
    empty queue finishes. Returns what ran together, round by round."""
    config = SimpleNamespace(getvalue=lambda name: [f"{workers}*popen"] if name == "tx" else None, getoption=lambda name: None)
    sched = alone_last_scheduling(config, None, lambda nodeid: nodeid in alone)
    nodes = [Worker(f"gw{i}") for i in range(workers)]
    for node in nodes:
        sched.add_node(node)
        sched.add_node_collection(node, collection)
    sched.schedule()
    rounds = []
    live = list(nodes)
    for _ in range(10 * len(collection)):
        for node in [n for n in live if n.shutting_down and not n.queue]:
            live.remove(node)
            assert not sched.remove_node(node), "a finished worker had nothing left"
        running = [(node, node.queue[0]) for node in live if len(node.queue) >= 2 or (node.queue and node.shutting_down)]
        if not running:
            break
        rounds.append([collection[index] for _, index in running])
        for node, index in running:
            node.queue.pop(0)
            sched.mark_test_complete(node, index, duration=1.0)
    assert not live, f"workers never told to stop, or stuck with items: {[(n.gateway.id, n.queue) for n in live]}"
    assert sched.tests_finished
    return rounds


def test_alone_items_run_after_the_others_one_at_a_time():
    collection = [f"scenarios/s.yaml::c{i}" for i in range(12)]
    alone = {collection[1], collection[5], collection[11]}
    rounds = _simulate(collection, alone)
    ran = [nodeid for round_ in rounds for nodeid in round_]
    assert sorted(ran) == sorted(collection), "each item runs once"
    for round_ in rounds:
        if set(round_) & alone:
            assert len(round_) == 1, f"an alone item shared the machine: {round_}"
    first_alone = next(i for i, round_ in enumerate(rounds) if set(round_) & alone)
    assert not set(nodeid for round_ in rounds[first_alone:] for nodeid in round_) - alone, "shared items all went first"
    assert max(len(round_) for round_ in rounds) == 3, "the shared items used every worker"


def test_without_alone_items_every_worker_stops_when_the_items_run_out():
    collection = [f"tests/t.py::test_{i}" for i in range(7)]
    rounds = _simulate(collection, set())
    assert sorted(nodeid for round_ in rounds for nodeid in round_) == sorted(collection)


def test_only_alone_items_still_run_and_end():
    collection = [f"scenarios/s.yaml::c{i}" for i in range(3)]
    rounds = _simulate(collection, set(collection))
    assert rounds == [[nodeid] for nodeid in collection]


def test_which_cases_run_alone_is_read_from_their_files(tmp_path):
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "x.yaml").write_text(
        textwrap.dedent(
            """
            name: x
            nodes: {a: {}, b: {}}
            links: [{ends: [a, b]}]
            steps: [{sleep: 1s}]
            matrix:
              - {case: shared}
              - {case: measured, exclusive: true}
            """
        )
    )
    (tmp_path / "scenarios" / "broken.yaml").write_text("name: [\n")
    alone = ScenarioCasesAlone(tmp_path)
    assert alone("scenarios/x.yaml::x[measured]") and not alone("scenarios/x.yaml::x[shared]")
    assert not alone("scenarios/broken.yaml::broken") and not alone("tests/unit/test_a.py::test_b")
