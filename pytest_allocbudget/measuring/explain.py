"""Finding the source lines behind a failing budget, by running the test function again.  No pytest in here.

The measured call is kept cheap: only the allocation counter runs in it, and the counter knows totals, not lines.
When a test fails its budget, its function is called once more under tracemalloc, the counter and a trace hook:

* at every traced event (a line, a call, a return) the allocation calls and bytes counted since the previous event
  are charged to the line that was running, which gives the lines behind ``allocations`` and ``allocated``;
* whenever traced memory has grown past the last snapshot by a margin, a tracemalloc snapshot replaces it, so the
  last one shows what was alive near the ``peak``; the margin grows geometrically, so a run takes a few dozen
  snapshots at most;
* after the call and a full collection, one more snapshot shows what the run ``retained``.

The hook pauses the counter while it runs, so its own work is not charged to any line.  The second run happens in
a forked child process where the platform allows it, so that nothing it changes (caches, module state, and from
Python 3.12 on the interpreter's re-instrumentation of every function after a trace hook is removed) reaches the
rest of the session.

An async test's coroutine cannot be awaited on the loop it ran on: that loop belongs to the runner, in the parent.
It is run to its end on a fresh asyncio event loop instead, once the runner's loop has stopped, and traced from its
first step to its last, like the measured window, so that the new loop's start-up is charged to no line.
"""

from __future__ import annotations

import gc
import inspect
import os
import sys
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType, ModuleType
from typing import Any, Callable

from .counter import native
from .forked import ForkFailed, run_forked
from .forked import available as forked_available
from .measure import _OWN_FILES, TOP_LINES, LineStat

__all__ = ["Explanation", "explain", "trace"]

#: A new peak snapshot is taken when traced memory exceeds the last one by this fraction, plus ``_MARGIN_BYTES``.
_MARGIN_FRACTION = 0.05
_MARGIN_BYTES = 1024
_OWN_DIRECTORY = os.path.dirname(os.path.abspath(__file__))


@dataclass(frozen=True)
class Explanation:
    """What a second run of a test found; every list is sorted by what it measures, largest first.

    ``alloc_lines`` holds allocation calls in ``count`` and bytes requested in ``size`` per line (empty without the
    counter); ``peak_lines`` and ``end_lines`` hold live blocks near the peak and after the run.
    """

    peak_lines: Sequence[LineStat] = field(default_factory=tuple)
    end_lines: Sequence[LineStat] = field(default_factory=tuple)
    alloc_lines: Sequence[LineStat] = field(default_factory=tuple)
    captured: int = 0  # traced bytes at the last peak snapshot
    peak: int = 0  # the second run's peak, for comparison with the measured one
    error: str | None = None


class _Tracer:
    """The trace hook of the second run: charges counts to lines and keeps the snapshot nearest the peak."""

    def __init__(self, counter: ModuleType | None) -> None:
        self.counter = counter
        self.by_line: dict[tuple[str, int], list[int]] = {}
        self.where: tuple[str, int] | None = None
        self.last = (0, 0)
        self.snapshot: tracemalloc.Snapshot | None = None
        self.captured = 0
        self.held = 0  # traced bytes taken by the snapshot we hold, left out of the readings

    def __call__(self, frame: FrameType, event: str, arg: Any) -> _Tracer:
        counter = self.counter
        if counter is not None:
            counter.pause()
            allocations, allocated = counter.counts()
            if self.where is not None:
                charged = self.by_line.setdefault(self.where, [0, 0])
                charged[0] += allocations - self.last[0]
                charged[1] += allocated - self.last[1]
        self._watch_peak()
        if event == "return":
            caller = frame.f_back
            self.where = (caller.f_code.co_filename, caller.f_lineno) if caller is not None else None
        else:
            self.where = (frame.f_code.co_filename, frame.f_lineno)
        if counter is not None:
            self.last = counter.counts()
            counter.resume()
        return self

    def _watch_peak(self) -> None:
        current = tracemalloc.get_traced_memory()[0] - self.held
        if current <= self.captured * (1 + _MARGIN_FRACTION) + _MARGIN_BYTES:
            return
        self.snapshot = None
        before = tracemalloc.get_traced_memory()[0]
        snapshot = tracemalloc.take_snapshot()  # traces are copied before the Snapshot objects are built
        self.snapshot = snapshot
        self.held = tracemalloc.get_traced_memory()[0] - before
        self.captured = current

    def alloc_lines(self) -> tuple[LineStat, ...]:
        lines = [
            LineStat(filename, lineno, allocated, allocations)
            for (filename, lineno), (allocations, allocated) in self.by_line.items()
            if allocations > 0 and not filename.startswith(_OWN_DIRECTORY)
        ]
        lines.sort(key=lambda line: (-line.count, -line.size, line.filename, line.lineno))
        return tuple(lines[:TOP_LINES])


