"""One call in a forked child process, its result sent back through a pipe.  No pytest in here.

A test function is called again in a child, to confirm a budget failure (confirm.py) or to find the lines behind it
(explain.py), so that nothing the extra call changes reaches the rest of the session: module state and caches it
fills, the fixture values it mutates, and from Python 3.12 on the interpreter's re-instrumentation of every function
after a trace hook is removed.  Files it writes are shared, as with any child process.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import time
import warnings
from typing import Callable, TypeVar

__all__ = ["ForkFailed", "available", "fork", "run_forked"]

T = TypeVar("T")


class ForkFailed(Exception):
    """The child gave no result; the message says why, as the end of a sentence about the call."""


def available() -> bool:
    """Whether this platform can fork (Windows cannot)."""
    return hasattr(os, "fork")


def fork() -> int:
    """``os.fork()``, without Python's warning for a process with threads (3.12 on), which would fail a run under
    ``-W error``: every child here runs one call of a test and exits, and a deadlock there is bounded by a timeout
    (``run_forked``'s, or the zygote's answer's)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()


def run_forked(work: Callable[[], T], timeout: float) -> T:
    """``work()`` in a forked child; its (picklable) result.  Raises :class:`ForkFailed` when the child took
    longer than ``timeout`` seconds (it is then killed) or ended without a result."""
    read_end, write_end = os.pipe()
    pid = fork()
    if pid == 0:  # pragma: no cover - the child; coverage does not follow it
        status = 1
        try:
            os.close(read_end)
            payload = pickle.dumps(work())
            with os.fdopen(write_end, "wb") as stream:
                stream.write(payload)
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([read_end], [], [], remaining)[0]:
                os.kill(pid, signal.SIGKILL)
                raise ForkFailed(f"took longer than {timeout:g} s and was stopped")
            chunk = os.read(read_end, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    if not chunks:
        raise ForkFailed("ended without an answer")
    result: T = pickle.loads(b"".join(chunks))  # our own child's data
    return result
