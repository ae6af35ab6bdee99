"""What a peer's byte counters say about handshakes that never completed.

Before the first handshake no data can flow, so a peer's counters hold handshake
messages only (WireGuard counts their UDP payload): initiations of 148 bytes and
responses of 92. A response is counted by its receiver only when it completes a
handshake the receiver started, so an answer that was dropped leaves no trace there,
but the sender's tx still shows it."""

from __future__ import annotations

from harness.wg.status import PeerStatus

INITIATION_BYTES = 148
RESPONSE_BYTES = 92


def handshake_messages(byte_count: int) -> tuple[int, int] | None:
    """(initiations, responses) that add up to `byte_count`, or None when no single split does."""
    splits = [
        (initiations, (byte_count - initiations * INITIATION_BYTES) // RESPONSE_BYTES)
        for initiations in range(byte_count // INITIATION_BYTES + 1)
        if (byte_count - initiations * INITIATION_BYTES) % RESPONSE_BYTES == 0
    ]
    return splits[0] if len(splits) == 1 else None


def simultaneous_initiations(a: str, b: str, a_peer: PeerStatus, b_peer: PeerStatus) -> str | None:
    """Both ends initiated, each answered the other's initiation and accepted no answer:
    consuming the other's initiation replaced each end's own pending handshake, so the
    answer to its own initiation no longer matched anything (handshake glare). Only
    meaningful when neither end has a handshake and the underlay works."""
    sent = {a: handshake_messages(a_peer.tx_bytes), b: handshake_messages(b_peer.tx_bytes)}
    received = {a: handshake_messages(a_peer.rx_bytes), b: handshake_messages(b_peer.rx_bytes)}
    for node in (a, b):
        if sent[node] is None or received[node] is None:
            return None
        initiations_sent, answers_sent = sent[node]
        initiations_received, answers_received = received[node]
        if not (initiations_sent and answers_sent and initiations_received) or answers_received:
            return None
    return (
        f"no handshake ever: {a} and {b} both initiated at the same moment, every time ({sent[a][0]} and "
        f"{sent[b][0]} initiations): each answered the other's initiation ({sent[a][1]} and {sent[b][1]} "
        f"responses sent) and in doing so dropped the handshake it had started itself, so neither accepted "
        f"an answer (simultaneous initiations); WireGuard's retry after REKEY_TIMEOUT (5 s) adds up to 333 ms "
        f"of jitter to break the tie, so allow time for another attempt, or let only one end initiate"
    )
