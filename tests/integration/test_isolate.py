"""Running budgeted tests in a fresh process (``--alloc-isolate``, ``isolate=True``), and warming them up
(``--alloc-warmup``): the two remedies for numbers that depend on what ran before a test."""

from __future__ import annotations

import json
import os

import pytest

#: A module whose import costs about 200 KB, kept alive: a one-time cost paid by whichever test imports it first.
HEAVY_MODULE = """
TABLE = [bytes(1000) for _ in range(200)]
"""

#: Two tests that both import it; in file order, test_first pays.
ORDERED = """
import pytest

@pytest.mark.alloc_budget
def test_first():
    import heavy
    assert len(heavy.TABLE) == 200

@pytest.mark.alloc_budget
def test_second():
    import heavy
    assert len(heavy.TABLE) == 200
"""


@pytest.fixture
def ordered(tester: pytest.Pytester) -> pytest.Pytester:
    tester.makepyfile(heavy=HEAVY_MODULE, test_ordered=ORDERED)
    tester.syspathinsert()
    return tester


def test_without_isolation_the_first_test_pays_and_a_selection_moves_the_cost(ordered: pytest.Pytester, read_budgets):
    # The behaviour --alloc-isolate exists for, shown first: the cost lands on test_first in file order...
    ordered.runpytest("--alloc-update").assert_outcomes(passed=2)
    entries = read_budgets()
    assert entries["test_ordered.py::test_first"]["retained"] > 200_000
    assert entries["test_ordered.py::test_second"]["retained"] < 1024
    # ...and on test_second when it runs alone, which then fails its budget when judged on its first call...
    result = ordered.runpytest("-k", "second", "--alloc-first-call-only")
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(["*allocation budget exceeded: test_ordered.py::test_second*"])
    # ...and passes by default, on a second call that no longer pays the import (where a process can fork).
    if hasattr(os, "fork"):
        result = ordered.runpytest("-k", "second")
        result.assert_outcomes(passed=1, deselected=1)
        result.stdout.fnmatch_lines(["1 passed on a second call*", "  test_ordered.py::test_second: *retained *"])


@pytest.mark.smoke
def test_isolated_tests_measure_the_same_whatever_ran_before(ordered: pytest.Pytester, read_budgets) -> None:
    ordered.runpytest("--alloc-update", "--alloc-isolate").assert_outcomes(passed=2)
    entries = read_budgets()
    first, second = entries["test_ordered.py::test_first"], entries["test_ordered.py::test_second"]
    assert first["retained"] > 200_000
    # Each paid the import in its own process.  Not to the byte: a fresh process lays its heap out at other addresses
    # (address randomisation), and what an import keeps varies with them by some tens of bytes.
    assert abs(second["retained"] - first["retained"]) <= 1024
    for selection in (["-k", "second"], ["-k", "first"], []):
        result = ordered.runpytest("--alloc-isolate", *selection)
        assert result.ret == pytest.ExitCode.OK, result.stdout.str()
        result.stdout.fnmatch_lines(["*measured (*): * passed, 0 failed, 0 missing*"])


def test_the_marker_argument_isolates_one_test_and_opts_one_out(tester: pytest.Pytester) -> None:
    tester.makeconftest(
        """
        import os

        def pytest_configure(config):
            os.environ.setdefault("RUN_PID", str(os.getpid()))  # the first process sets it: the one we ran
        """
    )
    tester.makepyfile(
        """
        import os
        import pytest

        def where():
            return "fresh" if os.environ["RUN_PID"] != str(os.getpid()) else "here"

        @pytest.mark.alloc_budget(isolate=True)
        def test_isolated():
            assert where() == "fresh"

        @pytest.mark.alloc_budget
        def test_default():
            assert where() == EXPECTED

        @pytest.mark.alloc_budget(isolate=False)
        def test_opted_out():
            assert where() == "here"

        def test_unbudgeted():
            assert where() == "here"

        EXPECTED = os.environ.get("EXPECTED", "here")
        """
    )
    os.environ.pop("RUN_PID", None)
    try:
        tester.runpytest("--alloc-update").assert_outcomes(passed=4)
        os.environ.pop("RUN_PID", None)
        os.environ["EXPECTED"] = "fresh"
        tester.runpytest("--alloc-update", "--alloc-isolate").assert_outcomes(passed=4)
    finally:
        os.environ.pop("RUN_PID", None)
        os.environ.pop("EXPECTED", None)


