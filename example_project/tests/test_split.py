"""Input splits: appending one record at a time against slicing to a known size.

This pair is budgeted as two tests with the marker, one per twin: the input is built when the module is
imported, so nothing but the split itself is inside the measured window, and ``warmup=True`` keeps the first
call's one-time costs (such as a new code object's first frame on Python 3.9 and 3.10) out of the numbers.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minireduce.engine import split_naive, split_optimized

RECORDS = list(range(20_000))
SIZE = 1000


@pytest.mark.alloc_budget(warmup=True)
def test_split_naive() -> None:
    splits = split_naive(RECORDS, SIZE)
    assert len(splits) == 20


@pytest.mark.alloc_budget(warmup=True)
def test_split_optimized() -> None:
    splits = split_optimized(RECORDS, SIZE)
    assert len(splits) == 20


@given(st.lists(st.integers()), st.integers(min_value=1, max_value=40))
def test_split_optimized_matches_naive(records: list[int], size: int) -> None:
    assert split_optimized(records, size) == split_naive(records, size)


@given(st.lists(st.integers()), st.integers(min_value=1, max_value=40))
def test_splits_cover_the_input_in_order(records: list[int], size: int) -> None:
    splits = split_optimized(records, size)
    assert [record for split in splits for record in split] == records
    assert all(len(split) == size for split in splits[:-1])
    assert all(0 < len(split) <= size for split in splits)


def test_split_optimized_takes_any_sequence() -> None:
    assert split_optimized(tuple(range(5)), 2) == [[0, 1], [2, 3], [4]]
    assert split_optimized(range(5), 3) == [[0, 1, 2], [3, 4]]
