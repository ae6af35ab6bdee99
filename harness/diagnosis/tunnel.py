"""Why a tunnel check failed. WireGuard itself says nothing when a peer is
unreachable, so on failure the harness gathers each side's view (handshake,
endpoint, counters, AllowedIPs), probes the underlay, and names a likely cause."""

from __future__ import annotations

import ipaddress
import time

from pyroute2.netlink.exceptions import NetlinkError

from harness.allowedips import covering, peer_for
from harness.diagnosis.cryptokey import routing_loop, sends_into_tunnel
from harness.diagnosis.handshake import simultaneous_initiations
from harness.diagnosis.result import Diagnosis
from harness.endpoint import endpoint_host
from harness.net.dns import stale_endpoint
from harness.net.ping import parse_ping, ping_argv
from harness.wg.backends import DeviceUnavailable
from harness.wg.keys import short
from harness.wg.status import DeviceStatus, PeerStatus


def _bytes(n: int) -> str:
    return f"{n} B" if n < 10240 else f"{n / 1024:.0f} KiB"


def describe_peer(node: str, peer_node: str, peer: PeerStatus | None, now: float) -> str:
    if peer is None:
        return f"{node}: has no peer for {peer_node}'s public key"
    age = peer.handshake_age(now)
    handshake = "never" if age is None else f"{age:.1f}s ago"
    return (
        f"{node}: peer {peer_node} ({short(peer.public_key)}) endpoint {peer.endpoint or '(none)'}, "
        f"latest handshake {handshake}, rx {_bytes(peer.rx_bytes)}, tx {_bytes(peer.tx_bytes)}, "
        f"allowed ips {', '.join(peer.allowed_ips) or '(none)'}"
    )


def _status(network, node: str) -> DeviceStatus | None:
    try:
        return network.wireguard.devices[node].status()
    except DeviceUnavailable:
        return None


def underlay_probe(network, node: str, endpoint: str) -> tuple[bool, str]:
    """Does the endpoint's address answer ping on the underlay from `node`?"""
    host = endpoint_host(endpoint)
    family = 6 if ":" in host else 4
    argv = ping_argv(host, family=family, count=1, interval=0.2, timeout=1.0, size=None)
    wg = network.plan.wireguard.get(node)
    if wg is not None and getattr(wg, "fwmark", None):
        # a full tunnel routes unmarked packets into the tunnel: probe with WireGuard's mark, as its packets go
        argv = argv[:-1] + ["-m", str(wg.fwmark)] + argv[-1:]
    result = network.run(node, argv, timeout=5)
    outcome = parse_ping(result.stdout + result.stderr)
    if outcome.received:
        return True, f"underlay: {host} answers ping from {node} ({outcome.rtt_avg:.2f} ms)"
    return False, f"underlay: {host} does not answer ping from {node}"


