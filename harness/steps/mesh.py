"""`reach`: every ordered pair of a set of nodes answers through the tunnel, and how
long the whole set took to converge.

One raw ICMP socket per source node (opened inside its namespace) and one loop
drive all N·(N-1) pairs at once: each unanswered pair gets an echo request every
`interval` until it answers or the deadline passes. No process per pair: at N=25
that would be 600 `ping` forks. The first request to a peer is what makes WireGuard
start the handshake (it queues the packet meanwhile), so the clock starts with no
session anywhere and stops at the last pair's first answer: the convergence time.
All pairs start at once, except that b → a follows a → b (see below).
"""

from __future__ import annotations

import heapq
import os
import random
import selectors
import socket
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from harness.diagnosis.path import diagnose_path
from harness.engine.base import Node
from harness.scenario.steps.mesh import ReachArgs, reach_nodes, reach_pairs, sample_seed
from harness.net.echo import echo_request, parse_reply
from harness.steps.registry import runs
from harness.steps.result import Measurement, StepResult

SHOWN = 5  # pairs named in the one-line message (the diagnosis lists them all)
MAX_WAIT = 0.01  # longest select() wait, so due retries go out on time
SENDS_PER_TURN = 500  # requests between two reads of the replies, so none overflow a socket buffer
REVERSE_AFTER = 2.0  # s after its way out, a pair's way back starts even if that got no answer


@dataclass
class ReachOutcome:
    """When each pair first answered, in seconds from the first request."""

    pairs: list[tuple[str, str]]
    first_answer: dict[tuple[str, str], float] = field(default_factory=dict)
    sent: int = 0

    @property
    def missing(self) -> list[tuple[str, str]]:
        return [p for p in self.pairs if p not in self.first_answer]

    @property
    def converged(self) -> float | None:
        return max(self.first_answer.values()) if not self.missing and self.first_answer else None


def probe_pairs(
    nodes: dict[str, Node],
    addresses: dict[str, str],
    pairs: list[tuple[str, str]],
    *,
    family: int,
    within: float,
    interval: float,
) -> ReachOutcome:
    """Echo requests between all pairs until each answered once or `within` passed.
    `nodes` maps a name to its node, `addresses` a node to the address it is
    reached at."""
    outcome = ReachOutcome(list(pairs))
    proto = socket.IPPROTO_ICMPV6 if family == 6 else socket.IPPROTO_ICMP
    af = socket.AF_INET6 if family == 6 else socket.AF_INET
    sources = list(dict.fromkeys(a for a, _ in pairs))
    sockets: dict[str, socket.socket] = {}
    # epoll, not select(): a thousand sources are past select()'s 1 024 descriptors
    selector = selectors.DefaultSelector()
    try:
        for node in sources:
            sockets[node] = nodes[node].socket(af, socket.SOCK_RAW, proto)
            sockets[node].setblocking(False)
            selector.register(sockets[node], selectors.EVENT_READ, node)
        ident = (os.getpid() ^ id(outcome)) & 0xFFFF
        by_address = {addresses[b]: b for _, b in pairs}
        # a reply's source address names the target, the socket it arrives on the source
        #
        # Sent at once, a → b and b → a start two handshakes that cross: each side
        # answers the other's initiation, which replaces its own, so each drops the
        # response it gets and both wait REKEY_TIMEOUT (5 s) to retry. So each pair's
        # way out goes first (retries jittered, so they do not stay in step), and the way
        # back once the way out answered (or REVERSE_AFTER later, should it not). All
        # ways out go at once: every handshake of the mesh starts together.
        rng = random.Random()
        order = {node: i for i, node in enumerate(sources)}
        wanted = set(pairs)
        due: dict[tuple[str, str], float] = {}  # pair → when it is next sent (s from the start)
        for a, b in pairs:
            if (b, a) not in wanted or order[a] < order.get(b, len(order)):
                due[(a, b)] = 0.0
        for a, b in pairs:
            if (a, b) not in due:
                due[(a, b)] = due[(b, a)] + REVERSE_AFTER
        # a heap of (when, pair); an entry whose time is no longer the pair's is stale
        queue = [(at, pair) for pair, at in due.items()]
        heapq.heapify(queue)
        sent_once: set[tuple[str, str]] = set()
        started = time.monotonic()
        deadline = started + within
        while due:
            now = time.monotonic()
            if now >= deadline:
                break
            sends = 0
            while queue and queue[0][0] <= now - started and sends < SENDS_PER_TURN:
                at, pair = heapq.heappop(queue)
                if due.get(pair) != at:
                    continue
                a, b = pair
                try:
                    sockets[a].sendto(echo_request(ident, outcome.sent & 0xFFFF, family), (addresses[b], 0))
                except OSError:
                    pass  # no route or no key yet: it counts as unanswered, and is retried
                outcome.sent += 1
                sends += 1
                sent_once.add(pair)
                due[pair] = now - started + interval * rng.uniform(0.75, 1.25)
                heapq.heappush(queue, (due[pair], pair))
            if sends == SENDS_PER_TURN:
                wait = 0.0  # more are due: read what came back, then send on
            else:
                wait = min(MAX_WAIT, max(0.0, deadline - time.monotonic()))
                if queue:
                    wait = min(wait, max(0.0, queue[0][0] - (time.monotonic() - started)))
            for key, _ in selector.select(wait):
                source, sock = key.data, key.fileobj
                while True:
                    try:
                        packet, sender = sock.recvfrom(65535)
                    except (BlockingIOError, InterruptedError):
                        break
                    parsed = parse_reply(packet, family)
                    target = by_address.get(sender[0])
                    if parsed is None or parsed[0] != ident or target is None:
                        continue
                    pair = (source, target)
                    if pair in due:
                        outcome.first_answer[pair] = time.monotonic() - started
                        del due[pair]
                        back = (target, source)
                        if back in due and back not in sent_once:
                            due[back] = 0.0  # the session is up: the way back goes now
                            heapq.heappush(queue, (0.0, back))
    finally:
        selector.close()
        for sock in sockets.values():
            sock.close()
    return outcome


