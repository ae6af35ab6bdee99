"""The frames between a controller and a worker: a 4-byte big-endian length, then a
pickle. Both ends are the same harness version (checked at hello) and trust each
other as much as SSH as root already makes them; a frame carries plain data (plans,
dataclasses of results), never code: a function is named by its import path."""

from __future__ import annotations

import pickle
import struct
from dataclasses import dataclass
from typing import IO, Any

from harness.errors import HarnessError

HEADER = struct.Struct("!I")
MAX_FRAME = 256 * 1024 * 1024  # a 1 000-node plan is a few MiB; more is a broken stream


class WireError(HarnessError):
    """The connection to a worker broke, or carried something that is not a frame."""


class RemoteError(HarnessError):
    """An exception raised on the worker's side, carried back: its type's name, its
    message and the worker's traceback (text)."""

    def __init__(self, kind: str, message: str, traceback: str = ""):
        super().__init__(f"{kind}: {message}" if message else kind)
        self.kind = kind
        self.remote_message = message
        self.traceback = traceback


@dataclass(frozen=True)
class Failure:
    """What a request raised on the worker: re-raised as itself on the controller when
    the exception survives pickling (a BuildError stays a BuildError), else as a
    RemoteError."""

    kind: str
    message: str
    traceback: str
    exception: bytes | None  # the pickled exception, if it pickles

    def raise_it(self) -> None:
        if self.exception is not None:
            try:
                error = pickle.loads(self.exception)
            except Exception:  # a class the controller lacks: fall back to the text
                error = None
            if isinstance(error, BaseException):
                raise error
        raise RemoteError(self.kind, self.message, self.traceback)


def write_frame(stream: IO[bytes], value: Any) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(HEADER.pack(len(data)) + data)
    stream.flush()


def read_frame(stream: IO[bytes]) -> Any:
    """The next frame's value; EOFError when the other side closed between frames."""
    header = _read_exactly(stream, HEADER.size, at_start=True)
    (length,) = HEADER.unpack(header)
    if length > MAX_FRAME:
        raise WireError(f"a frame of {length} bytes (over {MAX_FRAME}): not a wgharness worker stream")
    data = _read_exactly(stream, length, at_start=False)
    try:
        return pickle.loads(data)
    except Exception as exc:  # garbage, or a class this side lacks
        raise WireError(f"a frame that does not decode ({type(exc).__name__}: {exc})") from None


def _read_exactly(stream: IO[bytes], size: int, *, at_start: bool) -> bytes:
    chunks, missing = [], size
    while missing:
        chunk = stream.read(missing)
        if not chunk:
            if at_start and missing == size:
                raise EOFError("the other side closed the connection")
            raise WireError(f"the connection broke in the middle of a frame ({size - missing} of {size} bytes)")
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


def failure_of(exc: BaseException, traceback: str) -> Failure:
    try:
        pickled: bytes | None = pickle.dumps(exc)
        pickle.loads(pickled)  # an exception whose __init__ takes other arguments does not come back
    except Exception:
        pickled = None
    return Failure(type(exc).__name__, str(exc), traceback, pickled)
