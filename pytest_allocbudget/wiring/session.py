"""Per-run state: the budgets read at the start, the verdicts of the tests, the updates buffered for the end.

One object owns all of it, so there is a single reader of the budget file (at session start) and a single writer
(at session end, in update mode only).  A check run never writes, and never takes the writers' lock.

The budgets read at the start are what the tests are judged against; the write at the end does not start from
them but from the file as it is then, read again under the writers' lock, since another update run may have written
it meanwhile: only this run's own changes (what it measured, the stale entries it found) are applied to that.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..budgets import store
from ..budgets.merge import Change, MergeResult, merge
from ..budgets.store import BudgetFile, EntryKey, Values
from ..judging.metrics import FROM_START_ALLOCATIONS
from ..judging.report import failure_text, missing_text, unmeasurable_text
from ..judging.tolerance import Tolerance
from ..judging.verdict import MetricStatus, Status, Verdict, judge, unstable
from ..measuring.explain import Explanation
from ..measuring.measure import Explain, Measurement
from .settings import DEFAULT_LOCK_TIMEOUT, MarkerPlan
from .transport import WorkerResults

__all__ = ["BudgetSession", "Recorded"]


@dataclass(frozen=True)
class Recorded:
    """One finished region of one test, waiting for the test's outcome."""

    key: EntryKey
    measurement: Measurement
    plan: MarkerPlan
    explanation: Explanation | None = None
    first_call: Mapping[str, int] | None = None  # when ``measurement`` is a second call's (see confirm.py)
    third_call: Mapping[str, int] | None = None  # when the second call was over its budget too
    start_call: Mapping[str, int] | None = None  # when the third was too: a call from the session's start
    from_start: bool = False  # ``measurement`` is a call's from the session's start (--alloc-from-start)


