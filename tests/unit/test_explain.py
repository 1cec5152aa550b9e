"""The explanation's second run: the counter samples the lines that allocate, without tracemalloc or a trace hook."""

from __future__ import annotations

import gc
import threading
from typing import Callable

import pytest

from pytest_allocbudget.measuring.counter import native, unavailable_reason
from pytest_allocbudget.measuring.explain import SAMPLES, Explanation, sampling_rates, trace

pytestmark = pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))

BIG = 8 * 1024 * 1024
KEPT: list[object] = []


def _line(function: object, text: str) -> int:
    import inspect

    source, first = inspect.getsourcelines(function)  # type: ignore[arg-type]
    return first + next(number for number, line in enumerate(source) if text in line)


def many_small_and_one_big() -> None:
    small = [str(i) for i in range(100_000, 120_000)]  # 20,000 strings, about 1 MiB, freed at the end
    KEPT.append(bytes(BIG))  # the big block
    del small


def _lines(lines: object) -> dict[int, tuple[int, int]]:
    return {line.lineno: (line.count, line.size) for line in lines if line.filename == __file__}  # type: ignore[attr-defined]


def test_a_big_block_is_always_among_the_sampled_lines() -> None:
    # Coarse rates, as for a test with millions of allocations: one sample in about 5,000 calls and 1 MiB.
    values = {"allocations": 5_000 * SAMPLES, "allocated": 1024 * 1024 * SAMPLES}
    assert sampling_rates(values) == (5_000, 1024 * 1024)
    big = _line(many_small_and_one_big, "KEPT.append(bytes(BIG))")
    small = _line(many_small_and_one_big, "small = [str(i)")
    for _ in range(5):  # the intervals are drawn at random; a block over the byte interval is seen every time
        KEPT.clear()
        explanation = trace(many_small_and_one_big, values=values)
        assert explanation.error is None
        assert (explanation.sample_calls, explanation.sample_bytes) == (5_000, 1024 * 1024)
        charged = _lines(explanation.alloc_lines)
        assert charged[big][1] >= BIG
        assert explanation.peak_lines[0].filename == __file__
        assert explanation.peak_lines[0].lineno == big
        assert explanation.peak_lines[0].size >= BIG
        assert explanation.end_lines[0].lineno == big
        assert small not in _lines(explanation.end_lines)  # freed before the end
        assert explanation.captured >= BIG
        assert explanation.peak >= explanation.captured
    KEPT.clear()


def _strings() -> None:
    texts = [str(i) for i in range(1000, 1200)]
    assert len(texts) == 200


def _counted(function: Callable[[], None]) -> int:
    """The allocation calls ``function`` makes, as a measured window counts them."""
    counter = native()
    assert counter is not None
    function()  # a first call pays for what is paid once
    gc.disable()
    try:
        counter.start()
        function()
        counter.pause()
        return counter.stop()[0]
    finally:
        gc.enable()


def test_a_small_test_is_recorded_at_every_call() -> None:
    line = _line(_strings, "texts = [str(i)")
    measured = _counted(_strings)
    explanation = trace(_strings, values={"allocations": 250, "allocated": 10_000})
    assert (explanation.sample_calls, explanation.sample_bytes) == (1, 1)
    # Every call is a sample: the line is charged every call it makes (the second run is not the measured one, and
    # may differ by a block or two: see test_sampling_every_call_charges_exactly_what_is_counted).
    assert abs(_lines(explanation.alloc_lines)[line][0] - measured) <= 2


def test_sampling_every_call_charges_exactly_what_is_counted() -> None:
    counter = native()
    assert counter is not None
    _strings()
    gc.disable()
    try:
        counter.start(sample_calls=1, sample_bytes=1, own_prefix="/nowhere/")
        _strings()
        counter.pause()
        allocations, allocated = counter.stop()[:2]
    finally:
        gc.enable()
    sampled = counter.samples()[1]
    # The frame objects the sampler makes the interpreter create (from 3.11 on) are neither counted nor charged.
    assert sum(line[2] for line in sampled) == allocations
    assert sum(line[3] for line in sampled) == allocated


def test_the_plugin_s_own_frames_are_charged_to_no_line() -> None:
    explanation = trace(many_small_and_one_big, values={"allocations": 1000, "allocated": 1000})
    KEPT.clear()
    every = [*explanation.alloc_lines, *explanation.peak_lines, *explanation.end_lines]
    assert every
    assert not [line for line in every if "pytest_allocbudget" in line.filename]


def _work() -> None:
    for _ in range(200):
        _ = [str(i) for i in range(500)]


def test_the_estimates_add_up_to_about_the_totals() -> None:
    total = _counted(_work)
    explanation = trace(_work, values={"allocations": total, "allocated": 1})
    calls = sum(line.count for line in explanation.alloc_lines)
    # Sampled about every total / SAMPLES calls, scaled up: the sum misses only the tail after the last sample.  The
    # traced call is another call of _work than the counted one, and may make a few calls more or fewer.
    assert explanation.sample_calls == total // SAMPLES > 1
    assert 0.9 * total < calls <= 1.01 * total


def test_blocks_freed_by_another_thread_leave_the_lines() -> None:
    handed: list[object] = []

    def hand_over() -> None:
        handed.extend(bytearray(1000) for _ in range(2000))
        freer = threading.Thread(target=handed.clear)
        freer.start()
        freer.join()

    explanation = trace(hand_over, values={"allocations": 2000, "allocated": 2_000_000})
    assert explanation.error is None
    assert sum(line.size for line in explanation.peak_lines) > 1_000_000
    assert not [line for line in explanation.end_lines if line.size > 100_000]


def test_an_error_in_the_second_run_is_reported() -> None:
    def fails() -> None:
        raise ValueError("boom")

    explanation = trace(fails, values={})
    assert explanation == Explanation(
        error="the test raised on its second call (ValueError: boom)",
        sample_calls=64,
        sample_bytes=64 * 1024,
        peak=explanation.peak,
        captured=explanation.captured,
    )


def test_sampling_is_for_one_thread_and_its_samples_are_read_after_stop() -> None:
    counter = native()
    assert counter is not None
    with pytest.raises(ValueError, match="one thread"):
        counter.start(all_threads=True, sample_calls=1, sample_bytes=1)
    with pytest.raises(ValueError, match="together"):
        counter.start(sample_calls=1)
    counter.start(sample_calls=1, sample_bytes=1)
    try:
        with pytest.raises(RuntimeError, match="still running"):
            counter.samples()
    finally:
        counter.stop()
    assert counter.samples()[1]  # the pytest.raises above allocated
    assert counter.samples() == (0, [], True)  # read once
