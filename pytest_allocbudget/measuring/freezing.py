"""Keeping the collector's full collections cheap while tests are measured: ``gc.freeze()``.  No pytest in here.

Each measured window starts and ends with a full collection (see measure.py), which walks every object the
collector tracks and has not frozen.  Freezing what exists once collection is done (modules, pytest's own objects,
the collected tests) keeps those collections short and still empties the free lists.  Each test also leaves some
objects behind for good (pytest's reports, this plugin's verdicts): with a single freeze after collection a window
would cost time in proportion to the tests already run, and a run of N budgeted tests time in proportion to N
squared (5,000 tests: 77 s instead of 3 s), so what each measured test leaves is frozen too.

Frozen objects are never collected, so garbage cycles among them would stay until the end of the run: now and then
a sweep, one full collection of everything, releases them, and what survives is frozen again.  A sweep walks the
whole heap, so sweeps are spaced by the heap's growth, as CPython spaces its own full collections: one sweep each
time the objects frozen since the last one reach SWEEP_GROWTH times what that sweep left frozen.  The objects a
freeze adds are counted as it makes them (``gc.get_objects()`` lists the collector's generations, which hold only
what was made since the previous freeze, and never the frozen ones); the heap is counted once per sweep.  The
garbage waiting for a sweep is then at most that share of the heap, and the sweeps' total cost in proportion to
the objects the run made.  Spacing them by measured tests instead (after 100, then each time the tests doubled)
cost a sweep of the whole heap every so many tests, however little the tests left: in a check run of 7,264 small
tests whose conftest had frozen the heap itself, 7 sweeps of 336,000 to 479,000 objects (the plugin's frozen
heap at each), 1.65 s in all, where spacing by growth made 1 sweep of 419,000 objects, 0.27 s.

Frozen objects are also invisible to ``gc.get_referrers()``, so everything is unfrozen as soon as the last test has
run (:meth:`Freezer.release`).  ``gc.unfreeze()`` cannot tell the plugin's objects from anyone else's, so that also
thaws a heap the project froze itself (a conftest calling ``gc.freeze()`` once collection is done, to keep its own
run's collections short).  Left thawed, the collection at interpreter exit walks all of it: 1.1 to 1.5 s of a 6.7 s
run on one suite that does this.  When the heap held more frozen objects at the plugin's first freeze than when the
plugin started, :meth:`Freezer.restore` freezes it again at the very end of the run, as the project had it.
"""

from __future__ import annotations

import gc

__all__ = ["SWEEP_GROWTH", "Freezer"]

#: When to collect the frozen objects once: whenever the objects frozen since the last sweep (or the first freeze)
#: reach this share of what was frozen after it.  Doubling (1.0) rather than CPython's own 25 % for its full
#: collections: a sweep walks every object, pytest's and the collected tests' included, and spaced by 25 % of a
#: growth (counted then in measured tests) the sweeps were most of the plugin's cost on a large suite of fast tests
#: (3,000 tests, about 14 sweeps of 76 to 288 ms each; CPU time of the check run 5.46 s at 0.25, 4.57 s at 1.0,
#: 3.73 s without the plugin, medians of 3).  The garbage a sweep finds is only what became garbage after it was
#: frozen (a window's own garbage is collected before it is): the peak RSS of that run was 81.5 MB either way.
SWEEP_GROWTH = 1.0


class Freezer:
    """Whether the heap is frozen, and when to sweep it; one per run."""

    def __init__(self) -> None:
        self.frozen = False
        # Some interpreters start with objects frozen (CPython 3.12 does), so what the project froze is what is
        # frozen beyond this when the plugin first freezes.  Counting walks the frozen objects: twice per run.
        self.frozen_at_start = gc.get_freeze_count()
        self.project_froze = False
        self.frozen_at_sweep = 0  # objects frozen right after the last sweep (or the first freeze)
        self.frozen_since = 0  # objects frozen since then, dead ones included: counted, never walked again
        self.sweeps = 0

    def freeze(self) -> None:
        """Collect, then freeze what is left: called once collection has found a budgeted test."""
        self.project_froze = gc.get_freeze_count() > self.frozen_at_start
        gc.collect()
        gc.freeze()
        self.frozen = True
        self.frozen_at_sweep = gc.get_freeze_count()

    def after_test(self) -> None:
        """Freeze what the run has made since the last freeze, sweeping first when it is time."""
        if not self.frozen:
            return
        self.frozen_since += len(gc.get_objects())  # the unfrozen generations: what this freeze is about to add
        if self.frozen_since >= self.frozen_at_sweep * SWEEP_GROWTH:
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self.frozen_at_sweep = gc.get_freeze_count()
            self.frozen_since = 0
            self.sweeps += 1
        else:
            gc.freeze()

    def release(self) -> None:
        """Unfreeze everything; nothing is frozen again in this run."""
        if self.frozen:
            gc.unfreeze()
            self.frozen = False

    def restore(self) -> None:
        """Freeze the heap again at the end of the run if the project had frozen it itself (see the module's doc)."""
        if self.project_froze and not self.frozen:
            self.project_froze = False
            gc.freeze()
