"""benchmarks/soak.py end to end, on a tiny stand-in for the test suite: what it records,
and that stopping it stops its run the way that run tears down."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOAK = REPO / "benchmarks" / "soak.py"

# One test that says it started, then waits; SIGTERM (what tears a real run down) is noted.
SLOW_SUITE = """
import os, signal, time
from pathlib import Path

def test_waits():
    marker = Path(os.environ["SOAK_TEST_MARKER"])
    signal.signal(signal.SIGTERM, lambda *_: (marker.write_text("terminated"), os._exit(3)))
    marker.write_text("started")
    time.sleep(120)
"""


def soak(tmp_path: Path, *args: str, **popen) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["SOAK_TEST_MARKER"] = str(tmp_path / "marker")
    return subprocess.Popen(
        [sys.executable, str(SOAK), "--load", "none", "--library-runs", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **popen,
    )


def test_the_soak_names_a_failing_test_as_it_happens_and_records_it(tmp_path):
    (tmp_path / "test_one.py").write_text("def test_good():\n    pass\n\ndef test_bad():\n    assert 1 == 2, 'the bad one'\n")
    out = tmp_path / "soak.json"
    proc = soak(tmp_path, "--suite-runs", "1", "--suite-args", f"-p no:xdist {tmp_path / 'test_one.py'}", "--out", str(out))
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr  # a failing test-suite run fails the soak
    assert "2 verdicts, 1 failures" in stderr
    assert "test_one::test_bad: failed" in stderr and "the bad one" in stderr
    document = json.loads(out.read_text())
    (suite,) = document["sets"]
    assert suite["summary"]["failures"] == 1 and suite["runs"][0]["exit"] == 1


def test_an_interrupted_soak_stops_its_run_with_sigterm_and_exits_130_quietly(tmp_path):
    (tmp_path / "test_slow.py").write_text(SLOW_SUITE)
    out = tmp_path / "soak.json"
    proc = soak(tmp_path, "--suite-runs", "1", "--suite-args", f"-p no:xdist {tmp_path / 'test_slow.py'}", "--out", str(out))
    marker = tmp_path / "marker"
    deadline = time.monotonic() + 60
    while not (marker.exists() and marker.read_text() == "started") and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)  # to the soak alone, as a CI runner's cancel reaches its top process
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    assert marker.read_text() == "terminated"  # SIGTERM, which tears a run down: not SIGKILL
    assert not out.exists()  # half a soak's figures are not written as if whole
