"""WireGuard in Mininet networks of your own, with the harness's checks and diagnosis.

Two ways in, as ipmininet's users know them (a host class keyed by settings, and a
network class that starts what the hosts ask for):

    from mininet.topo import Topo
    from harness.mininet import Bridge, WgHost, WgNet, check

    class TwoSites(Topo):
        def build(self):
            s1 = self.addSwitch("s1", cls=Bridge)
            a = self.addHost("a", cls=WgHost, wireguard={"peers": {"b": {"endpoint": "b"}}})
            b = self.addHost("b", cls=WgHost, wireguard={})
            self.addLink(a, s1)
            self.addLink(b, s1)

    net = WgNet(topo=TwoSites())
    net.start()                       # the underlay, then WireGuard on every WgHost
    assert check(net.wireguard, {"handshake": {"between": ["a", "b"]}}).ok
    net.stop()                        # WireGuard removed, then the network

or, on any running `Mininet` (any Topo, any host class):

    wg = add_wireguard(net, {"h1": {"peers": {"h2": {"endpoint": "h2"}}}, "h2": {}})
    check(wg, {"ping": {"from": "h1", "to": "h2"}})
    wg.close()                        # or: with add_wireguard(...) as wg: ...

The `wireguard` settings are a scenario file's `wireguard:` section (peers, endpoint,
allowed_ips, persistent_keepalive, address, listen_port, mtu, backend, table); any
step of a scenario file runs through `check(wg, {...})`, and a failing one carries
the same diagnosis as in a file (`result.diagnosis`, `result.cause`). An endpoint
given as a host name is that host's address its peer reaches by its own routes (one
on a shared subnet first); write 'address:port' where that is not what you mean. A
host that masquerades (an nftables or iptables-nft rule) is known as a NAT to the
diagnosis. Everything the harness adds (WireGuard interfaces and their routes,
wg-quick's policy rules, wireguard-go processes) goes at close; the rest is yours.

The harness never changes the host: `WgNet` skips `Mininet.init()` (it raises host
limits and writes host sysctls), `Bridge` is a Linux bridge inside its own namespace
(Mininet's switches live in the host's), and the shells of `WgHost`, `Bridge` and the
harness's own Mininet hosts die with the Python process that started them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from mininet.node import Host, Switch

from harness.backends import AUTO, UserspaceCommand
from harness.diagnosis.result import Diagnosis
from harness.engine.adopted import AdoptedMininet
from harness.engine.mininet import DiesWithHarness, SafeMininet, dying
from harness.errors import BuildError
from harness.net import nsexec
from harness.network import Network
from harness.plan.naming import new_run_id
from harness.plan.types import NetworkPlan
from harness.steps.checks import check
from harness.scenario.wireguard_section import validate_wireguard

__all__ = ["Bridge", "MininetWireGuard", "WgHost", "WgNet", "add_wireguard", "check", "diagnose"]


class WgHost(DiesWithHarness, Host):
    """A Mininet host with WireGuard settings: `addHost("a", cls=WgHost, wireguard={...})`,
    the settings of a scenario file's `wireguard: {a: {...}}`. `WgNet.start()` (or
    `add_wireguard(net)`) brings them up."""

    def __init__(self, name: str, wireguard: Mapping[str, Any] | None = None, **params: Any):
        self.wireguard = dict(wireguard) if wireguard is not None else None
        super().__init__(name, **params)


class Bridge(DiesWithHarness, Switch):
    """A Linux bridge inside its own network namespace (made through netlink): a switch
    for topologies that need no OpenFlow controller and no Open vSwitch, and that
    leaves the host's own namespace alone."""

    def __init__(self, name: str, **params: Any):
        params["inNamespace"] = True  # Mininet puts switches in the host's namespace by default
        super().__init__(name, **params)

    def start(self, controllers: Any) -> None:
        from pyroute2 import IPRoute

        with IPRoute(fileno=nsexec.netlink_fd(f"/proc/{self.pid}/ns/net")) as ipr:
            ipr.link("add", ifname=self.name, kind="bridge")
            bridge = ipr.link_lookup(ifname=self.name)[0]
            for intf in self.intfList():
                if intf.name != "lo":
                    ipr.link("set", index=ipr.link_lookup(ifname=intf.name)[0], master=bridge, state="up")
            ipr.link("set", index=bridge, state="up")

    def connected(self) -> bool:
        return True

    def stop(self, deleteIntfs: bool = True) -> None:  # noqa: N803 (Mininet's name)
        """Nothing to undo: the bridge and its ports go with the namespace."""
        self.terminate()


