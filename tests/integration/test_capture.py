"""Captures on real links: what the checks see, and that they can fail."""

from __future__ import annotations

import socket
import time

import pytest

from harness.net import nsexec
from harness.steps.capture import Capture
from harness.steps.checks import check

pytestmark = pytest.mark.requires("root", "wireguard")

PAIR = {
    "nodes": {"a": {}, "b": {}},
    "links": [{"ends": ["a", "b"], "name": "wire"}],
    "wireguard": {"a": {"peers": {"b": {"endpoint": "b", "persistent_keepalive": 1}}}, "b": {}},
}


def test_cleartext_outside_the_tunnel_is_seen(wgh_network):
    """The leak check's detector works: the same marker sent on the underlay is found."""
    net = wgh_network(PAIR)
    cap = Capture(net.node("a"), "eth0").start()
    marker = b"wgh-test-marker-cleartext"

    def send() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(marker, ("198.18.1.2", 9))

    nsexec.call_in(net.node("a").netns_path, send)
    time.sleep(0.2)
    cap.close()
    assert cap.contains(marker)


def test_capture_checks_pass_and_fail(wgh_network):
    net = wgh_network(PAIR)
    assert check(net, {"capture": {"name": "c", "link": "wire", "at": "b"}}).ok
    time.sleep(3.2)
    right = check(net, {"stop": {"capture": "c", "keepalive": "1s", "no_cleartext": {"from": "a", "to": "b"}}})
    assert right.ok, right.message
    assert right.measurements["c.keepalive"].value >= 2
    check(net, {"capture": {"name": "d", "link": "wire"}})
    time.sleep(2.2)
    wrong = check(net, {"stop": {"capture": "d", "keepalive": "2s"}})
    assert not wrong.passed and "not 2s" in wrong.message
