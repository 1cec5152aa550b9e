"""The count metrics of the allocation counter, as a user sees them: ``allocations`` and ``allocated``.

``allocations`` counts allocation calls and ``allocated`` the bytes they requested, freed blocks included, so they
catch the regressions that ``peak`` and ``retained`` cannot see: more temporary work that never adds up to more
memory at once.
"""

from __future__ import annotations

import pytest

from pytest_allocbudget.measuring.counter import unavailable_reason

pytestmark = pytest.mark.skipif(
    unavailable_reason() is not None, reason=f"no allocation counter: {unavailable_reason()}"
)

ALL_METRICS = {"peak", "retained", "allocations", "allocated"}

#: A marker-budgeted test and a region doing the same work: ``LOOPS`` iterations that each build a small list and
#: drop it, so that only one list is ever alive and the peak does not depend on ``LOOPS``.
LOOP = """
import pytest

LOOPS = {loops}


def work():
    for i in range(LOOPS):
        scratch = [i, i, i]  # a temporary: allocated, then freed at the next iteration
    return None


@pytest.mark.alloc_budget
def test_marker():
    for i in range(LOOPS):
        scratch = [i, i, i]  # the loop line
    del scratch


def test_region(alloc_budget):
    with alloc_budget.measure("loop"):
        work()
"""


def _line_of(tester: pytest.Pytester, filename: str, text: str) -> int:
    lines = (tester.path / filename).read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if text in line)


@pytest.mark.smoke
def test_update_records_allocations_and_allocated_for_a_marker_test_and_a_region(
    tester: pytest.Pytester, read_budgets
) -> None:
    tester.makepyfile(
        """
        import pytest

        KEEP = []

        @pytest.mark.alloc_budget
        def test_marker():
            KEEP.append([bytes(1000) for _ in range(100)])

        def test_region(alloc_budget):
            with alloc_budget.measure("build") as build:
                KEEP.append([bytes(1000) for _ in range(100)])
            assert build["allocations"] >= 100
            assert build["allocated"] >= 100_000
        """
    )
    result = tester.runpytest("--alloc-update")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*wrote allocbudget.yaml: 2 created, 0 updated, 0 unchanged*"])
    entries = read_budgets()
    name = "test_update_records_allocations_and_allocated_for_a_marker_test_and_a_region.py"
    marker = entries[f"{name}::test_marker"]
    region = entries[f"{name}::test_region"]["regions"]["build"]
    for values in (marker, region):
        assert set(values) == ALL_METRICS
        # 100 bytes objects of 1000 bytes each, one allocation call apiece, plus the list and its growth
        assert 100 <= values["allocations"] < 150
        assert 100_000 <= values["allocated"] < 110_000
        # everything still alive, and everything alive at the peak, was allocated in the measured window
        assert values["retained"] <= values["peak"] <= values["allocated"]
    # the counts are recorded exactly: a check run with no tolerance at all passes
    result = tester.runpytest("--alloc-tolerance", "0")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*2 measured (*): 2 passed, 0 failed, 0 missing*"])
    result.stdout.no_fnmatch_line("*could be tightened*")


def test_empty_test_records_no_allocation(tester: pytest.Pytester, read_budgets) -> None:
    tester.makepyfile(
        """
        import pytest

        @pytest.mark.alloc_budget
        def test_nothing():
            pass

        def test_region(alloc_budget):
            with alloc_budget.measure("nothing"):
                pass
        """
    )
    tester.runpytest("--alloc-update").assert_outcomes(passed=2)
    entries = read_budgets()
    name = "test_empty_test_records_no_allocation.py"
    assert entries[f"{name}::test_nothing"]["allocations"] == 0
    assert entries[f"{name}::test_nothing"]["allocated"] == 0
    assert entries[f"{name}::test_region"]["regions"]["nothing"]["allocations"] == 0
    assert entries[f"{name}::test_region"]["regions"]["nothing"]["allocated"] == 0


