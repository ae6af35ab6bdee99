"""What a run created, written down before it is created, and the reaper that
removes it when the run is over: on success, failure, Ctrl-C, or after a SIGKILL,
when the next run (or `wgh clean`) finds the owner process gone.

The record lives in /run/wgharness/<run-id>.json. Objects are recorded *before*
they are created, so no crash can leave an object the record does not know.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.plan import naming
from harness.processes import orphaned_processes, process_running, process_start_time, stop_process, stop_processes


REGISTRY_DIR = Path("/run/wgharness")
RELEASED = b"released"  # what a harness tells its watchdog when it tore down itself
WG_SOCKET_DIR = Path("/var/run/wireguard")


@dataclass
class TrackedProcess:
    pid: int
    start: int | None
    what: str


@dataclass
class RunRecord:
    run_id: str
    pid: int
    start: int | None
    namespaces: list[str] = field(default_factory=list)
    processes: list[TrackedProcess] = field(default_factory=list)
    sockets: list[str] = field(default_factory=list)
    dirs: list[str] = field(default_factory=list)

    def owner_alive(self) -> bool:
        return process_running(self.pid, self.start)

    @classmethod
    def load(cls, path: Path) -> "RunRecord":
        """A record as a run wrote it; OSError or ValueError if it is gone or torn."""
        data = json.loads(path.read_text())
        try:
            data["processes"] = [TrackedProcess(**p) for p in data.get("processes", [])]
            return cls(**data)
        except (TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"{path}: not a run record ({exc})") from None

    def describe(self) -> str:
        """What the run has on the host, briefly: for a message about what is left."""
        parts = [f"run {self.run_id}"]
        if self.namespaces:
            parts.append(f"{len(self.namespaces)} namespaces ({', '.join(self.namespaces[:3])}{', …' if len(self.namespaces) > 3 else ''})")
        if self.processes:
            parts.append(f"{len(self.processes)} processes ({', '.join(f'{p.what} {p.pid}' for p in self.processes[:3])})")
        return ", ".join(parts)


class RunRegistry:
    """The record of one live run. Every add is persisted before the caller creates the object."""

    def __init__(self, run_id: str, directory: Path = REGISTRY_DIR, *, part: str | None = None):
        """`part`: one of several records of a run on this machine (a worker's share,
        beside its controller's record): <run>.<part>.json."""
        self.directory = directory
        self.path = directory / (f"{run_id}.{part}.json" if part else f"{run_id}.json")
        pid = os.getpid()
        self.record = RunRecord(run_id, pid, process_start_time(pid))
        self._watchdog: tuple[int, object] | None = None  # (pipe write end, process)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._save()

    def watch(self) -> None:
        """Start a watchdog that reaps this run the moment the harness dies, however it
        dies (SIGKILL included). Needed for children that drop privileges, which loses
        PR_SET_PDEATHSIG (dnsmasq). Idempotent; stopped by release()."""
        if self._watchdog is not None:
            return
        read_end, write_end = os.pipe()  # the harness holds the write end: EOF = it is gone
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "harness.watchdog", str(self.path)],
                stdin=read_end, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C at a terminal reaches the harness, not its watchdog
            )
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        self._watchdog = (write_end, process)

    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self.record)))
        os.replace(tmp, self.path)

    def add_namespaces(self, names: list[str]) -> None:
        self.record.namespaces += names
        self._save()

    def add_process(self, pid: int, what: str, *, persist: bool = True) -> None:
        """Record a started process. persist=False for one of many started together
        (persist() once after them: each save rewrites the whole record, so a thousand
        saves cost seconds). A SIGKILL before the save leaves it unrecorded on disk, and
        the reaper still finds it by the owner mark every process carries."""
        self.record.processes.append(TrackedProcess(pid, process_start_time(pid), what))
        if persist:
            self._save()

    def persist(self) -> None:
        self._save()

    def add_sockets(self, paths: list[str]) -> None:
        self.record.sockets += paths
        self._save()

    def add_dir(self, path: str) -> None:
        self.record.dirs.append(path)
        self._save()

    def release(self) -> list[str]:
        """Remove everything recorded (the run is over); returns what could not be removed."""
        leftovers = remove_objects(self.record)
        if not leftovers:
            self.path.unlink(missing_ok=True)
        if self._watchdog is not None:  # it wakes, finds the owner alive, and leaves the rest to the reaper
            write_end, process = self._watchdog
            self._watchdog = None
            try:
                os.write(write_end, RELEASED)
            finally:
                os.close(write_end)
            try:
                process.wait(timeout=5)  # type: ignore[attr-defined]
            except subprocess.TimeoutExpired:  # a stuck watchdog: the reaper removes what it guards
                pass
        return leftovers


