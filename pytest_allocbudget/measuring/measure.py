"""Measuring a region of code, repeatably.  No pytest in here: this is the part that must be boringly exact.

The recipe (see docs/measuring.md for the figures behind it):

1. Raise the thread switch interval so other threads rarely run inside the region, then run a full collection,
   which also empties the type free lists; an object taken from a free list costs no allocation, so without this
   the same code measures differently depending on what ran before.
2. Disable the cyclic collector during the region so that a collection cannot land inside it at a random point.
3. Start the probes (the allocation counter, or tracemalloc) as the very last thing before the region.
4. After the region run a second full collection, so that cyclic garbage and refilled free lists do not count as
   retained, then read the probes as the first thing that keeps an object alive: none of the plugin's own work
   is counted, and a region that allocates nothing measures zero.

A probe is anything with ``start``/``finish``/``explain``/``stop``; new metrics arrive as new probes without the
store, the verdict or the report changing.
"""

from __future__ import annotations

import gc
import os
import sys
import tracemalloc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Callable, Protocol

__all__ = [
    "SWITCH_INTERVAL",
    "LineStat",
    "Measurement",
    "Probe",
    "Region",
    "TracemallocProbe",
    "interference",
]

#: Seconds between forced thread switches inside a region.  High enough that a region of a few milliseconds is
#: almost never interrupted by another Python thread; threads that block (I/O, locks, ``join``) still switch at once.
SWITCH_INTERVAL = 0.1

#: How many source lines a failure report lists.
TOP_LINES = 10

#: Allocation sites left out of explanations: the plugin's own judging code and tracemalloc's.
_OWN_FILES = (tracemalloc.__file__, os.path.join(os.path.dirname(os.path.abspath(__file__)), "*"))


@dataclass(frozen=True)
class LineStat:
    """Memory still held by the blocks one source line allocated, as tracemalloc saw it."""

    filename: str
    lineno: int
    size: int
    count: int


@dataclass(frozen=True)
class Measurement:
    """What one region measured: metric name -> value, and, when asked for, the lines behind it."""

    values: Mapping[str, int]
    top_lines: Sequence[LineStat] = field(default_factory=tuple)


#: Called with the values once they are read, while the probes still run; True asks for ``top_lines``.
Explain = Callable[[Mapping[str, int]], bool]


class Probe(Protocol):
    """One source of metrics.  Calls come in the order start, finish, (explain), stop."""

    def start(self) -> None:
        """Begin counting; the last thing that happens before the region."""

    def pause(self) -> None:
        """Stop counting new allocations (frees still count): the region has ended, the closing collection and
        the reads must not be counted.  Called on every probe, the last one started first."""

    def finish(self) -> dict[str, int]:
        """Read the values, after the closing collection; the first thing that happens after the region."""

    def explain(self) -> Sequence[LineStat]:
        """The source lines behind the region's allocations, if this probe can tell."""

    def stop(self) -> None:
        """Stop counting and release what ``start`` took; called in reverse order, also for a probe whose
        ``start`` failed or never ran (a probe before it failed), so it must check what it holds."""


class TracemallocProbe:
    """``peak`` and ``retained`` from the standard library's tracemalloc.

    Normally tracemalloc is started here, with one frame (the cheapest setting), as the very last step before the
    region, so the region starts from zero traced bytes and nothing needs subtracting; one read of
    ``get_traced_memory()`` after the closing collection gives both numbers, and the objects that read creates are
    allocated after it.  An empty region therefore measures 0 and 0.  If tracemalloc is already tracing (started
    by the user or another tool) it is left alone and only the difference is taken.
    """

    def __init__(self, report: bool = True) -> None:
        self._owned = False
        self._base = 0
        self._report = report  # False: run only to explain a failure, the numbers come from another probe

    def start(self) -> None:
        if tracemalloc.is_tracing():
            self._owned = False
            tracemalloc.reset_peak()
            # Read twice: the second read already counts the int the first one made, and replaces it with an
            # int of the same size, so the region does not start with a block of our own in its numbers.
            self._base = tracemalloc.get_traced_memory()[0]
            self._base = tracemalloc.get_traced_memory()[0]
        else:
            self._owned = True
            tracemalloc.start(1)

    def pause(self) -> None:
        pass  # tracemalloc cannot pause; the read comes right after the closing collection instead

    def finish(self) -> dict[str, int]:
        current, peak = tracemalloc.get_traced_memory()
        if not self._report:
            return {}
        return {"peak": max(0, peak - self._base), "retained": max(0, current - self._base)}

    def explain(self) -> Sequence[LineStat]:
        gc.collect()  # the objects the verdict made to decide on an explanation are garbage by now
        snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, name) for name in _OWN_FILES])
        stats = snapshot.statistics("lineno")[:TOP_LINES]
        return tuple(
            LineStat(stat.traceback[0].filename, stat.traceback[0].lineno, stat.size, stat.count) for stat in stats
        )

    def stop(self) -> None:
        if self._owned:
            tracemalloc.stop()
            self._owned = False