def diagnose_tunnel(
    network, src: str, dst: str, dst_address: str | None = None, source_address: str | None = None, since: float | None = None
) -> Diagnosis:
    """Each side's view of the src → dst tunnel and a one-line likely cause.
    `source_address`: the packets' inner source when not src's first tunnel address.
    `since`: when the failed check sent its last packet (epoch seconds): state made
    after it (a NAT mapping a later keepalive opened) is not what its packets met."""
    plan = network.plan
    diag = Diagnosis()
    now = time.time()
    src_status, dst_status = _status(network, src), _status(network, dst)
    src_key, dst_key = network.wireguard.public_key(src), network.wireguard.public_key(dst)
    src_peer = src_status.peer(dst_key) if src_status else None
    dst_peer = dst_status.peer(src_key) if dst_status else None
    diag.lines.append(describe_peer(src, dst, src_peer, now) if src_status else f"{src}: device does not answer")
    diag.lines.append(describe_peer(dst, src, dst_peer, now) if dst_status else f"{dst}: device does not answer")

    destination = ipaddress.ip_address(dst_address) if dst_address else plan.tunnel_address(dst, 4)
    if source_address:
        source = ipaddress.ip_address(source_address)
    else:
        source = plan.tunnel_address(src, destination.version) if destination else None

    # which of src's peers would carry the packet, by AllowedIPs (most specific wins)
    carrier = None
    if src_status and destination is not None:
        carrier = peer_for(src_status.peers, destination, lambda p: p.allowed_ips)

    endpoint_known = (src_peer and src_peer.endpoint) or (dst_peer and dst_peer.endpoint)
    # endpoints given by DNS name: resolve again, compare
    for node, other, peer in ((src, dst, src_peer), (dst, src, dst_peer)):
        stale = stale_endpoint(network, node, other, peer, diag.lines)
        if stale and not diag.cause:
            diag.set("stale-dns-endpoint", stale)
    for node, other, peer, other_peer in ((src, dst, src_peer, dst_peer), (dst, src, dst_peer, src_peer)):
        if peer is not None and peer.endpoint and not diag.cause:
            loop = routing_loop(network, node, peer.endpoint)
            if loop:
                diag.lines.append(f"{node}: the route to its endpoint {peer.endpoint} leads into its own WireGuard interface")
                diag.set("routing-loop", loop)
        if peer is not None and peer.endpoint and other_peer is not None and other_peer.endpoint:
            back = endpoint_host(other_peer.endpoint)
            if sends_into_tunnel(network, other, back):  # its answers to the probe
                # its answer would come back inside the tunnel, from an address the prober
                # does not allow: no answer would say nothing (the other side's probe,
                # with WireGuard's mark, tests this path in both directions)
                diag.lines.append(f"underlay: {endpoint_host(peer.endpoint)} not probed from {node}: {other} routes its answers to {back} into its tunnel")
                continue
        if peer is not None and peer.endpoint:
            # from where the node's WireGuard socket is (socket_in: another node's namespace)
            wg_plan = plan.wireguard.get(node)
            reachable, line = underlay_probe(network, wg_plan.socket_node if wg_plan else node, peer.endpoint)
            diag.lines.append(line)
            if not reachable and not diag.cause:
                if peer.latest_handshake:
                    diag.set(
                        "endpoint-unreachable",
                        f"{node} still sends to {peer.endpoint}, which no longer answers on the underlay: the peer moved "
                        f"(or its path broke) and has not sent an authenticated packet from where it is now",
                    )
                else:
                    diag.set("endpoint-unreachable", f"endpoint {peer.endpoint} is unreachable on the underlay from {node} (no route, link down, or filtered)")

    handshook = bool(src_peer and src_peer.latest_handshake) or bool(dst_peer and dst_peer.latest_handshake)
    nat_cause = None
    for node, other, peer in ((src, dst, src_peer), (dst, src, dst_peer)):
        if peer is not None and peer.endpoint and nat_cause is None:
            nat_cause = _expired_nat_mapping(network, node, other, peer, now, diag, since)
    if diag.cause:
        pass
    elif src_status is None or dst_status is None:
        diag.set("device-down", f"the WireGuard device of {src if src_status is None else dst} does not respond (process died or interface gone)")
    elif src_peer is None:
        diag.set("unknown-peer-key", f"{src} has no peer with {dst}'s public key: wrong or revoked key in {src}'s config")
    elif destination is not None and carrier is None:
        diag.set("allowed-ips-sender", f"AllowedIPs on {src} do not cover {destination}: the packet has no peer to go to and is dropped")
    elif destination is not None and carrier is not src_peer:
        diag.set("allowed-ips-sender", f"AllowedIPs on {src} send {destination} to another peer ({short(carrier.public_key)}), not to {dst}")
    elif dst_peer is None:
        age = src_peer.handshake_age(now)
        # the trap this names: the sender's own view (a recent handshake) still looks healthy
        still_green = f"; {src} still shows a handshake {age:.1f}s ago, which says nothing about {dst} now" if age is not None else ""
        diag.set("unknown-peer-key", f"{dst} has no peer with {src}'s public key: it drops {src}'s packets and handshakes (wrong or revoked key){still_green}")
    elif not endpoint_known:
        diag.set("no-endpoint", f"neither {src} nor {dst} knows the other's endpoint, so nobody can initiate a handshake")
    elif nat_cause:
        diag.set(*nat_cause)
    elif not handshook and src_peer.preshared_key != dst_peer.preshared_key:
        diag.lines.append(_preshared_keys(src, dst, src_peer, dst_peer))
        diag.set(
            "psk-mismatch",
            f"no handshake ever: {src} and {dst} do not use the same preshared key for each other; the responder "
            f"answers initiations, but the initiator cannot authenticate the response and drops it",
        )
    elif not handshook:
        if src_peer.endpoint and src_peer.tx_bytes == 0 and not dst_peer.endpoint:
            if dst_address is not None and sends_into_tunnel(network, src, str(destination)):
                # the check's own packets went into the device, which has not sent even an
                # initiation for them yet: a starved CPU or VM (no cause: measured again)
                diag.lines.append(
                    f"{src} routes {destination} into its WireGuard device, which has sent nothing to {dst} yet although "
                    f"the check sent packets there: the device was slow (a busy CPU or a starved VM), not left without traffic"
                )
            else:
                diag.set("no-traffic", f"no handshake ever: {src} has sent nothing to {dst} (no traffic for that peer and no keepalive)")
        elif dst_status.listen_port and src_peer.endpoint and not src_peer.endpoint.endswith(f":{dst_status.listen_port}"):
            diag.set("port-mismatch", f"no handshake ever: {src} sends to {src_peer.endpoint} but {dst} listens on port {dst_status.listen_port}")
        elif glare := simultaneous_initiations(src, dst, src_peer, dst_peer):
            diag.set("simultaneous-initiations", glare)
        else:
            sender = src if src_peer.endpoint else dst
            receiver = dst if sender == src else src
            diag.set(
                "udp-blocked",
                f"no handshake ever: initiations from {sender} got no answer from {receiver} although the underlay "
                f"path works; UDP to {receiver}'s port is likely dropped on the way (firewall, or a NAT mapping that is gone)"
            )
    elif source is not None and covering(dst_peer.allowed_ips, source) is None:
        diag.set("allowed-ips-receiver", f"{dst}'s AllowedIPs for {src} do not cover the source {source}: {dst} drops the packets after decryption")
    elif tentative := _unusable_tunnel_address(network, ((dst, destination), (src, source))):
        diag.set("address-not-ready", tentative)
    else:
        stale = src_peer.handshake_age(now)
        if stale is not None and stale > 180:
            diag.set("session-expired", f"handshake but no data: the session is {stale:.0f}s old (past REJECT_AFTER_TIME) and no new handshake succeeded")
        elif since is not None and stale is not None and now - stale > since:
            # the session came up only after the check's last packet went out: that packet
            # waited for the handshake, and its reply may just have come after the timeout
            # (a busy machine is slow to handshake). No cause named: load may explain it
            # (harness.steps.checks measures such a failure again on a stalled CPU)
            diag.cause = (
                f"the handshake completed {now - stale - since:.2f}s after the check's last packet was sent: that packet "
                f"waited for it, and its reply may have come after the timeout; nothing configured explains the loss"
            )
        else:
            diag.set("handshake-no-data", "handshake completed but data does not arrive: check MTU (large packets), firewall rules on the tunnel interface, or the reverse path")
    return diag


