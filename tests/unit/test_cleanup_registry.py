"""harness.cleanup: the run record and the reaper, in a private directory.

Nothing here touches real namespaces or processes: the reaper's host-wide sweeps
(/run/netns, wireguard-go processes, /var/run/wireguard) are redirected to empty
places, and namespace removal is replaced by a recorder.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import cleanup
from harness.cleanup import RunRecord, RunRegistry, TrackedProcess, live_runs, reap
from harness.processes import process_start_time, stop_process


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Confine reap() to tmp_path; returns the list of namespaces it asked to remove."""
    removed = []
    netns = tmp_path / "fake-run-netns"
    real_path = Path

    def fake_path(*parts):
        path = real_path(*parts)
        return netns if str(path) == "/run/netns" else path

    def fake_remove_namespace(name):
        removed.append(name)
        return True

    monkeypatch.setattr(cleanup, "Path", fake_path)
    monkeypatch.setattr(cleanup, "WG_SOCKET_DIR", tmp_path / "fake-wireguard")
    monkeypatch.setattr(cleanup, "_processes_in", lambda namespaces: [])
    monkeypatch.setattr(cleanup, "remove_namespace", fake_remove_namespace)
    monkeypatch.setattr(cleanup, "nsexec_path", lambda name: tmp_path)  # every recorded namespace "exists"
    return removed


def dead_pid():
    """The pid of a process that has exited and been reaped."""
    done = subprocess.Popen(["/bin/true"] if os.path.exists("/bin/true") else [sys.executable, "-c", "pass"])
    assert done.wait() == 0
    assert process_start_time(done.pid) is None
    return done.pid


def write_record(directory, record):
    from dataclasses import asdict

    (directory / f"{record.run_id}.json").write_text(json.dumps(asdict(record)))


def read_json(path):
    return json.loads(path.read_text())


def test_process_start_time_of_self():
    start = process_start_time(os.getpid())
    assert isinstance(start, int) and start > 0
    assert process_start_time(dead_pid()) is None


def test_registry_persists_every_add_before_returning(tmp_path):
    registry = RunRegistry("aaa111", directory=tmp_path)
    path = tmp_path / "aaa111.json"
    data = read_json(path)
    assert data == {
        "run_id": "aaa111",
        "pid": os.getpid(),
        "start": process_start_time(os.getpid()),
        "namespaces": [],
        "processes": [],
        "sockets": [],
        "dirs": [],
    }

    registry.add_namespaces(["wgh-aaa111-a", "wgh-aaa111-b"])
    assert read_json(path)["namespaces"] == ["wgh-aaa111-a", "wgh-aaa111-b"]

    registry.add_process(os.getpid(), "wireguard-go wghaaa1111")
    assert read_json(path)["processes"] == [
        {"pid": os.getpid(), "start": process_start_time(os.getpid()), "what": "wireguard-go wghaaa1111"}
    ]

    registry.add_sockets(["/x/wghaaa1111.sock"])
    assert read_json(path)["sockets"] == ["/x/wghaaa1111.sock"]

    registry.add_dir("/x/work")
    assert read_json(path)["dirs"] == ["/x/work"]
    assert not (tmp_path / "aaa111.tmp").exists()  # written atomically


def test_processes_started_together_are_written_once_and_held_in_memory_meanwhile(tmp_path, monkeypatch):
    registry = RunRegistry("aaa112", directory=tmp_path)
    path = tmp_path / "aaa112.json"
    saves = []
    real_save = registry._save
    monkeypatch.setattr(registry, "_save", lambda: (saves.append(1), real_save()))
    for _ in range(3):
        registry.add_process(os.getpid(), "wireguard-go", persist=False)
    assert saves == [] and read_json(path)["processes"] == []
    # in memory at once: a teardown before the save still stops them
    assert [p.what for p in registry.record.processes] == ["wireguard-go"] * 3
    registry.persist()
    assert len(saves) == 1 and len(read_json(path)["processes"]) == 3


