"""The run's WireGuard devices: their keys, the two-phase bring-up, and what the
timeline does to them (restart, key rotation, revoked keys, endpoints, listen ports).

Devices are made where their nodes are, by that machine's `DeviceSite`
(harness.wg.site): the fleet decides keys, peers and endpoints and reaches each device
through its site, so a node on another machine (a worker's site) is driven alike. Bring-up is in two phases so that no initiation is sent before its responder
listens (a lost first initiation costs REKEY_TIMEOUT, 5 s): `create()` makes every
device with its key, peers (without endpoints) and addresses; the caller may then
resolve endpoints given by name; `connect()` sets the endpoints.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

from harness.plan.network import NetworkPlan, PeerPlan
from harness.sidebyside import each_after
from harness.wg.backends import WgDevice
from harness.wg.config import PeerChange, PeerConfig
from harness.wg.keys import KeyPair
from harness.wg.status import PeerStatus

if TYPE_CHECKING:
    from harness.configs.export import NodeKeys
    from harness.wg.site import DeviceSite


class WireGuardFleet:
    def __init__(self, plan: NetworkPlan, site_of: Callable[[str], "DeviceSite"], imported_keys: Any = None):
        self.plan = plan
        self._site_of = site_of  # the site of a node's device (the machine it is on)
        self.devices = _Devices(plan, site_of)
        self.keys: dict[str, KeyPair] = {}
        self.previous_keys: dict[str, KeyPair] = {}  # before the last key change, for reuse_old_key
        # preshared keys by the name a file gives them: fresh random ones, in memory only
        self._preshared: dict[str, bytes] = {}
        # imported files' own keys (harness.configs.imported.ImportedSecrets, keys: as-is); else all fresh
        self._imported_private: Mapping[str, bytes] = imported_keys.private_keys if imported_keys is not None else {}
        self._imported_preshared: Mapping[str, bytes] = imported_keys.preshared if imported_keys is not None else {}
        self.backends: dict[str, str] = {}  # node → the backend it runs (auto resolved)
        # what steps changed: endpoints (also those resolved from names) and listen ports
        self.endpoints: dict[tuple[str, str], object] = {}
        self.listen_ports: dict[str, int] = {}

    # --- bring-up ---------------------------------------------------------------------

    def create(self) -> None:
        """Phase 1: every device exists with its key, peers and addresses; no endpoints."""
        plan = self.plan
        by_site: dict[int, tuple["DeviceSite", list[str]]] = {}
        for name in plan.wireguard:
            site = self._site_of(name)
            by_site.setdefault(id(site), (site, []))[1].append(name)
        for site, names in by_site.values():
            self.backends.update(site.resolve_backends(names))  # what that machine has
        for name, wg in plan.wireguard.items():
            imported = self._imported_private.get(name)
            self.keys[name] = KeyPair.from_private(imported) if imported is not None else KeyPair.generate()
            for peer in wg.peers:
                if peer.preshared_key is not None and peer.preshared_key not in self._preshared:
                    self._preshared[peer.preshared_key] = self._imported_preshared.get(peer.preshared_key) or secrets.token_bytes(32)
        for site, names in by_site.values():  # daemons started together, awaited together, per machine
            site.create({name: self.backends[name] for name in names})
        # side by side: a daemon (or the kernel) applying a mesh node's peers spends ~180 µs
        # on each (its key agreement first), and the kernel ~6 µs on each of its routes;
        # what goes through a pyroute2 handle (a full tunnel's rules) stays on this thread
        each_after(self._configure_elsewhere, self._configure_rules, plan.wireguard)

    def connect(self, resolved: Mapping[tuple[str, str], object] | None = None) -> None:
        """Phase 2: every responder listens; now initiators may send. `resolved`: the
        endpoints given by name, resolved by the caller, by (node, peer)."""
        self.endpoints.update(resolved or {})
        for name in self.plan.wireguard:
            self._set_endpoints(name)

    def _peer_configs(self, name: str, with_endpoints: bool = False) -> list[PeerConfig]:
        """The node's peers; with_endpoints for a device that is up and carrying traffic:
        a peer configured without its endpoint for a moment makes the next packet's
        handshake fail ("no known endpoint"), and the retry waits REKEY_TIMEOUT (5 s)."""
        configs = []
        for peer in self.plan.wireguard[name].peers:
            endpoint = self.endpoints.get((name, peer.node), peer.endpoint) if with_endpoints else None
            configs.append(
                PeerConfig(
                    self.keys[peer.node].public,
                    tuple(map(str, peer.allowed_ips)),
                    endpoint=str(endpoint) if endpoint is not None else None,
                    persistent_keepalive=peer.persistent_keepalive if with_endpoints else 0,
                    preshared_key=self.preshared_key(peer),
                )
            )
        return configs

    def preshared_key(self, peer: PeerPlan) -> bytes | None:
        """The preshared key this end uses with `peer` (None: none)."""
        return self._preshared[peer.preshared_key] if peer.preshared_key is not None else None

    def _configure_device(self, name: str) -> None:
        self._configure_peers(self.devices[name], name)
        self._site_of(name).configure_routing(name)
        self._site_of(name).configure_rules(name)

    def _configure_peers(self, device: WgDevice, name: str) -> None:
        """The device's key, listen port, peers (without endpoints) and fwmark."""
        device.configure(self.keys[name].private, self.listen_port(name), self._peer_configs(name))
        fwmark = self.plan.wireguard[name].fwmark
        if fwmark is not None:  # before any endpoint is set: no packet leaves unmarked
            device.set_fwmark(fwmark)

    def _configure_elsewhere(self, name: str) -> None:
        """Peers and routing from a thread of its own (a kernel device's netlink socket
        serves one thread: this one gets its own, closed after)."""
        device = self.devices[name]
        own = device.for_another_thread()
        try:
            self._configure_peers(own, name)
        finally:
            if own is not device:
                own.close()
        self._site_of(name).configure_routing(name)

    def _configure_rules(self, name: str) -> None:
        self._site_of(name).configure_rules(name)

    def _set_endpoints(self, name: str) -> None:
        changes = []
        for peer in self.plan.wireguard[name].peers:
            endpoint = self.endpoints.get((name, peer.node), peer.endpoint)  # a step may have changed it
            if endpoint is not None or peer.persistent_keepalive:
                changes.append(
                    PeerChange(
                        self.keys[peer.node].public,
                        endpoint=str(endpoint) if endpoint is not None else None,
                        persistent_keepalive=peer.persistent_keepalive,
                    )
                )
        self.devices[name].update_peers(changes)  # in batches, as the configuration: a mesh node has hundreds

    # --- the timeline -----------------------------------------------------------------

    def restart(self, node: str, new_key: bool = False) -> None:
        """Destroy the node's WireGuard interface and create it again (same or new key)."""
        self._site_of(node).recreate(node, self.backends[node])
        old_public = self.keys[node].public
        if new_key:
            self.previous_keys[node] = self.keys[node]
            self.keys[node] = KeyPair.generate()
            self._tell_peers_new_key(node, old_public)
        self._configure_device(node)
        # as at build time: endpoints only once both sides can answer, so no
        # initiation is lost and costs REKEY_TIMEOUT (5 s)
        self._set_endpoints(node)
        if new_key:
            self._peers_set_endpoints(node)

    def rotate_key(self, node: str) -> None:
        """A new key pair for `node`, in place; its peers learn the new public key."""
        old_public = self.keys[node].public
        self.previous_keys[node] = self.keys[node]
        self.keys[node] = KeyPair.generate()
        self._tell_peers_new_key(node, old_public)
        self.devices[node].set_private_key(self.keys[node].private)
        self._peers_set_endpoints(node)

    def reuse_old_key(self, node: str) -> None:
        """`node` goes back to the key pair it had before its last key change, and its
        peers are NOT told: it presents a revoked key, as a stale config would."""
        self.keys[node], self.previous_keys[node] = self.previous_keys.pop(node), self.keys[node]
        self.devices[node].set_private_key(self.keys[node].private)

    def remove_peer(self, node: str, peer: str) -> None:
        """`node` forgets `peer` (a revoked key); `peer` is not told and keeps its session."""
        self.devices[node].remove_peer(self.keys[peer].public)

    def _tell_peers_new_key(self, node: str, old_public: bytes) -> None:
        """Peers swap the old public key for the new one (no endpoint yet, see below)."""
        for other, wg in self.plan.wireguard.items():
            peer = wg.peer(node)
            if peer is None or other not in self.devices:
                continue
            # one request: the old key out, the new one in (with the same preshared key)
            added = PeerChange(self.keys[node].public, allowed_ips=tuple(map(str, peer.allowed_ips)), preshared_key=self.preshared_key(peer))
            self.devices[other].update_peers([PeerChange(old_public, remove=True), added])

    def _peers_set_endpoints(self, node: str) -> None:
        for other, wg in self.plan.wireguard.items():
            peer = wg.peer(node)
            if peer is None or other not in self.devices:
                continue
            endpoint = self.endpoints.get((other, node), peer.endpoint)
            if endpoint is not None or peer.persistent_keepalive:
                self.devices[other].update_peer(
                    self.keys[node].public,
                    endpoint=str(endpoint) if endpoint is not None else None,
                    persistent_keepalive=peer.persistent_keepalive,
                )

    def listen_port(self, node: str) -> int:
        """The node's listen port now (a listen_port step may have changed the planned one)."""
        return self.listen_ports.get(node, self.plan.wireguard[node].listen_port)

    def set_listen_port(self, node: str, port: int) -> None:
        """The node listens on another port; peers are not told (they learn it from its next packet)."""
        self.devices[node].set_listen_port(port)
        self.listen_ports[node] = port

    def set_endpoint(self, node: str, peer: str, endpoint: Any) -> None:
        self.endpoints[(node, peer)] = endpoint
        self.devices[node].update_peer(self.keys[peer].public, endpoint=str(endpoint))

    def public_key(self, node: str) -> bytes:
        return self.keys[node].public

    def export_keys(self, *, with_secrets: bool = False) -> "NodeKeys":
        """What harness.configs.export needs to write the devices' effective configs:
        public keys and endpoints as set; the private and preshared keys only for a
        person reproducing the run by hand (`wgh export`), never for artifacts."""
        from harness.configs.export import NodeKeys

        public = {name: pair.public for name, pair in self.keys.items()}
        if not with_secrets:
            return NodeKeys(public, endpoints=dict(self.endpoints))

        def preshared(node: str, peer: str) -> bytes | None:
            planned = self.plan.wireguard[node].peer(peer)
            return self.preshared_key(planned) if planned is not None else None

        return NodeKeys(public, {name: pair.private for name, pair in self.keys.items()}, preshared, dict(self.endpoints))

    def peer_status(self, node: str, peer: str) -> PeerStatus | None:
        """What `node`'s device says of its peer `peer` now (None: not its peer);
        DeviceUnavailable if the device cannot be read."""
        return self.devices[node].status().peer(self.public_key(peer))

    # --- teardown ---------------------------------------------------------------------

    def close(self) -> None:
        """Stop every device, site by site (the run's registry removes what is left)."""
        seen: set[int] = set()
        for name in self.plan.wireguard:
            site = self._site_of(name)
            if id(site) not in seen:
                seen.add(id(site))
                site.close()


class _Devices(Mapping[str, WgDevice]):
    """The devices by node name, each from its node's site (a read-only view)."""

    def __init__(self, plan: NetworkPlan, site_of: Callable[[str], "DeviceSite"]):
        self._plan = plan
        self._site_of = site_of

    def __getitem__(self, name: str) -> WgDevice:
        return self._site_of(name).devices[name]

    def __iter__(self) -> Iterator[str]:
        return (name for name in self._plan.wireguard if name in self._site_of(name).devices)

    def __len__(self) -> int:
        return sum(1 for _ in self)