def _unusable_tunnel_address(network, ends) -> str | None:
    """The first of these (node, address) pairs whose node cannot use the address yet."""
    for node, address in ends:
        if address is None:
            continue
        try:
            state = network.node(node).address_state(str(address))
        except (NetlinkError, OSError):
            continue
        if state == "tentative":
            return (
                f"{node}'s address {address} is still tentative (duplicate address detection has not finished): the kernel "
                f"drops packets to it and sends none from it; add it with `nodad` (`ip address add ... nodad`, as for a "
                f"point-to-point tunnel nothing else can claim it) or wait until DAD completes"
            )
        if state == "dadfailed":
            return f"{node}'s address {address} failed duplicate address detection: another host on the link uses it, and the kernel will not use it"
    return None


def diagnose_underlay(network, src: str, address: str) -> Diagnosis:
    diag = Diagnosis()
    route = network.node(src).route_to(address)
    if route is None:
        diag.set("no-route", f"{src} has no route to {address} on the underlay")
    else:
        diag.lines.append(f"{src}: route to {address} via {route.gateway or 'direct'}")
        diag.set("underlay-drop", f"{address} does not answer although {src} has a route: a hop drops it (firewall, NAT, link down)")
    return diag


def _preshared_keys(src: str, dst: str, src_peer: PeerStatus, dst_peer: PeerStatus) -> str:
    """What each end has as its preshared key for the other, without anything of the keys."""
    if src_peer.preshared_key and dst_peer.preshared_key:
        return f"preshared keys: {src} and {dst} each have one for the other, and they differ"
    having, lacking = (src, dst) if src_peer.preshared_key else (dst, src)
    return f"preshared keys: {having} has one for {lacking}, {lacking} has none for {having}"


def _nat_owning(plan, address: str) -> str | None:
    """The NAT router whose outside address this is, if any."""
    for name, node in plan.nodes.items():
        if node.nat is None:
            continue
        for port in plan.ports[name]:
            if port.ifname == node.nat.outside_dev and any(str(a.ip) == address for a in port.addresses):
                return name
    return None


