"""The wiring: options, the marker, the fixture and the hooks.  No measuring or judging happens here.

All per-run state lives in one :class:`AllocBudgetPlugin` object registered with the plugin manager, so every hook
is a method with one owner for its state; per-test data lives in ``item.stash``.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import inspect
import sys
import unittest
from collections.abc import Generator
from pathlib import Path
from typing import Any, Callable

import pytest

from .counter import CounterProbe, unavailable_reason
from .explain import Explanation, explain
from .measure import Probe, Region, TracemallocProbe, interference
from .regions import AllocBudget
from .report import counter_missing_text, interference_text, summary_lines
from .session import BudgetSession, Recorded
from .settings import (
    DEFAULT_FILE,
    DEFAULT_TOLERANCE,
    MARKER,
    MARKER_HELP,
    MarkerPlan,
    SettingsError,
    parse_marker,
    profile_name,
    resolve_run_settings,
)
from .store import BudgetFileError, EntryKey

__all__ = ["AllocBudgetPlugin", "PytestAllocBudgetWarning"]

PLUGIN_NAME = "allocbudget-session"

_plan_key = pytest.StashKey["MarkerPlan | SettingsError"]()
_recorded_key = pytest.StashKey["list[Recorded]"]()
_judged_key = pytest.StashKey[bool]()


class PytestAllocBudgetWarning(pytest.PytestWarning):
    """A warning from pytest-allocbudget."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("allocbudget", "allocation budgets (pytest-allocbudget)")
    group.addoption(
        "--alloc-update",
        action="store_true",
        default=False,
        help="record the allocation budgets of the budgeted tests that run and pass; other entries are kept.",
    )
    group.addoption(
        "--alloc-file",
        metavar="PATH",
        default=None,
        help=f"budget file to read and write (default: ini alloc_budget_file, else {DEFAULT_FILE} at the rootdir).",
    )
    group.addoption(
        "--alloc-tolerance",
        metavar="SPEC",
        default=None,
        help="tolerance above a budget before a test fails: '5%%', '4 KiB', '2%%, 4 KiB' or "
        "'peak: 5%%; retained: 0' (default: ini alloc_budget_tolerance, else '2%%, 4 KiB').",
    )
    group.addoption(
        "--alloc-explain",
        metavar="MODE",
        default=None,
        help="how a failure finds its source lines: 'rerun' runs a failing marker-budgeted test again under "
        "tracemalloc and the counter; 'trace' also runs tracemalloc in every measured window, for the lines alive "
        "at its end (slower); 'off' lists none (default: ini alloc_budget_explain, else 'rerun').",
    )
    group.addoption(
        "--alloc-engine",
        metavar="ENGINE",
        default=None,
        help="what measures: 'counter' (the allocation counter: all four metrics), 'tracemalloc' (peak and "
        "retained only), 'auto' (the counter where available) (default: ini alloc_budget_engine, else 'auto').",
    )
    group.addoption(
        "--alloc-all-threads",
        action="store_true",
        default=False,
        help="count the allocations of every thread, not only the thread running the test (counter only).",
    )
    parser.addini(
        "alloc_budget_explain",
        help="how a failure finds its source lines, as for --alloc-explain (default: 'rerun').",
        default="",
    )
    parser.addini(
        "alloc_budget_engine",
        help="what measures, as for --alloc-engine (default: 'auto').",
        default="",
    )
    parser.addini(
        "alloc_budget_all_threads",
        type="bool",
        help="count the allocations of every thread, as for --alloc-all-threads (default: false).",
        default=False,
    )
    parser.addini(
        "alloc_budget_file",
        help=f"budget file, relative to the ini file's directory (default: {DEFAULT_FILE} at the rootdir).",
        default="",
    )
    parser.addini(
        "alloc_budget_tolerance",
        help=f"default tolerance above a budget, as for --alloc-tolerance (default: '{DEFAULT_TOLERANCE}').",
        default="",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    config.pluginmanager.register(AllocBudgetPlugin(config), PLUGIN_NAME)


@pytest.fixture
def alloc_budget(request: pytest.FixtureRequest) -> AllocBudget:
    """Measure named regions of a test, each held to its own budget: ``with alloc_budget.measure("x") as m:``."""
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
        try:
            settings = resolve_run_settings(
                config.getoption,
                config.getini,
                config.inipath,
                config.rootpath,
                config.invocation_params.dir,
            )
        except SettingsError as error:
            raise pytest.UsageError(str(error)) from None
        if settings.update and _xdist_active(config):
            raise pytest.UsageError(
                "--alloc-update cannot run under pytest-xdist yet (each worker would write the budget file); "
                "record serially: pytest -p no:xdist --alloc-update"
            )
        self.session = BudgetSession(
            path=settings.path,
            update=settings.update,
            profile=profile_name(),
            tolerances=settings.tolerances,
            rootdir=config.rootpath,
        )
        self.explain_mode = settings.explain
        self.all_threads = settings.all_threads
        # counter_missing is said once in the summary; a run that asked for tracemalloc has nothing to miss.
        self.counter_missing = unavailable_reason() if settings.engine != "tracemalloc" else None
        self.use_counter = settings.engine != "tracemalloc" and unavailable_reason() is None
        if settings.engine == "counter" and self.counter_missing is not None:
            raise pytest.UsageError(f"--alloc-engine=counter: {self.counter_missing}")
        self.write_error: str | None = None
        self.interference: str | None = None  # a tracer or profiler seen active when a test was measured
        self.measured_any = False
        self.froze = False

    # ----------------------------------------------------------------------------------------- session

    @pytest.hookimpl(trylast=True)  # after -k, -m and --deselect have removed what will not run
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        for item in items:
            marks = [(mark.args, mark.kwargs) for mark in reversed(list(item.iter_markers(MARKER)))]
            if not marks:
                continue
            try:
                plan = parse_marker(marks, item.nodeid)
            except SettingsError as error:
                item.stash[_plan_key] = error
                continue
            if plan is None:
                continue
            cls = getattr(item, "cls", None)
            if not isinstance(item, pytest.Function) or (cls is not None and issubclass(cls, unittest.TestCase)):
                item.warn(
                    PytestAllocBudgetWarning(
                        f"{item.nodeid}: @pytest.mark.{MARKER} cannot measure this test: unittest.TestCase tests "
                        "(and other non-function items) are run by their own framework, outside the hook that "
                        "measures test functions. Write it as a plain pytest test function to budget it."
                    )
                )
                continue
            item.stash[_plan_key] = plan

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        budgeted = [
            item for item in session.items if _plan_key in item.stash or MARKER in getattr(item, "fixturenames", ())
        ]
        if not budgeted:
            return  # nothing to measure: the budget file is not even read
        try:
            self.session.load()
        except BudgetFileError as error:
            raise pytest.UsageError(f"{error}\nFix the file by hand or restore it from version control.") from None
        # Full collections before and after every region are the main cost of measuring; freezing what exists
        # after collection (modules, pytest's own objects) keeps them cheap and still empties the free lists.
        gc.collect()
        gc.freeze()
        self.froze = True
        _warm_up(self)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.froze:
            gc.unfreeze()
            self.froze = False

    # ----------------------------------------------------------------------------------------- one test

    def note_interference(self) -> None:
        """Called right before a window opens, when any wrapper around the test has started its tools."""
        if self.interference is None:
            self.interference = interference()

    def region(self, key: EntryKey, plan: MarkerPlan) -> Region:
        """A region measured by this run's engine: the counter alone, or with tracemalloc beside it (trace mode),
        or tracemalloc alone where the counter is missing or not wanted."""
        probes: list[Probe] = []
        if self.use_counter:
            if self.explain_mode == "trace":
                probes.append(TracemallocProbe(report=False))  # started first: the counter must sit on top
            probes.append(CounterProbe(all_threads=self.all_threads))
        else:
            probes.append(TracemallocProbe())
        explain_at_end = self.explain_mode != "off" and isinstance(probes[0], TracemallocProbe)
        return Region(probes, explain=self.session.explainer(key, plan) if explain_at_end else None)

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        plan = item.stash.get(_plan_key, None)
        if isinstance(plan, SettingsError):
            pytest.fail(str(plan), pytrace=False)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> Generator[None, Any, Any]:
        # The test function itself is swapped for one that measures only its call.  Swapping first (the
        # outermost wrapper) matters: a plugin that swaps it too (a memory profiler starting its tracker, a
        # retry plugin) then wraps our measuring function, so its own work stays outside the window, as does
        # pytest's calling code (argument dict, async and return checks).
        plan = pyfuncitem.stash.get(_plan_key, None)
        if not isinstance(plan, MarkerPlan):
            return (yield)
        key = (pyfuncitem.nodeid, None)
        function = pyfuncitem.obj
        region = self.region(key, plan)
        explanation: list[Explanation] = []

        def explain_if_failed(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            measurement = region.measurement
            if (
                self.explain_mode == "rerun"
                and measurement is not None
                and self.session.fails(key, measurement.values, plan)
            ):
                explanation.append(explain(lambda: function(*args, **kwargs)))

        pyfuncitem.obj = measured_call(function, region, plan.warmup, explain_if_failed, self.note_interference)
        try:
            result = yield
        finally:
            pyfuncitem.obj = function
        if region.measurement is not None:
            recorded = Recorded(key, region.measurement, plan, explanation[0] if explanation else None)
            pyfuncitem.stash.setdefault(_recorded_key, []).append(recorded)
        return result

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        # The outermost wrapper (tryfirst), so it sees the report after xfail handling has adjusted it.
        report = yield
        if report.when != "call":
            return report
        item.stash[_judged_key] = True  # regions measured from now on (in teardown) could not be judged
        recorded = item.stash.get(_recorded_key, [])
        if not recorded:
            return report
        self.measured_any = True
        passed = report.passed and not hasattr(report, "wasxfail")
        problems = self.session.conclude(recorded, passed)
        if problems:
            report.outcome = "failed"
            report.longrepr = "\n\n".join(problems)
        return report

    # ----------------------------------------------------------------------------------------- the end

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        try:
            self.session.finish()
        except BudgetFileError as error:
            self.write_error = str(error)
            session.exitstatus = pytest.ExitCode.USAGE_ERROR

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        s = self.session
        if not self.measured_any and not s.update and self.write_error is None:
            return
        terminalreporter.write_sep("-", "allocation budgets")
        lines = summary_lines(
            s.verdicts,
            s.profile,
            _show(s.path, s.rootdir),
            s.change_counts() if s.update else None,
            s.written,
            self.write_error,
        )
        if self.counter_missing is not None:
            lines.append((counter_missing_text(self.counter_missing), "yellow"))
        if self.interference is not None:
            lines.append((interference_text(self.interference), "yellow"))
        for text, color in lines:
            terminalreporter.write_line(text, **({color: True} if color else {}))


def measured_call(
    function: Callable[..., Any],
    region: Region,
    warmup: bool,
    after: Callable[[tuple[Any, ...], dict[str, Any]], None],
    before: Callable[[], None] | None = None,
) -> Callable[..., Any]:
    """``function``, measured by ``region`` when called; with ``warmup``, called once unmeasured first.

    ``after`` runs once the region has closed, with the call's arguments (to re-run the test for an explanation).
    """

    @functools.wraps(function)
    def measured(*args: Any, **kwargs: Any) -> Any:
        if warmup:
            function(*args, **kwargs)
        elif _KEEPS_FIRST_FRAME:
            _prime_frame(function)
        if before is not None:
            before()
        if args or kwargs:
            with region:
                result = function(*args, **kwargs)
        else:
            with region:
                result = function()  # no argument tuple or dict is built inside the region
        after(args, kwargs)
        return result

    return measured


#: Python 3.9 and 3.10 keep a function's frame on its code object after the first call, for reuse.
_KEEPS_FIRST_FRAME = sys.version_info < (3, 11)
_CO_VARKEYWORDS = 0x08


def _prime_frame(function: Callable[..., Any]) -> None:
    """Make the interpreter allocate ``function``'s reusable frame now, outside the measured window, on 3.9/3.10.

    There the frame is created before the arguments are bound, and kept when the call ends, even when binding
    fails; so a call with an unknown keyword argument creates the frame, raises TypeError, and runs no line of the
    body.  A function taking ``**kwargs`` would accept the keyword and run, so it is left alone.
    """
    code = getattr(function, "__code__", None)
    if not inspect.isfunction(function) or code is None or code.co_flags & _CO_VARKEYWORDS:
        return
    with contextlib.suppress(TypeError):
        function(__allocbudget_prime_frame__=None)


def _warm_up(plugin: AllocBudgetPlugin) -> None:
    """Run each measuring code path once, unrecorded, before the first test.

    On Python 3.9 and 3.10 a function's first call allocates a frame that its code object keeps for later calls;
    without this, the first measured test or region of a run would retain those frames as its own.
    """

    def ignore(*args: Any, **kwargs: Any) -> None:
        del args, kwargs

    key = ("<warm-up>", None)
    measured_call(ignore, plugin.region(key, MarkerPlan()), False, ignore)()
    measured_call(ignore, plugin.region(key, MarkerPlan()), False, ignore)(1, x=2)
    with AllocBudget("<warm-up>", plugin.region, ignore, False).measure("warm-up"):
        pass


def _xdist_active(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput") or bool(getattr(config.option, "numprocesses", None))


def _show(path: Path, rootdir: Path | None) -> Path:
    if rootdir is not None:
        try:
            return path.relative_to(rootdir)
        except ValueError:
            return path
    return path
