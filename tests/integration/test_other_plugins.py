"""Beside other plugins: their work stays out of the numbers, and tracers that change the numbers are named."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

import pytest

from pytest_allocbudget.measuring.counter import unavailable_reason

TEST = """
import pytest

@pytest.mark.alloc_budget
def test_small():
    assert len([0] * 10) == 10
"""


def test_a_plugin_that_wraps_the_test_function_stays_outside_the_window(tester: pytest.Pytester, read_budgets) -> None:
    # Like a memory profiler starting its tracker: it swaps the test function for a wrapper that allocates a lot
    # before and after calling the real one.
    tester.makeconftest(
        """
        import functools
        import pytest

        KEEP = []

        @pytest.hookimpl(wrapper=True)
        def pytest_pyfunc_call(pyfuncitem):
            inner = pyfuncitem.obj

            @functools.wraps(inner)
            def heavy(*args, **kwargs):
                KEEP.append(bytes(1_000_000))
                try:
                    return inner(*args, **kwargs)
                finally:
                    KEEP.append(bytes(1_000_000))

            pyfuncitem.obj = heavy
            try:
                return (yield)
            finally:
                pyfuncitem.obj = inner
        """
    )
    tester.makepyfile(TEST)
    tester.runpytest("--alloc-update").assert_outcomes(passed=1)
    [values] = read_budgets().values()
    assert values["peak"] < 10_000
    assert values["retained"] == 0


def test_an_active_tracer_is_named_once_in_the_summary(tester: pytest.Pytester) -> None:
    tester.makeconftest(
        """
        import sys
        import pytest

        def tracer(frame, event, arg):
            return None

        @pytest.fixture(autouse=True)
        def traced():
            previous = sys.gettrace()
            sys.settrace(tracer)
            yield
            sys.settrace(previous)
        """
    )
    tester.makepyfile(TEST + TEST.replace("test_small", "test_small_too").replace("import pytest", ""))
    result = tester.runpytest("--alloc-update")
    result.assert_outcomes(passed=2)
    output = result.stdout.str()
    assert output.count("was active while tests were measured") == 1
    result.stdout.fnmatch_lines(["a trace function (conftest.tracer) was active while tests were measured*coverage)"])


def test_no_tracer_no_notice(tester: pytest.Pytester) -> None:
    tester.makepyfile(TEST)
    result = tester.runpytest("--alloc-update")
    result.assert_outcomes(passed=1)
    assert "was active while tests were measured" not in result.stdout.str()


#: Allocates 200 KB on its first call in a process only (unless RECORDING is set): a budget failure that a rerun of
#: the same test, in the same process, does not repeat.
FLAKY_ONCE = """
import os
import pytest

CALLS = []

@pytest.mark.alloc_budget
def test_flaky():
    CALLS.append(1)
    if len(CALLS) == 1 and not os.environ.get("RECORDING"):
        held = [bytes(1000) for _ in range(200)]
        del held

@pytest.mark.alloc_budget
def test_steady():
    pass
"""


def test_a_rerun_replaces_the_attempt_before_it(
    tester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    pytest.importorskip("pytest_rerunfailures")
    tester.makepyfile(FLAKY_ONCE)
    monkeypatch.setenv("RECORDING", "1")
    tester.runpytest("--alloc-update").assert_outcomes(passed=2)
    monkeypatch.delenv("RECORDING")
    report = tmp_path / "report.json"
    junit = tmp_path / "junit.xml"
    # Judged on the first call alone: by default a second call, in a child process, clears the first attempt's
    # failure before the rerun plugin sees it.
    options = ("--reruns", "2", f"--alloc-json={report}", f"--junitxml={junit}", "--alloc-first-call-only")
    result = tester.runpytest("-p", "rerunfailures", *options)
    # The first attempt fails its budget, the rerun is within it: pytest reports one rerun and a pass.
    assert result.parseoutcomes() == {"passed": 2, "rerun": 1}
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["2 measured (2 tests): 2 passed, 0 failed, 0 missing*"])
    document = json.loads(report.read_text())
    results = {(r["nodeid"].split("::")[1], r["status"]) for r in document["results"]}
    assert results == {("test_flaky", "passed"), ("test_steady", "passed")}
    assert len(document["results"]) == 2
    # junitxml writes a testcase per attempt: each holds its own attempt's numbers, each metric once.
    cases = [case for case in ElementTree.parse(junit).iter("testcase") if case.get("name") == "test_flaky"]
    assert cases
    for case in cases:
        names = [prop.get("name") for prop in case.iter("property")]
        assert sorted(names) == sorted(set(names)) and "alloc_budget.peak" in names
    last = {prop.get("name"): int(prop.get("value") or -1) for prop in cases[-1].iter("property")}
    assert last["alloc_budget.peak"] < 100_000  # the rerun's numbers, not the first attempt's 200 KB


def test_a_rerun_that_fails_as_a_test_leaves_no_budget_result(tester: pytest.Pytester, tmp_path) -> None:
    # The first attempt passes as a test and fails its limit; the rerun fails as a test.  The test's result is
    # the last attempt's: a test failure, which is never judged, so no budget result remains.
    pytest.importorskip("pytest_rerunfailures")
    tester.makepyfile(
        """
        import pytest

        CALLS = []

        @pytest.mark.alloc_budget(peak=1000)
        def test_then_broken():
            CALLS.append(1)
            if len(CALLS) == 1:
                held = bytes(100_000)
                del held
            else:
                assert False, "broken on the rerun"
        """
    )
    report = tmp_path / "report.json"
    result = tester.runpytest("-p", "rerunfailures", "--reruns", "1", f"--alloc-json={report}")
    assert result.parseoutcomes() == {"failed": 1, "rerun": 1}
    result.stdout.fnmatch_lines(["*broken on the rerun*"])
    assert json.loads(report.read_text())["results"] == []


HYPOTHESIS_TESTS = """
import pytest
from hypothesis import given, seed, strategies as st