def explain(call: Callable[[], object], timeout: float = 120.0, *, coroutine: bool = False) -> Explanation:
    """Run ``call`` once more under tracemalloc, the counter (if available) and a trace hook; see the module doc.

    ``coroutine``: ``call`` returns a coroutine, which is run to its end on a fresh asyncio event loop, traced from
    its first step to its last as the measured window was, so that the loop's own start-up is not charged to any
    line.  Call this when no event loop is running in this thread.

    An exception from ``call`` is reported in ``error``: the explanation is a courtesy, and the test's result is
    already known.
    """
    if tracemalloc.is_tracing():
        return Explanation(error="tracemalloc was already tracing, so the test was not run again")
    if forked_available():
        return _in_child(call, timeout, coroutine)
    if sys.version_info < (3, 12):
        return trace(call, coroutine)
    return Explanation(error="running a test again to explain it needs os.fork on Python 3.12 and later")


def _in_child(call: Callable[[], object], timeout: float, coroutine: bool) -> Explanation:
    try:
        return run_forked(lambda: trace(call, coroutine), timeout)
    except ForkFailed as failure:
        return Explanation(error=f"the second run {failure}")


def _counter_module() -> ModuleType | None:
    counter = native()
    return None if counter is None or counter.running() else counter


def trace(call: Callable[[], object], coroutine: bool = False) -> Explanation:
    """Run ``call`` under the explanation's probes in this process (see :func:`explain`)."""
    tracing = _Tracing()
    if not coroutine:
        with tracing:
            call()
        return tracing.explanation
    import asyncio  # only for an async test, which has imported it already

    async def traced() -> None:
        with tracing:
            awaitable = call()
            assert inspect.isawaitable(awaitable)
            await awaitable

    # Not asyncio.run: that would also replace and then clear the thread's current event loop, which belongs to
    # the test's runner when there is no fork and the second run happens in this process.
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(traced())
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    return tracing.explanation


class _Tracing:
    """The second run's probes around a block: tracemalloc, the counter and the trace hook; single use.

    An Exception from the block is noted in the explanation and not raised further.
    """

    def __init__(self) -> None:
        self.counter = _counter_module()
        self.tracer = _Tracer(self.counter)
        self.previous = sys.gettrace()
        self.explanation = Explanation(error="the second run did not end")

    def __enter__(self) -> None:
        gc.collect()
        tracemalloc.start(1)
        try:
            if self.counter is not None:
                self.counter.start()  # after tracemalloc, so that it does not count tracemalloc's bookkeeping
        except BaseException:
            tracemalloc.stop()
            raise
        sys.settrace(self.tracer)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        try:
            try:
                sys.settrace(self.previous)
            finally:
                if self.counter is not None:
                    self.counter.stop()
            error = None
            if isinstance(exc, Exception):
                error = f"the test raised on its second call ({type(exc).__name__}: {exc})"
            peak = tracemalloc.get_traced_memory()[1]
            peak_snapshot = self.tracer.snapshot
            self.tracer.snapshot = None
            gc.collect()
            end_snapshot = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
        self.explanation = Explanation(
            peak_lines=_top(peak_snapshot) if peak_snapshot is not None else (),
            end_lines=_top(end_snapshot),
            alloc_lines=self.tracer.alloc_lines(),
            captured=self.tracer.captured,
            peak=peak,
            error=error,
        )
        return error is not None


def _top(snapshot: tracemalloc.Snapshot) -> tuple[LineStat, ...]:
    filtered = snapshot.filter_traces([tracemalloc.Filter(False, name) for name in _OWN_FILES])
    stats = filtered.statistics("lineno")[:TOP_LINES]
    return tuple(LineStat(s.traceback[0].filename, s.traceback[0].lineno, s.size, s.count) for s in stats)
