"""The native allocation counter: exact answers, threads, and every order of hooks beside tracemalloc.

Orders that could crash the interpreter run in a subprocess, so that a crash fails one test instead of the suite.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from typing import Callable

import pytest

from pytest_allocbudget.counter import CounterProbe, native, unavailable_reason
from pytest_allocbudget.measure import Region

pytestmark = pytest.mark.skipif(unavailable_reason() is not None, reason=f"no counter: {unavailable_reason()}")

KEEP: list[object] = [None]  # the region stores into KEEP[0]: assigning a slot allocates nothing for the list


def measure(function: Callable[[], object], all_threads: bool = False) -> dict[str, int]:
    """Measure one call of ``function``, after a call unmeasured: on Python 3.9 and 3.10 a function's first call
    keeps its frame for later, and the first call of the region's own code would do the same."""
    function()
    for _ in range(2):
        region = Region([CounterProbe(all_threads=all_threads)])
        with region:
            function()
    assert region.measurement is not None
    return dict(region.measurement.values)


@pytest.fixture(autouse=True)
def _clear_keep() -> Iterator[None]:
    yield
    KEEP[0] = None


def keep(value: object) -> None:
    KEEP[0] = value


@pytest.mark.smoke
def test_an_empty_region_measures_zero_everywhere() -> None:
    assert measure(lambda: None) == {"allocations": 0, "allocated": 0, "peak": 0, "retained": 0}


@pytest.mark.parametrize("size", [2, 1000, 100_000, 3_000_000])  # bytes of length 0 and 1 are cached singletons
def test_a_kept_bytes_object_retains_exactly_its_size(size: int) -> None:
    # A bytes object is one block of its own size (not tracked by the collector, so no GC header).
    values = measure(lambda: keep(bytes(size)))
    assert values["retained"] == sys.getsizeof(bytes(size))
    assert values["peak"] >= values["retained"]


def test_a_kept_list_of_known_size_retains_exactly_its_size() -> None:
    values = measure(lambda: keep([None] * 1000))
    assert values["retained"] == sys.getsizeof([None] * 1000)  # the object with its GC header, and its items


def test_counts_grow_exactly_with_the_number_of_allocations() -> None:
    def loop(k: int) -> None:
        for _ in range(k):
            bytearray(100)  # two blocks each: the object and its buffer; freed at once

    ten, hundred = measure(lambda: loop(10)), measure(lambda: loop(100))
    assert hundred["allocations"] - ten["allocations"] == 2 * 90
    per_iteration = (hundred["allocated"] - ten["allocated"]) / 90
    assert per_iteration == sys.getsizeof(bytearray(100))  # the object and its 101-byte buffer
    assert hundred["peak"] == ten["peak"]  # peak cannot see the repetition; the counts can
    assert hundred["retained"] == ten["retained"] == 0


def test_the_same_code_measures_the_same_every_time() -> None:
    def work() -> None:
        data = {str(i): [i] * 3 for i in range(500)}
        keep(sorted(data))

    work()  # the first call may fill caches the later ones use (the recipe's warmup=True)
    runs = [measure(work) for _ in range(5)]
    assert all(run == runs[0] for run in runs[1:]), runs


def test_peak_and_retained_agree_with_tracemalloc() -> None:
    # In a fresh process, so that what earlier tests left in caches cannot make one engine's run differ.
    code = """
        from pytest_allocbudget.counter import CounterProbe
        from pytest_allocbudget.measure import Region, TracemallocProbe

        KEEP = [None]

        def work():
            temporary = [str(i) for i in range(5000)]
            KEEP[0] = list(range(1000))
            del temporary

        def measure(probe):
            for _ in range(3):  # later passes reuse frames and caches the first pass made
                KEEP[0] = None
                region = Region([probe()])
                with region:
                    work()
            return region.measurement.values

        counter, traced = measure(CounterProbe), measure(TracemallocProbe)
        print(counter["peak"], traced["peak"], counter["retained"], traced["retained"])
    """
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    counter_peak, traced_peak, counter_retained, traced_retained = map(int, result.stdout.split())
    assert counter_peak == traced_peak
    assert counter_retained == traced_retained


