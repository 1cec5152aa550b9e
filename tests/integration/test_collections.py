"""The collector between measured tests: what each test leaves behind is frozen, so the full collections of later
windows do not walk it, and the garbage cycles among frozen objects are still released regularly."""

from __future__ import annotations

import pytest

from pytest_allocbudget.plugin import SWEEP_EVERY

#: Each test keeps a self-referencing object alive until the next test drops it: garbage that only the collector
#: can free, made garbage after the object was frozen.  The conftest counts the objects freed before the run ends
#: (the plugin unfreezes everything when the run ends, in pytest_unconfigure).
CONFTEST = """
import gc
import weakref

FREED = []
COUNTS = {}


class Cycle:
    def __init__(self):
        self.me = self


def keep_until_next(holder):
    holder[:] = [Cycle()]
    weakref.finalize(holder[0], FREED.append, 1)


def pytest_collection_finish(session):
    COUNTS["after collection"] = gc.get_freeze_count()


def pytest_sessionfinish(session):
    with open("freed.txt", "w") as stream:
        stream.write(f"{len(FREED)} {COUNTS['after collection']} {COUNTS.get('last test', -1)}")
"""

TESTS = """
import gc

import pytest

import conftest

HOLDER = []


@pytest.mark.alloc_budget
@pytest.mark.parametrize("n", range({count}))
def test_cycle(n):
    conftest.keep_until_next(HOLDER)


def test_last():
    conftest.COUNTS["last test"] = gc.get_freeze_count()
"""


def test_objects_left_by_measured_tests_are_frozen_and_their_garbage_is_swept(tester: pytest.Pytester) -> None:
    count = 2 * SWEEP_EVERY + 10
    tester.makeconftest(CONFTEST)
    tester.makepyfile(test_cycles=TESTS.replace("{count}", str(count)))
    tester.syspathinsert()
    result = tester.runpytest_subprocess("--alloc-update", "-p", "no:randomly")
    result.assert_outcomes(passed=count + 1)
    freed, after_collection, last_test = map(int, (tester.path / "freed.txt").read_text().split())
    assert last_test > after_collection  # what the measured tests left was frozen as they went
    # The cycles dropped before each of the two sweeps were freed by it; those after the last sweep wait for the
    # end of the run, at most SWEEP_EVERY of them.
    assert 2 * SWEEP_EVERY - 2 <= freed < count
