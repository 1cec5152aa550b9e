"""Binary frames: slicing bytes (a copy per slice) against a memoryview (no copies)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minireduce import encode_frames, samples
from minireduce.frames import parse_frames_naive, parse_frames_optimized
from pytest_allocbudget import AllocBudget, RegionResult

FRAMES = samples.sensor_frames(1000, seed=6)
DATA = encode_frames(FRAMES)

Parser = Callable[[bytes], Iterator[tuple[int, tuple[float, ...]]]]


def test_parse_frames(alloc_budget: AllocBudget, check_saving: Callable[[RegionResult, RegionResult], None]) -> None:
    # The frames are drained by a deque that keeps none of them, so that the numbers are the parser's own and not
    # those of a container holding its output (which would be the same for both).
    deque(parse_frames_naive(DATA), maxlen=0)  # warm-up: first calls and the Struct cache, outside the regions
    deque(parse_frames_optimized(DATA), maxlen=0)
    with alloc_budget.measure("naive") as naive:
        deque(parse_frames_naive(DATA), maxlen=0)
    with alloc_budget.measure("optimized") as optimized:
        deque(parse_frames_optimized(DATA), maxlen=0)
    assert list(parse_frames_optimized(DATA)) == list(parse_frames_naive(DATA)) == FRAMES
    check_saving(naive, optimized)


readings = st.lists(st.floats(allow_nan=False), max_size=24).map(tuple)
frames = st.lists(st.tuples(st.integers(min_value=0, max_value=0xFFFF), readings))


@given(frames)
def test_parse_frames_optimized_matches_naive(items: list[tuple[int, tuple[float, ...]]]) -> None:
    data = encode_frames(items)
    assert list(parse_frames_optimized(data)) == list(parse_frames_naive(data)) == items


@given(frames.filter(bool), st.data())
def test_both_reject_a_truncated_buffer_alike(items: list[tuple[int, tuple[float, ...]]], data: st.DataObject) -> None:
    sizes = [6 + 8 * len(values) for _, values in items]
    index = data.draw(st.integers(min_value=0, max_value=len(items) - 1))
    cut = sum(sizes[:index]) + data.draw(st.integers(min_value=1, max_value=sizes[index] - 1))  # inside a frame
    truncated = encode_frames(items)[:cut]
    errors = []
    for parse in (parse_frames_naive, parse_frames_optimized):
        with pytest.raises(ValueError) as error:
            list(parse(truncated))
        errors.append(str(error.value))
    assert errors[0] == errors[1]


@pytest.mark.parametrize("parse", [parse_frames_naive, parse_frames_optimized])
def test_bad_lengths_are_reported(parse: Parser) -> None:
    with pytest.raises(ValueError, match="bad frame length 5"):
        list(parse(b"\x00\x00\x00\x05\x00\x01\x00\x00\x00"))
    with pytest.raises(ValueError, match="truncated frame: its header announces 10 bytes, 4 remain"):
        list(parse(b"\x00\x00\x00\x0a\x00\x01\x00\x00"))
