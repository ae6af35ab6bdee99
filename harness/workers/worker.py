"""One worker of `wgh run -j N`: reads tasks on stdin, runs each case, reports on
stdout (which it keeps to the protocol alone). It is its own process group, so a terminal's Ctrl-C
reaches only the parent, which passes it on as SIGTERM; it gets SIGTERM too if the
parent dies (PR_SET_PDEATHSIG), so even a SIGKILLed parent leaves torn-down runs."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO

from harness import interrupts


def main(argv: list[str], loaded: dict[str, list] | None = None) -> int:
    """`loaded`: scenario files already loaded (by path), as the zygote passes them."""
    interrupts.install()
    # the protocol has stdout to itself: anything else the harness prints goes to stderr
    protocol: IO[str] = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        with interrupts.held():  # loading must not be cut (see interrupts.held)
            from harness.backends import UserspaceCommand
            from harness.interrupts import Interrupted
            from harness.run import run_case
            from harness.scenario.load import load_file
            from harness.workers.protocol import Task, send
    except KeyboardInterrupt:
        return interrupts.EXIT_INTERRUPTED
    cases: dict[str, list] = dict(loaded or {})
    try:
        for line in sys.stdin:
            task = Task.from_line(line)
            if task.file not in cases:  # a file's cases, loaded once per worker
                cases[task.file] = load_file(task.file)
            case = next(c for c in cases[task.file] if c.case_id == task.case_id)

            def on_step(step, task: Task = task) -> None:
                send(protocol, "step", number=task.number, index=step.index, kind=step.kind, outcome=step.outcome)

            try:
                over_hosts = {}
                if task.hosts is not None:  # the controller read this file already
                    with interrupts.held():
                        from harness.hosts.engine import engine_over_hosts
                        from harness.hosts.inventory import load_inventory

                        over_hosts = {"engine_factory": engine_over_hosts(load_inventory(task.hosts), case.id)}
                result = run_case(
                    case,
                    **over_hosts,
                    backend=task.backend,
                    userspace=UserspaceCommand.parse(task.userspace) if task.userspace else None,
                    engine=task.engine,
                    artifacts_dir=Path(task.artifacts_dir) if task.artifacts_dir else None,
                    on_step=on_step,
                    repeat=task.repeat,
                    repeats=task.repeats,
                )
            except Interrupted as exc:  # torn down: say so, and what (if anything) is left
                send(protocol, "interrupted", number=task.number, record=exc.result.to_json(), summary=exc.summary())
                return interrupts.EXIT_INTERRUPTED
            send(protocol, "done", number=task.number, record=result.to_json(), summary=result.summary(), report=result.report())
    except KeyboardInterrupt:  # between cases (or waiting for one): nothing of ours is built
        return interrupts.EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
