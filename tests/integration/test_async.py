"""Budgeted async tests, run by anyio (asyncio and trio backends) and pytest-asyncio (strict and auto mode).

The window measures the test's coroutine as it runs on the runner's event loop, not the call that only creates it,
and not the loop's start-up.  Inner sessions turn every warning into an error, so a coroutine that is created and
never awaited fails the run.
"""

from __future__ import annotations

import sys
import textwrap
from dataclasses import dataclass

import pytest

from pytest_allocbudget.measuring.counter import unavailable_reason

COUNTER_MISSING = unavailable_reason()
needs_counter = pytest.mark.skipif(COUNTER_MISSING is not None, reason=f"no allocation counter: {COUNTER_MISSING}")


@dataclass(frozen=True)
class Runner:
    """How one runner plugin is enabled in an inner session, and how a test module is written for it."""

    modules: tuple[str, ...]  # what must be installed
    args: tuple[str, ...]  # enables the plugin (the tester's ini disables both) and configures it
    header: str  # imports and fixtures at the top of the test module
    marker: str  # the line that makes a test async for this runner ("" in pytest-asyncio's auto mode)
    sleep: str  # a checkpoint: one trip through the event loop
    loop: str  # the event loop the test runs on


_ASYNCIO = ("-p", "pytest_asyncio.plugin", "-o", "asyncio_default_fixture_loop_scope=function")
_ANYIO_HEADER = """
import anyio
import pytest

@pytest.fixture
def anyio_backend():
    return {backend!r}
"""

RUNNERS = {
    "anyio-asyncio": Runner(
        ("anyio",), ("-p", "anyio"), _ANYIO_HEADER.format(backend="asyncio"), "@pytest.mark.anyio",
        "await anyio.sleep(0)", "asyncio",
    ),
    "anyio-trio": Runner(
        ("anyio", "trio"), ("-p", "anyio"), _ANYIO_HEADER.format(backend="trio"), "@pytest.mark.anyio",
        "await anyio.sleep(0)", "trio",
    ),
    "asyncio-strict": Runner(
        ("pytest_asyncio",), (*_ASYNCIO, "-o", "asyncio_mode=strict"), "import asyncio\nimport pytest\n",
        "@pytest.mark.asyncio", "await asyncio.sleep(0)", "asyncio",
    ),
    "asyncio-auto": Runner(
        ("pytest_asyncio",), (*_ASYNCIO, "-o", "asyncio_mode=auto"), "import asyncio\nimport pytest\n", "",
        "await asyncio.sleep(0)", "asyncio",
    ),
}  # fmt: skip

#: Every warning is an error in the inner sessions: "coroutine ... was never awaited" included.  Hypothesis's
#: plugin is left out: importing hypothesis with trio installed warns (about trio's random generator).
STRICT = ("-W", "error", "-p", "no:hypothesispytest")


@pytest.fixture(params=sorted(RUNNERS))
def runner(request: pytest.FixtureRequest) -> Runner:
    chosen = RUNNERS[request.param]
    for module in chosen.modules:
        pytest.importorskip(module)
    return chosen


def module(runner: Runner, body: str) -> str:
    """A test module for ``runner``: ``body`` with ``{marker}`` and ``{sleep}`` filled in."""
    text = textwrap.dedent(body).format(marker=runner.marker, sleep=runner.sleep)
    return runner.header + "\n" + text


def run(tester: pytest.Pytester, runner: Runner | None, *args: str) -> pytest.RunResult:
    """An inner session in a process of its own: a coroutine left unawaited is reported when it is destroyed,
    which may be at the end of the process, and in this process could be later than the inner session."""
    result = tester.runpytest_subprocess(*(runner.args if runner else ()), *STRICT, *args)
    for output in (result.stdout, result.stderr):
        output.no_fnmatch_line("*never awaited*")
        output.no_fnmatch_line("*Traceback*")
    return result


KEEPER = """
KEEP = []

@pytest.mark.alloc_budget
{marker}
async def test_keeps():
    {sleep}
    KEEP.append(bytes(100_000))
    {sleep}
"""