def test_allocations_limit_fails_naming_the_metric_the_limit_and_the_lines(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import pytest

        @pytest.mark.alloc_budget(allocations=50)
        def test_few():
            assert len([1, 2, 3]) == 3

        @pytest.mark.alloc_budget(allocations=50)
        def test_many():
            texts = [str(i) for i in range(1000, 1200)]  # 200 str objects, one allocation each
            assert len(texts) == 200
        """
    )
    name = "test_allocations_limit_fails_naming_the_metric_the_limit_and_the_lines.py"
    line = _line_of(tester, name, "texts = [str(i)")
    # A limit applies with or without a recorded budget, in a plain run and in an update run alike.
    for args in ((), ("--alloc-update",)):
        result = tester.runpytest(*args)
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(
            [
                f"allocation budget exceeded: {name}::test_many (profile *)",
                "  allocations: measured *, above the limit 50 set on the marker (or measure()) by *",
                "source lines that made the most allocation calls, in one more run of the test (*",
                f"  {name}:{line}: * allocation(s), *",
                "raise the limit on the marker if the increase is intended; --alloc-update does not change it",
                f"FAILED {name}::test_many*",
            ]
        )
        result.stdout.no_fnmatch_line("  peak: *")
        result.stdout.no_fnmatch_line("  retained: *")
        measured = next(line for line in result.outlines if line.startswith("  allocations: measured "))
        assert int(measured.split()[2].replace(",", "")) >= 200
    assert f"{name}::test_many" not in (tester.path / "allocbudget.yaml").read_text()
    assert f"{name}::test_few" in (tester.path / "allocbudget.yaml").read_text()


@pytest.mark.smoke
def test_a_regression_in_allocations_alone_fails_the_check_run(tester: pytest.Pytester, read_budgets) -> None:
    tester.makepyfile(LOOP.format(loops=10))
    tester.runpytest("--alloc-update").assert_outcomes(passed=2)
    name = "test_a_regression_in_allocations_alone_fails_the_check_run.py"
    before = read_budgets()
    # 100 times the iterations: many more temporary lists, but never more than one alive at a time.
    tester.makepyfile(LOOP.format(loops=1000))
    line = _line_of(tester, name, "# the loop line")
    result = tester.runpytest()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            f"allocation budget exceeded: {name}::test_marker (profile *)",
            "  allocations: measured *, budget *, change +*; tolerance 2%, 16 = 16, so at most * passes",
            "source lines that made the most allocation calls, in one more run of the test (*",
            f"  {name}:{line}: * allocation(s), *",
            f"if the increase is intended, re-record: pytest --alloc-update {name}::test_marker",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            f"allocation budget exceeded: {name}::test_region [[]region 'loop'[]] (profile *)",
            "  allocations: measured *, budget *, change +*",
            "no source lines: regions are not run again; --alloc-explain=trace*",
            f"if the increase is intended, re-record: pytest --alloc-update {name}::test_region",
        ]
    )
    # peak and retained stayed within their tolerance: only failing metrics are reported
    result.stdout.no_fnmatch_line("  peak: *")
    result.stdout.no_fnmatch_line("  retained: *")
    result.stdout.fnmatch_lines(["*2 measured (*): 0 passed, 2 failed, 0 missing*"])
    # the check run did not touch the budgets
    assert read_budgets() == before
    # re-recording accepts the regression, after which the same code passes again
    result = tester.runpytest("--alloc-update")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*wrote allocbudget.yaml: 0 created, 2 updated, 0 unchanged*"])
    after = read_budgets()
    marker = f"{name}::test_marker"
    assert after[marker]["allocations"] >= before[marker]["allocations"] + 990
    assert after[marker]["peak"] == before[marker]["peak"]
    tester.runpytest().assert_outcomes(passed=2)


def test_tracemalloc_engine_records_peak_and_retained_only_and_skips_count_budgets(
    tester: pytest.Pytester, read_budgets
) -> None:
    name = "test_tracemalloc_engine_records_peak_and_retained_only_and_skips_count_budgets.py"
    marker, region = f"{name}::test_marker", f"{name}::test_region"
    tester.makepyfile(LOOP.format(loops=10))
    result = tester.runpytest("--alloc-update", "--alloc-engine=tracemalloc")
    result.assert_outcomes(passed=2)
    entries = read_budgets()
    assert set(entries[marker]) == {"peak", "retained"}
    assert set(entries[region]["regions"]["loop"]) == {"peak", "retained"}
    # Choosing tracemalloc is not a missing counter: nothing warns about it.
    assert "allocation counts unavailable" not in result.stdout.str()

    # The default engine adds the counts to the same entries.
    result = tester.runpytest("--alloc-update")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*wrote allocbudget.yaml: 0 created, 2 updated, 0 unchanged*"])
    recorded = read_budgets()
    assert set(recorded[marker]) == ALL_METRICS
    assert set(recorded[region]["regions"]["loop"]) == ALL_METRICS

    # A regression in the counts alone: the counter fails it, a tracemalloc run cannot see it and does not fail.
    tester.makepyfile(LOOP.format(loops=1000))
    tester.runpytest().assert_outcomes(failed=2)
    result = tester.runpytest("--alloc-engine=tracemalloc")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*2 measured (*): 2 passed, 0 failed, 0 missing*"])
    result.stdout.no_fnmatch_line("*allocation budget exceeded*")

    # An update run with tracemalloc keeps the counts it could not measure.
    result = tester.runpytest("--alloc-update", "--alloc-engine=tracemalloc")
    result.assert_outcomes(passed=2)
    assert read_budgets() == recorded
