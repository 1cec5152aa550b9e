"""Finding the source lines behind a failing budget, by running the test function again.  No pytest in here.

The measured call is kept cheap: only the allocation counter runs in it, and the counter knows totals, not lines.
When a test fails its budget, its function is called once more with the counter sampling lines (_counter.c): about
one allocation call in N, and the call that brings the bytes since the last byte sample past about T, looks up the
line of the innermost Python frame and is charged the calls and bytes counted since the previous sample.  N and T
are the measured call's totals divided by ``SAMPLES``, so that a test with few allocations is sampled at every call
(exactly) and a large one costs a bounded number of samples.  The sampled blocks are remembered until freed, which
gives each line an estimate of the memory it holds:

* every line's charged calls and bytes are the lines behind ``allocations`` and ``allocated``;
* whenever the live bytes grow past the last capture by 2% plus 1 KiB, the lines' live estimates are copied, so the
  last copy shows what was alive near the ``peak``;
* after the call and a full collection, the live estimates show what the run ``retained``.

Without the counter, the function is called under tracemalloc and a trace hook instead, which takes a tracemalloc
snapshot whenever traced memory has grown past the last one by a margin (peak and retained lines only).

The second run happens in a forked child process where the platform allows it, so that nothing it changes (caches,
module state, and from Python 3.12 on the interpreter's re-instrumentation of every function after a trace hook is
removed) reaches the rest of the session.

An async test's coroutine cannot be awaited on the loop it ran on: that loop belongs to the runner, in the parent.
It is run to its end on a fresh asyncio event loop instead, once the runner's loop has stopped, and sampled from its
first step to its last, like the measured window, so that the new loop's start-up is charged to no line.
"""

from __future__ import annotations

import gc
import inspect
import os
import sys
import tracemalloc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType, ModuleType
from typing import Any, Callable

from .counter import native
from .forked import ForkFailed, run_forked
from .forked import available as forked_available
from .measure import _OWN_FILES, TOP_LINES, LineStat

__all__ = ["SAMPLES", "Explanation", "explain", "sampling_rates", "trace"]

#: About how many samples of each kind (calls, bytes) the second run takes: a sampling interval is the measured
#: total divided by this.  At a few hundred nanoseconds a sample, 20,000 cost well under 0.1 s, whatever the test.
SAMPLES = 20_000
#: The intervals used when the measured call's totals are not known (a run measured by tracemalloc alone).
_DEFAULT_CALLS = 64
_DEFAULT_BYTES = 64 * 1024

#: Without the counter, a new peak snapshot is taken when traced memory exceeds the last one by this fraction, plus
#: ``_MARGIN_BYTES``.
_MARGIN_FRACTION = 0.05
_MARGIN_BYTES = 1024
#: The plugin's own frames: a sample whose innermost frame is in here is the plugin's work, charged to no line.
_PACKAGE_DIRECTORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


@dataclass(frozen=True)
class Explanation:
    """What a second run of a test found; every list is sorted by what it measures, largest first.

    ``alloc_lines`` holds allocation calls in ``count`` and bytes requested in ``size`` per line (empty without the
    counter); ``peak_lines`` and ``end_lines`` hold live blocks near the peak and after the run.  With the counter
    the figures are sampled estimates: ``sample_calls`` and ``sample_bytes`` are the mean intervals (1 and 1: every
    call was seen), 0 when the lines come from tracemalloc.
    """

    peak_lines: Sequence[LineStat] = field(default_factory=tuple)
    end_lines: Sequence[LineStat] = field(default_factory=tuple)
    alloc_lines: Sequence[LineStat] = field(default_factory=tuple)
    captured: int = 0  # live bytes where the peak lines were taken
    peak: int = 0  # the second run's peak, for comparison with the measured one
    error: str | None = None
    sample_calls: int = 0
    sample_bytes: int = 0