def default_probes() -> list[Probe]:
    """The probes of a Region made without any: tracemalloc alone (the plugin always passes its own choice)."""
    return [TracemallocProbe()]


def interference() -> str | None:
    """What, if anything, is tracing or profiling this thread: coverage tools, debuggers and profilers install
    such hooks, and while one is active the interpreter takes slower paths that allocate differently (on
    Python 3.11, a traced ``str(i)`` costs one allocation more), so numbers taken with and without it differ."""
    if sys.gettrace() is not None:
        return f"a trace function ({_describe(sys.gettrace())})"
    if sys.getprofile() is not None:
        return f"a profile function ({_describe(sys.getprofile())})"
    monitoring = getattr(sys, "monitoring", None)
    if monitoring is not None:
        for tool in range(6):  # the tool ids sys.monitoring gives out
            name = monitoring.get_tool(tool)
            if name is not None and monitoring.get_events(tool):
                return f"the sys.monitoring tool {name!r}"
    return None


def _describe(hook: object) -> str:
    module = getattr(hook, "__module__", None) or type(hook).__module__
    return f"{module}.{getattr(hook, '__qualname__', type(hook).__qualname__)}"


class Region:
    """A context manager that measures its body with the recipe above; single use.

    ``measurement`` is set when the body completes normally.  When the body raises, nothing is measured: the
    numbers of an interrupted region describe an accident, not the code.
    """

    def __init__(
        self,
        probes: Sequence[Probe] | None = None,
        explain: Explain | None = None,
    ) -> None:
        self._probes = list(probes) if probes is not None else default_probes()
        self._explain = explain
        self._gc_was_enabled = True
        self._switch_interval = 0.0
        self._started: list[Probe] = []
        self._entered = False  # entering again would replace the first block's numbers with the second's
        self.measurement: Measurement | None = None

    def __enter__(self) -> Region:
        if self._entered:
            raise RuntimeError("a Region measures once; make a new one")
        self._entered = True
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(max(SWITCH_INTERVAL, self._switch_interval))
        gc.collect()
        self._gc_was_enabled = gc.isenabled()
        gc.disable()
        # Every list operation happens before the first probe starts; the last probe's start() is the last call.
        self._started.extend(self._probes)
        try:
            for probe in self._probes:
                probe.start()
        except BaseException:
            self._teardown()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                # Pause (no iterator: an index loop over cached small ints allocates nothing), collect, then read:
                # the read is the first thing that keeps an object alive.  While paused, the collection's own
                # bookkeeping is not counted, and neither is what a finalizer it runs allocates (the counter; the
                # tracemalloc probe cannot pause); frees during it still count.
                index = len(self._started)
                while index:
                    index -= 1
                    self._started[index].pause()
                gc.collect()
                self.measurement = self._read()
        finally:
            self._teardown()

    def _read(self) -> Measurement:
        # The last probe started is read first, before anything here allocates (no iterator, no dict yet).
        values = self._started[-1].finish()
        for probe in self._started[-2::-1]:
            values.update(probe.finish())
        lines: Sequence[LineStat] = ()
        if self._explain is not None and self._explain(values):
            lines = tuple(line for probe in self._started for line in probe.explain())
        return Measurement(values, lines)

    def _teardown(self) -> None:
        while self._started:
            self._started.pop().stop()
        if self._gc_was_enabled:
            gc.enable()
        sys.setswitchinterval(self._switch_interval)