def test_a_background_thread_does_not_move_the_test_s_numbers() -> None:
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            [str(i) for i in range(100)]

    def work() -> None:
        keep([str(i) for i in range(2000)])

    work()
    quiet = measure(work)
    keep(None)
    thread = threading.Thread(target=churn)
    thread.start()
    try:
        busy = [measure(work) for _ in range(5)]
    finally:
        stop.set()
        thread.join()
    for values in busy:
        # Threads share the free lists, so a block or two can move; the other thread's thousands cannot.
        assert abs(values["allocations"] - quiet["allocations"]) <= 3, (quiet, values)
        assert abs(values["retained"] - quiet["retained"]) <= 256, (quiet, values)


def test_only_the_test_s_thread_counts_unless_all_threads_is_asked_for() -> None:
    def work_in_a_thread() -> None:
        thread = threading.Thread(target=lambda: [str(i) for i in range(10_000)])
        thread.start()
        thread.join()

    work_in_a_thread()
    own = measure(work_in_a_thread)
    everything = measure(work_in_a_thread, all_threads=True)
    assert own["allocations"] < 1000  # starting and joining a thread, not its 10,000 strings
    assert everything["allocations"] > own["allocations"] + 10_000


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120, check=False
    )


PRELUDE = """
    import gc, tracemalloc
    from pytest_allocbudget import _counter as c

    def work():
        return [str(i) for i in range(1000)]

    def counted():
        gc.collect()
        c.start()
        work()
        return c.stop()[0]

    baseline = counted()
"""


@pytest.mark.parametrize(
    ("name", "steps", "refusals"),
    [
        # tracemalloc below the counter, removed in reverse order: the normal case
        ("nested", "tracemalloc.start(); c.start(); work(); check(c.stop); tracemalloc.stop()", 0),
        # the counter below tracemalloc, which is still running when the counter stops
        ("counter-first", "c.start(); tracemalloc.start(); check(c.stop); work(); tracemalloc.stop()", 1),
        # tracemalloc stopped while the counter sits on top of it: tracemalloc restores what it saved
        ("tracemalloc-stopped-under", "tracemalloc.start(); c.start(); tracemalloc.stop(); work(); check(c.stop)", 1),
        # both refusals in turn, then tracemalloc started and stopped again around a fresh counter
        (
            "twice",
            "c.start(); tracemalloc.start(); check(c.stop); tracemalloc.stop(); "
            "tracemalloc.start(); c.start(); tracemalloc.stop(); check(c.stop); "
            "tracemalloc.start(); c.start(); check(c.stop); tracemalloc.stop()",
            2,
        ),
    ],
)
def test_every_order_of_hooks_works_or_refuses_loudly_and_never_crashes(name: str, steps: str, refusals: int) -> None:
    code = (
        PRELUDE
        + """
    refused = 0
    def check(stop):
        global refused
        try:
            stop()
        except RuntimeError as error:
            assert "no longer the installed allocator" in str(error), error
            refused += 1
    """
        + "\n    "
        + steps.replace("; ", "\n    ")
        + """
    junk = [bytes(100) for _ in range(10000)]  # the allocator chain still works
    after = counted()
    print(refused, baseline, after)
    """
    )
    result = run_python(code)
    assert result.returncode == 0, f"{name}: exit {result.returncode}\n{result.stderr}"
    refused, baseline, after = map(int, result.stdout.split())
    assert refused == refusals
    # After any of these, a new counter counts exactly as before: no hook left behind counts twice.
    assert abs(after - baseline) <= 2, (baseline, after)


def test_start_twice_and_stop_without_start_are_errors() -> None:
    counter = native()
    assert counter is not None
    with pytest.raises(RuntimeError, match="not running"):
        counter.stop()
    counter.start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            counter.start()
    finally:
        counter.stop()
    assert not counter.running()


def test_a_region_whose_hook_was_displaced_fails_loudly() -> None:
    code = """
        import tracemalloc
        from pytest_allocbudget.counter import CounterProbe
        from pytest_allocbudget.measure import Region

        region = Region([CounterProbe()])
        try:
            with region:
                tracemalloc.start()  # the code under test starts tracemalloc and leaves it running
        except RuntimeError as error:
            print("refused:", error)
        tracemalloc.stop()
        data = [bytes(10) for _ in range(1000)]
        region = Region([CounterProbe()])
        with region:
            data = [bytes(10) for _ in range(1000)]
        print(region.measurement.values["allocations"])
    """
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    assert first.startswith("refused: the allocation counter is no longer the installed allocator")
    assert int(second) >= 1000
