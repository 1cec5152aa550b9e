"""The wiring: options, the marker, the fixture and the hooks.  No measuring or judging happens here.

All per-run state lives in one :class:`AllocBudgetPlugin` object registered with the plugin manager, so every hook
is a method with one owner for its state; per-test data lives in ``item.stash``.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import unittest
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..measuring import hashseed
from ..measuring.freezing import Freezer
from .ci import detect_ci
from .options import ISOLATED_CHILD_OPTION, pytest_addoption
from .settings import (
    MARKER,
    MARKER_HELP,
    MarkerPlan,
    RunSettings,
    SettingsError,
    parse_marker,
    profile_name,
    resolve_plan,
    resolve_run_settings,
)

# Only what every run needs is imported up front.  The measuring, judging, storing and reporting modules are
# imported when the first budgeted test or region is collected, so a suite with no budgeted test does not pay for
# importing them (or PyYAML) at start-up.
if TYPE_CHECKING:
    from ..budgets.store import EntryKey
    from ..measuring.calling import Rerun
    from ..measuring.measure import Region
    from ..measuring.zygote import Zygote
    from .isolate import ChildOutcome
    from .regions import AllocBudget
    from .session import BudgetSession, Recorded

__all__ = ["AllocBudgetPlugin", "PytestAllocBudgetWarning", "pytest_addoption"]

PLUGIN_NAME = "allocbudget-session"


_plan_key = pytest.StashKey["MarkerPlan | SettingsError"]()
_recorded_key = pytest.StashKey["list[Recorded]"]()
_judged_key = pytest.StashKey[bool]()
_swapped_key = pytest.StashKey["_Swapped"]()


class PytestAllocBudgetWarning(pytest.PytestWarning):
    """A warning from pytest-allocbudget."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    config.pluginmanager.register(AllocBudgetPlugin(config), PLUGIN_NAME)


@pytest.hookimpl(tryfirst=True)  # before any other plugin's main: nothing has run or been written yet
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """Start pytest again under the hash seed the budgets need, when it was started with another (hashseed.py).

    On POSIX the process becomes the new one; elsewhere the new one's exit status is this run's.
    """
    if os.environ.get(hashseed.RESTARTED_FROM) is not None:
        return None  # restarted once already; an xdist worker was not started as a command, and is never restarted
    if config.getoption(ISOLATED_CHILD_OPTION) or any(
        config.getoption(name, None) for name in ("help", "version", "collectonly")
    ):
        return None
    try:
        settings = _run_settings(config, detect_ci())
    except pytest.UsageError:
        return None  # pytest_configure reports it
    want, seed = _wanted_seed(settings), hashseed.process_seed()
    if want is None or seed == want:
        return None
    command = hashseed.restart_command(config.invocation_params.args)
    return None if command is None else hashseed.restart(command, want, seed)


def _run_settings(config: pytest.Config, ci: str | None) -> RunSettings:
    try:
        return resolve_run_settings(
            config.getoption, config.getini, config.inipath, config.rootpath, config.invocation_params.dir, ci
        )
    except SettingsError as error:
        raise pytest.UsageError(str(error)) from None


def _seed_matters(settings: RunSettings) -> bool:
    """Whether this run's numbers are held against recorded ones or recorded: not without a budget file, unless it
    records or budgets every test."""
    return settings.update or settings.budget_all or settings.path.exists()


def _wanted_seed(settings: RunSettings) -> int | None:
    """The hash seed this run's numbers need; ``None`` when it keeps its own, or when the seed does not matter."""
    if not _seed_matters(settings):
        return None
    from ..budgets.store import peek_hash_seed

    return hashseed.wanted(settings.hash_seed, peek_hash_seed(settings.path))