SEEN = []

@pytest.mark.alloc_budget
@given(st.lists(st.integers(), max_size=20))
def test_search(xs):
    sorted(xs)

@pytest.mark.alloc_budget
@seed(5)
@given(st.integers())
def test_own_seed(n):
    SEEN.append(n)

@given(st.integers())
def test_unbudgeted(n):
    pass
"""


def _allocations(path: Path) -> dict[str, int]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return {r["nodeid"].split("::")[-1]: r["metrics"]["allocations"]["measured"] for r in data["results"]}


@pytest.mark.skipif(unavailable_reason() is not None, reason="allocations are counted by the allocation counter")
def test_a_budgeted_given_test_searches_the_same_examples_in_every_run(tester: pytest.Pytester) -> None:
    tester.makepyfile(test_h=HYPOTHESIS_TESTS)
    tester.runpytest_subprocess("--alloc-update").assert_outcomes(passed=3)
    runs = []
    for i in range(3):  # each run a process of its own, as a user's runs are
        result = tester.runpytest_subprocess(f"--alloc-json=run{i}.json")
        result.assert_outcomes(passed=3)
        runs.append(_allocations(tester.path / f"run{i}.json"))
    assert set(runs[0]) == {"test_search", "test_own_seed"}
    # The same examples each time: what is left is Hypothesis's own bookkeeping of time (a few allocations in
    # hundreds of thousands); examples drawn at random differ by thousands.
    counts = [run["test_search"] for run in runs]
    assert max(counts) - min(counts) <= min(counts) // 1000


@pytest.mark.skipif(unavailable_reason() is not None, reason="allocations are counted by the allocation counter")
def test_a_given_test_recorded_outside_ci_measures_the_same_search_in_ci(
    tester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With a CI variable set, Hypothesis loads its own derandomized "ci" profile: without a seed of ours, the check
    # in CI would measure another search than the one recorded on a laptop.
    tester.makepyfile(test_h=HYPOTHESIS_TESTS)
    for name in ("CI", "TF_BUILD"):
        monkeypatch.delenv(name, raising=False)
    tester.runpytest_subprocess("--alloc-update", "--alloc-json=laptop.json").assert_outcomes(passed=3)
    monkeypatch.setenv("CI", "true")
    result = tester.runpytest_subprocess("--alloc-json=ci.json")
    result.assert_outcomes(passed=3)
    laptop, ci = _allocations(tester.path / "laptop.json"), _allocations(tester.path / "ci.json")
    assert abs(laptop["test_search"] - ci["test_search"]) <= laptop["test_search"] // 1000, (
        laptop,
        ci,
        result.stdout.str(),
    )


LAZY_IMPORT_TESTS = """
import pytest
from hypothesis import given, strategies as st

@pytest.mark.alloc_budget
@given(st.lists(st.integers(), max_size=20))
def test_search(xs):
    sorted(xs)

def test_imports():
    import lazy_mod  # a module of the project's own, imported by a test as a lazy import is
"""


@pytest.mark.skipif(unavailable_reason() is not None, reason="allocations are counted by the allocation counter")
def test_a_given_test_measures_the_same_search_after_a_test_imports_a_module_of_the_project(
    tester: pytest.Pytester,
) -> None:
    # Hypothesis draws examples from the constants of the project's modules, scanning those imported since its
    # last look (parsing them in a fresh checkout) inside the search: a budgeted search is held from them.
    tester.makepyfile(test_h=LAZY_IMPORT_TESTS)
    tester.makepyfile(lazy_mod="TABLE = [" + ", ".join(str(i * 7919) for i in range(300)) + "]\n")
    first, after_import = "test_h.py::test_search", "test_h.py::test_imports"
    tester.runpytest_subprocess("--alloc-update", "--alloc-json=fresh.json", first, after_import).assert_outcomes(
        passed=2
    )
    result = tester.runpytest_subprocess("--alloc-json=after.json", after_import, first)
    result.assert_outcomes(passed=2)
    fresh = _allocations(tester.path / "fresh.json")["test_search"]
    after = _allocations(tester.path / "after.json")["test_search"]
    assert abs(fresh - after) <= fresh // 1000  # not held: 695,432 fresh against 564,065 after the import


def test_a_test_not_budgeted_after_a_budgeted_search_keeps_the_project_constants(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        test_h="""
        import pytest
        from hypothesis import given, strategies as st
        from hypothesis.internal.conjecture import providers
        import consts

        @pytest.mark.alloc_budget
        @given(st.integers())
        def test_budgeted(n):
            assert 987654321 not in providers._get_local_constants().integers

        def test_plain():
            assert 987654321 in providers._get_local_constants().integers
        """
    )
    tester.makepyfile(consts="SPECIAL = 987654321\n")
    tester.runpytest_subprocess("--alloc-update").assert_outcomes(passed=2)
    tester.runpytest_subprocess().assert_outcomes(passed=2)
