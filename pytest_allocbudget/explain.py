"""Finding the source lines behind a peak, by running the code again.  No pytest in here.

tracemalloc keeps only live blocks, so once a region has ended the allocations that made its peak are gone: a
snapshot at the end shows what was retained, not what peaked.  To explain a peak the code runs once more under
tracemalloc with a profile hook; at every function return (Python or C), when traced memory has grown past the
last snapshot by a margin, a new snapshot replaces it.  Returns are where a peak is visible: a function's locals
and a builtin's result are still alive there.  The margin grows geometrically, so a run takes a few dozen
snapshots at most, and the last one is taken within that margin of the peak.

This costs a second call of the test function, so it runs only for a test that already failed its peak budget.
"""

from __future__ import annotations

import gc
import sys
import tracemalloc
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


def explain_peak(call: Callable[[], object]) -> PeakExplanation:
    """Run ``call`` once under tracemalloc and a profile hook; report the lines that held memory near its peak.

    An exception from ``call`` is caught and reported in ``error``: the explanation is a courtesy, and the
    test's own result is already known.
    """
    if tracemalloc.is_tracing():
        return PeakExplanation((), 0, 0, "tracemalloc was already tracing, so the peak was not re-run")
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
