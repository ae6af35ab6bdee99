"""A large run's descriptors: the soft open-files limit raised as far as the run needs,
a hard limit too low said before anything is built, and waits that work on descriptors
past select()'s 1 024."""

import os
import resource
import socket

import pytest

from harness import openfiles
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
        monkeypatch.setattr(openfiles.resource, "getrlimit", fake.getrlimit)
        monkeypatch.setattr(openfiles.resource, "setrlimit", fake.setrlimit)
        return fake

    return make


def test_a_thousand_nodes_raise_a_shells_soft_limit_up_to_what_they_need(limits):
    fake = limits(1024, 1048576)
    assert openfiles.ensure_open_files(1000) == openfiles.files_needed(1000) > 1024
    assert fake.value == (openfiles.files_needed(1000), 1048576)


def test_a_small_run_or_a_high_limit_is_left_alone(limits):
    fake = limits(1024, 4096)
    assert openfiles.ensure_open_files(10) == 1024 and fake.value == (1024, 4096)
    fake = limits(resource.RLIM_INFINITY, resource.RLIM_INFINITY)
    assert openfiles.ensure_open_files(5000) == resource.RLIM_INFINITY


def test_a_hard_limit_too_low_is_an_error_that_says_how_to_raise_it(limits):
    fake = limits(1024, 2048)
    with pytest.raises(MissingCapability) as exc:
        openfiles.ensure_open_files(1000)
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
