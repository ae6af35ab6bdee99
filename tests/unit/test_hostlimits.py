"""A large run's descriptors: the soft open-files limit raised as far as the run needs,
a hard limit too low said before anything is built, and waits that work on descriptors
past select()'s 1 024."""

import os
import resource
import socket

import pytest

from harness import hostlimits
from harness.errors import MissingCapability
from harness.fdwait import readable


class Limits:
    def __init__(self, soft, hard):
        self.value = (soft, hard)

    def getrlimit(self, which):
        assert which == resource.RLIMIT_NOFILE
        return self.value

    def setrlimit(self, which, value):
        assert which == resource.RLIMIT_NOFILE
        self.value = value


@pytest.fixture
def limits(monkeypatch):
    def make(soft, hard):
        fake = Limits(soft, hard)
        monkeypatch.setattr(hostlimits.resource, "getrlimit", fake.getrlimit)
        monkeypatch.setattr(hostlimits.resource, "setrlimit", fake.setrlimit)
        return fake

    return make


def test_a_thousand_nodes_raise_a_shells_soft_limit_up_to_what_they_need(limits):
    fake = limits(1024, 1048576)
    assert hostlimits.ensure_open_files(1000) == hostlimits.files_needed(1000) > 1024
    assert fake.value == (hostlimits.files_needed(1000), 1048576)


def test_a_small_run_or_a_high_limit_is_left_alone(limits):
    fake = limits(1024, 4096)
    assert hostlimits.ensure_open_files(10) == 1024 and fake.value == (1024, 4096)
    fake = limits(resource.RLIM_INFINITY, resource.RLIM_INFINITY)
    assert hostlimits.ensure_open_files(5000) == resource.RLIM_INFINITY


def test_a_hard_limit_too_low_is_an_error_that_says_how_to_raise_it(limits):
    fake = limits(1024, 2048)
    with pytest.raises(MissingCapability) as exc:
        hostlimits.ensure_open_files(1000)
    assert "1000 nodes needs about" in str(exc.value) and "at most 2048" in str(exc.value) and "ulimit -Hn" in str(exc.value)
    assert fake.value == (1024, 2048)  # untouched


def test_readable_works_past_select_s_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2100:
        pytest.skip(f"needs a hard open-files limit of 2100 (it is {hard})")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2100), hard))
    a, b = socket.socketpair()
    high = os.dup2(b.fileno(), 2000)
    try:
        receiver = socket.socket(fileno=high)
        assert not readable(receiver, 0.01)
        a.send(b"x")
        assert readable(receiver, 1.0) and readable(high, 0)
        receiver.detach()
    finally:
        os.close(high)
        a.close()
        b.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_more_daemons_than_the_inotify_limit_is_an_error_before_the_first_starts(tmp_path, monkeypatch):
    limit = tmp_path / "max_user_instances"
    limit.write_text("128\n")
    monkeypatch.setattr(hostlimits, "inotify_instances_in_use", lambda uid=None: 5)
    hostlimits.ensure_inotify_instances(60, limit)  # far below: not even counted
    hostlimits.ensure_inotify_instances(123, limit)  # 123 + 5 in use: exactly fits
    with pytest.raises(MissingCapability) as exc:
        hostlimits.ensure_inotify_instances(299, limit)
    text = str(exc.value)
    assert "299 userspace WireGuard daemons" in text and "may have 128 (5 in use)" in text
    assert "sysctl -w fs.inotify.max_user_instances=368" in text and "--backend kernel" in text
    hostlimits.ensure_inotify_instances(10_000, tmp_path / "missing")  # no such limit: nothing to say


def test_inotify_instances_of_a_process_are_counted():
    import ctypes
    from pathlib import Path

    libc = ctypes.CDLL(None, use_errno=True)
    me = Path(f"/proc/{os.getpid()}")
    before = hostlimits.inotify_instances_of(me)
    fd = libc.inotify_init1(os.O_CLOEXEC)
    assert fd >= 0
    try:
        assert hostlimits.inotify_instances_of(me) == before + 1
        assert hostlimits.inotify_instances_in_use() >= 1
    finally:
        os.close(fd)
    assert hostlimits.inotify_instances_of(Path("/proc/no-such-process")) == 0