class MininetWireGuard(Network):
    """WireGuard on a Mininet network (see `add_wireguard`): a harness network whose
    underlay is the user's. `check(wg, step)` runs a step, `diagnose(wg, a, b)` says why
    a's packets do (not) reach b through the tunnel; `close()` removes what was added."""

    def __enter__(self) -> "MininetWireGuard":
        return self  # built by add_wireguard already

    def close(self) -> list[str]:
        """Remove what the harness added; returns anything that could not be removed."""
        return self.teardown()


def add_wireguard(
    net: Any,
    wireguard: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    backend: str = AUTO,
    userspace: str | None = None,
    artifacts_dir: Path | None = None,
) -> MininetWireGuard:
    """WireGuard on the hosts of a running `Mininet` object: `wireguard` maps host names
    to their settings (a scenario file's `wireguard:` section); without it, the
    settings `WgHost`s were given. `backend` is the default for hosts that pick none
    (auto: kernel WireGuard if the host has it, else wireguard-go); `userspace` is the
    command of the userspace backend ('wireguard-go -f {ifname}'). Bad settings raise
    ValueError naming the host and field; a failed bring-up removes what it added and
    raises BuildError."""
    if wireguard is None:
        wireguard = {h.name: h.wireguard for h in net.hosts if isinstance(h, WgHost) and h.wireguard is not None}
    settings = validate_wireguard(wireguard, [h.name for h in net.hosts])
    command = UserspaceCommand.parse(userspace) if userspace else None
    engine = AdoptedMininet(net, settings, backend, command)
    network = MininetWireGuard(NetworkPlan(new_run_id(), {}, (), {}, {}), engine=engine, artifacts_dir=artifacts_dir)
    try:
        network.build()
    except BaseException:
        network.teardown()
        raise
    return network


def diagnose(network: Network, src: str, dst: str) -> Diagnosis:
    """Why `src`'s packets do or do not reach `dst` through the tunnel now (cause code
    and evidence: handshakes, endpoints, counters, AllowedIPs, the underlay, NATs)."""
    from harness.diagnosis.tunnel import diagnose_tunnel

    return diagnose_tunnel(network, src, dst)


class WgNet(SafeMininet):
    """A Mininet network that brings up WireGuard on its `WgHost`s when it starts and
    removes it when it stops. Defaults: hosts `WgHost`, switches `Bridge`, no
    controller; `backend` and `userspace` as for `add_wireguard`. After `start()`,
    `net.wireguard` is the harness network the checks take (None when no host has
    WireGuard settings). Every node's shell, of whatever class, dies with the Python
    process, so a killed test leaves no namespace behind."""

    def __init__(self, *args: Any, backend: str = AUTO, userspace: str | None = None, **kwargs: Any):
        kwargs.setdefault("host", WgHost)
        kwargs.setdefault("switch", Bridge)
        kwargs.setdefault("controller", None)
        self.backend = backend
        self.userspace = userspace
        self.wireguard: MininetWireGuard | None = None
        super().__init__(*args, **kwargs)

    def addHost(self, name: str, cls: Any = None, **params: Any) -> Any:  # noqa: N802 (Mininet's name)
        return super().addHost(name, cls=dying(cls or self.host), **params)

    def addSwitch(self, name: str, cls: Any = None, **params: Any) -> Any:  # noqa: N802 (Mininet's name)
        return super().addSwitch(name, cls=dying(cls or self.switch), **params)

    def start(self) -> None:
        super().start()
        if not any(isinstance(h, WgHost) and h.wireguard is not None for h in self.hosts):
            return  # the underlay alone: add WireGuard later with add_wireguard(net, {...})
        try:
            self.wireguard = add_wireguard(self, backend=self.backend, userspace=self.userspace)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """WireGuard first, then Mininet's own stop, which returns once every node's shell
        has exited (Mininet waits for each), so the namespaces are gone too."""
        try:
            if self.wireguard is not None:
                left = self.wireguard.close()
                self.wireguard = None
                if left:
                    raise BuildError(f"WireGuard left behind on the Mininet hosts: {', '.join(left)}")
        finally:
            super().stop()  # SIGHUP to every node's shell, and waits for each to exit
