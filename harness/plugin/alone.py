"""pytest-xdist: scenario cases that must have the machine to itself run alone, as
under `wgh run -j`. A case runs alone when its file says `exclusive: true` or one of
its steps measures what sharing the CPU would distort (rate-checking iperf3, a
keepalive-interval capture: harness.scenario.steps.registry.runs_alone).

xdist's own load scheduling deals every item to whichever worker is free. This
replaces it (for `--dist load`, xdist's default with `-n`) with the same dealing for
every other item, and holds the alone cases back: each is sent only when every worker
is idle, one at a time, after the rest. The controller does not collect, so it reads
which cases run alone from their scenario files (nodeid `<file>::<case id>`), and
which Python tests do from the lists the workers write of those marked
`@pytest.mark.alone` (a marker is only known after collection, which only workers do)."""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import pytest

MARKER = "alone"
_lists_key = pytest.StashKey[str]()  # the controller's directory of the workers' marked lists
_WORKER_KEY = "wgh_alone_lists"  # the same directory, in each worker's workerinput


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}: measures what sharing the CPU would distort (a rate, a timing): under pytest -n "
        "it runs after every other test, one at a time, with the machine to itself",
    )


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Controller: tell each worker where to write the nodeids it finds marked."""
    config = node.config
    if _lists_key not in config.stash:
        config.stash[_lists_key] = str(lists_directory(config))
    node.workerinput[_WORKER_KEY] = config.stash[_lists_key]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Worker: write the marked nodeids (every worker collects the same: any list will do)."""
    directory = getattr(config, "workerinput", {}).get(_WORKER_KEY)
    if not directory:
        return
    marked = [item.nodeid for item in items if item.get_closest_marker(MARKER)]
    worker = config.workerinput["workerid"]
    partial = Path(directory) / f".{worker}.json"
    partial.write_text(json.dumps(marked))
    os.replace(partial, Path(directory) / f"{worker}.json")  # whole or absent, never half-written


def lists_directory(config: pytest.Config) -> Path:
    """A directory under pytest's own basetemp, beside xdist's worker directories: a
    controller ended by SIGTERM or SIGKILL never reaches pytest_unconfigure, and there
    pytest's retention of basetemps removes what it left, not a stray directory in /tmp."""
    factory = getattr(config, "_tmp_path_factory", None)  # what xdist itself uses for its workers' basetemp
    if factory is not None:
        return factory.mktemp("wgh-xdist-alone", numbered=True)
    return Path(tempfile.mkdtemp(prefix="wgh-xdist-alone-"))  # -p no:tmpdir: no basetemp to use


def pytest_unconfigure(config: pytest.Config) -> None:
    directory = config.stash.get(_lists_key, None)
    if directory:
        shutil.rmtree(directory, ignore_errors=True)


def marked_alone(directory: str | None) -> set[str]:
    """The nodeids the workers found marked `alone`, from the first list written
    (read once every worker has finished collecting)."""
    for written in sorted(Path(directory).glob("gw*.json")) if directory else []:
        return set(json.loads(written.read_text()))
    return set()


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "load":
        return None  # a distribution mode the user chose keeps its own rules
    cases = ScenarioCasesAlone(Path(config.rootpath))

    @functools.cache
    def marked() -> set[str]:  # first asked when the collection is complete, not before
        return marked_alone(config.stash.get(_lists_key, None))

    def alone(nodeid: str) -> bool:
        return nodeid in marked() or cases(nodeid)

    return alone_last_scheduling(config, log, alone)


class ScenarioCasesAlone:
    """Whether a nodeid is a scenario case that runs alone (files read once each)."""

    def __init__(self, root: Path):
        self.root = root
        self._files: dict[str, dict[str, bool]] = {}

    def __call__(self, nodeid: str) -> bool:
        path, _, name = nodeid.partition("::")
        if not name or not path.endswith((".yaml", ".yml")):
            return False
        if path not in self._files:
            self._files[path] = self._read(self.root / path)
        return self._files[path].get(name, False)

    @staticmethod
    def _read(path: Path) -> dict[str, bool]:
        from harness.errors import HarnessError
        from harness.scenario.load import load_file
        from harness.scenario.steps.registry import runs_alone

        try:
            return {case.id: runs_alone(case.spec) for case in load_file(path)}
        except (HarnessError, OSError):
            return {}  # the workers report the file's error; nothing of it runs alone


def alone_last_scheduling(config: pytest.Config, log: Any, alone: Callable[[str], bool]) -> Any:
    from xdist.scheduler import LoadScheduling

    class AloneLastScheduling(LoadScheduling):
        """LoadScheduling for shared items; items `alone` names go last, all to one
        worker (the keeper) once every other worker has finished.

        An xdist worker runs an item only when it knows the next one (or is told to
        stop): a worker's last item waits in its queue. So when nothing shared is left
        to deal, every worker but the keeper is told to stop (each runs what it holds
        and exits); when they are all done, the keeper gets the alone items in order
        and is told to stop too: it runs its own last item, then each alone item,
        with the machine to itself."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.held: set[int] = set()  # indexes of the items that run alone
            self.keeper: Any = None  # the worker that runs them

        def schedule(self) -> None:
            if self.collection is None and self.collection_is_completed and self.node2collection:
                collection = next(iter(self.node2collection.values()))
                self.held = {index for index, nodeid in enumerate(collection) if alone(nodeid)}
            super().schedule()
            if self.collection is not None:
                self._deal_held()

        def _send_tests(self, node: Any, num: int) -> None:
            shared = [index for index in self.pending if index not in self.held][:num]
            if shared:
                taken = set(shared)
                self.pending[:] = [index for index in self.pending if index not in taken]
                self.node2pending[node].extend(shared)
                node.send_runtest_some(shared)

        def check_schedule(self, node: Any, duration: float = 0) -> None:
            if self.collection is None:
                return
            if any(index not in self.held for index in self.pending):
                super().check_schedule(node, duration)
            else:  # whichever worker reported: the keeper may be ready now
                self._deal_held()

        def remove_node(self, node: Any) -> Any:
            if node is self.keeper:
                self.keeper = None  # it died with items: they are pending again, and another keeps them
            return super().remove_node(node)

        def _deal_held(self) -> None:
            if any(index not in self.held for index in self.pending):
                return
            if not self.pending:  # no alone items (left): every worker stops after its queue, as xdist's own
                for node in self.nodes:
                    if not node.shutting_down:
                        node.shutdown()
                return
            if self.keeper is None:
                candidates = [node for node in self.nodes if not node.shutting_down]
                if not candidates:
                    return
                self.keeper = min(candidates, key=lambda node: len(self.node2pending[node]))
                for node in candidates:
                    if node is not self.keeper:
                        node.shutdown()
            others_busy = any(self.node2pending[node] for node in self.nodes if node is not self.keeper)
            if others_busy or len(self.node2pending.get(self.keeper, [])) > 1:
                return
            items, self.pending[:] = list(self.pending), []
            self.node2pending[self.keeper].extend(items)
            self.keeper.send_runtest_some(items)
            self.keeper.shutdown()

    return AloneLastScheduling(config, log)