def test_links_past_the_hosts_neighbour_table_are_an_error_naming_the_sysctls(tmp_path):
    sys_dir, stat_dir = tmp_path / "sys", tmp_path / "stat"
    for ip in ("ipv4", "ipv6"):
        (sys_dir / ip / "neigh" / "default").mkdir(parents=True)
        (sys_dir / ip / "neigh" / "default" / "gc_thresh3").write_text("1024\n")
    stat_dir.mkdir()
    header = "entries  allocs   destroys\n"
    (stat_dir / "arp_cache").write_text(header + "00000064 000095c5 0000a101\n")  # 100 in use
    (stat_dir / "ndisc_cache").write_text(header + "00000000 00000001 00000001\n")
    hostlimits.ensure_neighbour_tables({4: 400, 6: 0}, sys_dir, stat_dir)  # below half: not even read
    hostlimits.ensure_neighbour_tables({4: 924, 6: 1024}, sys_dir, stat_dir)  # 924 + 100 fits; v6 exactly
    with pytest.raises(MissingCapability) as exc:
        hostlimits.ensure_neighbour_tables({4: 2000, 6: 0}, sys_dir, stat_dir)  # a 1 000-spoke hub
    text = str(exc.value)
    assert "about 2000 IPv4 neighbour entries" in text and "at most 1024 (100 in use)" in text
    assert "net.ipv4.neigh.default.gc_thresh3=4200" in text and "neighbor table overflow" in text


def test_a_plan_counts_one_neighbour_entry_per_link_end_and_version():
    from harness.plan.network import build_plan
    from harness.scenario.load import load_data

    spec = {
        "nodes": {"hub": {"router": True}, "spoke": {"count": 3}, "far": {}},
        "links": [{"ends": ["spoke", "hub"]}, {"ends": ["far", "hub"], "ipv6": True}],
    }
    plan = build_plan(load_data(spec)[0].spec, "abc123")
    assert plan.neighbour_entries() == {4: 8, 6: 2}


def test_kernel_wireguard_devices_need_descriptors_of_their_own(limits):
    """Each kernel device holds a generic netlink handle beside its node's: a 300-spoke
    hub with kernel WireGuard ran out of what 300 nodes alone were given."""
    limits(1024, 1048576)
    assert hostlimits.files_needed(300, 300) == hostlimits.files_needed(300) + 300 * hostlimits.FILES_PER_KERNEL_DEVICE
    assert hostlimits.ensure_open_files(300, 300) == hostlimits.files_needed(300, 300) > 3000


def test_daemons_past_the_kernels_task_ids_are_an_error_naming_the_sysctl(tmp_path):
    """3 000 wireguard-go (~12 threads each) hit Debian's pid_max, 32 768, and fork()
    failed halfway through the build: the check says so before anything is built."""
    sys_dir = tmp_path / "kernel"
    sys_dir.mkdir()
    (sys_dir / "pid_max").write_text("32768\n")
    (sys_dir / "threads-max").write_text("192735\n")
    loadavg = tmp_path / "loadavg"
    loadavg.write_text("0.50 0.40 0.30 2/1200 12345\n")  # 1 200 threads exist
    hostlimits.ensure_threads(1000, sys_dir, loadavg)  # 16 000 below half: not even counted
    hostlimits.ensure_threads(1900, sys_dir, loadavg)  # 30 400 + 1 200 fits
    with pytest.raises(MissingCapability) as exc:
        hostlimits.ensure_threads(3000, sys_dir, loadavg)
    text = str(exc.value)
    assert "about 48000 threads" in text and "kernel allows 32768 (kernel.pid_max; 1200 exist already)" in text
    assert "sysctl -w kernel.pid_max=98400" in text
    hostlimits.ensure_threads(100_000, tmp_path / "missing", loadavg)  # no such limits: nothing to say


def test_threads_in_use_reads_the_hosts_count():
    assert hostlimits.threads_in_use() > 1