def sampling_rates(values: Mapping[str, int] | None) -> tuple[int, int]:
    """The mean intervals (calls, bytes) for a test that measured ``values``: about ``SAMPLES`` of each, or every
    call."""
    values = values or {}
    calls = max(1, values["allocations"] // SAMPLES) if "allocations" in values else _DEFAULT_CALLS
    size = max(1, values["allocated"] // SAMPLES) if "allocated" in values else _DEFAULT_BYTES
    # When every call is a sample anyway, charging each its own bytes costs nothing more, and makes them exact.
    return calls, 1 if calls == 1 else size


class _Tracer:
    """Without the counter: the trace hook of the second run, which keeps the tracemalloc snapshot nearest the
    peak."""

    def __init__(self) -> None:
        self.snapshot: tracemalloc.Snapshot | None = None
        self.captured = 0
        self.held = 0  # traced bytes taken by the snapshot we hold, left out of the readings

    def __call__(self, frame: FrameType, event: str, arg: Any) -> _Tracer:
        current = tracemalloc.get_traced_memory()[0] - self.held
        if current > self.captured * (1 + _MARGIN_FRACTION) + _MARGIN_BYTES:
            self.snapshot = None
            before = tracemalloc.get_traced_memory()[0]
            snapshot = tracemalloc.take_snapshot()  # traces are copied before the Snapshot objects are built
            self.snapshot = snapshot
            self.held = tracemalloc.get_traced_memory()[0] - before
            self.captured = current
        return self


def explain(
    call: Callable[[], object],
    timeout: float = 120.0,
    *,
    coroutine: bool = False,
    values: Mapping[str, int] | None = None,
) -> Explanation:
    """Run ``call`` once more with the counter sampling lines (or, without the counter, under tracemalloc and a
    trace hook); see the module doc.  ``values``: what the failing call measured, which sets the sampling rates.

    ``coroutine``: ``call`` returns a coroutine, which is run to its end on a fresh asyncio event loop, sampled from
    its first step to its last as the measured window was, so that the loop's own start-up is not charged to any
    line.  Call this when no event loop is running in this thread.

    An exception from ``call`` is reported in ``error``: the explanation is a courtesy, and the test's result is
    already known.
    """
    if tracemalloc.is_tracing():
        return Explanation(error="tracemalloc was already tracing, so the test was not run again")
    if forked_available():
        return _in_child(call, timeout, coroutine, values)
    if sys.version_info < (3, 12):
        return trace(call, coroutine, values)
    return Explanation(error="running a test again to explain it needs os.fork on Python 3.12 and later")


def _in_child(
    call: Callable[[], object], timeout: float, coroutine: bool, values: Mapping[str, int] | None
) -> Explanation:
    try:
        return run_forked(lambda: trace(call, coroutine, values), timeout)
    except ForkFailed as failure:
        return Explanation(error=f"the second run {failure}")


def _counter_module() -> ModuleType | None:
    counter = native()
    return None if counter is None or counter.running() else counter


def trace(call: Callable[[], object], coroutine: bool = False, values: Mapping[str, int] | None = None) -> Explanation:
    """Run ``call`` under the explanation's probes in this process (see :func:`explain`)."""
    counter = _counter_module()
    tracing: _Sampling | _Tracing = _Tracing() if counter is None else _Sampling(counter, sampling_rates(values))
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


def _error(exc: BaseException | None) -> str | None:
    if isinstance(exc, Exception):
        return f"the test raised on its second call ({type(exc).__name__}: {exc})"
    return None


class _Sampling:
    """The second run's probe around a block: the counter, sampling lines; single use.

    The cyclic collector is off during the block, as in the measured window, so that garbage piles up to the same
    peak.  An Exception from the block is noted in the explanation and not raised further.
    """

    def __init__(self, counter: ModuleType, rates: tuple[int, int]) -> None:
        self.counter = counter
        self.rates = rates
        self.gc_was_enabled = True
        self.explanation = Explanation(error="the second run did not end")

    def __enter__(self) -> None:
        gc.collect()
        self.gc_was_enabled = gc.isenabled()
        gc.disable()
        calls, size = self.rates
        try:
            self.counter.start(sample_calls=calls, sample_bytes=size, own_prefix=_PACKAGE_DIRECTORY)
        except BaseException:
            self._enable_gc()
            raise

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        try:
            self.counter.pause()
            gc.collect()  # what the run left as garbage is not retained; the frees still reach the lines
            peak = self.counter.stop()[3]
        finally:
            self._enable_gc()
        captured, sampled, _ = self.counter.samples()
        error = _error(exc)
        self.explanation = Explanation(
            peak_lines=_sampled_top(sampled, "peak"),
            end_lines=_sampled_top(sampled, "end"),
            alloc_lines=_sampled_top(sampled, "charged"),
            captured=captured,
            peak=peak,
            error=error,
            sample_calls=self.rates[0],
            sample_bytes=self.rates[1],
        )
        return error is not None

    def _enable_gc(self) -> None:
        if self.gc_was_enabled:
            gc.enable()


_Sampled = Sequence[tuple[str, int, int, int, int, int, int, int]]


def _sampled_top(sampled: _Sampled, kind: str) -> tuple[LineStat, ...]:
    """The ``TOP_LINES`` lines with the most of one ``kind`` of the counter's figures: ``charged`` (by allocation
    calls, then bytes), ``peak`` or ``end`` (by live bytes, then blocks).  A line's code objects are added up: a
    comprehension's line is in its own code object and in its function's."""
    by_line: dict[tuple[str, int], list[int]] = {}
    for filename, lineno, calls, size, peak_calls, peak_size, end_calls, end_size in sampled:
        count, held = {"charged": (calls, size), "peak": (peak_calls, peak_size), "end": (end_calls, end_size)}[kind]
        total = by_line.setdefault((filename, lineno), [0, 0])
        total[0] += count
        total[1] += held
    lines = [LineStat(name, lineno, size, count) for (name, lineno), (count, size) in by_line.items() if count or size]
    if kind == "charged":
        lines.sort(key=lambda line: (-line.count, -line.size, line.filename, line.lineno))
    else:
        lines.sort(key=lambda line: (-line.size, -line.count, line.filename, line.lineno))
    return tuple(lines[:TOP_LINES])


class _Tracing:
    """Without the counter: the second run's probes around a block, tracemalloc and the trace hook; single use.

    An Exception from the block is noted in the explanation and not raised further.
    """

    def __init__(self) -> None:
        self.tracer = _Tracer()
        self.previous = sys.gettrace()
        self.explanation = Explanation(error="the second run did not end")

    def __enter__(self) -> None:
        gc.collect()
        tracemalloc.start(1)
        sys.settrace(self.tracer)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        try:
            sys.settrace(self.previous)
            error = _error(exc)
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
            captured=self.tracer.captured,
            peak=peak,
            error=error,
        )
        return error is not None


def _top(snapshot: tracemalloc.Snapshot) -> tuple[LineStat, ...]:
    filtered = snapshot.filter_traces([tracemalloc.Filter(False, name) for name in _OWN_FILES])
    stats = filtered.statistics("lineno")[:TOP_LINES]
    return tuple(LineStat(s.traceback[0].filename, s.traceback[0].lineno, s.size, s.count) for s in stats)