def probe_pairs_here(here: Any, addresses: dict[str, str], pairs: list[tuple[str, str]], family: int, within: float, interval: float) -> ReachOutcome:
    """probe_pairs at a place (harness.engine.place), for the pairs whose source is there."""
    nodes = {a: here.node(a) for a in dict.fromkeys(a for a, _ in pairs)}
    return probe_pairs(nodes, addresses, pairs, family=family, within=within, interval=interval)


def probe_everywhere(network: Any, addresses: dict[str, str], pairs: list[tuple[str, str]], *, family: int, within: float, interval: float) -> ReachOutcome:
    """Each pair probed from the machine of its source, every machine at once; one
    outcome (times from each machine's own start, which are within a request of
    each other)."""
    by_place: dict[int, tuple[Any, list[tuple[str, str]]]] = {}
    for pair in pairs:
        place = network.place(pair[0])
        by_place.setdefault(id(place), (place, []))[1].append(pair)
    groups = list(by_place.values())
    if len(groups) == 1:
        place, mine = groups[0]
        return place.apply(probe_pairs_here, addresses, mine, family, within, interval)
    with ThreadPoolExecutor(len(groups)) as pool:
        parts = list(pool.map(lambda group: group[0].apply(probe_pairs_here, addresses, group[1], family, within, interval), groups))
    merged = ReachOutcome(list(pairs))
    for part in parts:
        merged.first_answer.update(part.first_answer)
        merged.sent += part.sent
    return merged


@runs("reach")
def reach(network, index: int, args: ReachArgs) -> StepResult:
    plan = network.plan
    nodes = reach_nodes(plan.wireguard, args)
    pairs = reach_pairs(nodes, args)
    name = args.record or "convergence"
    total = len(nodes) * (len(nodes) - 1)
    which = f"all {total} pairs" if len(pairs) == total else f"{len(pairs)} of {total} pairs (sampled, seed {sample_seed(nodes, args)})"
    title = f"reach: {which} of {len(nodes)} nodes (IPv{args.family}) within {args.within:g}s"
    addresses = {n: str(plan.tunnel_address(n, args.family)) for n in nodes}
    outcome = probe_everywhere(network, addresses, pairs, family=args.family, within=args.within, interval=args.interval)
    missing = outcome.missing
    result = StepResult(index, "reach", title, not missing, args.expect)
    times = [round(outcome.first_answer[p], 4) for p in pairs if p in outcome.first_answer]
    result.measurements[f"{name}.time"] = Measurement(
        round(outcome.converged, 4) if outcome.converged is not None else None, "s", samples=times
    )
    result.measurements[f"{name}.pairs_answered"] = Measurement(len(times), "pairs")
    if times:
        result.measurements[f"{name}.median"] = Measurement(round(statistics.median(times), 4), "s")
    if not missing:
        result.message = (
            f"all {len(pairs)} pairs answered; converged after {outcome.converged * 1000:.0f} ms "
            f"(median pair {statistics.median(times) * 1000:.0f} ms, {outcome.sent} requests)"
        )
        return result
    shown = ", ".join(f"{a} → {b}" for a, b in missing[:SHOWN]) + (" …" if len(missing) > SHOWN else "")
    a, b = missing[0]
    diagnosis = diagnose_path(network, a, plan.tunnel_address(b, args.family))
    result.message = (
        f"{len(missing)}/{len(pairs)} pairs never answered within {args.within:g}s ({shown}); "
        f"{a} → {b}: {diagnosis.summary}"
    )
    never = ", ".join(f"{x} → {y}" for x, y in missing)
    result.diagnosis = f"pairs that never answered: {never}\ndiagnosis of {a} → {b}:\n{diagnosis}"
    return result