def remove_namespace(name: str) -> bool:
    from harness.net import nsexec

    try:
        nsexec.remove_namespace(name)
    except OSError:
        pass
    return not nsexec.netns_path(name).exists()


def remove_objects(record: RunRecord, *, owner_gone: bool = False) -> list[str]:
    """Remove what the record names, and every process inside its namespaces (one
    started but not yet recorded, a shell step's background job). `owner_gone`: the run's
    harness is dead, so its marked processes are ended too, wherever they are (see
    harness.processes: one may sit in a namespace already unmounted)."""
    return remove_run_objects(record, owner_gone=owner_gone).failures


@dataclass
class Removal:
    processes: list[str] = field(default_factory=list)  # "<name> <pid>", of what was ended
    namespaces: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def remove_run_objects(record: RunRecord, *, owner_gone: bool = False) -> Removal:
    removal = Removal()
    # processes first: a live wireguard-go keeps its namespace alive after unmount
    recorded = {proc.pid: proc for proc in record.processes}
    extra: dict[int, tuple[int | None, str]] = {}
    namespaces = {nsexec_path(ns): ns for ns in record.namespaces}
    for pid, ns in _processes_in(namespaces):
        if pid not in recorded:
            extra[pid] = (process_start_time(pid), f"{_comm(pid)} in {ns}")
    if owner_gone:
        for orphan in orphaned_processes((record.pid, record.start)):
            if orphan.pid not in recorded:
                extra.setdefault(orphan.pid, (orphan.start, orphan.name))
    pending = [(proc.pid, proc.start) for proc in record.processes] + [(pid, start) for pid, (start, _) in extra.items()]
    running = {pid for pid, start in pending if start is not None and process_running(pid, start)}
    stuck = set(stop_processes(pending))
    for pid, proc in recorded.items():
        if pid in stuck:
            removal.failures.append(f"process {pid} ({proc.what})")
        elif pid in running:
            removal.processes.append(f"{proc.what} {pid}")
    for pid, (_, what) in extra.items():
        if pid in stuck:
            removal.failures.append(f"process {pid} ({what})")
        elif pid in running:
            removal.processes.append(f"{what} {pid} (unrecorded)")
    for name in reversed(record.namespaces):
        existed = nsexec_path(name).exists()
        if not remove_namespace(name):
            removal.failures.append(f"namespace {name}")
        elif existed:
            removal.namespaces.append(name)
    for sock in record.sockets:
        Path(sock).unlink(missing_ok=True)
    for directory in record.dirs:
        shutil.rmtree(directory, ignore_errors=True)
    return removal


def nsexec_path(name: str) -> Path:
    from harness.net import nsexec

    return nsexec.netns_path(name)


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "process"


@dataclass
class ReapReport:
    runs: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    processes: list[str] = field(default_factory=list)  # what was ended: "<name> <pid> …"
    sockets: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.runs or self.namespaces or self.processes or self.sockets)


def live_runs(directory: Path = REGISTRY_DIR) -> dict[str, RunRecord]:
    """Every record, by its file's name without .json: a run's id, or <run>.<part> for
    each further record of a run on this machine (a worker's share)."""
    runs = {}
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            record = RunRecord.load(path)
        except (OSError, ValueError):
            continue
        runs[path.name[: -len(".json")]] = record
    return runs


