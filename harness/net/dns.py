"""DNS inside the test network: dnsmasq servers on `dns:` nodes, name resolution from
inside a node, records that follow roaming nodes, and the stale-endpoint diagnosis.

- A node with `dns: {server.wgh.test: server}` runs dnsmasq in its namespace, as a
  process the harness started (recorded by PID for cleanup), listening only on that
  node's addresses, with no upstream servers, no /etc/hosts, no DHCP, and its files
  in a private temp dir. It answers from a hosts file the harness owns; when a named
  node's address changes (a `roam` step) the file is rewritten and dnsmasq re-reads
  it on SIGHUP, as a dynamic-DNS update would do.
- A node resolves a name with one UDP query from inside its own namespace to the
  DNS server it reaches (never the host's resolver), A first, then AAAA, as wg(8)
  does once when it configures a peer (harness/net/dnswire.py builds and parses).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from harness.errors import BuildError, MissingCapability
from harness.interrupts import checkpoint, held
from harness.net import dnswire, nsexec
from harness.net.dnswire import Address, Answer, DnsError, build_query, hosts_file, parse_response
from harness.plan.dns import dns_servers, resolver_for
from harness.processes import stop_children
from harness.plan.types import EndpointPlan

PORT = 53
QUERY_TIMEOUT = 1.0  # per attempt; a resolver on the same few links answers in well under 1 ms
ATTEMPTS = 3
SERVICE_PREFIX = "dns:"


# --- resolving, from inside a namespace --------------------------------------------


def query(namespace: str, server: Address, name: str, qtype: str, timeout: float = QUERY_TIMEOUT) -> Answer:
    """One query for `name` (type A or AAAA) to `server`, sent from inside `namespace`."""
    query_id = secrets.randbelow(0x10000)
    request = build_query(name, qtype, query_id)

    def exchange() -> Answer:
        family = socket.AF_INET6 if server.version == 6 else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.settimeout(timeout)
            sock.connect((str(server), PORT))  # only the server's datagrams reach this socket
            sock.send(request)
            deadline = time.monotonic() + timeout
            while True:
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                try:
                    data = sock.recv(4096)
                except socket.timeout:
                    raise DnsError(f"no answer from {server} within {timeout:g}s") from None
                except ConnectionRefusedError:
                    raise DnsError(f"{server} refused the query (nothing listens on port {PORT})") from None
                except OSError as exc:
                    raise DnsError(f"cannot reach {server}: {exc.strerror or exc}") from None
                try:
                    return parse_response(data, name, qtype, query_id)
                except DnsError:
                    if time.monotonic() >= deadline:
                        raise
                    continue  # a stray or late datagram: keep waiting for ours

    try:
        return nsexec.call_in(namespace, exchange)
    except OSError as exc:  # sending failed (no route): the socket call itself
        raise DnsError(f"cannot reach {server}: {exc.strerror or exc}") from None


def resolve(namespace: str, server: Address, name: str, *, timeout: float = QUERY_TIMEOUT, attempts: int = ATTEMPTS) -> Answer:
    """The addresses of `name`, IPv4 first, as a stub resolver asks: A, then AAAA when
    there is no A record. Unanswered queries are retried; a definite answer without
    addresses (NXDOMAIN, no records) raises DnsError at once."""
    last: DnsError | None = None
    for qtype in ("A", "AAAA"):
        for _ in range(attempts):
            try:
                answer = query(namespace, server, name, qtype, timeout)
            except DnsError as exc:
                last = exc
                continue
            if answer.rcode != 0:
                raise DnsError(f"{name}: {answer.status} from {server}")
            if answer.addresses:
                return answer
            break  # no record of this type: try the next type
        else:
            raise last or DnsError(f"{name}: no answer from {server}")
    raise DnsError(f"{name}: {server} has no A or AAAA record for it")


@dataclass(frozen=True)
class Resolution:
    name: str
    server: str  # the node whose DNS server answered
    server_address: Address
    answer: Answer

    @property
    def address(self) -> Address:
        return self.answer.addresses[0]


def resolve_in(network: Any, node: str, name: str, *, attempts: int = ATTEMPTS) -> Resolution:
    """Resolve `name` from inside `node`, through the DNS server it reaches."""
    found = resolver_for(network.plan, node, name)
    if found is None:  # validation makes this unreachable for planned endpoints
        raise DnsError(f"'{node}' reaches no DNS server for {name}")
    server, address = found
    return Resolution(name, server, address, network.node(node).apply(resolve_from, address, name, attempts))


def resolve_from(node: Any, server: Address, name: str, attempts: int = ATTEMPTS) -> Answer:
    """resolve() from inside `node`, where it is (Node.apply)."""
    return resolve(node.netns_path, server, name, attempts=attempts)


# --- dnsmasq ---------------------------------------------------------------------


def dnsmasq_argv(binary: str, listen: Sequence[Address], hosts_path: Path, log_path: Path) -> list[str]:
    """dnsmasq answering only from `hosts_path`, only on `listen`, with nothing else."""
    argv = [
        binary,
        "--keep-in-foreground",  # no fork: the PID we start is the server, stopped by that PID
        "--conf-file=/dev/null",  # ignore the host's /etc/dnsmasq.conf
        "--no-resolv",  # no upstream servers: never forwards a query anywhere
        "--no-hosts",  # not the host's /etc/hosts either
        "--local=/#/",  # every name is local: unknown names get NXDOMAIN, not REFUSED
        f"--addn-hosts={hosts_path}",  # our records; re-read on SIGHUP
        f"--port={PORT}",
        "--bind-interfaces",  # bind exactly the addresses below, not the wildcard
        "--pid-file=",  # no PID file: we track the process ourselves
        f"--log-facility={log_path}",
        "--log-queries",
    ]
    argv += [f"--listen-address={address}" for address in listen]
    return argv


class DnsService:
    """A `dns:` node's server as the run sees it: the records it serves, and the server
    itself where the node is (its place: this machine or a worker's)."""

    def __init__(self, network: Any, node: str):
        # dnsmasq is looked for where the server runs (DnsServer): over several hosts,
        # that is the node's host, not this machine
        self.node = node
        self.artifacts_dir = network.artifacts_dir
        self.records = records_for(network, node)
        listen = tuple(a.ip for p in network.plan.ports[node] for a in network.engine.port_addresses(p))
        self.server = network.place(node).start(DnsServer, node, listen, self.records, network.plan.run_id)

    def wait_ready(self, timeout: float = 10.0) -> None:
        self.server.wait_ready(timeout)

    def update(self, records: dict[str, tuple[Address, ...]], timeout: float = 3.0) -> None:
        self.server.update(records, timeout)
        self.records = records

    def pid(self) -> int:
        return self.server.pid()

    def close(self) -> None:
        """Stop the server; its query log goes among the run's artifacts."""
        log = self.server.query_log()
        self.server.close()
        if self.artifacts_dir is not None and log:
            self.artifacts_dir.mkdir(parents=True, exist_ok=True)
            (self.artifacts_dir / f"dnsmasq-{self.node}.log").write_text(log)


class DnsServer:
    """A dnsmasq process in one node's namespace, and the records it serves (made and
    kept where the node is: Place.start)."""

    def __init__(self, here: Any, node: str, listen: tuple[Address, ...], records: dict[str, tuple[Address, ...]], run_id: str):
        binary = shutil.which("dnsmasq")
        if binary is None:
            raise MissingCapability(f"'{node}' runs a DNS server, but dnsmasq is not installed: apt-get install dnsmasq-base")
        self.node = node
        self.namespace = here.node(node).netns_path
        self.listen = listen
        registry = here.registry
        self.directory = Path(tempfile.mkdtemp(prefix=f"wgh-{run_id}-dns-{node}-"))
        registry.add_dir(str(self.directory))
        # dnsmasq drops to user nobody after start and re-reads the hosts file as nobody
        self.directory.chmod(0o755)
        self.hosts_path = self.directory / "hosts"
        self.log_path = self.directory / f"dnsmasq-{node}.log"
        self.records = records
        self._write(self.records)
        argv = dnsmasq_argv(binary, self.listen, self.hosts_path, self.log_path)
        # dnsmasq drops privileges, which clears PR_SET_PDEATHSIG: a watchdog makes it die with us
        registry.watch()
        # started and recorded as one: a Ctrl-C between the two would leave a dnsmasq that
        # nothing records, and without PDEATHSIG nothing stops
        with held("starting dnsmasq"), open(self.directory / "stderr.txt", "wb") as stderr:
            self.process = nsexec.popen(self.namespace, argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
            checkpoint("dnsmasq-started", run_id)  # a SIGKILL here leaves it unrecorded (tests)
            registry.add_process(self.process.pid, "dnsmasq")

    def _write(self, records: dict[str, tuple[Address, ...]]) -> None:
        tmp = self.hosts_path.with_suffix(".tmp")
        tmp.write_text(hosts_file(records))
        tmp.chmod(0o644)
        os.replace(tmp, self.hosts_path)  # dnsmasq never reads a half-written file

    def _answers(self, records: dict[str, tuple[Address, ...]]) -> bool:
        """Does the server answer every name with exactly these addresses now?"""
        server = self.listen[0]
        for name, addresses in records.items():
            for qtype, version in (("A", 4), ("AAAA", 6)):
                wanted = {a for a in addresses if a.version == version}
                if not wanted and version == 6:
                    continue
                answer = query(self.namespace, server, name, qtype, timeout=0.3)
                if set(answer.addresses) != wanted:
                    return False
        return True

    def wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise BuildError(f"dnsmasq on {self.node} exited with {self.process.returncode}: {self._output()}")
            try:
                if self._answers(self.records):
                    return
            except DnsError:
                pass  # not listening yet
            if time.monotonic() > deadline:
                raise BuildError(f"dnsmasq on {self.node} did not answer within {timeout:g}s: {self._output()}")
            time.sleep(0.01)

    def update(self, records: dict[str, tuple[Address, ...]], timeout: float = 3.0) -> None:
        """Serve these records from now on: rewrite the file, SIGHUP, wait until served."""
        self._write(records)
        if self.process.poll() is not None:
            raise RuntimeError(f"dnsmasq on {self.node} has exited ({self.process.returncode}): {self._output()}")
        os.kill(self.process.pid, signal.SIGHUP)  # our child (not yet reaped), so the PID is still it
        self.records = records
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self._answers(records):
                    return
            except DnsError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"dnsmasq on {self.node} still serves old records {timeout:g}s after SIGHUP")
            time.sleep(0.01)

    def _output(self) -> str:
        texts = []
        for path in (self.directory / "stderr.txt", self.log_path):
            try:
                texts.append(path.read_text(errors="replace").strip())
            except OSError:
                pass
        return " | ".join(t for t in texts if t)[-1500:] or "(no output)"

    def pid(self) -> int:
        return self.process.pid

    def query_log(self) -> str:
        """What dnsmasq logged (its queries), '' if nothing."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def close(self) -> None:
        stop_children([self.process])  # one that will not die: the registry's release tries again, by PID
        shutil.rmtree(self.directory, ignore_errors=True)


# --- the network's DNS -------------------------------------------------------------


def current_addresses(network: Any, node: str) -> tuple[Address, ...]:
    """What a record for `node` holds: its current first IPv4 and first IPv6 address on
    the first of its links that is up (after roaming: the link it uses now)."""
    ports = network.plan.ports[node]
    up = [p for p in ports if p.link_index not in network.engine.down_links] or list(ports)
    if not up:
        return ()
    addresses = network.engine.port_addresses(up[0])
    chosen = [next((a.ip for a in addresses if a.version == v), None) for v in (4, 6)]
    return tuple(a for a in chosen if a is not None)


def records_for(network: Any, server: str) -> dict[str, tuple[Address, ...]]:
    return {name: current_addresses(network, target) for name, target in network.plan.nodes[server].dns.items()}


def servers(network: Any) -> list[DnsService]:
    return [s for key, s in network.services.items() if key.startswith(SERVICE_PREFIX)]


def start_servers(network: Any) -> None:
    """Start every `dns:` node's server (after the underlay, before WireGuard)."""
    started = []
    for node in dns_servers(network.plan):
        dnswire.load()  # not inside wait_ready's deadline
        server = DnsService(network, node)
        network.services[SERVICE_PREFIX + node] = server  # registered at once: teardown stops it
        started.append(server)
    for server in started:  # started together, awaited together
        server.wait_ready()


def resolve_endpoints(network: Any) -> dict[tuple[str, str], EndpointPlan]:
    """Resolve each endpoint given by DNS name once, inside its node, before endpoints
    are set: what wg(8) does when it reads `Endpoint = name:port`. Returns them by
    (node, peer), for the WireGuard fleet to set."""
    endpoints: dict[tuple[str, str], EndpointPlan] = {}
    for node, wg in network.plan.wireguard.items():
        for peer in wg.peers:
            planned = peer.endpoint
            if planned is None or planned.name is None:
                continue
            try:
                found = resolve_in(network, node, planned.name)
            except DnsError as exc:
                raise BuildError(f"{node} cannot resolve the endpoint {planned} of peer {peer.node}: {exc}") from None
            endpoints[(node, peer.node)] = EndpointPlan(found.address, planned.port, planned.node, planned.name)
    return endpoints


def resolved(network: Any, node: str, endpoint: Any) -> Any:
    """An endpoint with its DNS name resolved now, inside `node` (as `wg set ... endpoint
    name:port` does); endpoints with an address are returned as they are."""
    if endpoint is None or endpoint.address is not None or endpoint.name is None:
        return endpoint
    found = resolve_in(network, node, endpoint.name)
    return EndpointPlan(found.address, endpoint.port, endpoint.node, endpoint.name)


def follow_addresses(network: Any) -> list[str]:
    """Update every DNS server whose records changed (a named node moved); returns
    what changed, e.g. ['DNS server.wgh.test → 198.18.2.100']."""
    changes = []
    for server in servers(network):
        records, before = records_for(network, server.node), server.records
        if records == before:
            continue
        server.update(records)
        changes += [
            f"DNS {name} → {', '.join(map(str, addresses))} (on {server.node})"
            for name, addresses in records.items()
            if before.get(name) != addresses
        ]
    return changes


def stale_endpoint(network: Any, node: str, other: str, peer: Any, lines: list[str]) -> str | None:
    """For the diagnosis: `node`'s endpoint for `other` came from a DNS name; resolve it
    again now. If WireGuard still sends to what was resolved at configuration and the
    name now gives another address, return the cause; add what was seen to `lines`."""
    configured = network.wireguard.endpoints.get((node, other))
    name = getattr(configured, "name", None)
    if peer is None or name is None:
        return None
    try:
        now = resolve_in(network, node, name, attempts=1)  # a diagnosis must not wait long for a dead server
    except DnsError as exc:
        lines.append(f"DNS: {name} does not resolve from {node} now: {exc}")
        return None
    addresses = ", ".join(map(str, now.answer.addresses))
    lines.append(
        f"DNS: {name} resolves to {addresses} now (asked {now.server} at {now.server_address} from {node}); "
        f"{node} was configured with {configured} and sends to {peer.endpoint or '(none)'}"
    )
    if peer.endpoint != str(configured):
        return None  # WireGuard has learned another endpoint from the peer's packets: not a DNS matter
    if configured.address in now.answer.addresses:
        return None
    return (
        f"{node} resolved {name} once, when its peer {other} was configured, and still sends to {configured}; "
        f"the name now resolves to {now.address}: WireGuard never resolves again by itself. Re-resolve it "
        f"periodically (wireguard-tools' reresolve-dns.sh, or a `reresolve:` step) or set the endpoint again"
    )
