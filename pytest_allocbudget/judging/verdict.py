"""The verdict: measurement + budget + tolerance -> result.  Pure functions, no I/O, no pytest.

Kept apart from the wiring so that the rules can be unit- and property-tested on their own and read in one place:

* an explicit limit (a marker argument) is a hard ceiling: no tolerance, and it applies with or without a budget;
* a recorded budget passes while the measurement is within ``max(percent, absolute)`` above it;
* a measurement below its budget by more than the tolerance passes and is reported as a budget to tighten;
* a budgeted test with no entry fails, unless its whole profile is unrecorded (a new Python version), which only
  warns: budgets are per profile, and a new profile is something to record, not a regression;
* a test over its budget on one call and within it on another made from the same state is unstable: its own
  numbers vary (unseeded randomness, the clock, threads), so no budget can hold it; it warns, and is named.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from ..budgets.store import EntryKey
from .metrics import METRICS
from .tolerance import Tolerance

__all__ = ["MetricResult", "MetricStatus", "Status", "Verdict", "judge", "unstable"]


class MetricStatus(enum.Enum):
    OK = "ok"
    IMPROVED = "improved"  # below budget by more than the tolerance
    REGRESSED = "regressed"  # above budget plus tolerance
    OVER_LIMIT = "over-limit"  # above an explicit limit
    UNBUDGETED = "unbudgeted"  # no recorded value and no limit


class Status(enum.Enum):
    PASSED = "passed"
    FAILED = "failed"  # a regression or a limit exceeded
    MISSING = "missing"  # no entry, where the profile has entries: fails a check run
    UNRECORDED = "unrecorded"  # no entry, and the profile has none at all: warns only
    UNSTABLE = "unstable"  # over its budget on one call, within it on another from the same state: warns only


@dataclass(frozen=True)
class MetricResult:
    """One metric of one region, judged."""

    metric: str
    measured: int
    budget: int | None
    limit: int | None
    tolerance: Tolerance
    status: MetricStatus

    @property
    def change(self) -> int | None:
        """Measured minus budget, in the metric's unit."""
        return None if self.budget is None else self.measured - self.budget

    @property
    def change_percent(self) -> float | None:
        """The change relative to the budget; ``None`` without a budget or with a zero budget."""
        if self.budget is None or self.budget == 0:
            return None
        return (self.measured - self.budget) * 100.0 / self.budget

    @property
    def unit(self) -> str:
        return METRICS[self.metric].unit


@dataclass(frozen=True)
class Verdict:
    """All metrics of one region (or whole test) against its entry."""

    key: EntryKey
    profile: str
    status: Status
    metrics: tuple[MetricResult, ...]
    #: The first call's numbers, when its budget failure was confirmed by a second call (confirm.py) whose
    #: numbers are the ones judged here; ``None`` when the test was judged on its first call.
    first_call: Mapping[str, int] | None = None
    #: The third call's numbers, when the second was over its budget too and a third, from the same state, was
    #: made to tell a regression from a test whose numbers vary by themselves (confirm.py).
    third_call: Mapping[str, int] | None = None
    #: The numbers of a call from the session's start (zygote.py), when the third call was over the budget too
    #: and this one, judged here, was within it.
    start_call: Mapping[str, int] | None = None
    #: Whether the numbers judged here are a call's from the session's start, made for every call of the test
    #: (``--alloc-from-start``), rather than its own call's in the session.
    from_start: bool = False

    @property
    def failures(self) -> tuple[MetricResult, ...]:
        return tuple(
            result for result in self.metrics if result.status in (MetricStatus.REGRESSED, MetricStatus.OVER_LIMIT)
        )

    @property
    def improvements(self) -> tuple[MetricResult, ...]:
        return tuple(result for result in self.metrics if result.status is MetricStatus.IMPROVED)


def judge(
    key: EntryKey,
    profile: str,
    measured: Mapping[str, int],
    budget: Mapping[str, int] | None,
    limits: Mapping[str, int],
    tolerances: Mapping[str, Tolerance],
    profile_recorded: bool,
) -> Verdict:
    """Compare one measurement with its recorded entry (``budget``) and its explicit ``limits``."""
    results = []
    for metric in METRICS:
        if metric not in measured:
            continue
        value = measured[metric]
        recorded = None if budget is None else budget.get(metric)
        limit = limits.get(metric)
        tolerance = tolerances.get(metric, METRICS[metric].default_tolerance)
        if limit is not None and value > limit:
            status = MetricStatus.OVER_LIMIT
        elif recorded is None:
            status = MetricStatus.OK if limit is not None else MetricStatus.UNBUDGETED
        elif not tolerance.within(recorded, value):
            status = MetricStatus.REGRESSED
        elif tolerance.moved(recorded, value):
            status = MetricStatus.IMPROVED
        else:
            status = MetricStatus.OK
        results.append(MetricResult(metric, value, recorded, limit, tolerance, status))
    failed = any(r.status in (MetricStatus.REGRESSED, MetricStatus.OVER_LIMIT) for r in results)
    if failed:
        overall = Status.FAILED
    elif budget is None:
        overall = Status.MISSING if profile_recorded else Status.UNRECORDED
    else:
        overall = Status.PASSED
    return Verdict(key, profile, overall, tuple(results))


def unstable(second: Verdict, third: Verdict) -> bool:
    """Whether a test that failed its budget on ``second`` is unstable rather than regressed, given ``third``: a
    call made from the same state as ``second`` (both in children forked from one process).

    Deterministic code started twice from one state allocates the same; a regression is made again on every call,
    so it is over the budget on both.  So the test is unstable when every metric that ``second`` has over its budget
    is within it on ``third``.  A limit is a ceiling the test must never pass: a call over a limit always fails.
    """
    if second.status is not Status.FAILED:
        return False
    again = {result.metric: result.status for result in third.metrics}
    return all(
        result.status is MetricStatus.REGRESSED and again.get(result.metric) in (MetricStatus.OK, MetricStatus.IMPROVED)
        for result in second.failures
    )
