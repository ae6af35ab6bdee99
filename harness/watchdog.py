"""`python -m harness.watchdog RECORD`: reap one run as soon as its harness dies.

Started by RunRegistry.watch() with stdin the read end of a pipe whose only write end
the harness holds. Reading it returns when the harness exits, however it exits: after
a normal teardown the record is gone (or the owner is still alive) and there is
nothing to do; after a SIGKILL the owner is dead and the record names what it left,
which is removed here at once instead of at the next run.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    from harness.cleanup import RELEASED, RunRecord, remove_objects
    from harness.processes import process_running

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # only the pipe tells it when to act
    record_path = Path(argv[0])
    # blocks until the harness has closed its end: after its own teardown it says so first
    if sys.stdin.buffer.read() == RELEASED:
        return 0
    try:
        record = RunRecord.load(record_path)
    except (OSError, ValueError):
        return 0  # released by a normal teardown
    # the pipe closes while the owner is still exiting: give it a moment to be gone
    deadline = time.monotonic() + 5.0
    while process_running(record.pid, record.start):
        if time.monotonic() > deadline:
            return 0  # alive: it closed the pipe itself, and tears down itself
        time.sleep(0.01)
    # owner_gone: also what it started but had not recorded yet when it was killed
    if not remove_objects(record, owner_gone=True):
        record_path.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
