"""``--alloc-all`` (ini ``alloc_budget_all``): every test function is budgeted, marked or not."""

from __future__ import annotations

import pytest

TESTS = """
import unittest

import pytest

KEEP = []

def test_plain():
    KEEP.append(bytes(10_000))

def test_another():
    assert sum(range(100)) == 4950

@pytest.mark.parametrize("size", [1_000, 2_000])
def test_sizes(size):
    KEEP.append(bytes(size))

@pytest.mark.alloc_budget(False)
def test_opted_out():
    KEEP.append(bytes(1_000))

@pytest.mark.alloc_budget(retained="1 MiB")
def test_marked():
    KEEP.append(bytes(3_000))

class TestGrouped:
    def test_method(self):
        KEEP.append(bytes(4_000))

class TestCaseStyle(unittest.TestCase):
    def test_unittest(self):
        KEEP.append(bytes(5_000))
"""

PASSED = 8


def _names(read_budgets, file: str) -> set[str]:
    return {nodeid.split("::", 1)[1] for nodeid in read_budgets() if nodeid.startswith(f"{file}::")}


BUDGETED = {
    "test_plain",
    "test_another",
    "test_sizes[1000]",
    "test_sizes[2000]",
    "test_marked",
    "TestGrouped::test_method",
}


@pytest.mark.parametrize("how", ["option", "ini"])
def test_alloc_all_budgets_every_test_function(tester: pytest.Pytester, read_budgets, how: str) -> None:
    path = tester.makepyfile(TESTS)
    if how == "ini":
        tester.makefile(
            ".ini",
            pytest="[pytest]\naddopts = -p no:cacheprovider -p no:randomly -p no:xdist -p no:anyio -p no:asyncio\n"
            "alloc_budget_all = true\n",
        )
    # Warnings shown, not raised (the outer session's filter turns them into errors in an in-process run).
    args = ["-W", "default", *(["--alloc-all"] if how == "option" else [])]

    result = tester.runpytest("--alloc-update", *args)
    result.assert_outcomes(passed=PASSED, warnings=0)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines([f"wrote allocbudget.yaml: {len(BUDGETED)} created, 0 updated, 0 unchanged"])
    assert _names(read_budgets, path.name) == BUDGETED
    assert read_budgets()[f"{path.name}::test_plain"]["retained"] >= 10_000
    # A unittest.TestCase test is silently not budgeted: no warning.
    assert "warning" not in result.stdout.str().lower()
    assert "cannot measure" not in result.stdout.str()

    result = tester.runpytest(*args)
    result.assert_outcomes(passed=PASSED, warnings=0)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines([f"{len(BUDGETED)} measured (*): {len(BUDGETED)} passed, 0 failed, 0 missing*"])
    assert "warning" not in result.stdout.str().lower()


def test_without_alloc_all_only_marked_tests_are_budgeted(tester: pytest.Pytester, read_budgets) -> None:
    path = tester.makepyfile(TESTS)
    result = tester.runpytest("--alloc-update")
    result.assert_outcomes(passed=PASSED)
    assert _names(read_budgets, path.name) == {"test_marked"}


def test_alloc_all_regressions_fail_unmarked_tests(tester: pytest.Pytester, set_budget) -> None:
    path = tester.makepyfile(TESTS)
    tester.runpytest("--alloc-all", "--alloc-update").assert_outcomes(passed=PASSED)
    set_budget(f"{path.name}::test_plain", retained=1_000)
    result = tester.runpytest("--alloc-all", "--alloc-explain=off")
    result.assert_outcomes(passed=PASSED - 1, failed=1)
    result.stdout.fnmatch_lines([f"allocation budget exceeded: {path.name}::test_plain (profile *)", "*retained:*"])


def test_a_marked_unittest_test_still_warns_under_alloc_all(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import unittest

        import pytest

        class TestCaseStyle(unittest.TestCase):
            @pytest.mark.alloc_budget
            def test_marked(self):
                pass
        """
    )
    result = tester.runpytest("--alloc-all", "--alloc-update", "-W", "default")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*cannot measure this test: unittest.TestCase tests*"])


def test_a_test_that_measures_regions_keeps_them_under_alloc_all(tester: pytest.Pytester, read_budgets) -> None:
    path = tester.makepyfile(
        """
        KEEP = []

        def test_regions(alloc_budget):
            with alloc_budget.measure("build"):
                KEEP.append(bytes(7_000))
        """
    )
    result = tester.runpytest("--alloc-all", "--alloc-update")
    result.assert_outcomes(passed=1)
    entry = read_budgets()[f"{path.name}::test_regions"]
    assert entry["regions"]["build"]["retained"] >= 7_000
    result = tester.runpytest("--alloc-all")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*0 failed, 0 missing*"])
