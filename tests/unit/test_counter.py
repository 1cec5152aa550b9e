"""The native allocation counter: exact answers, threads, and every order of hooks beside tracemalloc.

Orders that could crash the interpreter run in a subprocess, so that a crash fails one test instead of the suite.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest

from pytest_allocbudget.measuring.counter import CounterProbe, native, unavailable_reason
from pytest_allocbudget.measuring.measure import Region

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


# Blocks over many 1 MiB chunks of address space: small ones in pymalloc's arenas, and 100 KB ones from the C library.
SPREAD_SIZES = [2 + (i * 37) % 600 for i in range(20_000)] + [100_000 + i for i in range(150)]


def test_many_windows_in_a_row_each_measure_exactly_what_they_keep() -> None:
    # The counter keeps its tables' leaves from one window to the next, zeroing only what a window wrote.  A record
    # left over from an earlier window would be found again here, when a block of the window before is freed or its
    # address handed out again, and would show as retained bytes below the known answer (or wrapped around).
    def replace() -> None:
        keep([bytes(size) for size in SPREAD_SIZES])

    def release() -> None:
        keep(None)

    runs = []
    for _ in range(12):
        values = measure(replace)
        kept = KEEP[0]
        assert isinstance(kept, list)
        assert values["retained"] == sys.getsizeof(kept) + sum(map(sys.getsizeof, kept))
        assert values["retained"] <= values["peak"] <= values["allocated"]
        runs.append(values)
        if len(runs) % 3 == 0:  # a window that only frees blocks of the windows before: nothing of its own
            assert measure(release) == {"allocations": 0, "allocated": 0, "peak": 0, "retained": 0}
    assert all(run == runs[0] for run in runs[1:]), runs


def test_peak_and_retained_agree_with_tracemalloc() -> None:
    # In a fresh process, so that what earlier tests left in caches cannot make one engine's run differ.
    code = """
        from pytest_allocbudget.measuring.counter import CounterProbe
        from pytest_allocbudget.measuring.measure import Region, TracemallocProbe

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
    from pytest_allocbudget.measuring import _counter as c

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
        from pytest_allocbudget.measuring.counter import CounterProbe
        from pytest_allocbudget.measuring.measure import Region

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


# Interpreters with a GIL of their own run truly in parallel with the main one, yet call the same, process-wide
# allocator hooks.  Each one churns in a thread of its own while the main thread measures the same work over and
# over: the work makes the counter's tables grow across many chunks of the address space, and start() and stop()
# clear them and swap the allocators while the other interpreters free and allocate.
OTHER_INTERPRETERS = """
    import gc, json, os, sys, threading
    try:
        import _interpreters as interpreters  # 3.13
    except ImportError:
        import _xxsubinterpreters as interpreters  # 3.12; create() makes an isolated one, with its own GIL
    from pytest_allocbudget.measuring import _counter as c

    ALL_THREADS, CYCLES, STOP = {all_threads}, {cycles}, {stop!r}
    KEEP = [None]

    def work():
        big = [bytes(300_000) for _ in range(64)]
        small = [str(i) for i in range(20_000)]
        KEEP[0] = bytes(100_000)
        del big, small

    def counted():
        gc.collect()
        c.start(all_threads=ALL_THREADS)
        work()
        return c.stop()

    work()
    counted()
    alone = counted()
    assert 0 <= alone[2] - sys.getsizeof(bytes(100_000)) < 1000, alone  # retained: the kept bytes object, mostly
    ready, started = os.pipe()
    churn = f'''
    import os
    os.write({{started}}, b"x")
    keep = []
    while not os.path.exists({{STOP!r}}):
        for i in range(200):
            keep.append([str(j) for j in range(50)])
            keep.append(bytes(600 + i))
            keep.append(bytearray(40_000))
        del keep[:len(keep) // 2 + 1]
    '''
    ids = [interpreters.create() for _ in range(2)]
    threads = [threading.Thread(target=interpreters.run_string, args=(i, churn)) for i in ids]
    for thread in threads:
        thread.start()
    for _ in ids:
        os.read(ready, 1)  # both churn before the first measurement
    during = [counted() for _ in range(CYCLES)]
    open(STOP, "w").close()
    for thread in threads:
        thread.join()
    for i in ids:
        interpreters.destroy(i)
    print(json.dumps(dict(alone=alone, during=during)))
"""


