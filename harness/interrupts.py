"""Ctrl-C, SIGTERM and SIGHUP: unwind so that every `finally` tears down, but never
cut a teardown in half.

Outside a teardown these signals raise KeyboardInterrupt in the main thread (SIGTERM
and SIGHUP then behave like Ctrl-C). While a teardown runs (`shielded()`), a signal is
only noted: the first two are deferred and the caller learns of them when the teardown
is over; a third aborts at once, saying what is left and that `wgh clean` removes it
(children die with the harness, and the run's record stays for the reaper).

Startup (`held()`) is shielded too: nothing is built yet, but loading code must not be
cut. pydantic builds its validators in Rust and turns a KeyboardInterrupt raised inside
that into a SchemaError, so an interrupted import would end as a crash (exit 1, a
traceback) instead of exit 130. A signal during startup takes effect when it is over.

A KeyboardInterrupt raised where Python cannot propagate it (a weakref callback such as
importlib's module-lock cleanup, a `__del__`, a finalizer) is only printed as "Exception
ignored" and the signal is lost: the run would go on and exit 0. The unraisable hook
recognises our own interrupt there and delivers the signal again, so it takes effect
at the next bytecode that can raise.

`checkpoint(phase)` is a test hook for fault injection: with WGH_TEST_PAUSE_AT=<phase>
set, the run announces the phase on stderr and waits there for a signal, so a test can
interrupt it at an exact point instead of guessing with timers (WGH_TEST_PAUSE_SECONDS:
how long at most; 0 announces without waiting, for a test that picks a moment after it).
"""

from __future__ import annotations

import os
import signal
import sys
import _thread
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
ABORT_AFTER = 3  # the third signal during a teardown aborts it
EXIT_INTERRUPTED = 130


class Interrupted(KeyboardInterrupt):
    """A scenario stopped by a signal after its teardown ran; `result` is its
    ScenarioResult (status 'error'), with whatever the teardown could not remove."""

    def __init__(self, result: Any, signum: int | None = None):
        super().__init__(_name(signum) if signum else "interrupted")
        self.result = result

    def summary(self) -> str:
        left = getattr(self.result, "leftovers", [])
        run = getattr(self.result, "run_id", "")
        if left:
            return f"interrupted; the teardown of run {run} could not remove: {', '.join(left)}; `wgh clean` removes it"
        return f"interrupted; everything run {run} built was torn down" if run else "interrupted; nothing was built yet"


@dataclass
class Shield:
    """What arrived while a teardown was shielded."""

    received: list[int] = field(default_factory=list)
    describe_left: Callable[[], str] | None = None
    during: str = "teardown"
    nested: bool = False  # inside another shield: the outer one reports what arrived


_owner = os.getpid()
_shield: Shield | None = None


def _name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _handler(signum: int, frame: Any) -> None:
    if os.getpid() != _owner:  # a forked child (not ours to unwind): just die
        os._exit(128 + signum)
    shield = _shield
    if shield is None:
        if _in_unraisable_hook:  # raised here it would be lost: delivered again after the hook
            threading.Thread(target=_deliver_after_the_hook, args=(signum,), daemon=True).start()
            return
        interrupt = KeyboardInterrupt(_name(signum))
        interrupt.wgh_signum = signum  # type: ignore[attr-defined]  # known again if swallowed
        raise interrupt
    shield.received.append(signum)
    count = len(shield.received)
    if count < ABORT_AFTER:
        more = ABORT_AFTER - count
        _say(f"wgh: {_name(signum)} during {shield.during}: finishing the {shield.during} first ({more} more to abort it)")
        return
    left = "what this run created" if shield.during == "teardown" else "nothing"
    if shield.describe_left is not None:
        try:
            left = shield.describe_left() or left
        except Exception:  # describing must never stop the abort
            pass
    _say(f"wgh: {shield.during} aborted by a third signal; left behind: {left}; `wgh clean` removes it")
    os._exit(EXIT_INTERRUPTED)


def _say(text: str) -> None:
    try:
        os.write(2, (text + "\n").encode())
    except OSError:
        pass