def test_outcomes_in_the_fresh_process_are_this_runs_outcomes(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.alloc_budget(isolate=True)

        def test_passes():
            assert [0] * 10

        def test_fails():
            print("printed in the fresh process")
            assert 1 + 1 == 3, "arithmetic"

        def test_skips():
            pytest.skip("not here")

        @pytest.mark.xfail(reason="known bug")
        def test_expected_failure():
            assert False

        @pytest.mark.xfail(reason="fixed?", strict=True)
        def test_unexpected_pass():
            pass

        @pytest.fixture
        def broken():
            raise RuntimeError("cannot set up")

        def test_setup_error(broken):
            pass
        """
    )
    result = tester.runpytest("--alloc-update", "-rsx")
    result.assert_outcomes(passed=1, failed=2, skipped=1, xfailed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*the test failed in its fresh process:*",
            "*AssertionError: arithmetic*",
            "*Captured stdout call*",
            "printed in the fresh process",
            "*XPASS(strict)*fixed?*",
            "*SKIPPED*not here*",
            "*XFAIL*known bug*",
        ]
    )
    result.stdout.fnmatch_lines(["*ERROR at setup of test_setup_error*", "*RuntimeError: cannot set up*"])


def test_regions_are_isolated_too_and_judged_here(tester: pytest.Pytester, read_budgets, set_budget) -> None:
    tester.makepyfile(
        """
        def test_regions(alloc_budget):
            with alloc_budget.measure("build"):
                data = [0] * 10_000
            assert len(data) == 10_000
        """
    )
    tester.runpytest("--alloc-update", "--alloc-isolate").assert_outcomes(passed=1)
    entry = read_budgets()["test_regions_are_isolated_too_and_judged_here.py::test_regions"]["regions"]["build"]
    assert entry["retained"] >= 80_000
    set_budget("test_regions_are_isolated_too_and_judged_here.py::test_regions", "build", retained=1000, peak=1000)
    result = tester.runpytest("--alloc-isolate")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*allocation budget exceeded*test_regions*build*", "*retained: measured*"])


#: A conftest that logs every write of the budget file, with the process it came from.
WRITE_LOG = """
import os

import pytest_allocbudget.budgets.store as store

_save = store.save
_LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "saves.log")


def _logged_save(path, budgets):
    with open(_LOG, "a") as log:
        log.write(str(os.getpid()) + "\\n")
    _save(path, budgets)


store.save = _logged_save


def pytest_unconfigure(config):
    store.save = _save
