"""The test suite itself, started the way a CI script starts a background job."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_ctrl_c_tests_pass_when_the_suite_was_started_with_sigint_ignored():
    """`pytest ... &` from a non-interactive shell inherits SIGINT ignored; the tests that
    deliver a Ctrl-C (to themselves, or to a run they started) must still get one."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "tests/unit/test_vm_process_group.py::test_interrupt_during_run_group_kills_the_group"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert "1 passed" in done.stdout