def reap(directory: Path = REGISTRY_DIR, *, sweep: bool = False) -> ReapReport:
    """Remove everything left by runs whose owner process is gone. Live runs are untouched.
    `sweep` (`wgh clean`): also look through every process on the host for what a dead
    run left without a record: Mininet host shells by name, and any process marked as
    started by a harness process that is gone (harness.processes), wherever it is. A
    build skips it: its own dead runs' records and named namespaces cover the usual case."""
    report = ReapReport()
    records = live_runs(directory)
    alive_records = {name for name, rec in records.items() if rec.owner_alive()}
    alive = {records[name].run_id for name in alive_records}  # runs with any live record
    for name, rec in records.items():
        if name in alive_records:
            continue
        report.runs.append(name)
        removal = remove_run_objects(rec, owner_gone=True)
        report.namespaces += removal.namespaces
        report.processes += removal.processes
        report.failures += removal.failures
        if not removal.failures:
            (directory / f"{name}.json").unlink(missing_ok=True)
    if directory != REGISTRY_DIR:
        return report  # a private registry (tests): never sweep the host by name

    def recorded(run: str) -> bool:
        return (directory / f"{run}.json").exists() or any(directory.glob(f"{run}.*.json"))

    # objects named like ours whose run left no record (e.g. /run was wiped)
    def orphaned(run: str | None) -> bool:
        # checked again right before removal: a run that started after `records` was
        # read has written its record before creating anything, so it is spared
        return bool(run) and run not in alive and not recorded(run)

    def end(pid: int, what: str) -> None:
        if stop_process(pid, process_start_time(pid)):
            report.processes.append(what)
        else:
            report.failures.append(f"process {what}")

    netns_dir = Path("/run/netns")
    orphans = [ns for ns in (sorted(os.listdir(netns_dir)) if netns_dir.is_dir() else []) if orphaned(naming.run_of(ns))]
    # processes first: one still inside a namespace keeps it alive after unmount. Any
    # process inside an orphaned run's namespace is the run's (wireguard-go, a userspace
    # implementation from a template, dnsmasq, iperf3): nothing else is put there
    for pid, ns in _processes_in({netns_dir / ns: ns for ns in orphans}):
        end(pid, f"{_comm(pid)} {pid} in {ns}")
    # unnamed namespaces (the Mininet engine's hosts) are held by processes named after
    # the run (each engine says how to find its own): the holder and everything inside
    # its namespace go, and the namespace with them
    lost = [(pid, name) for pid, name in (_namespace_holders() if sweep else []) if orphaned(naming.run_of(name))]
    held = dict(lost)
    inside = [(pid, name) for pid, name in _processes_in({Path(f"/proc/{pid}/ns/net"): name for pid, name in lost}) if pid not in held]
    for pid, name in inside + lost:  # what runs inside first, then the shell
        end(pid, f"{_comm(pid)} {pid} in {name}")
    # a process started the moment its harness was killed (not yet recorded), whose
    # namespace is already gone: found by the owner it carries
    for orphan in orphaned_processes() if sweep else []:
        end(orphan.pid, orphan.describe())
    for ns in orphans:
        if ns not in report.namespaces:
            if remove_namespace(ns):
                report.namespaces.append(ns)
            else:
                report.failures.append(f"namespace {ns}")
    for sock in sorted(WG_SOCKET_DIR.glob("wgh*.sock")) if WG_SOCKET_DIR.is_dir() else []:
        run = naming.run_of(sock.name[: -len(".sock")])
        if orphaned(run):
            sock.unlink(missing_ok=True)
            report.sockets.append(str(sock))
    return report


def _namespace_holders() -> list[tuple[int, str]]:
    """(pid, name) of the processes that hold unnamed namespaces, by every engine's own
    finder (harness.engines: EngineKind.holders)."""
    import importlib

    from harness.engines import ENGINES

    found: list[tuple[int, str]] = []
    for kind in ENGINES.values():
        if kind.holders:
            module, _, function = kind.holders.partition(":")
            found += getattr(importlib.import_module(module), function)()
    return found


def _processes_in(namespaces: dict[Path, str]) -> list[tuple[int, str]]:
    """(pid, namespace name) of every process whose network namespace is one of these
    (compared by the namespace's inode, as `ip netns pids` does)."""
    inodes = {}
    for path, name in namespaces.items():
        try:
            info = path.stat()
        except OSError:
            continue
        inodes[(info.st_dev, info.st_ino)] = name
    found = []
    for entry in os.listdir("/proc") if inodes else []:
        if not entry.isdigit():
            continue
        try:
            info = os.stat(f"/proc/{entry}/ns/net")
        except OSError:  # gone, or a kernel thread
            continue
        name = inodes.get((info.st_dev, info.st_ino))
        if name is not None:
            found.append((int(entry), name))
    return found