"""


def test_only_the_run_writes_the_budget_file(tester: pytest.Pytester) -> None:
    tester.makeconftest(WRITE_LOG)
    tester.makepyfile(
        """
        import pytest

        @pytest.mark.alloc_budget
        @pytest.mark.parametrize("n", range(3))
        def test_sized(n):
            assert len(bytes(n * 1000)) == n * 1000
        """
    )
    tester.runpytest("--alloc-update", "--alloc-isolate").assert_outcomes(passed=3)
    assert (tester.path / "saves.log").read_text().split() == [str(os.getpid())]  # once, by this process


def test_a_test_the_fresh_process_cannot_run_fails_with_its_output(tester: pytest.Pytester) -> None:
    tester.makeconftest(
        """
        def pytest_collection_modifyitems(config, items):
            if config.getoption("--alloc-isolated-child"):
                items.clear()  # the fresh process runs nothing
        """
    )
    tester.makepyfile(
        """
        import pytest

        @pytest.mark.alloc_budget(isolate=True)
        def test_lost():
            pass
        """
    )
    result = tester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*test_lost: --alloc-isolate: the fresh pytest process exited with code 5 without running it*"]
    )


def test_isolated_budgets_recorded_serially_hold_under_xdist(tester: pytest.Pytester, read_budgets) -> None:
    pytest.importorskip("xdist")
    tester.makefile(".ini", pytest="[pytest]\naddopts = -p no:cacheprovider -p no:randomly -p no:anyio -p no:asyncio\n")
    tester.makepyfile(heavy=HEAVY_MODULE, test_ordered=ORDERED)
    tester.syspathinsert()
    tester.runpytest_subprocess("-p", "no:xdist", "--alloc-update", "--alloc-isolate").assert_outcomes(passed=2)
    serial = read_budgets()
    # Without isolation, the worker that runs test_second alone pays the import there: it would fail.  Isolated,
    # each test pays it in its own process, in both runs.
    result = tester.runpytest_subprocess("-n", "2", "--alloc-isolate", "--alloc-json=report.json")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*2 measured (*): 2 passed, 0 failed, 0 missing*"])
    report = json.loads((tester.path / "report.json").read_text())
    for item in report["results"]:
        budget = serial[item["nodeid"]]
        measured = {metric: result["measured"] for metric, result in item["metrics"].items()}
        assert measured["allocations"] == budget["allocations"]
        for metric in ("peak", "retained", "allocated"):  # the same, or a few bytes apart
            assert abs(measured[metric] - budget[metric]) < 1024, (item["nodeid"], metric, measured, budget)


def test_warmup_for_every_test_and_the_marker_opts_out(ordered: pytest.Pytester, read_budgets) -> None:
    ordered.makepyfile(
        test_opt_out="""
        import pytest

        _CACHE = []

        @pytest.mark.alloc_budget(warmup=False)
        def test_cold():
            if not _CACHE:
                _CACHE.append(bytes(100_000))
            assert _CACHE
        """
    )
    ordered.runpytest("--alloc-update", "--alloc-warmup").assert_outcomes(passed=3)
    entries = read_budgets()
    assert entries["test_ordered.py::test_first"]["retained"] < 1024  # the unmeasured first call imported it
    assert entries["test_ordered.py::test_second"]["retained"] < 1024
    assert entries["test_opt_out.py::test_cold"]["retained"] >= 100_000
    result = ordered.runpytest("-k", "second", "-o", "alloc_budget_warmup=true")
    result.assert_outcomes(passed=1, deselected=2)


def test_the_fresh_process_gets_this_runs_plugins_and_overrides_but_not_its_run_shape(tester: pytest.Pytester) -> None:
    from pytest_allocbudget.wiring.isolate import _passed_on

    config = tester.parseconfig(
        "-p", "no:xdist", "-pno:randomly", "-p", "no:doctest", "-o", "console_output_style=classic", "-Werror"
    )
    assert _passed_on(config) == ["-p", "no:doctest", "-o", "console_output_style=classic", "-Werror"]


def test_any_parameter_id_reaches_the_fresh_process(tester: pytest.Pytester) -> None:
    # --strict-config: the fresh process must not be given an ini key the run does not know (the cache is off).
    tester.makefile(
        ".ini",
        pytest="[pytest]\naddopts = --strict-config -p no:cacheprovider -p no:randomly -p no:anyio -p no:asyncio\n",
    )
    tester.makepyfile(
        """
        import pytest

        @pytest.mark.alloc_budget(isolate=True)
        @pytest.mark.parametrize("url", ["http://host/", "https://[::1]:80/?a=b", "x y::z[1]"])
        def test_url(url):
            assert "/" in url or "::" in url
        """
    )
    tester.runpytest("--alloc-update").assert_outcomes(passed=3)
    result = tester.runpytest("-p", "no:xdist")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*3 measured (*): 3 passed, 0 failed, 0 missing*"])
