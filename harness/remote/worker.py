"""The worker: one process per host and run, started by the controller (over SSH:
`wgh worker`, or as a local child in tests), talking frames (harness.remote.wire) on
its stdin and stdout.

It builds the part of a run's network the controller gives it with a local engine,
under its own run record on this host (so `wgh clean` here and the watchdog reap it
like any run), and answers for its nodes. When the connection ends (the controller
closed it, died, or SSH broke) or a SIGTERM/SIGHUP arrives, it tears down what it
built and exits: nothing outlives the connection.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import signal
import socket
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import IO, Any, Callable

from harness import __version__
from harness.engine.place import Here
from harness.errors import HarnessError
from harness.remote.wire import WireError, failure_of, read_frame, write_frame
from harness.wg.site import DeviceSite

# what the controller may ask of a node and of the engine: the Node and Engine
# interfaces (harness.engine.base), nothing else
NODE_METHODS = frozenset(
    {"run", "read_proc_net", "route_to", "interface_index", "interface_mtu", "interface_counters", "address_state", "apply"}
)
ENGINE_METHODS = frozenset(
    {"port_addresses", "set_link", "conditions", "detach", "attach", "reroute", "renumber", "flush_nat", "nat_mappings"}
)
ENGINE_ATTRIBUTES = frozenset({"down_links"})
# the WireGuard devices of its nodes (harness.wg.site) and what the fleet asks of each
SITE_METHODS = frozenset({"resolve_backends", "create", "wait_ready", "configure_routing", "configure_rules", "recreate"})
DEVICE_METHODS = frozenset(
    {"configure", "set_private_key", "update_peers", "update_peer", "remove_peer", "set_fwmark", "set_listen_port", "status"}
)


def source_digest() -> str:
    """A digest of the harness's own Python files: two installs answer alike only if
    they run the same code (the version number alone does not change per commit)."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def named_function(path: str) -> Callable[..., Any]:
    """`module:qualname` of a harness function (what `apply` may run on a node)."""
    module, _, qualname = path.partition(":")
    if not module.startswith("harness.") or not qualname:
        raise HarnessError(f"a worker runs harness functions only, not {path!r}")
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise HarnessError(f"{path} is not a function")
    return target


