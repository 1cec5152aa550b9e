"""Finding the source lines behind a peak, by running the code again.  No pytest in here.

tracemalloc keeps only live blocks, so once a region has ended the allocations that made its peak are gone: a
snapshot at the end shows what was retained, not what peaked.  To explain a peak the code runs once more under
tracemalloc with a profile hook; at every function return (Python or C), when traced memory has grown past the
last snapshot by a margin, a new snapshot replaces it.  Returns are where a peak is visible: a function's locals
and a builtin's result are still alive there.  The margin grows geometrically, so a run takes a few dozen
snapshots at most, and the last one is taken within that margin of the peak.

This costs a second call of the test function, so it runs only for a test that already failed its peak budget, and
it runs in a forked child where it can, so that nothing the second call changes reaches the rest of the session.
"""

from __future__ import annotations

import gc
import os
import pickle
import select
import signal
import sys
import time
import tracemalloc
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any, Callable

from .measure import _OWN_FILES, TOP_LINES, LineStat

__all__ = ["PeakExplanation", "explain_peak"]

#: A new snapshot is taken when traced memory exceeds the last one by this fraction, plus ``_MARGIN_BYTES``.
_MARGIN_FRACTION = 0.05
_MARGIN_BYTES = 1024


@dataclass(frozen=True)
class PeakExplanation:
    """The lines holding memory when traced memory was highest during a second run, or why there are none."""

    lines: Sequence[LineStat]
    captured: int  # traced bytes at the snapshot
    peak: int  # the second run's peak, for comparison with the measured one
    error: str | None = None


class _PeakTracker:
    def __init__(self) -> None:
        self.snapshot: tracemalloc.Snapshot | None = None
        self.captured = 0
        self.held = 0  # traced bytes taken by the snapshot we hold, subtracted from the readings

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event != "return" and event != "c_return":
            return
        current = tracemalloc.get_traced_memory()[0] - self.held
        if current <= self.captured * (1 + _MARGIN_FRACTION) + _MARGIN_BYTES:
            return
        self.snapshot = None
        before = tracemalloc.get_traced_memory()[0]
        snapshot = tracemalloc.take_snapshot()  # traces are copied before the Snapshot objects are built
        self.snapshot = snapshot
        self.held = tracemalloc.get_traced_memory()[0] - before
        self.captured = current


def explain_peak(call: Callable[[], object], timeout: float = 120.0) -> PeakExplanation:
    """Run ``call`` once more under tracemalloc and a profile hook; report the lines that held memory near its peak.

    Where the platform can fork, the second run happens in a forked child process that sends back only the lines:
    installing a profile hook has lasting effects on the interpreter (from Python 3.12 on, every function first
    called after the hook was removed allocates a little to re-instrument its code), and those would otherwise
    show up in the numbers of later tests, as would anything the test caches.  An exception from ``call`` is
    reported in ``error``: the explanation is a courtesy, and the test's result is already known.
    """
    if tracemalloc.is_tracing():
        return PeakExplanation((), 0, 0, "tracemalloc was already tracing, so the test was not re-run")
    if hasattr(os, "fork"):
        return _in_child(call, timeout)
    if sys.version_info < (3, 12):
        return _trace_peak(call)
    return PeakExplanation((), 0, 0, "re-running a test to explain its peak needs os.fork on Python 3.12 and later")


def _in_child(call: Callable[[], object], timeout: float) -> PeakExplanation:
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # "This process is multi-threaded, use of fork() may lead to deadlocks in the child": the child runs only
        # the test function and exits; a deadlock there is bounded by the timeout below.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child; coverage does not follow it
        status = 1
        try:
            os.close(read_end)
            payload = pickle.dumps(_trace_peak(call))
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
                return PeakExplanation((), 0, 0, f"the second run took longer than {timeout:g} s and was stopped")
            chunk = os.read(read_end, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    if not chunks:
        return PeakExplanation((), 0, 0, "the second run ended without an answer")
    result = pickle.loads(b"".join(chunks))  # our own child's data
    assert isinstance(result, PeakExplanation)
    return result


def _trace_peak(call: Callable[[], object]) -> PeakExplanation:
    tracker = _PeakTracker()
    previous = sys.getprofile()
    gc.collect()
    error = None
    tracemalloc.start(1)
    try:
        sys.setprofile(tracker)
        try:
            call()
        finally:
            sys.setprofile(previous)
        peak = tracemalloc.get_traced_memory()[1]
    except Exception as exc:
        error = f"the test raised on its second call ({type(exc).__name__}: {exc})"
        peak = 0
    finally:
        snapshot = tracker.snapshot
        tracemalloc.stop()
    if snapshot is None:
        return PeakExplanation((), 0, peak, error)
    filtered = snapshot.filter_traces([tracemalloc.Filter(False, name) for name in _OWN_FILES])
    stats = filtered.statistics("lineno")[:TOP_LINES]
    lines = tuple(LineStat(s.traceback[0].filename, s.traceback[0].lineno, s.size, s.count) for s in stats)
    return PeakExplanation(lines, tracker.captured, peak, error)