def _expired_nat_mapping(
    network, node: str, other: str, peer: PeerStatus, now: float, diag: Diagnosis, since: float | None = None
) -> tuple[str, str] | None:
    """`node` sends to `other` via a NAT's public address: was the mapping there when
    the check sent its last packet (`since`), or is it there now (no `since`, or a
    NAT that does not timestamp its mappings)?"""
    host = endpoint_host(peer.endpoint)
    nat = _nat_owning(network.plan, host)
    if nat is None:
        return None
    try:
        table = network.engine.nat_mappings(nat)
    except (OSError, NetlinkError) as exc:  # conntrack unreadable: say so, do not guess
        diag.lines.append(f"NAT {nat}: conntrack table unreadable ({exc})")
        return None
    mappings = [m for m in table if m.outside == peer.endpoint]
    newer = [m for m in mappings if since is not None and m.started is not None and m.started > since]
    if newer:
        # made after the check's packets met the NAT (other's passive keepalive, a
        # handshake of its own): those packets found no mapping
        diag.lines.append(
            f"NAT {nat}: mapping {newer[0].inside} ↔ {peer.endpoint} present, but made {newer[0].started - since:.1f}s after "
            f"the check's last packet (by a later packet from {other}): the check's packets found none"
        )
        mappings = [m for m in mappings if m not in newer]
    if not mappings and not newer and other in network.plan.wireguard:
        # the peer's socket is mapped, but to another public port: a symmetric NAT
        port = network.plan.wireguard[other].listen_port
        moved = sorted({m.outside for m in table if m.inside.endswith(f":{port}") and endpoint_host(m.outside) == host})
        if moved:
            diag.lines.append(f"NAT {nat}: {other}'s socket is mapped to {', '.join(moved)}, not to {peer.endpoint}")
            return (
                "nat-port-changed",
                f"{node} sends to {peer.endpoint}, but NAT {nat} maps {other}'s socket to {', '.join(moved)}: it picks a "
                f"new public port per destination (symmetric NAT), so no fixed endpoint reaches {other}; a relay, or a "
                f"public endpoint on one side, is needed",
            )
    if mappings:
        diag.lines.append(
            f"NAT {nat}: mapping {mappings[0].inside} ↔ {peer.endpoint} present, expires in {mappings[0].seconds_left}s"
        )
        # a live mapping to an inside address that is gone: the peer moved behind the
        # NAT (renumbered, changed networks), and the other side's own traffic keeps
        # the stale mapping alive
        inside_alive, line = underlay_probe(network, nat, mappings[0].inside)
        if inside_alive:
            return None
        diag.lines.append(line)
        return (
            "endpoint-unreachable",
            f"{node} sends to {peer.endpoint}; NAT {nat} forwards that to {mappings[0].inside}, which no longer answers: "
            f"{other} moved behind the NAT and has not sent an authenticated packet from where it is now",
        )
    spec = network.plan.nodes[nat].nat
    timeout = f"UDP timeout {spec.udp_timeout:g}s" if spec.udp_timeout else "its UDP timeout"
    keepalive = next((p.persistent_keepalive for p in network.plan.wireguard[other].peers if p.node == node), 0)
    age = peer.handshake_age(now)
    if not newer:
        diag.lines.append(f"NAT {nat}: no UDP mapping for {peer.endpoint} in its conntrack table")
    if keepalive and spec.udp_timeout and keepalive < spec.udp_timeout:
        # the keepalive alone holds such a mapping: it is gone because other's packets
        # stopped reaching the NAT (it moved, or cannot send from where it is now)
        return (
            "endpoint-unreachable",
            f"{node} sends to {peer.endpoint}, the public side of NAT {nat}, but the NAT has no mapping for {other} although "
            f"{other}'s keepalive every {keepalive}s is shorter than its {timeout}: {other}'s packets no longer reach the NAT "
            f"(it moved, or cannot send from where it is now) and {node} has learned no newer endpoint",
        )
    advice = (
        f"{other} sends no persistent keepalive: set one shorter than the NAT's timeout"
        if not keepalive
        else f"{other}'s keepalive of {keepalive}s did not keep it open"
    )
    handshake = f", latest handshake {age:.0f}s ago" if age is not None else ""
    return (
        "nat-mapping-expired",
        f"{node} sends to {peer.endpoint}, the public side of NAT {nat}, but the NAT mapping has expired ({timeout}{handshake}); {advice}",
    )