class Worker:
    """What one worker holds: its engine, its run record, its nodes."""

    def __init__(self) -> None:
        self.engine: Any = None
        self.registry: Any = None
        self.site: Any = None  # its nodes' WireGuard devices
        self.here: Here | None = None  # its nodes, run record and work directory (harness.engine.place)
        self.objects: dict[int, Any] = {}  # what `start` made on a node (probe streams, captures), by id
        self._next_object = 1

    def hello(self, controller_version: str, controller_digest: str) -> dict[str, Any]:
        mine = source_digest()
        if (controller_version, controller_digest) != (__version__, mine):
            raise HarnessError(
                f"the worker on {socket.gethostname()} runs wgharness {__version__} ({mine}), the controller "
                f"{controller_version} ({controller_digest}): install the same version there (scripts/install.sh)"
            )
        return {"version": __version__, "digest": mine, "host": socket.gethostname(), "pid": os.getpid()}

    def clock(self) -> float:
        """This machine's monotonic clock now (the controller estimates the offset)."""
        return time.monotonic()

    def build(self, plan: Any, engine: str = "netns", share: Any = None) -> None:
        """Build `plan` (only `share`, this host's part, when it spans several hosts)."""
        from harness.cleanup import RunRegistry, reap
        from harness.engine import make_engine
        from harness.hostlimits import ensure_room_for

        if self.engine is not None:
            raise HarnessError("this worker has built its network already")
        reap()  # crashed runs' leftovers on this host first, as a local run does
        # a record of its own beside any other of the run on this machine (its
        # controller's, when it is local; another host's worker, when hosts are simulated)
        self.registry = RunRegistry(plan.run_id, part=f"worker-{os.getpid()}")
        self.registry.watch()  # a SIGKILLed worker is reaped at once, by its watchdog
        work_dir = Path(tempfile.mkdtemp(prefix=f"wgh-{plan.run_id}-"))  # daemons' logs; 0700
        self.registry.add_dir(str(work_dir))
        # this machine's limits, for its share (harness.hostlimits), before anything is built
        ensure_room_for(plan, share.nodes if share is not None else None)
        self.engine = make_engine(engine)
        if share is not None:
            self.engine.build(plan, self.registry, share)
        else:
            self.engine.build(plan, self.registry)
        self.site = DeviceSite(plan, self.engine.node, self.registry, work_dir)
        self.here = Here(self.engine.node, self.registry, work_dir)

    def place_apply(self, function: str, args: tuple, kwargs: dict) -> Any:
        """`function(here, ...)` on this machine (Place.apply)."""
        return named_function(function)(self._here(), *args, **kwargs)

    def machine_apply(self, function: str, args: tuple, kwargs: dict) -> Any:
        """`function(...)` on this machine, before or after a build (what needs no
        node: the hosts' own network, measured)."""
        return named_function(function)(*args, **kwargs)

    def place_start(self, factory: str, args: tuple, kwargs: dict) -> int:
        """An object `factory(here, ...)` made and kept on this machine (Place.start); its id."""
        return self._keep(named_function(factory)(self._here(), *args, **kwargs))

    def _here(self) -> Here:
        if self.here is None:
            raise HarnessError("this worker has built nothing yet")
        return self.here

    def _keep(self, made: Any) -> int:
        number, self._next_object = self._next_object, self._next_object + 1
        self.objects[number] = made
        return number

    def start(self, name: str, factory: str, args: tuple, kwargs: dict) -> int:
        """An object made by a harness factory on node `name` (Node.start); its id."""
        return self._keep(named_function(factory)(self._engine().node(name), *args, **kwargs))

    def object_call(self, number: int, method: str, args: tuple, kwargs: dict) -> Any:
        if method.startswith("_"):
            raise HarnessError(f"a worker's objects answer public methods only, not {method!r}")
        # kept after close(): what it gathered is still asked for (a capture's packets)
        return getattr(self.objects[number], method)(*args, **kwargs)

    def site_call(self, method: str, args: tuple, kwargs: dict) -> Any:
        if method not in SITE_METHODS:
            raise HarnessError(f"a worker's device site does not answer {method!r}")
        return getattr(self._site(), method)(*args, **kwargs)

    def device(self, name: str, method: str, args: tuple, kwargs: dict) -> Any:
        if method not in DEVICE_METHODS:
            raise HarnessError(f"a worker's WireGuard device does not answer {method!r}")
        return getattr(self._site().devices[name], method)(*args, **kwargs)

    def _site(self) -> Any:
        if self.site is None:
            raise HarnessError("this worker has built nothing yet")
        return self.site

    def node(self, name: str, method: str, args: tuple, kwargs: dict) -> Any:
        if method not in NODE_METHODS:
            raise HarnessError(f"a worker's node does not answer {method!r}")
        node = self._engine().node(name)
        if method == "apply":
            function, *rest = args
            return named_function(function)(node, *rest, **kwargs)
        return getattr(node, method)(*args, **kwargs)

    def engine_call(self, method: str, args: tuple, kwargs: dict) -> Any:
        if method not in ENGINE_METHODS:
            raise HarnessError(f"a worker's engine does not answer {method!r}")
        return getattr(self._engine(), method)(*args, **kwargs)

    def engine_attribute(self, name: str) -> Any:
        if name not in ENGINE_ATTRIBUTES:
            raise HarnessError(f"a worker's engine does not show {name!r}")
        return getattr(self._engine(), name)

    def close(self) -> list[str]:
        """Tear down what this worker built; returns what could not be removed."""
        leftovers: list[str] = []
        try:
            for made in reversed(list(self.objects.values())):  # newest first, as the run context does
                try:
                    made.close()
                except Exception as exc:  # keep going: what it held goes with the namespaces
                    print(f"wgh worker: closing {type(made).__name__}: {exc}", file=sys.stderr)
            self.objects.clear()
            if self.site is not None:
                self.site.close()
            if self.engine is not None:
                self.engine.close()
        finally:
            self.site = None
            self.here = None
            self.engine = None
            if self.registry is not None:
                leftovers = self.registry.release()
                self.registry = None
        return leftovers

    def _engine(self) -> Any:
        if self.engine is None:
            raise HarnessError("this worker has built nothing yet")
        return self.engine


class _Hangup(BaseException):
    """SIGTERM or SIGHUP: end the loop, tear down (not an Exception: no handler keeps it)."""


def serve(requests: IO[bytes], replies: IO[bytes]) -> int:
    """Answer requests until the connection ends or `close`; always tear down."""
    worker = Worker()
    handlers: dict[str, Callable[..., Any]] = {
        "hello": worker.hello,
        "build": worker.build,
        "clock": worker.clock,
        "node": worker.node,
        "engine": worker.engine_call,
        "engine_attribute": worker.engine_attribute,
        "site": worker.site_call,
        "start": worker.start,
        "place_apply": worker.place_apply,
        "machine_apply": worker.machine_apply,
        "place_start": worker.place_start,
        "object": worker.object_call,
        "device": worker.device,
        "close": worker.close,
    }

    def hang_up(signum: int, frame: Any) -> None:
        raise _Hangup(signum)

    previous = {signum: signal.signal(signum, hang_up) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        while True:
            try:
                verb, args, kwargs = read_frame(requests)
            except EOFError:
                return 0
            except (WireError, ValueError, TypeError) as exc:  # not a controller at the other end
                print(f"wgh worker: {exc}: expected a controller's frames (see harness/remote/wire.py)", file=sys.stderr)
                return 2
            handler = handlers.get(verb)
            try:
                if handler is None:
                    raise HarnessError(f"a worker does not know the request {verb!r}")
                reply: tuple[str, Any] = ("ok", handler(*args, **kwargs))
            except Exception as exc:
                reply = ("error", failure_of(exc, traceback.format_exc()))
            write_frame(replies, reply)
            if verb == "close":
                return 0
    except _Hangup:
        return 0
    finally:
        try:
            worker.close()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def main() -> int:
    # frames go to the real stdout only: anything printed by a library goes to stderr
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    sys.exit(main())