def test_live_runs_reads_records_back(tmp_path):
    registry = RunRegistry("bbb222", directory=tmp_path)
    registry.add_namespaces(["wgh-bbb222-a"])
    registry.add_process(os.getpid(), "me")
    registry.add_sockets(["/x/s.sock"])
    registry.add_dir("/x/d")
    (tmp_path / "garbage.json").write_text("{not json")
    (tmp_path / "other.txt").write_text("ignored")

    runs = live_runs(tmp_path)
    assert list(runs) == ["bbb222"]
    record = runs["bbb222"]
    assert record == registry.record
    assert record.processes == [TrackedProcess(os.getpid(), process_start_time(os.getpid()), "me")]
    assert record.owner_alive()


def test_live_runs_of_missing_directory(tmp_path):
    assert live_runs(tmp_path / "nope") == {}


def test_dead_owner_is_not_alive():
    assert not RunRecord("ccc333", dead_pid(), 12345).owner_alive()


def test_recycled_pid_is_not_alive():
    # our own pid, but with another start time: the pid was reused by someone else
    start = process_start_time(os.getpid())
    assert RunRecord("ccc333", os.getpid(), start).owner_alive()
    assert not RunRecord("ccc333", os.getpid(), start + 1).owner_alive()
    assert not RunRecord("ccc333", os.getpid(), None).owner_alive()


def test_reap_removes_dead_run_and_leaves_live_run(tmp_path, isolated):
    registry_dir = tmp_path / "registry"
    registry_dir.mkdir()

    dead_dir = tmp_path / "dead-work"
    dead_dir.mkdir()
    (dead_dir / "file").write_text("x")
    dead_sock = tmp_path / "wghdead011.sock"
    dead_sock.write_text("")
    write_record(
        registry_dir,
        RunRecord("dead01", dead_pid(), 4242, namespaces=[], sockets=[str(dead_sock)], dirs=[str(dead_dir)]),
    )

    live = RunRegistry("live01", directory=registry_dir)
    live_dir = tmp_path / "live-work"
    live_dir.mkdir()
    live_sock = tmp_path / "wghlive011.sock"
    live_sock.write_text("")
    live.add_namespaces(["wgh-live01-a"])
    live.add_sockets([str(live_sock)])
    live.add_dir(str(live_dir))

    report = reap(directory=registry_dir)

    assert report.runs == ["dead01"]
    assert report.failures == []
    assert not dead_dir.exists()
    assert not dead_sock.exists()
    assert not (registry_dir / "dead01.json").exists()
    # the live run is untouched
    assert live_dir.exists() and live_sock.exists()
    assert (registry_dir / "live01.json").exists()
    assert live_runs(registry_dir)["live01"] == live.record
    assert isolated == []  # no namespace removal was asked for


def test_reap_removes_dead_runs_namespaces_in_reverse_order(tmp_path, isolated):
    write_record(tmp_path, RunRecord("dead02", dead_pid(), 1, namespaces=["wgh-dead02-a", "wgh-dead02-b"]))
    report = reap(directory=tmp_path)
    assert isolated == ["wgh-dead02-b", "wgh-dead02-a"]
    assert report.namespaces == ["wgh-dead02-b", "wgh-dead02-a"]
    assert report.runs == ["dead02"]
    assert not (tmp_path / "dead02.json").exists()


def test_reap_real_removal_of_a_namespace_that_does_not_exist(tmp_path, monkeypatch):
    """With the real remove_namespace: a recorded name that does not exist counts as removed."""
    monkeypatch.setattr(cleanup, "WG_SOCKET_DIR", tmp_path / "fake-wireguard")
    monkeypatch.setattr(cleanup, "_processes_in", lambda namespaces: [])
    real_path = Path
    monkeypatch.setattr(cleanup, "Path", lambda *p: tmp_path / "netns" if str(real_path(*p)) == "/run/netns" else real_path(*p))
    name = "wgh-qz9qz9-doesnotexist"
    assert not Path("/run/netns", name).exists()
    write_record(tmp_path, RunRecord("qz9qz9", dead_pid(), 1, namespaces=[name]))
    report = reap(directory=tmp_path)
    assert report.failures == []
    assert not (tmp_path / "qz9qz9.json").exists()