@pytest.fixture
def alloc_budget(request: pytest.FixtureRequest) -> AllocBudget:
    """Measure named regions of a test, each held to its own budget: ``with alloc_budget.measure("x") as m:``."""
    from .regions import AllocBudget

    plugin: AllocBudgetPlugin = request.config.pluginmanager.getplugin(PLUGIN_NAME)
    item = request.node
    whole_test = isinstance(item.stash.get(_plan_key, None), MarkerPlan)
    recorded = item.stash.setdefault(_recorded_key, [])

    def sink(entry: Recorded) -> None:
        if item.stash.get(_judged_key, False):
            raise RuntimeError(
                f"{item.nodeid}: region {entry.key[1]!r} ended after the test's call was judged (in a fixture's "
                "teardown?); measure regions in the test function or in fixture setup"
            )
        recorded.append(entry)

    return AllocBudget(item.nodeid, plugin.region, sink, whole_test)


class AllocBudgetPlugin:
    """Owns the run's :class:`BudgetSession` and translates pytest's hooks into its calls."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.ci = detect_ci()
        settings = _run_settings(config, self.ci)
        # The fresh process of an isolated test (see isolate.py): it measures one test and writes only its results.
        child_path = config.getoption(ISOLATED_CHILD_OPTION)
        self.child_path = Path(child_path) if child_path else None
        self.child_outcomes: dict[str, ChildOutcome] = {}
        if (
            settings.update
            and self.ci is not None
            and not config.getoption("--alloc-update-in-ci")
            and self.child_path is None
        ):
            raise pytest.UsageError(
                f"--alloc-update is refused in CI ({self.ci} is set in the environment): budgets are recorded on "
                "a developer's machine and reviewed in the diff. Pass --alloc-update-in-ci to record here anyway."
            )
        if config.getoption("--alloc-prune") and not settings.update:
            raise pytest.UsageError("--alloc-prune removes stale entries while recording: use it with --alloc-update")
        self.is_worker = hasattr(config, "workerinput")
        self.settings = settings
        self.hash_seed = hashseed.process_seed()
        self.seed_matters = not self.is_worker and _seed_matters(settings)
        self.wanted_seed = _wanted_seed(settings) if self.seed_matters else None
        self._session: BudgetSession | None = None
        if settings.engine == "counter" and self.counter_missing is not None:
            raise pytest.UsageError(f"--alloc-engine=counter: {self.counter_missing}")
        self.write_error: str | None = None
        self.interference: str | None = None  # a tracer or profiler seen active when a test was measured
        self.measured_any = False
        self.freezer = Freezer()
        self.zygote: Zygote[dict[str, int] | str] | None = None  # the session kept from its start (zygote.py)
        self.ahead: Zygote[dict[str, int] | str] | None = None  # another, making --alloc-from-start's calls ahead
        self.items: dict[str, pytest.Item] = {}
        self.loaded = False
        # What a full run needs to know to find stale entries (see stale.py).
        self.budgeted: set[str] = set()
        self.files: set[str] = set()
        self.collected = 0
        self.finished = 0
        self.selection_complete = not any("::" in arg for arg in config.args)
        self.workers_lost = False
        self.stale: list[EntryKey] | None = None  # None: not a full run, so nothing can be called stale
        self.annotations: dict[str, str] = {}  # node id -> GitHub annotation of its budget failure
        self.notes: list[str] = []  # lines for the summary
        #: --alloc-from-start: why no call from the session's start could be made, with the tests it kept from one
        self.from_start_missed: dict[str, list[str]] = {}
        self.report_errors: list[str] = []  # the JSON report or the step summary could not be written
        if self.wanted_seed is not None and self.hash_seed != self.wanted_seed:
            # Numbers may differ from the recorded ones: the summary says so as well as the header.
            self.notes.append(str(hashseed.header(self.hash_seed, self.wanted_seed)))

    @functools.cached_property
    def counter_missing(self) -> str | None:
        """Why the counter cannot be used, said once in the summary; a run that asked for tracemalloc has nothing
        to miss."""
        if self.settings.engine == "tracemalloc":
            return None
        from ..measuring.counter import unavailable_reason

        return unavailable_reason()

    @property
    def use_counter(self) -> bool:
        return self.settings.engine != "tracemalloc" and self.counter_missing is None

    @property
    def session(self) -> BudgetSession:
        """The run's budgets and verdicts, created when first needed: a run that measures nothing never needs it."""
        if self._session is None:
            from .session import BudgetSession

            self._session = BudgetSession(
                path=self.settings.path,
                update=self.settings.update,
                profile=profile_name(),
                tolerances=self.settings.tolerances,
                rootdir=self.config.rootpath,
                strict=self.settings.strict,
                lock_timeout=self.settings.lock_timeout,
                hash_seed=self.hash_seed,
                tight_from_start=not self.settings.tolerance_given,
                unmeasurable=self.counter_missing
                or (None if self.use_counter else "this run measures with tracemalloc (--alloc-engine=tracemalloc)"),
            )
        return self._session

    # ----------------------------------------------------------------------------------------- session

    def pytest_report_header(self) -> str | None:
        said = hashseed.header(self.hash_seed, self.wanted_seed) if self.seed_matters else None
        return None if said is None else f"allocbudget: {said}"

    @pytest.hookimpl(trylast=True)  # after -k, -m and --deselect have removed what will not run
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        self.collected = len(items)
        for item in items:
            self.files.add(item.nodeid.split("::", 1)[0])
            marks = [(mark.args, mark.kwargs) for mark in reversed(list(item.iter_markers(MARKER)))]
            cls = getattr(item, "cls", None)
            plain_function = isinstance(item, pytest.Function) and not (
                cls is not None and issubclass(cls, unittest.TestCase)
            )
            uses_regions = _uses_regions(item)
            if not marks and self.settings.budget_all and plain_function and not uses_regions:
                # --alloc-all: as if marked; an explicit alloc_budget(False) still opts out, and a test that
                # measures its own regions keeps them (the two cannot nest).
                marks = [((), {})]
            if uses_regions:
                self.budgeted.add(item.nodeid)
            if not marks:
                continue
            try:
                plan = parse_marker(marks, item.nodeid)
            except SettingsError as error:
                item.stash[_plan_key] = error
                continue
            if plan is None:
                continue
            if not plain_function:
                item.warn(
                    PytestAllocBudgetWarning(
                        f"{item.nodeid}: @pytest.mark.{MARKER} cannot measure this test: unittest.TestCase tests "
                        "(and other non-function items) are run by their own framework, outside the hook that "
                        "measures test functions. Write it as a plain pytest test function to budget it."
                    )
                )
                continue
            item.stash[_plan_key] = resolve_plan(plan, self.settings)
            self.budgeted.add(item.nodeid)

    def pytest_deselected(self, items: Sequence[pytest.Item]) -> None:
        if items:
            self.selection_complete = False

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.passed and report.nodeid and "::" not in report.nodeid:
            self.files.add(report.nodeid)  # a test file, even one that no longer holds any test

    def pytest_runtest_logfinish(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        self.finished += 1

    @pytest.hookimpl(trylast=True)  # after the project's own: a conftest may freeze the heap there (freezing.py)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        budgeted = [item for item in session.items if _plan_key in item.stash or _uses_regions(item)]
        if not budgeted:
            return  # nothing to measure: the budget file is not even read
        self.load()
        self.freezer.freeze()  # keeps the full collections of every window cheap (freezing.py)
        _warm_up(self)
        from_start = any(getattr(item.stash.get(_plan_key, None), "from_start", False) for item in budgeted)
        if (from_start or not self.settings.first_call_only) and self.child_path is None:
            from ..measuring.zygote import start

            self.items = {item.nodeid: item for item in budgeted}
            self.zygote = start(self.call_from_start, timeout=120.0)  # before any test has run (zygote.py)
            if from_start and not self.is_worker:
                self.plan_from_start(budgeted)

    def plan_from_start(self, budgeted: Sequence[pytest.Item]) -> None:
        """--alloc-from-start: a second process kept from the start makes every test's call from the start, in the
        order the session will run them, while the session runs them; each test then takes its answer instead of
        waiting for a call made only once it has run.  On two cores that hides most of the calls' time.  Not in a
        pytest-xdist worker, which learns its tests one batch at a time: there each test asks when it ends."""
        from ..measuring.zygote import start

        keys = []
        for item in budgeted:
            plan = item.stash.get(_plan_key, None)
            if isinstance(plan, MarkerPlan) and plan.from_start and not self.isolates(plan):
                keys.append(item.nodeid)
        if keys:
            self.ahead = start(self.call_from_start, timeout=120.0)
            if self.ahead is not None:
                self.ahead.plan(keys)

    def call_from_start(self, nodeid: str) -> dict[str, int] | str:
        """In a child of the zygote: set the test up, call it once to pay what a first call pays, then measure a
        call; its numbers, or why there are none.  Nothing of this reaches the session: the child ends after it."""
        from ..measuring.calling import Rerun, measure_again

        item = self.items.get(nodeid)
        plan = None if item is None else item.stash.get(_plan_key, None)
        if not isinstance(item, pytest.Function) or not isinstance(plan, MarkerPlan):
            return "it is not a test measured as a whole"
        if inspect.iscoroutinefunction(item.obj):
            return "it is async, and its event loop belongs to its runner"
        from ..measuring.searches import fix_search

        fix_search(item.obj, nodeid)  # the same search as its other calls: this process was forked before setup
        try:
            item.session._setupstate.setup(item)  # its fixtures, from the session's start: what pytest's setup does
            names = item._fixtureinfo.argnames
            rerun = Rerun(item.obj, (), {name: item.funcargs[name] for name in names})
            rerun.call()  # what a first call pays (imports, caches), as the measured calls before it paid
        except Exception as error:
            return f"it could not be set up and called: {type(error).__name__}: {error}"
        key = (nodeid, None)
        measured = measure_again(rerun, self.region(key, plan))
        return measured if isinstance(measured, str) else dict(measured.values)

    def load(self) -> None:
        if self.loaded:
            return
        from ..budgets.store import BudgetFileError

        try:
            self.session.load()
        except BudgetFileError as error:
            raise pytest.UsageError(f"{error}\nFix the file by hand or restore it from version control.") from None
        self.loaded = True

    @pytest.hookimpl(wrapper=True, trylast=True)  # the innermost wrapper: it unfreezes before any other finishes
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        # Frozen objects are invisible to gc.get_referrers and never collected: nothing after the last test (other
        # plugins' end-of-session hooks, a library's checks) may see the heap that way.
        try:
            return (yield)
        finally:
            self.freezer.release()
            self.close_zygotes()

    @pytest.hookimpl(trylast=True)  # the last of the run's hooks: nothing after it looks at the heap
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.freezer.release()  # a run that stopped before its test loop ended (an internal error in collection)
        self.close_zygotes()
        self.freezer.restore()  # a heap the project froze itself goes back to frozen, which keeps the exit short

    def close_zygotes(self) -> None:
        for zygote in (self.zygote, self.ahead):
            if zygote is not None:
                zygote.close()

    # ----------------------------------------------------------------------------------------- one test

    def note_interference(self) -> None:
        """Called right before a window opens, when any wrapper around the test has started its tools."""
        if self.interference is None:
            from ..measuring.measure import interference

            self.interference = interference()

    def region(self, key: EntryKey, plan: MarkerPlan) -> Region:
        """A region measured by this run's engine: the counter alone, or with tracemalloc beside it (trace mode),
        or tracemalloc alone where the counter is missing or not wanted."""
        from ..measuring.counter import CounterProbe
        from ..measuring.measure import Probe, Region, TracemallocProbe

        probes: list[Probe] = []
        if self.use_counter:
            if self.settings.explain == "trace":
                probes.append(TracemallocProbe(report=False))  # started first: the counter must sit on top
            probes.append(CounterProbe(all_threads=self.settings.all_threads))
        else:
            probes.append(TracemallocProbe())
        explain_at_end = self.settings.explain != "off" and isinstance(probes[0], TracemallocProbe)
        return Region(probes, explain=self.session.explainer(key, plan) if explain_at_end else None)

    @pytest.hookimpl(tryfirst=True)  # before any fixture is set up: a region may be measured in fixture setup
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        # A rerun plugin runs the same item again; each attempt starts clean and replaces the one before it.
        item.stash[_recorded_key] = []
        item.stash[_judged_key] = False
        if item.user_properties:
            item.user_properties[:] = [p for p in item.user_properties if not str(p[0]).startswith("alloc_budget")]
        self.annotations.pop(item.nodeid, None)
        if self._session is not None:
            self._session.forget(item.nodeid)
        plan = item.stash.get(_plan_key, None)
        if isinstance(plan, SettingsError):
            pytest.fail(str(plan), pytrace=False)
        if plan is not None and isinstance(item, pytest.Function):
            from ..measuring.searches import fix_search

            fix_search(item.obj, item.nodeid)  # a @given test searches the same examples in every run

    def pytest_runtest_teardown(self, item: pytest.Item) -> None:
        searches = sys.modules.get("pytest_allocbudget.measuring.searches")
        if searches is not None:
            searches.release_constants()  # the next test, if not budgeted, searches as Hypothesis has it search

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        # A coroutine test function is swapped here, before the item runs, rather than in pytest_pyfunc_call: its
        # runner may replace the function by then with a plain one that runs the coroutine on its event loop
        # (pytest-asyncio does, in item.runtest()), and measuring that would take in the loop's work.  Swapped
        # first, the runner runs the measuring coroutine function instead; pytest_pyfunc_call concludes.
        plan = _whole_test_plan(item)
        if (
            plan is None
            or self.isolates(plan)
            or not isinstance(item, pytest.Function)
            or not inspect.iscoroutinefunction(item.obj)
        ):
            return (yield)
        swapped = self.swap(item, plan)
        item.stash[_swapped_key] = swapped
        try:
            return (yield)
        finally:
            item.obj = swapped.function
            del item.stash[_swapped_key]

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> Generator[None, Any, Any]:
        # The test function itself is swapped for one that measures only its call.  Swapping first (the
        # outermost wrapper) matters: a plugin that swaps it too (a memory profiler starting its tracker, a
        # retry plugin) then wraps our measuring function, so its own work stays outside the window, as does
        # pytest's calling code (argument dict, async and return checks).
        plan = _whole_test_plan(pyfuncitem)
        if (plan is not None or _uses_regions(pyfuncitem)) and self.isolates(plan):
            return (yield from self.call_isolated(pyfuncitem))
        if plan is None:
            return (yield)
        swapped = pyfuncitem.stash.get(_swapped_key, None)  # a coroutine function, swapped in pytest_runtest_call
        swapped_here = swapped is None
        if swapped is None:
            swapped = self.swap(pyfuncitem, plan)
        try:
            result = yield
        finally:
            if swapped_here:
                pyfuncitem.obj = swapped.function
        # The explanation's second run happens here, after the call has returned: an async test's event loop has
        # stopped by now, so a forked child can start a fresh one.
        self.conclude(pyfuncitem, swapped)
        return result

    def swap(self, item: pytest.Function, plan: MarkerPlan) -> _Swapped:
        """Put a measuring wrapper (calling.py) in place of the test function; the caller puts it back."""
        from ..measuring.calling import measured_call

        key = (item.nodeid, None)
        swapped = _Swapped(item.obj, key, plan, self.region(key, plan))
        item.obj = measured_call(
            swapped.function, swapped.region, bool(plan.warmup), swapped.reruns.append, self.note_interference
        )
        return swapped

    def conclude(self, item: pytest.Function, swapped: _Swapped) -> None:
        """Keep what the measured call measured.  If it fails its budget, a second call confirms or clears the
        failure (confirm.py), and explains it where asked to."""
        from .session import Recorded

        measurement = swapped.region.measurement
        if measurement is None:
            return
        key, plan = swapped.key, swapped.plan
        if plan.from_start:
            from_start = self.judged_from_start(item, swapped)
            if from_start is not None:
                item.stash.setdefault(_recorded_key, []).append(from_start)
                return
        explanation = first_call = third_call = start_call = None
        if swapped.reruns and self.session.fails(key, measurement.values, plan):
            from ..measuring.confirm import confirm

            zygote = self.zygote
            confirmation = confirm(
                swapped.reruns[0],
                lambda: self.region(key, plan),
                lambda values: self.session.fails(key, values, plan),
                explaining=self.settings.explain == "rerun",
                second_call=not self.settings.first_call_only,
                first=measurement.values,
                from_start=None if zygote is None else lambda: _numbers(zygote.ask(item.nodeid, timeout=120.0)),
            )
            explanation, start_call = confirmation.explanation, confirmation.start
            if confirmation.measurement is not None:
                first_call, measurement = measurement.values, confirmation.measurement
            if confirmation.third is not None:
                third_call = confirmation.third.values
        recorded = Recorded(key, measurement, plan, explanation, first_call, third_call, start_call)
        item.stash.setdefault(_recorded_key, []).append(recorded)

    def judged_from_start(self, item: pytest.Function, swapped: _Swapped) -> Recorded | None:
        """``--alloc-from-start``: the test's numbers from a call from the session's start, made by the zygote in a
        child of its own; ``None`` when none could be made (the summary says why), and the test is then judged on
        its call here, as without the option."""
        from .session import Recorded

        taken = None if self.ahead is None else self.ahead.take(item.nodeid, timeout=120.0)
        if taken is not None:
            answer: dict[str, int] | str = taken
        elif self.zygote is None:
            answer = "this platform cannot fork a process" if self.child_path is None else "it runs in a fresh process"
        else:
            answer = self.zygote.ask(item.nodeid, timeout=120.0)
        if not isinstance(answer, dict):
            self.from_start_missed.setdefault(str(answer), []).append(item.nodeid)
            return None
        from ..measuring.measure import Measurement

        key, plan = swapped.key, swapped.plan
        explanation = again = None
        if self.session.fails(key, answer, plan):
            # Over: one more call from the start, as a third call is made from one state (confirm.py).  Within the
            # budget there, the test's own numbers vary (threads, the clock), and it is named unstable.
            if self.zygote is not None:
                repeated = self.zygote.ask(item.nodeid, timeout=120.0)
                again = repeated if isinstance(repeated, dict) else None
            if self.settings.explain == "rerun" and swapped.reruns:
                from ..measuring.confirm import explain_elsewhere

                explanation = explain_elsewhere(swapped.reruns[0], answer)
        return Recorded(key, Measurement(answer), plan, explanation, third_call=again, from_start=True)

    def isolates(self, plan: MarkerPlan | None) -> bool:
        """Whether a budgeted test runs in a fresh process: as its resolved plan says, or for a test measured by
        regions, as the run says; never inside the fresh process itself."""
        if self.child_path is not None:
            return False
        return self.settings.isolate if plan is None else bool(plan.isolate)

    def call_isolated(self, item: pytest.Function) -> Generator[None, Any, Any]:
        """Replace the test's call with a run of the test alone in a fresh process; take back its measurements."""
        from .isolate import IsolationError, run_isolated

        def in_fresh_process(*args: Any, **kwargs: Any) -> None:
            del args, kwargs  # the fixtures set up here are not used: the fresh process sets up its own
            try:
                outcome = run_isolated(self.config, item.nodeid, self.settings.path)
            except IsolationError as error:
                pytest.fail(str(error), pytrace=False)
            item.stash.setdefault(_recorded_key, []).extend(outcome.recorded)
            outcome.replay()

        function = item.obj
        item.obj = in_fresh_process
        try:
            return (yield)
        finally:
            item.obj = function

    def note_child_outcome(self, item: pytest.Item, report: pytest.TestReport, raised: bool) -> None:
        """In the fresh process: how the test ended, before its budgets are judged, and what it measured."""
        from .isolate import ChildOutcome

        outcome = self.child_outcomes.setdefault(item.nodeid, ChildOutcome())
        if report.when == "call":
            recorded: list[Recorded] | None = item.stash.get(_recorded_key, None)
            outcome.recorded = list(recorded or ())
        outcome.take(report, raised)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        # The outermost wrapper (tryfirst), so it sees the report after xfail handling has adjusted it.
        report = yield
        if self.child_path is not None:
            self.note_child_outcome(item, report, raised=call.excinfo is not None)
        if report.when != "call":
            return report
        item.stash[_judged_key] = True  # regions measured from now on (in teardown) could not be judged
        recorded = item.stash.get(_recorded_key, [])
        if not recorded:
            return report
        self.measured_any = True
        passed = report.passed and not hasattr(report, "wasxfail")
        problems = self.session.conclude(recorded, passed)
        self.freezer.after_test()
        for entry in recorded:  # the numbers, for --junitxml and other consumers of user properties
            prefix = "alloc_budget" if entry.key[1] is None else f"alloc_budget[{entry.key[1]}]"
            for metric, value in entry.measurement.values.items():
                # On the item too: --junitxml writes the properties of the item's last report (teardown).
                item.user_properties.append((f"{prefix}.{metric}", value))
                report.user_properties.append((f"{prefix}.{metric}", value))
        if problems:
            report.outcome = "failed"
            report.longrepr = "\n\n".join(problems)
            if self.ci == "GITHUB_ACTIONS" or os.environ.get("GITHUB_ACTIONS") == "true":
                from ..judging.github import github_annotation

                path, line, _ = item.location
                message = "\n".join(problems[0].splitlines()[:3])
                line = _def_line(item) or (line or 0) + 1
                self.annotations[item.nodeid] = github_annotation(path, line, "allocation budget", message)
        return report

    # ----------------------------------------------------------------------------------------- the end

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """pytest-xdist controller: take in a worker's results.  A worker that crashed sends none, and then no
        entry can be called stale in this run."""
        payload = getattr(node, "workeroutput", {}).get("allocbudget")
        if error is not None or payload is None:
            self.workers_lost = True
            return
        from .transport import WorkerResults

        results = WorkerResults.decode(payload)
        self.load()
        self.session.absorb(results)
        self.measured_any = self.measured_any or bool(results.verdicts)
        self.budgeted.update(results.budgeted)
        self.files.update(results.files)
        self.collected = max(self.collected, results.collected)  # the controller collects nothing itself
        # finished tests are counted by this process's own pytest_runtest_logfinish, which xdist replays here
        self.selection_complete = self.selection_complete and results.selection_complete
        self.interference = self.interference or results.interference
        # A worker's tests ran there, reruns included: its annotations are final, keyed here by their own text.
        self.annotations.update((text, text) for text in results.problems)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.child_path is not None:
            from .isolate import write_outcomes

            write_outcomes(self.child_path, self.child_outcomes)
            return
        if self.is_worker:
            from .transport import WorkerResults

            # A worker that measured nothing never created its session: it sends empty results.
            results = self._session.worker_results() if self._session is not None else WorkerResults()
            results.budgeted = sorted(self.budgeted)
            results.files = sorted(self.files)
            results.finished, results.collected = self.finished, self.collected
            results.selection_complete = self.selection_complete
            results.interference = self.interference
            results.problems = list(self.annotations.values())
            self.config.workeroutput["allocbudget"] = results.encode()  # type: ignore[attr-defined]
            return
        if not self.loaded and not self.measured_any:
            if self.settings.json_path is not None:
                self.write_reports()  # an empty report: a report left from an earlier run must not pass for this one
            return
        self.load()
        full_run = (
            self.selection_complete
            and not self.workers_lost
            and self.collected > 0
            and self.finished >= self.collected
            and exitstatus not in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR)
            and not session.shouldfail
            and not session.shouldstop
        )
        if full_run:
            from ..budgets.stale import stale_entries

            rootdir = self.config.rootpath
            self.stale = stale_entries(
                self.session.budgets,
                self.session.profile,
                self.budgeted,
                self.files,
                self.session.passed_keys,
                lambda file: (rootdir / file).exists(),
            )
        from ..budgets.store import BudgetFileError

        prune = self.stale if self.config.getoption("--alloc-prune") and self.stale else []
        try:
            self.session.finish(prune, on_wait=self.waiting_for_lock)
        except BudgetFileError as error:
            self.write_error = str(error)
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
        if self.settings.strict and self.stale and not self.session.update:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if self.config.getoption("--alloc-prune") and self.stale is None:
            self.notes.append(
                "--alloc-prune: not a full run (tests deselected or named, not all finished, or a worker lost), "
                "so nothing was pruned"
            )
        self.write_reports()
        if self.report_errors:
            session.exitstatus = pytest.ExitCode.USAGE_ERROR

    def waiting_for_lock(self) -> None:
        """Another run is writing the budget file: said at once (the run would seem to hang) and in the summary."""
        from ..budgets.filelock import lock_path
        from .reports import show

        path = show(self.settings.path, self.config.rootpath)
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"allocation budgets: waiting up to {self.settings.lock_timeout:g} s for another run writing {path} "
                f"(it holds {lock_path(self.settings.path)})",
                yellow=True,
            )
            reporter.flush()
        self.notes.append(f"waited for another run writing {path}; this run's changes were merged into what it wrote")

    def write_reports(self) -> None:
        """The JSON report and the GitHub step summary, when asked for (reports.py)."""
        from .reports import write_reports

        self.report_errors += write_reports(
            self.session,
            self.settings,
            stale=self.stale,
            measured_any=self.measured_any,
            engine="counter" if self.use_counter else "tracemalloc",
            unmeasurable=self.counter_missing,
        )

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        quiet = not (self.measured_any or self.settings.update or self.write_error or self.stale or self.report_errors)
        if self.is_worker or quiet or self.child_path is not None:
            return
        from .reports import summary_lines

        terminalreporter.write_sep("-", "allocation budgets")
        for why, nodeids in self.from_start_missed.items():
            named = ", ".join(nodeids[:3]) + (f" and {len(nodeids) - 3} more" if len(nodeids) > 3 else "")
            self.notes.append(f"{len(nodeids)} judged on their own call, not from the session's start ({why}): {named}")
        self.from_start_missed.clear()
        lines = summary_lines(
            self.session,
            self.settings,
            write_error=self.write_error,
            counter_missing=self.counter_missing,
            interference=self.interference,
            stale=self.stale,
            ci=self.ci,
            notes=self.notes,
            errors=self.report_errors,
        )
        for text, color in lines:
            terminalreporter.write_line(text, **({color: True} if color else {}))
        for annotation in self.annotations.values():  # GitHub turns these lines into errors on the test's file and line
            terminalreporter.write_line(annotation)