@dataclass
class BudgetSession:
    path: Path
    update: bool
    profile: str
    tolerances: Mapping[str, Tolerance]
    rootdir: Path | None = None
    budgets: BudgetFile = field(default_factory=BudgetFile)
    results: dict[EntryKey, Verdict] = field(default_factory=dict)  # one verdict per entry, in judging order
    pending: dict[EntryKey, Values] = field(default_factory=dict)
    pending_tolerances: dict[EntryKey, Mapping[str, Tolerance]] = field(default_factory=dict)
    merged: MergeResult | None = None
    written: bool = False
    strict: bool = False
    unmeasurable: str | None = None  # why recorded count metrics cannot be measured in this run, if they cannot
    passed_keys: dict[str, set[str | None]] = field(default_factory=dict)  # what each passing test measured
    pruned: list[EntryKey] = field(default_factory=list)
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT  # seconds to wait for another run writing the file
    judged: dict[str, list[EntryKey]] = field(default_factory=dict)  # the entries judged for each test
    hash_seed: int | None = None  # the seed this run hashes with (None: random), written with what it records
    #: Whether a test judged from the session's start gets the tight default tolerance of ``allocations``: when the
    #: run's tolerance is the default one (not given on the command line or in the ini file).
    tight_from_start: bool = True
    # The last verdict with what it was judged from: a measured call is judged when it ends (does it fail, so that a
    # second call must confirm it?) and again with the test's outcome, on the same numbers.
    _last_judged: tuple[EntryKey, dict[str, int], MarkerPlan, BudgetFile, Verdict] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @property
    def verdicts(self) -> list[Verdict]:
        return list(self.results.values())

    def forget(self, nodeid: str) -> None:
        """A test starts again (the next attempt of a rerun plugin): what its earlier attempt left is dropped, so
        that a test has one result, its last attempt's, as pytest reports it."""
        for key in self.judged.pop(nodeid, ()):
            self.results.pop(key, None)
            self.pending.pop(key, None)
            self.pending_tolerances.pop(key, None)
        self.passed_keys.pop(nodeid, None)

    def load(self) -> None:
        """Read the budget file once; raises :class:`store.BudgetFileError` naming the file and line."""
        self.budgets = store.load(self.path)

    @property
    def profile_recorded(self) -> bool:
        return bool(self.budgets.profile(self.profile))

    def tolerances_for(self, plan: MarkerPlan) -> dict[str, Tolerance]:
        if plan.from_start and self.tight_from_start:
            return {**self.tolerances, "allocations": FROM_START_ALLOCATIONS, **plan.tolerances}
        return {**self.tolerances, **plan.tolerances}

    def judge(self, key: EntryKey, values: Mapping[str, int], plan: MarkerPlan) -> Verdict:
        # The profile and the run's tolerances are fixed for the session; the budgets change only by load(), which
        # puts another object in place.
        numbers = dict(values)
        last = self._last_judged
        if last is not None and last[0] == key and last[2] is plan and last[3] is self.budgets and last[1] == numbers:
            return last[4]
        verdict = judge(
            key,
            self.profile,
            numbers,
            self.budgets.get(self.profile, key),
            plan.limits,
            self.tolerances_for(plan),
            self.profile_recorded,
        )
        self._last_judged = (key, numbers, plan, self.budgets, verdict)
        return verdict

    def explainer(self, key: EntryKey, plan: MarkerPlan) -> Explain:
        """Asks for source lines only when the region is about to fail, so passing tests pay nothing for them."""

        def explain(values: Mapping[str, int]) -> bool:
            return self.fails(key, values, plan)

        return explain

    def fails(self, key: EntryKey, values: Mapping[str, int], plan: MarkerPlan) -> bool:
        """Whether these values will fail the test (in update mode only a limit fails it)."""
        for result in self.judge(key, values, plan).failures:
            if result.status is MetricStatus.OVER_LIMIT or not self.update:
                return True
        return False

    def conclude(self, recorded: Sequence[Recorded], test_passed: bool) -> list[str]:
        """Judge a finished test's regions; return failure texts (empty when the budgets hold).

        Only a test that passed is judged or recorded: the numbers of a failing test describe the failure.
        """
        if not test_passed:
            return []
        problems: list[str] = []
        for item in recorded:
            verdict = self.judge(item.key, item.measurement.values, item.plan)
            if item.from_start:
                verdict = replace(verdict, from_start=True)
            if item.first_call is not None:
                verdict = replace(verdict, first_call=item.first_call)
            if item.third_call is not None:
                verdict = replace(verdict, third_call=item.third_call)
                if not self.update and unstable(verdict, self.judge(item.key, item.third_call, item.plan)):
                    verdict = replace(verdict, status=Status.UNSTABLE)  # named in the summary; it does not fail
            if item.start_call is not None and verdict.status is Status.FAILED and not self.update:
                from_start = self.judge(item.key, item.start_call, item.plan)
                if from_start.status is Status.PASSED:
                    # Over only after the tests before it: judged on the call from the session's start.
                    verdict = replace(from_start, first_call=verdict.first_call, start_call=item.start_call)
                else:  # over from the start too: it fails on its own calls, and the report shows this one
                    verdict = replace(verdict, start_call=item.start_call)
            self.results[item.key] = verdict
            self.judged.setdefault(item.key[0], []).append(item.key)
            self.passed_keys.setdefault(item.key[0], set()).add(item.key[1])
            over_limit = any(r.status is MetricStatus.OVER_LIMIT for r in verdict.metrics)
            if over_limit or (verdict.status is Status.FAILED and not self.update):
                lines = item.measurement.top_lines
                problems.append(failure_text(verdict, lines, item.explanation, self.rootdir, self.update))
            elif verdict.status is Status.MISSING and not self.update:
                problems.append(missing_text(item.key, self.profile, self.path))
            elif verdict.status is Status.UNRECORDED and self.strict and not self.update:
                problems.append(missing_text(item.key, self.profile, self.path, strict=True))
                self.results[item.key] = replace(verdict, status=Status.MISSING)  # strict: a failure, not a warning
            elif self.strict and not self.update and self.unmeasurable is not None:
                recorded_metrics = self.budgets.get(self.profile, item.key) or {}
                missing = [metric for metric in recorded_metrics if metric not in item.measurement.values]
                if missing:
                    problems.append(unmeasurable_text(item.key, missing, self.unmeasurable))
                    self.results[item.key] = replace(verdict, status=Status.FAILED)
        if self.update and not problems:
            for item in recorded:
                self.pending[item.key] = dict(item.measurement.values)
                self.pending_tolerances[item.key] = self.tolerances_for(item.plan)
        return problems

    def absorb(self, results: WorkerResults) -> None:
        """Take in what a pytest-xdist worker measured and judged; the controller then writes for everyone."""
        self.results.update((verdict.key, verdict) for verdict in results.verdicts)
        self.pending.update(results.pending)
        self.pending_tolerances.update(results.pending_tolerances)
        for nodeid, keys in results.passed_regions.items():
            self.passed_keys.setdefault(nodeid, set()).update(None if key == "" else key for key in keys)

    def worker_results(self) -> WorkerResults:
        return WorkerResults(
            verdicts=list(self.verdicts),
            pending=dict(self.pending),
            pending_tolerances=dict(self.pending_tolerances),
            passed_regions={nodeid: sorted(k or "" for k in keys) for nodeid, keys in self.passed_keys.items()},
        )

    def finish(self, prune: Sequence[EntryKey] = (), on_wait: Callable[[], None] | None = None) -> None:
        """Update mode: apply this run's measurements and the removal of ``prune`` to the budget file as it is now,
        and write it once, if that changes anything.

        Raises :class:`store.BudgetFileError` when the file cannot be locked, read again or written; ``on_wait`` is
        called once if another run holds the writers' lock (see :func:`store.update`).
        """
        if not self.update:
            return
        self.merged = MergeResult(self.budgets)  # no changes, until the file as it is now says otherwise
        if not any(self.pending.values()) and not prune:
            return  # nothing to change: the file is neither locked nor read again

        def change(current: BudgetFile) -> BudgetFile | None:
            self.merged = merge(current, self.profile, self.pending, self.pending_tolerances, prune, self.hash_seed)
            return self.merged.budgets if self.merged.modified else None

        self.written = store.update(self.path, change, self.lock_timeout, on_wait)
        self.pruned = list(self.merged.pruned)

    def change_counts(self) -> dict[Change, int]:
        if self.merged is None:
            return {}
        return {change: self.merged.count(change) for change in Change}

    def count(self, status: Status) -> int:
        return sum(1 for verdict in self.verdicts if verdict.status is status)