@pytest.mark.parametrize("budgeted_by", ["marker", "--alloc-all"])
def test_a_budgeted_async_test_runs_and_its_body_is_measured(
    tester: pytest.Pytester, runner: Runner, read_budgets, budgeted_by: str
) -> None:
    body = KEEPER if budgeted_by == "marker" else KEEPER.replace("@pytest.mark.alloc_budget\n", "")
    tester.makepyfile(test_keeper=module(runner, body))
    args = ("--alloc-all",) if budgeted_by == "--alloc-all" else ()
    run(tester, runner, "--alloc-update", *args).assert_outcomes(passed=1)
    # What the coroutine did while it ran, not only its creation (which allocates a few hundred bytes at most).
    [values] = read_budgets().values()
    assert 100_000 <= values["retained"] < 105_000


@needs_counter
def test_an_async_test_that_awaits_nothing_measures_nothing(tester: pytest.Pytester, runner: Runner, read_budgets):
    # As for an empty sync test: the event loop's start-up, the runner's task and the coroutine object all stay
    # outside the window.
    tester.makepyfile(
        test_empty=module(
            runner,
            """
            @pytest.mark.alloc_budget
            {marker}
            async def test_nothing():
                pass
            """,
        )
    )
    run(tester, runner, "--alloc-update").assert_outcomes(passed=1)
    [values] = read_budgets().values()
    assert values == {"allocated": 0, "allocations": 0, "peak": 0, "retained": 0}


def test_another_task_that_runs_while_the_test_awaits_counts(tester: pytest.Pytester, read_budgets) -> None:
    # A task that a fixture started, on the test's loop: what it does while the test waits is inside the window.
    runner = RUNNERS["asyncio-strict"]
    pytest.importorskip("pytest_asyncio")
    tester.makepyfile(
        test_background=module(
            runner,
            """
            import pytest_asyncio

            KEEP = []

            @pytest_asyncio.fixture
            async def worker():
                go = asyncio.Event()

                async def work():
                    await go.wait()
                    KEEP.append(bytes(100_000))

                task = asyncio.ensure_future(work())
                yield go
                await task

            @pytest.mark.alloc_budget
            {marker}
            async def test_lets_the_worker_run(worker):
                worker.set()
                while not KEEP:
                    {sleep}
            """,
        )
    )
    run(tester, runner, "--alloc-update").assert_outcomes(passed=1)
    [values] = read_budgets().values()
    assert 100_000 <= values["retained"] < 105_000


CHECKPOINTS = """
@pytest.mark.alloc_budget
{marker}
async def test_{name}():
    for _ in range(3):
        {sleep}
"""


@needs_counter
def test_an_async_test_that_only_awaits_measures_the_same_across_sessions(
    tester: pytest.Pytester, runner: Runner, read_budgets
) -> None:
    # Each checkpoint runs some of the event loop's own code inside the window, which counts (see measuring.md);
    # the objects of the loop's step that resumed the coroutine last are still alive when the window closes.
    body = "".join(CHECKPOINTS.replace("{name}", name) for name in ("a", "b", "c"))
    tester.makepyfile(test_checkpoints=module(runner, body))
    sessions = []
    for name in ("first", "second", "third"):
        run(tester, runner, "--alloc-update", "--alloc-file", f"{name}.yaml").assert_outcomes(passed=3)
        sessions.append(read_budgets(f"{name}.yaml"))
    assert sessions[1] == sessions[2] == sessions[0]
    # Within a session the three tests differ by a few of the loop's objects at most, well inside the default
    # tolerances (4 KiB, 16 allocations).  On 3.9 and 3.10 the first one also pays for the first calls of the loop's
    # functions (52 allocations more under anyio on 3.10), a one-time cost that a check run's second call clears:
    # there the other two are compared.
    tests = list(sessions[0].values())[1 if sys.version_info < (3, 11) else 0 :]
    for metric, spread in (("allocations", 16), ("allocated", 4096), ("peak", 4096), ("retained", 4096)):
        values = [values[metric] for values in tests]
        assert max(values) - min(values) <= spread, (metric, values)
    assert all(values["retained"] < 4096 and values["allocations"] < 200 for values in tests), tests


WARMED = """
CACHE = {{}}

@pytest.mark.alloc_budget
{marker}
async def test_fills_a_cache():
    {sleep}
    if "table" not in CACHE:
        CACHE["table"] = bytes(100_000)
"""