def _warm_up(plugin: AllocBudgetPlugin) -> None:
    """Run each measuring code path once, unrecorded, before the first test.

    On Python 3.9 and 3.10 a function's first call allocates a frame that its code object keeps for later calls;
    without this, the first measured test or region of a run would retain those frames as its own.
    """

    from ..measuring.calling import measured_call
    from .regions import AllocBudget

    def ignore(*args: Any, **kwargs: Any) -> None:
        del args, kwargs

    key = ("<warm-up>", None)
    measured_call(ignore, plugin.region(key, MarkerPlan()), False, ignore)()
    measured_call(ignore, plugin.region(key, MarkerPlan()), False, ignore)(1, x=2)
    with AllocBudget("<warm-up>", plugin.region, ignore, False).measure("warm-up"):
        pass


@dataclass
class _Swapped:
    """A test function swapped for its measuring wrapper, and what the wrapper has measured so far."""

    function: Any
    key: EntryKey
    plan: MarkerPlan
    region: Region
    reruns: list[Rerun] = field(default_factory=list)  # the measured call, to make again: a second call, an explanation


def _numbers(answer: object) -> dict[str, int] | None:
    """A call's numbers, from what the zygote answered: ``None`` for the reason there are none."""
    return answer if isinstance(answer, dict) else None


def _whole_test_plan(item: pytest.Item) -> MarkerPlan | None:
    """How the test is measured as a whole, when it is (by the marker or --alloc-all)."""
    plan = item.stash.get(_plan_key, None)
    return plan if isinstance(plan, MarkerPlan) else None


def _uses_regions(item: pytest.Item) -> bool:
    """Whether the test takes the ``alloc_budget`` fixture, and so measures regions of its own."""
    return MARKER in getattr(item, "fixturenames", ())


def _def_line(item: pytest.Item) -> int | None:
    """The 1-based line of the test's ``def`` (pytest's location points at its first decorator)."""
    try:
        lines, start = inspect.getsourcelines(getattr(item, "obj", None))  # type: ignore[arg-type]
    except (OSError, TypeError):
        return None
    for offset, text in enumerate(lines):
        if text.lstrip().startswith(("def ", "async def ")):
            return int(start) + offset
    return None
