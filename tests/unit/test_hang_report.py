"""The report a guest prints before the host kills it: it must name what is stuck."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.vm import hang_report
from harness.vm.runner import VmOptions, guest_script, hang_report_after


def test_the_guest_starts_the_report_before_the_host_deadline():
    script = guest_script(["pytest", "-n", "4"], VmOptions(timeout=1500))
    watch, _, command = script.partition("exec env ")
    assert "-m harness.vm.hang_report --after 1275 --within 195 " in watch and watch.rstrip().endswith("&")
    assert command.endswith("pytest -n 4")
    assert "hang_report" not in guest_script(["true"], VmOptions(hang_report=False))


@pytest.mark.parametrize("timeout, after", [(3600, 3300), (1500, 1275), (300, 240), (60, 30)])
def test_the_report_leaves_time_to_print_before_the_kill(timeout, after):
    assert hang_report_after(timeout) == after


def _sleeping_python(tmp_path: Path) -> subprocess.Popen:
    ready = tmp_path / "ready"
    code = (
        "import pathlib, time\n"
        "def stuck_in_a_named_function():\n"
        f"    pathlib.Path({str(ready)!r}).touch()\n"
        "    time.sleep(60)\n"
        "stuck_in_a_named_function()\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 30
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return child


def test_the_report_lists_every_process_and_the_python_stack_of_a_stuck_one(tmp_path):
    child = _sleeping_python(tmp_path)
    try:
        text = hang_report.report(1275)
    finally:
        child.kill()
        child.wait()
    assert "still running after 1275s" in text
    line = next(line for line in text.splitlines() if line.split()[:1] == [str(child.pid)])
    pid, ppid, state, age, wchan = line.split()[:5]
    assert (int(ppid), state) == (os.getpid(), "S") and wchan != "-", line  # asleep, and where
    stack = text.split(f"--- Python stack of {child.pid} ", 1)[1].split("\n---", 1)[0]
    assert "stuck_in_a_named_function" in stack, stack


def test_without_py_spy_the_report_says_how_to_get_it(tmp_path, monkeypatch):
    child = _sleeping_python(tmp_path)
    try:
        monkeypatch.setattr(hang_report, "_beside_python", lambda tool: None)
        monkeypatch.setattr(hang_report.shutil, "which", lambda tool: None)
        text = hang_report.report(10)
    finally:
        child.kill()
        child.wait()
    assert f"--- Python stack of {child.pid} " in text and "scripts/install.sh --vm installs it" in text


def test_the_report_stops_reading_stacks_when_its_time_is_up(tmp_path):
    child = _sleeping_python(tmp_path)
    try:
        text = hang_report.report(10, within=0)
    finally:
        child.kill()
        child.wait()
    assert f"--- Python stack of {child.pid} " in text and "(no time left before the kill)" in text
