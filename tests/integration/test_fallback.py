"""Without the allocation counter (not built, or blocked here), the plugin measures with tracemalloc and says so."""

from __future__ import annotations

import pytest

from pytest_allocbudget.budgets.store import loads

TESTS = """
import pytest

KEEP = []

@pytest.mark.alloc_budget
def test_keep():
    KEEP.append(bytes(10_000))
"""


@pytest.mark.smoke
def test_without_the_counter_peak_and_retained_still_work_and_it_says_so_once(
    without_counter: pytest.Pytester,
) -> None:
    without_counter.makepyfile(TESTS)
    result = without_counter.runpytest_subprocess("--alloc-update")
    result.assert_outcomes(passed=1)
    output = result.stdout.str()
    assert output.count("allocation counts unavailable") == 1
    result.stdout.fnmatch_lines(["*allocation counts unavailable: the allocation counter extension *"])
    budgets = loads((without_counter.path / "allocbudget.yaml").read_text())
    [(_, _, values)] = list(budgets.entries())
    assert set(values) == {"peak", "retained"}
    assert values["retained"] >= 10_000


def test_recorded_count_budgets_are_skipped_not_failed_without_the_counter(
    without_counter: pytest.Pytester,
) -> None:
    without_counter.makepyfile(TESTS)
    # Budgets recorded where the counter works: counts far below what the test makes would fail if checked.
    without_counter.runpytest_subprocess("--alloc-update", "-p", "no:cacheprovider").assert_outcomes(passed=1)
    path = without_counter.path / "allocbudget.yaml"
    text = path.read_text().replace("      peak:", "      allocations: 0\n      allocated: 0\n      peak:")
    path.write_text(text)
    assert "allocations: 0" in text
    result = without_counter.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*1 measured (*): 1 passed, 0 failed, 0 missing*", "*were not checked*"])
    assert path.read_text() == text  # a check run never writes


def test_engine_counter_is_a_usage_error_without_the_counter(without_counter: pytest.Pytester) -> None:
    without_counter.makepyfile(TESTS)
    result = without_counter.runpytest_subprocess("--alloc-engine=counter")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--alloc-engine=counter: the allocation counter extension *"])
