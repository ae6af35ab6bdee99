"""The causes a failed check can be diagnosed with (pure data, shared by validation)."""

# Every cause the diagnosis can name, by a stable code that `cause:` can match.
CAUSES: dict[str, str] = {
    "endpoint-unreachable": "the peer's endpoint does not answer on the underlay (no route, link down, filtered)",
    "device-down": "a WireGuard device does not respond (process died, interface gone)",
    "unknown-peer-key": "one side has no peer with the other's public key (wrong or revoked key)",
    "allowed-ips-sender": "the sender's AllowedIPs do not send the destination to this peer",
    "no-endpoint": "neither side knows the other's endpoint: nobody can initiate",
    "nat-mapping-expired": "the endpoint is a NAT's public side and the NAT has forgotten the mapping",
    "nat-port-changed": "the NAT maps the peer's socket to another public port than its endpoint (symmetric NAT)",
    "no-traffic": "the initiator has sent nothing (no data for the peer, no keepalive)",
    "port-mismatch": "the initiator sends to a port the responder does not listen on",
    "psk-mismatch": "the two ends use different preshared keys (or only one uses one): the responder answers, the initiator cannot authenticate the response",
    "simultaneous-initiations": "both ends initiated at the same moment: each answered the other's initiation, which dropped its own, so no answer matched (handshake glare)",
    "udp-blocked": "handshake initiations go unanswered although the underlay works (UDP dropped on the path)",
    "allowed-ips-receiver": "the receiver's AllowedIPs for the sender do not cover the packet's source",
    "session-expired": "the last handshake is older than REJECT_AFTER_TIME and no new one succeeded",
    "mtu-blackhole": "large packets through the tunnel vanish while small ones pass: the underlay path MTU is below what the tunnel MTU needs, and neither ICMP 'fragmentation needed' nor fragments get through",
    "address-not-ready": "the receiver's tunnel address (or the sender's) is still tentative or failed duplicate address detection: the kernel drops packets to it",
    "handshake-no-data": "handshake completed but data does not arrive (MTU, firewall on the tunnel, reverse path)",
    "routing-loop": "the route to the peer's endpoint leads into the tunnel itself (a default route through WireGuard without fwmark policy routing)",
    "stale-dns-endpoint": "the endpoint was given by DNS name and resolved once; the name now resolves to another address, but WireGuard still sends to the old one",
    "no-route": "no underlay route to the destination",
    "underlay-drop": "the underlay destination does not answer although a route exists",
}