def _redeliver_swallowed(unraisable: Any) -> None:
    """sys.unraisablehook: our interrupt raised inside a callback that cannot
    propagate it is delivered again; anything else goes to the previous hook."""
    global _in_unraisable_hook
    signum = getattr(unraisable.exc_value, "wgh_signum", None)
    if signum is None or os.getpid() != _owner:
        _previous_unraisablehook(unraisable)
        return
    _in_unraisable_hook = True
    try:
        threading.Thread(target=_deliver_after_the_hook, args=(signum,), name="wgh-redeliver", daemon=True).start()
    finally:
        _in_unraisable_hook = False


def _deliver_after_the_hook(signum: int) -> None:
    # tripped from inside the hook, the handler would run (and raise) in the hook
    # itself, where the exception is lost for good; so wait until it has returned
    while _in_unraisable_hook:
        time.sleep(0.001)
    _thread.interrupt_main(signum)


_in_unraisable_hook = False
_previous_unraisablehook: Callable[[Any], None] = sys.unraisablehook


def install(signums: tuple[int, ...] = SIGNALS) -> None:
    """Route these signals through the handler: from the main thread only; a process
    that is not the one that installed it (a fork) just exits."""
    global _owner, _previous_unraisablehook
    if threading.current_thread() is not threading.main_thread():
        return
    _owner = os.getpid()
    for signum in signums:
        signal.signal(signum, _handler)
    if sys.unraisablehook is not _redeliver_swallowed:
        _previous_unraisablehook = sys.unraisablehook
        sys.unraisablehook = _redeliver_swallowed


@contextmanager
def shielded(describe_left: Callable[[], str] | None = None, during: str = "teardown") -> Iterator[Shield]:
    """Defer the signals for the duration of a teardown. Nested use shares the outer
    shield. Outside the main thread signals cannot arrive here: a plain Shield."""
    global _shield
    if _shield is not None:
        yield Shield(_shield.received, _shield.describe_left, _shield.during, nested=True)
        return
    if threading.current_thread() is not threading.main_thread():
        yield Shield(describe_left=describe_left, during=during)
        return
    shield = Shield(describe_left=describe_left, during=during)
    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}
    _shield = shield
    try:
        for signum in SIGNALS:
            signal.signal(signum, _handler)
        yield shield
    finally:
        _shield = None
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


@contextmanager
def held(during: str = "startup") -> Iterator[None]:
    """Run the block whole, then act on a signal that arrived meanwhile (as
    KeyboardInterrupt): for code that loads rather than builds, where waiting costs
    nothing and being cut corrupts (see the module's doc)."""
    with shielded(during=during) as shield:
        yield
    if shield.received and not shield.nested:
        raise KeyboardInterrupt(_name(shield.received[0]))


def checkpoint(phase: str, detail: str = "") -> None:
    """Fault-injection hook: a no-op unless WGH_TEST_PAUSE_AT names this phase."""
    if os.environ.get("WGH_TEST_PAUSE_AT") != phase:
        return
    shield = _shield
    # how many signals to wait for (a test of the third-signal abort waits for all three);
    # counted before announcing: a signal may arrive the moment the line is out
    until = (len(shield.received) if shield else 0) + int(os.environ.get("WGH_TEST_PAUSE_SIGNALS", "1"))
    print(f"WGH-CHECKPOINT {phase} {detail}".rstrip(), file=sys.stderr, flush=True)
    wait = float(os.environ.get("WGH_TEST_PAUSE_SECONDS", "60"))
    if wait <= 0:  # announce only: a test acts at a moment of its own choosing after it
        return
    deadline = time.monotonic() + wait
    # outside a teardown the signal raises KeyboardInterrupt out of this sleep; inside
    # one it is deferred, and the wait ends once it has been noted
    while time.monotonic() < deadline:
        if shield is not None and len(shield.received) >= until:
            return
        time.sleep(0.01)
    # said loudly: a run that goes on after its test lost the race would otherwise pass
    # as if the signal had been ignored
    _say(f"WGH-CHECKPOINT-EXPIRED {phase}: no signal came within {wait:g}s; going on")
