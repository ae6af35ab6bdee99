"""The controller's side of a worker: the connection (a child process whose stdin and
stdout carry frames: `ssh host wgh worker`, or the worker module run locally), and
the engine and node handles over it, which satisfy harness.engine.base's `Engine` and
`Node` as far as a node elsewhere can: what needs a file descriptor in the node's
namespace (a socket, a netlink handle) runs there, by name (`apply`)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from typing import Any, Callable, Sequence

from harness import __version__
from harness.errors import HarnessError
from harness.net import nsexec
from harness.remote.wire import Failure, WireError, read_frame, write_frame

LOCAL_WORKER = (sys.executable, "-m", "harness.remote.worker")
CLOSE_TIMEOUT = 120.0  # a worker's teardown of a large network takes a while


CLOCK_SAMPLES = 5


def clock_offset(samples: Sequence[tuple[float, float, float]]) -> tuple[float, float]:
    """The other machine's monotonic clock minus ours, and how far off that may be, from
    (sent, its clock, received) exchanges (pure): the quickest round trip, its reading
    taken as half-way (as NTP does), within half that round trip."""
    sent, there, received = min(samples, key=lambda s: s[2] - s[0])
    return there - (sent + received) / 2, (received - sent) / 2


class WorkerConnection:
    """One worker process and the frames to and from it. Requests are answered in
    order; threads take turns (the fleet configures devices side by side)."""

    def __init__(self, argv: Sequence[str] = LOCAL_WORKER, *, where: str = "local worker"):
        self.where = where
        self._lock = threading.Lock()
        # stderr passes through: the worker's warnings and its tracebacks reach the log
        # its own session: Ctrl-C reaches the controller, which then asks the worker to
        # tear down; a death signal: a SIGKILLed controller takes it along (start it from
        # a thread that lives as long as the connection: the signal follows the thread)
        self.process = nsexec.spawn(None, list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0, start_new_session=True)
        self.info: dict[str, Any] = {}
        # the worker's monotonic clock minus ours (hello measures it), and its uncertainty
        self.clock_offset = 0.0
        self.clock_uncertainty = 0.0

    def hello(self) -> dict[str, Any]:
        """Check the worker runs this very code, then estimate its clock's offset."""
        from harness.remote.worker import source_digest

        self.info = self.request("hello", __version__, source_digest())
        samples = []
        for _ in range(CLOCK_SAMPLES):
            sent = time.monotonic()
            there = self.request("clock")
            samples.append((sent, there, time.monotonic()))
        self.clock_offset, self.clock_uncertainty = clock_offset(samples)
        return self.info

    def request(self, verb: str, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            if self.process.poll() is not None:
                raise WireError(f"the {self.where} has exited (status {self.process.returncode})")
            try:
                write_frame(self.process.stdin, (verb, args, kwargs))
                status, value = read_frame(self.process.stdout)
            except (EOFError, BrokenPipeError) as exc:
                raise WireError(f"the connection to the {self.where} broke during {verb!r}: {exc}") from None
        if status == "error":
            assert isinstance(value, Failure)
            value.raise_it()
        return value

    def close(self, timeout: float = CLOSE_TIMEOUT) -> list[str]:
        """Ask the worker to tear down and exit; returns what it could not remove. A
        worker that does not answer in time is ended (by its PID, ours)."""
        leftovers: list[str] = []
        try:
            if self.process.poll() is None:
                leftovers = self.request("close")
        except (WireError, HarnessError) as exc:
            leftovers = [f"{self.where}: {exc}"]
        finally:
            for stream in (self.process.stdin, self.process.stdout):
                if stream is not None:
                    stream.close()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.terminate()  # its SIGTERM handler tears down
                self.process.wait()
        return leftovers


def function_path(function: Callable[..., Any]) -> str:
    """`module:qualname`, how a worker finds a function."""
    return f"{function.__module__}:{function.__qualname__}"


class RemoteNode:
    """A node a worker built: every action is a request to that worker."""

    def __init__(self, connection: WorkerConnection, name: str):
        self.name = name
        self._connection = connection

    def _ask(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._connection.request("node", self.name, method, args, kwargs)

    def run(self, argv: Sequence[str], *, timeout: float = 30.0, input: str | None = None) -> subprocess.CompletedProcess:
        return self._ask("run", list(argv), timeout=timeout, input=input)

    def read_proc_net(self, name: str) -> str:
        return self._ask("read_proc_net", name)

    def route_to(self, destination: str, mark: int | None = None) -> Any:
        return self._ask("route_to", destination, mark)

    def interface_index(self, ifname: str) -> int | None:
        return self._ask("interface_index", ifname)

    def interface_mtu(self, index: int) -> int:
        return self._ask("interface_mtu", index)

    def interface_counters(self, ifname: str) -> dict[str, int]:
        return self._ask("interface_counters", ifname)

    def address_state(self, address: str) -> str | None:
        return self._ask("address_state", address)

    @property
    def clock_offset(self) -> float:
        """Its machine's monotonic clock minus ours (measured at hello)."""
        return self._connection.clock_offset

    def apply(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return self._ask("apply", function_path(function), *args, **kwargs)

    def start(self, factory: Callable[..., Any], *args: Any, **kwargs: Any) -> "RemoteObject":
        number = self._connection.request("start", self.name, function_path(factory), args, kwargs)
        return RemoteObject(self._connection, number, f"{factory.__qualname__} on {self.name}")

    # what only a node on this machine has
    def _elsewhere(self, what: str) -> HarnessError:
        return HarnessError(f"node {self.name} is on the {self._connection.where}: {what} exists only there (use apply)")

    @property
    def netns_path(self) -> str:
        raise self._elsewhere("its namespace path")

    @property
    def netlink(self) -> Any:
        raise self._elsewhere("its netlink handle")

    def socket(self, family: int, kind: int, proto: int = 0) -> Any:
        raise self._elsewhere("a socket in it")

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen:
        raise self._elsewhere("a process started in it")

    def __repr__(self) -> str:
        return f"RemoteNode({self.name!r}, {self._connection.where})"


class RemoteObject:
    """What a factory made on a worker's node (a probe stream, a capture): its public
    methods, called there; what they return is plain data."""

    def __init__(self, connection: WorkerConnection, number: int, what: str):
        self._connection = connection
        self._number = number
        self._what = what

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method.startswith("_"):
            raise AttributeError(method)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._connection.request("object", self._number, method, args, kwargs)

        return call

    def __repr__(self) -> str:
        return f"RemoteObject({self._what}, {self._connection.where})"


class RemotePlace:
    """A worker's machine as a place (harness.engine.place): functions applied there,
    objects kept there."""

    def __init__(self, connection: WorkerConnection):
        self._connection = connection

    def apply(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return self._connection.request("place_apply", function_path(function), args, kwargs)

    def start(self, factory: Callable[..., Any], *args: Any, **kwargs: Any) -> RemoteObject:
        number = self._connection.request("place_start", function_path(factory), args, kwargs)
        return RemoteObject(self._connection, number, factory.__qualname__)

    def __repr__(self) -> str:
        return f"RemotePlace({self._connection.where})"


class RemoteDevice:
    """A WireGuard device a worker's site holds (harness.wg.backends.WgDevice's methods)."""

    def __init__(self, connection: WorkerConnection, name: str, ifname: str, backend: str):
        self._connection = connection
        self.name = name
        self.ifname = ifname
        self.backend = backend

    def _ask(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._connection.request("device", self.name, method, args, kwargs)

    def for_another_thread(self) -> "RemoteDevice":
        return self  # requests take turns on the connection

    def configure(self, private_key: bytes, listen_port: int, peers: list) -> None:
        self._ask("configure", private_key, listen_port, peers)

    def set_private_key(self, private_key: bytes) -> None:
        self._ask("set_private_key", private_key)

    def update_peers(self, changes: Sequence[Any]) -> None:
        self._ask("update_peers", list(changes))

    def update_peer(self, public_key: bytes, **settings: Any) -> None:
        self._ask("update_peer", public_key, **settings)

    def remove_peer(self, public_key: bytes) -> None:
        self._ask("remove_peer", public_key)

    def set_fwmark(self, mark: int) -> None:
        self._ask("set_fwmark", mark)

    def set_listen_port(self, port: int) -> None:
        self._ask("set_listen_port", port)

    def status(self) -> Any:
        return self._ask("status")

    def close(self) -> None:
        """Nothing here: the worker's site stops its devices."""


class RemoteDeviceSite:
    """The WireGuard devices of a worker's nodes (harness.wg.site.DeviceSite's methods)."""

    def __init__(self, connection: WorkerConnection, plan: Any):
        self._connection = connection
        self._plan = plan
        self.backends: dict[str, str] = {}
        self.devices: dict[str, RemoteDevice] = {}

    def _ask(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._connection.request("site", method, args, kwargs)

    def resolve_backends(self, names: Any) -> dict[str, str]:
        """What the worker's machine runs (its kernel may have WireGuard, ours not)."""
        return self._ask("resolve_backends", list(names))

    def create(self, backends: dict[str, str]) -> None:
        self._ask("create", dict(backends))
        for name, backend in backends.items():
            self.devices[name] = RemoteDevice(self._connection, name, self._plan.wireguard[name].ifname, backend)

    def wait_ready(self, name: str) -> None:
        self._ask("wait_ready", name)

    def configure_routing(self, name: str) -> None:
        self._ask("configure_routing", name)

    def configure_rules(self, name: str) -> None:
        self._ask("configure_rules", name)

    def recreate(self, name: str, backend: str) -> None:
        self._ask("recreate", name, backend)

    def close(self) -> None:
        """Nothing here: the worker stops its devices when the engine closes."""


class RemoteEngine:
    """An engine whose network a worker builds (with the worker's own `engine`) and
    changes; the timeline's requests go to it."""

    elsewhere = True  # on the worker's machine

    def __init__(self, connection: WorkerConnection, engine: str = "netns"):
        self.name = f"{engine}@{connection.where}"
        self.connection = connection
        self.engine = engine
        self._nodes: dict[str, RemoteNode] = {}
        self._place: RemotePlace | None = None
        self._site: RemoteDeviceSite | None = None

    def build(self, plan: Any, registry: Any, share: Any = None) -> None:
        """The worker builds `plan` (only `share`, its host's part, if given)."""
        if not self.connection.info:
            self.connection.hello()
        self.connection.request("build", plan, self.engine, share)
        self._plan = plan
        self._nodes = {name: RemoteNode(self.connection, name) for name in plan.nodes}

    def place(self, node: str) -> RemotePlace:
        """The worker's machine, where every node of this engine is."""
        if self._place is None:
            self._place = RemotePlace(self.connection)
        return self._place

    def missing(self, needs: set[str], backend: str, userspace: Any) -> list[str]:
        """What the worker's machine lacks (harness.caps, asked there)."""
        from harness.caps import missing_for

        return [f"{self.connection.where}: {reason}" for reason in self.on_machine(missing_for, set(needs), backend, userspace)]

    def on_machine(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`function(*args, **kwargs)` on the worker's machine, built or not (a
        module-level harness function; plain data in and out)."""
        return self.connection.request("machine_apply", function_path(function), args, kwargs)

    def device_site(self, node: str) -> RemoteDeviceSite:
        """Where the nodes' WireGuard devices are made: on the worker's machine (one
        site for all of them)."""
        if self._site is None:
            self._site = RemoteDeviceSite(self.connection, self._plan)
        return self._site

    def node(self, name: str) -> RemoteNode:
        return self._nodes[name]

    def spread(self) -> None:
        """None: the whole network is on one machine."""
        return None

    @property
    def down_links(self) -> set[int]:
        return self.connection.request("engine_attribute", "down_links")

    def _engine(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.connection.request("engine", method, args, kwargs)

    def port_addresses(self, port: Any) -> tuple:
        return self._engine("port_addresses", port)

    def set_link(self, index: int, *, up: bool | None = None, conditions: Any = None) -> None:
        self._engine("set_link", index, up=up, conditions=conditions)

    def conditions(self, index: int, sender: str) -> Any:
        return self._engine("conditions", index, sender)

    def detach(self, node: str, link_index: int) -> None:
        self._engine("detach", node, link_index)

    def attach(self, node: str, link_index: int) -> None:
        self._engine("attach", node, link_index)

    def reroute(self) -> None:
        self._engine("reroute")

    def renumber(self, node: str, to: Any = None) -> str:
        return self._engine("renumber", node, to)

    def flush_nat(self, node: str) -> int:
        return self._engine("flush_nat", node)

    def nat_mappings(self, node: str) -> list:
        return self._engine("nat_mappings", node)

    def close(self) -> list[str]:
        return self.connection.close()
