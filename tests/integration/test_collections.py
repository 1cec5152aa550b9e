"""The collector between measured tests: what each test leaves behind is frozen, so the full collections of later
windows do not walk it, and the garbage cycles among frozen objects are still released as the run grows."""

from __future__ import annotations

import pytest

from pytest_allocbudget.plugin import SWEEP_GROWTH, SWEEP_MIN

#: Each test keeps 2,000 lists alive for good (so the frozen objects grow, as a long run's reports do) and a
#: self-referencing object alive until the next test drops it: garbage that only the collector can free, made
#: garbage after it was frozen.  The conftest counts the cycles freed before the run ends (the plugin unfreezes
#: everything when the run ends, in pytest_unconfigure).
CONFTEST = """
import gc
import weakref

FREED = []
COUNTS = {"last": 0}
KEPT = []


class Cycle:
    def __init__(self):
        self.me = self


def step(holder):
    KEPT.append([[] for _ in range(2000)])
    holder[:] = [Cycle()]
    weakref.finalize(holder[0], FREED.append, 1)
    COUNTS["last"] = gc.get_freeze_count()


def pytest_collection_finish(session):
    COUNTS["after collection"] = gc.get_freeze_count()


def pytest_sessionfinish(session):
    with open("freed.txt", "w") as stream:
        stream.write(f"{len(FREED)} {COUNTS['after collection']} {COUNTS['last']}")
"""

TESTS = """
import pytest

import conftest

HOLDER = []


@pytest.mark.alloc_budget
@pytest.mark.parametrize("n", range({count}))
def test_cycle(n):
    conftest.step(HOLDER)
"""


def _sweeps(count: int) -> list[int]:
    """After which measured tests the plugin sweeps, by its rule: SWEEP_MIN tests, then growth by SWEEP_GROWTH."""
    sweeps, last = [], 0
    for measured in range(1, count + 1):
        if measured - last >= max(SWEEP_MIN, last * SWEEP_GROWTH):
            sweeps.append(measured)
            last = measured
    return sweeps


def test_objects_left_by_measured_tests_are_frozen_and_their_garbage_is_swept(tester: pytest.Pytester) -> None:
    tester.makeconftest(CONFTEST)
    count = 250
    sweeps = _sweeps(count)
    assert len(sweeps) >= 2
    tester.makepyfile(test_cycles=TESTS.replace("{count}", str(count)))
    tester.syspathinsert()
    result = tester.runpytest_subprocess("--alloc-update", "-p", "no:randomly")
    result.assert_outcomes(passed=count)
    freed, after_collection, last = map(int, (tester.path / "freed.txt").read_text().split())
    # What the measured tests left was frozen as they went: 2,000 lists a test.
    assert last > after_collection + 2_000 * (count - 1)
    # Each sweep freed the cycles dropped before it; those dropped after the last sweep wait for the end of the run.
    assert freed == sweeps[-1] - 1