def test_reap_keeps_the_record_of_a_run_it_could_not_clean(tmp_path, isolated, monkeypatch):
    monkeypatch.setattr(cleanup, "remove_namespace", lambda name: False)
    write_record(tmp_path, RunRecord("dead03", dead_pid(), 1, namespaces=["wgh-dead03-a"]))
    report = reap(directory=tmp_path)
    assert report.failures == ["namespace wgh-dead03-a"]
    assert (tmp_path / "dead03.json").exists()  # retried next time


def test_reap_one_failing_run_does_not_keep_other_runs_records(tmp_path, isolated, monkeypatch):
    # 'aaa' sorts first and cannot be cleaned; 'bbb' is cleaned completely, so its record must go
    monkeypatch.setattr(cleanup, "remove_namespace", lambda name: name != "wgh-aaa004-a")
    write_record(tmp_path, RunRecord("aaa004", dead_pid(), 1, namespaces=["wgh-aaa004-a"]))
    write_record(tmp_path, RunRecord("bbb004", dead_pid(), 1, namespaces=["wgh-bbb004-a"]))
    report = reap(directory=tmp_path)
    assert report.runs == ["aaa004", "bbb004"]
    assert report.failures == ["namespace wgh-aaa004-a"]
    assert (tmp_path / "aaa004.json").exists()
    assert not (tmp_path / "bbb004.json").exists()


def test_reap_empty_directory(tmp_path, isolated):
    report = reap(directory=tmp_path)
    assert report.empty
    assert report.runs == [] and report.failures == []


def test_release_stops_process_and_removes_files(tmp_path, monkeypatch):
    monkeypatch.setattr(cleanup, "remove_namespace", lambda name: pytest.fail(f"would remove {name}"))
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        registry = RunRegistry("rel001", directory=tmp_path)
        work = tmp_path / "work"
        work.mkdir()
        sock = tmp_path / "s.sock"
        sock.write_text("")
        registry.add_process(child.pid, "sleeper")
        registry.add_sockets([str(sock)])
        registry.add_dir(str(work))
        assert registry.release() == []
        assert process_start_time(child.pid) is None
        assert not work.exists() and not sock.exists()
        assert not (tmp_path / "rel001.json").exists()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_stop_process_ignores_recycled_pid():
    # start time mismatch: the pid is not ours any more, so it must not be signalled
    start = process_start_time(os.getpid())
    assert stop_process(os.getpid(), start + 1) is True
    assert stop_process(os.getpid(), None) is True
    assert process_start_time(os.getpid()) == start  # still alive, obviously


def test_a_record_loads_back_and_a_torn_one_is_a_value_error(tmp_path):
    registry = cleanup.RunRegistry("ccc333", tmp_path)
    registry.add_namespaces(["wgh-ccc333-a", "wgh-ccc333-b", "wgh-ccc333-c", "wgh-ccc333-d"])
    registry.add_process(os.getpid(), "wireguard-go")
    record = cleanup.RunRecord.load(registry.path)
    assert record == registry.record
    assert record.describe() == (
        f"run ccc333, 4 namespaces (wgh-ccc333-a, wgh-ccc333-b, wgh-ccc333-c, …), 1 processes (wireguard-go {os.getpid()})"
    )
    for torn in ('{"run_id": "x"}', '{"run_id": "x", "pid": 1, "start": 0, "processes": [{"pid": 1}]}', "[1, 2]"):
        registry.path.write_text(torn)
        with pytest.raises(ValueError):
            cleanup.RunRecord.load(registry.path)
    assert "ccc333" not in cleanup.live_runs(tmp_path)
