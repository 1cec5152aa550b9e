"""The collector between measured tests: what each test leaves behind is frozen, so the full collections of later
windows do not walk it, and the garbage cycles among frozen objects are still released as the run grows."""

from __future__ import annotations

import pytest

from pytest_allocbudget.measuring.freezing import SWEEP_GROWTH

#: Each test keeps 2,000 lists alive for good (so the frozen heap grows, as a long run's reports make it grow) and a
#: self-referencing object alive until the next test drops it: garbage that only the collector can free, made
#: garbage after it was frozen.  At the start of each test the conftest notes how many of those cycles were freed so
#: far and how many objects are frozen (the plugin unfreezes everything when the test loop ends).
CONFTEST = """
import gc
import weakref

FREED = []
SEEN = []
KEPT = []


class Cycle:
    def __init__(self):
        self.me = self


def step(holder):
    SEEN.append((len(FREED), gc.get_freeze_count()))
    KEPT.append([[] for _ in range(2000)])
    holder[:] = [Cycle()]
    weakref.finalize(holder[0], FREED.append, 1)


def pytest_sessionfinish(session):
    with open("seen.txt", "w") as stream:
        stream.write("\\n".join(f"{freed} {frozen}" for freed, frozen in SEEN))
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


def test_objects_left_by_measured_tests_are_frozen_and_their_garbage_is_swept(tester: pytest.Pytester) -> None:
    tester.makeconftest(CONFTEST)
    count = 250
    tester.makepyfile(test_cycles=TESTS.replace("{count}", str(count)))
    tester.syspathinsert()
    result = tester.runpytest_subprocess("--alloc-update", "-p", "no:randomly")
    result.assert_outcomes(passed=count)
    seen = [tuple(map(int, line.split())) for line in (tester.path / "seen.txt").read_text().splitlines()]
    assert len(seen) == count
    # What the measured tests left was frozen as they went: 2,000 lists a test.
    assert seen[-1][1] > seen[0][1] + 2_000 * (count - 1)
    # A sweep, after a test, frees every cycle dropped while frozen: before test i (from 0), those of tests 0 to
    # i - 2 (test i - 1 dropped the cycle of test i - 2).  Between sweeps nothing is freed, so the count of freed
    # cycles is flat, then catches up.
    sweeps = [i for i in range(1, count) if seen[i][0] != seen[i - 1][0]]
    assert all(seen[i][0] == i - 1 for i in sweeps)
    assert len(sweeps) >= 2
    # Spaced by the heap's growth: what was frozen about doubled from one sweep to the next (SWEEP_GROWTH of the
    # heap frozen since, counted as frozen, and a little of that dead by the sweep).
    frozen = [seen[i][1] for i in sweeps]
    assert all(later >= (1 + SWEEP_GROWTH * 0.5) * earlier for earlier, later in zip(frozen, frozen[1:]))


#: Records, in each end-of-session hook, whether the collector can see the objects made before the run (frozen
#: while tests are measured) and how many it holds frozen.  Hypothesis's ``register_random`` asks
#: ``gc.get_referrers`` in the same way, and frozen referrers are invisible to it.
REFERRERS_CONFTEST = """
import gc

import pytest

THING = object()
BOX = [THING]
AT_START = []


def pytest_configure(config):
    AT_START.append(gc.get_freeze_count())  # not 0 everywhere: CPython 3.12 starts with objects frozen


def look(hook, config):
    # Asked of the config, not the environment: the outer test run may itself be an xdist worker.
    process = getattr(config, "workerinput", {}).get("workerid", "main")
    seen = any(ref is BOX for ref in gc.get_referrers(THING))
    with open(f"seen-{process}.txt", "a") as stream:
        stream.write(f"{hook} {seen} {gc.get_freeze_count() <= AT_START[0]}\\n")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    look("sessionfinish", session.config)


@pytest.hookimpl(tryfirst=True)
def pytest_terminal_summary(terminalreporter):
    look("terminal_summary", terminalreporter.config)
"""


@pytest.mark.parametrize("xdist", [False, True], ids=["serial", "xdist"])
def test_nothing_is_frozen_once_the_last_test_has_run(tester: pytest.Pytester, xdist: bool) -> None:
    tester.makeconftest(REFERRERS_CONFTEST)
    tester.makepyfile(
        """
        import gc
        import pytest

        @pytest.mark.alloc_budget
        def test_measured():
            assert gc.get_freeze_count() > 0  # frozen while tests are measured, which keeps windows cheap
        """
    )
    if xdist:
        pytest.importorskip("xdist")
    result = tester.runpytest_subprocess("--alloc-update", *(["-p", "xdist", "-n", "1"] if xdist else []))
    result.assert_outcomes(passed=1)
    # Every process, the xdist worker that measured included, sees every referrer in its end-of-session hooks.
    both = "sessionfinish True True\nterminal_summary True True\n"
    expected = {"seen-main.txt": both, **({"seen-gw0.txt": both} if xdist else {})}
    assert {path.name: path.read_text() for path in tester.path.glob("seen-*.txt")} == expected


#: A project that freezes its heap itself once collection is done (to keep its own collections short), and records,
#: after the last hook of the run, whether the heap is frozen: interpreter exit then skips what is frozen.
FREEZING_CONFTEST = """
import atexit
import gc


def pytest_collection_finish(session):
    gc.freeze()


def record():
    with open("at-exit.txt", "w") as stream:
        stream.write(str(gc.get_freeze_count() > 0))


atexit.register(record)
"""


def test_a_heap_the_project_froze_is_frozen_again_when_the_run_ends(tester: pytest.Pytester) -> None:
    tester.makeconftest(FREEZING_CONFTEST)
    tester.makepyfile(
        """
        import gc
        import pytest

        @pytest.mark.alloc_budget
        def test_measured():
            assert gc.get_freeze_count() > 0
        """
    )
    result = tester.runpytest_subprocess("--alloc-update")
    result.assert_outcomes(passed=1)
    assert (tester.path / "at-exit.txt").read_text() == "True"
