"""Beside other plugins: their work stays out of the numbers, and tracers that change the numbers are named."""

from __future__ import annotations

import pytest

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