def test_warmup_awaits_the_test_once_before_the_measured_run(
    tester: pytest.Pytester, runner: Runner, read_budgets
) -> None:
    tester.makepyfile(test_warmed=module(runner, WARMED))
    run(tester, runner, "--alloc-update").assert_outcomes(passed=1)
    [cold] = read_budgets().values()
    assert 100_000 <= cold["retained"] < 105_000
    # The warm-up ran the body to its end (it filled the cache) before the window opened.
    run(tester, runner, "--alloc-update", "--alloc-warmup", "--alloc-file", "warm.yaml").assert_outcomes(passed=1)
    [warm] = read_budgets("warm.yaml").values()
    assert warm["retained"] < 1_000


def test_regions_measure_awaited_code_in_an_async_test(tester: pytest.Pytester, runner: Runner, read_budgets) -> None:
    tester.makepyfile(
        test_regions=module(
            runner,
            """
            KEEP = []

            {marker}
            async def test_regions(alloc_budget):
                with alloc_budget.measure("keeps") as kept:
                    {sleep}
                    KEEP.append(bytes(100_000))
                    {sleep}
                assert 100_000 <= kept.retained < 105_000
                with alloc_budget.measure("frees") as freed:
                    scratch = bytes(200_000)
                    {sleep}
                    del scratch
                assert freed.retained < 1_000 and freed.peak >= 200_000
            """,
        )
    )
    run(tester, runner, "--alloc-update").assert_outcomes(passed=1)
    [entry] = read_budgets().values()
    assert 100_000 <= entry["regions"]["keeps"]["retained"] < 105_000
    assert entry["regions"]["frees"]["peak"] >= 200_000


@needs_counter
def test_a_failing_async_test_is_run_again_on_a_fresh_event_loop_or_says_why_not(
    tester: pytest.Pytester, runner: Runner
) -> None:
    tester.makepyfile(
        test_many=module(
            runner,
            """
            @pytest.mark.alloc_budget(allocations=50)
            {marker}
            async def test_many():
                {sleep}
                texts = [str(i) for i in range(1000, 1200)]  # 200 str objects, one allocation each
                {sleep}
                assert len(texts) == 200
            """,
        )
    )
    lines = (tester.path / "test_many.py").read_text().splitlines()
    line = next(number for number, text in enumerate(lines, 1) if "texts = [str(i)" in text)
    result = run(tester, runner)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["allocation budget exceeded: test_many.py::test_many*", "  allocations: measured *"])
    if runner.loop == "asyncio":
        # The second run, like the measured one, traces the coroutine's run and not the loop around it: the
        # test's own line comes first.
        result.stdout.fnmatch_lines(
            [
                "source lines that made the most allocation calls, in one more run of the test (*",
                f"  test_many.py:{line}: * allocation(s), *",
            ]
        )
    else:
        result.stdout.fnmatch_lines(
            [
                "the test could not be run again to find its lines: it ran on trio, and an async test is run again "
                "only on a fresh asyncio event loop"
            ]
        )
        result.stdout.no_fnmatch_line("source lines that made the most allocation calls*")


def test_an_isolated_async_test_runs_on_its_runner_in_the_fresh_process(
    tester: pytest.Pytester, runner: Runner, read_budgets
) -> None:
    tester.makepyfile(test_keeper=module(runner, KEEPER))
    run(tester, runner, "--alloc-update", "--alloc-isolate").assert_outcomes(passed=1)
    [values] = read_budgets().values()
    assert 100_000 <= values["retained"] < 105_000


def test_an_async_test_without_a_runner_fails_as_it_would_unbudgeted(tester: pytest.Pytester) -> None:
    # No plugin runs coroutines: pytest itself refuses the test, and no coroutine is created and left unawaited.
    # An async generator is no test for any runner either, and is refused the same way.
    tester.makepyfile(
        """
        import pytest

        @pytest.mark.alloc_budget
        async def test_budgeted():
            pass

        async def test_plain():
            pass

        @pytest.mark.alloc_budget
        async def test_generator():
            yield
        """
    )
    result = run(tester, None, "--alloc-update")
    result.assert_outcomes(failed=3)
    for name in ("test_budgeted", "test_plain", "test_generator"):
        result.stdout.fnmatch_lines([f"_* {name} _*", "async def functions are not natively supported."])
    result.stdout.fnmatch_lines(["0 measured (0 tests; profile *)"])