@pytest.mark.skipif(sys.version_info < (3, 12), reason="interpreters with a GIL of their own exist from Python 3.12 on")
# Before the tables were locked, counting every thread crashed within 25 measurements, and counting one thread
# crashed or miscounted within 150 in most runs; the race needs a table to grow or be cleared while another
# interpreter frees, so more measurements catch it more often.
@pytest.mark.parametrize(("all_threads", "cycles"), [(False, 150), (True, 50)], ids=["own-thread", "all-threads"])
def test_interpreters_with_their_own_gil_allocating_meanwhile_never_corrupt_the_counts(
    all_threads: bool, cycles: int, tmp_path: Path
) -> None:
    code = OTHER_INTERPRETERS.format(all_threads=all_threads, cycles=cycles, stop=str(tmp_path / "stop"))
    result = run_python(code)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stderr[-3000:]}"
    measured = json.loads(result.stdout)
    alone, during = measured["alone"], measured["during"]
    if not all_threads:
        # The other interpreters' threads are not the test's: every measurement equals the one made alone.
        assert [counts for counts in during if counts != alone] == []
        return
    # Their threads count too, by how far they got in each window; but the main thread's work is always in, and
    # live bytes (the sum of the blocks still recorded) can neither wrap below zero nor leave the table inexact.
    for allocations, allocated, live, peak, exact in during:
        assert exact
        assert allocations >= alone[0] and allocated >= alone[1]
        assert peak >= alone[3] and peak >= live
        assert live < 1 << 40, live


@pytest.mark.skipif(sys.version_info < (3, 12), reason="interpreters with a GIL of their own exist from Python 3.12 on")
def test_work_the_test_s_thread_runs_in_another_interpreter_counts_as_the_test_s() -> None:
    code = """
        try:
            import _interpreters as interpreters
        except ImportError:
            import _xxsubinterpreters as interpreters
        from pytest_allocbudget.measuring.counter import CounterProbe
        from pytest_allocbudget.measuring.measure import Region

        other = interpreters.create()
        script = "data = [str(i) for i in range(10_000)]"

        def measure(code):
            for _ in range(2):
                region = Region([CounterProbe()])
                with region:
                    code()
            return region.measurement.values

        there = measure(lambda: interpreters.run_string(other, script))
        here = measure(lambda: exec(script, {}))
        print(there["allocations"], there["retained"], here["allocations"], here["retained"])
        interpreters.destroy(other)
    """
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    there, kept_there, here, kept_here = map(int, result.stdout.split())
    # The thread counts, not the interpreter: the same 10,000 strings (three blocks each) either way, within what
    # switching interpreters and compiling the script cost.
    assert abs(there - here) < 100, (there, here)
    assert here >= 30_000
    # Kept by the other interpreter's globals, the list and its strings are still alive when the region ends.
    assert kept_here == 0
    assert kept_there > 10_000 * 50, kept_there


@pytest.mark.skipif(
    sys.version_info < (3, 13), reason="ctypes loads in an interpreter with its own GIL from Python 3.13 on"
)
def test_memory_handed_between_interpreters_leaves_the_counts_whole() -> None:
    # Raw memory may pass between interpreters.  The other interpreter runs in a thread of its own, so that what it
    # allocates is not the test's.  Each case runs in a window and prints what it retained.
    code = """
        import ctypes, gc, queue, threading
        import _interpreters as interpreters
        from pytest_allocbudget.measuring import _counter as c

        SETUP = '''
        import ctypes
        api = ctypes.pythonapi
        for name in ("PyMem_Malloc", "PyMem_RawMalloc"):
            getattr(api, name).restype = ctypes.c_void_p
            getattr(api, name).argtypes = [ctypes.c_size_t]
        for name in ("PyMem_Free", "PyMem_RawFree"):
            getattr(api, name).argtypes = [ctypes.c_void_p]
        '''
        exec(SETUP)
        other = interpreters.create()
        interpreters.run_string(other, SETUP)
        slot = ctypes.c_void_p()  # where the other interpreter leaves an address for this one
        where = ctypes.addressof(slot)

        scripts, done = queue.Queue(), queue.Queue()

        def serve():  # one thread for the whole run: starting a thread inside a window would count
            for script in iter(scripts.get, None):
                interpreters.run_string(other, script)
                done.put(None)

        server = threading.Thread(target=serve)
        server.start()

        def there(script):
            scripts.put(script)
            done.get()

        def round_trip_only(alloc, free):
            there("pass")

        def main_allocates_other_frees(alloc, free):
            block = getattr(api, alloc)(100_000)
            there(f"api.{free}({block})")

        def other_allocates_main_frees(alloc, free):
            there(f"ctypes.c_void_p.from_address({where}).value = api.{alloc}(100_000)")
            getattr(api, free)(slot.value)

        def retained(case, alloc, free):
            for _ in range(2):  # the first pass fills caches (f-strings, ctypes' call machinery)
                gc.collect()
                c.start()
                case(alloc, free)
                result = c.stop()
            return result[2]

        print(retained(round_trip_only, None, None), *(
            retained(case, alloc, free)
            for case in (main_allocates_other_frees, other_allocates_main_frees)
            for alloc, free in (("PyMem_RawMalloc", "PyMem_RawFree"), ("PyMem_Malloc", "PyMem_Free"))
        ))
        scripts.put(None)
        server.join()
        interpreters.destroy(other)
    """
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    # Frees are honoured from every thread and interpreter, so the test's 100,000 bytes are gone from retained; the
    # other interpreter's were never counted, and freeing them here subtracts nothing (live bytes would wrap around).
    reference, *cases = map(int, result.stdout.split())
    for retained in cases:
        assert abs(retained - reference) < 1000, result.stdout
