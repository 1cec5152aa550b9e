"""Confirming a budget failure with a second call of the test, made in a forked child.  No pytest in here.

Work that a process does once (a regular expression compiled on first use, a lazy import, a cache filled, a shared
dict growing past a resize) is paid by whichever test gets there first, so the same test's first call is over its
budget in one order, or one xdist worker, and within it in another.  A test whose first call exceeds its budget is
therefore called once more, right away, and judged on that call: the one-time work has been paid by then, while a
real regression, made again on every call, is still there.  Only failing tests pay for the second call.

The second call runs in a forked child of the process, so that nothing it does reaches the rest of the session:
a test called twice with the same fixture values may mutate them, append to a module's state, or fail; none of that
can then change a later test or this test's own outcome.  If the child's call raises, or the platform cannot fork,
the first call's verdict stands.  When the second call is over the budget too and the run explains failures by
running the test again, the explanation's run follows in the same child.

A second call that is over the budget too is followed by a third, in another child forked from the same state.
Deterministic code started twice from one state (the same heap, the same addresses) allocates the same, and a
regression is made again on both calls; a test whose numbers vary by themselves (unseeded randomness, the clock,
threads) can land within its budget on one of them.  The verdict (verdict.unstable) then names the test as
unstable instead of failing it.  Only tests over their budget twice pay for the third call.

A third call over the budget too is followed, where the session keeps a process from its start (zygote.py), by a
call from that state: what earlier tests left behind is not there, a regression still is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Callable

from .calling import Rerun, measure_again
from .explain import Explanation, explain, trace
from .forked import ForkFailed, available, run_forked
from .measure import Measurement, Region

__all__ = ["Confirmation", "confirm", "explain_elsewhere"]


@dataclass(frozen=True)
class Confirmation:
    """What the second call found: its measurement (``None`` when there is none, and ``reason`` says why) and, when
    asked for and the test still fails, the explanation of the failure."""

    measurement: Measurement | None
    explanation: Explanation | None = None
    reason: str | None = None
    third: Measurement | None = None  # the third call's, made when the second was over the budget too
    start: Mapping[str, int] | None = None  # a call's from the session's start, made when the third was over too


def confirm(
    rerun: Rerun,
    region: Callable[[], Region],
    fails: Callable[[Mapping[str, int]], bool],
    explaining: bool,
    second_call: bool = True,
    timeout: float = 120.0,
    first: Mapping[str, int] | None = None,
    from_start: Callable[[], Mapping[str, int] | None] | None = None,
) -> Confirmation:
    """Call the test again in a child, measured by a fresh ``region()``; explain it there too if ``explaining``
    and the second call also ``fails``.  Without ``second_call`` (``--alloc-first-call-only``), only explain.
    ``first``: what the first call measured, which sets the explanation's sampling rates when there is no second
    call.  ``from_start``: a call from the session's start, made when the third call fails too (``None``: there is
    no such call to make).  Never raises for what the test does."""
    if not second_call or rerun.impossible is not None or not available():
        why = rerun.impossible or ("this platform cannot fork a process" if second_call else "--alloc-first-call-only")
        explanation = None
        if explaining:
            # Without a fork, explain() still runs the test again in this process where that is safe.
            explanation = (
                Explanation(error=why)
                if rerun.impossible
                else explain(rerun.call, coroutine=rerun.coroutine, values=first)
            )
        return Confirmation(None, explanation, why)

    def in_child() -> Confirmation:
        again = measure_again(rerun, region())
        if isinstance(again, str):
            explanation = trace(rerun.call, rerun.coroutine, first) if explaining else None
            return Confirmation(None, explanation, f"the second call could not be measured: {again}")
        if explaining and fails(again.values):
            return Confirmation(again, trace(rerun.call, rerun.coroutine, again.values))
        return Confirmation(again)

    def third_call() -> Measurement | None:
        again = measure_again(rerun, region())
        return None if isinstance(again, str) else again

    try:
        second = run_forked(in_child, timeout)
    except ForkFailed as failure:
        why = f"the second call {failure}"
        return Confirmation(None, Explanation(error=why) if explaining else None, why)
    if second.measurement is None or not fails(second.measurement.values):
        return second
    try:
        third = run_forked(third_call, timeout)
    except ForkFailed:
        third = None  # the second call's verdict stands
    start = None
    if third is not None and from_start is not None and fails(third.values):
        start = from_start()
    return replace(second, third=third, start=start)


def explain_elsewhere(rerun: Rerun, values: Mapping[str, int], timeout: float = 120.0) -> Explanation:
    """The lines behind numbers measured elsewhere (a call from the session's start): the test called once more in
    a forked child of this process, under the explanation's probes, sampled at the rates ``values`` call for.  The
    child's call runs the same code as the call that was judged; only the state it starts from differs."""
    if rerun.impossible is not None:
        return Explanation(error=rerun.impossible)
    if not available():
        return Explanation(error="this platform cannot fork a process")
    try:
        return run_forked(lambda: trace(rerun.call, rerun.coroutine, values), timeout)
    except ForkFailed as failure:
        return Explanation(error=f"the explanation's call {failure}")
