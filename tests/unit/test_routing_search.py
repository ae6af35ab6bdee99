"""A host's route search borrowed from its gateway's (harness.plan.routing._SeenThrough)
gives exactly what a search of its own gives, on every file of the library and with
links down: the routes, endpoints and verdicts of the library rest on it."""

from pathlib import Path

import pytest

from harness.plan.network import build_plan
from harness.plan.routing import Routing
from harness.scenario.load import load_file

LIBRARY = sorted((Path(__file__).resolve().parents[2] / "scenarios").glob("*.yaml"))


class OwnSearchRouting(Routing):
    """Every node searches on its own (the reference)."""

    def _only_way_out(self, source, ports):
        return None

    def _only_lan(self, source, ports):
        return None


def plans():
    for path in LIBRARY:
        for case in load_file(path):
            yield f"{path.stem}[{case.case_id}]", build_plan(case.spec, "abc123")


@pytest.mark.parametrize("name,plan", list(plans()), ids=lambda v: v if isinstance(v, str) else "")
def test_a_borrowed_search_equals_a_search_of_its_own(name, plan):
    base = plan.routing()
    every_link_down_once = [frozenset()] + [frozenset({i}) for i in range(len(plan.veths))]
    borrowed_somewhere = False
    for down in every_link_down_once:
        fast = Routing(base.roles, base.link_ends, base.ports, down)
        slow = OwnSearchRouting(base.roles, base.link_ends, base.ports, down)
        for node in plan.nodes:
            for family in (4, 6):
                assert dict(fast.search(node, family)) == dict(slow.search(node, family)), (name, node, family, down)
                borrowed_somewhere |= type(fast.search(node, family)) is not dict
            assert fast.routes_for(node) == slow.routes_for(node), (name, node, down)
    if name.startswith("hub-and-spoke"):
        assert borrowed_somewhere  # the shortcut is taken where it applies
