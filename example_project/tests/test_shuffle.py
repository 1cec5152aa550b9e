"""The shuffle: bucket, sort and group in two passes against grouping in one pass."""

from __future__ import annotations

import subprocess
import sys
import zlib
from pathlib import Path
from typing import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minireduce import WordCount, partition_of, samples
from minireduce.shuffle import shuffle_naive, shuffle_optimized
from pytest_allocbudget import AllocBudget, RegionResult

PAIRS = list(WordCount().map(samples.text_lines(800, seed=3)))  # the pairs exist before the regions start
PARTITIONS = 4


def test_shuffle(alloc_budget: AllocBudget, check_saving: Callable[[RegionResult, RegionResult], None]) -> None:
    shuffle_naive(PAIRS, PARTITIONS)  # warm-up: first calls, outside the regions
    shuffle_optimized(PAIRS, PARTITIONS)
    with alloc_budget.measure("naive") as naive:
        expected = shuffle_naive(PAIRS, PARTITIONS)
    with alloc_budget.measure("optimized") as optimized:
        shuffled = shuffle_optimized(PAIRS, PARTITIONS)
    assert shuffled == expected
    assert sum(len(values) for groups in shuffled for values in groups.values()) == len(PAIRS)
    check_saving(naive, optimized)


keys = st.one_of(
    st.lists(st.tuples(st.text(max_size=3), st.integers())),
    st.lists(st.tuples(st.integers(min_value=-50, max_value=50), st.integers())),
    st.lists(st.tuples(st.binary(max_size=3), st.integers())),
)


@given(keys, st.integers(min_value=1, max_value=8))
def test_shuffle_optimized_matches_naive(pairs: list[tuple[str | int | bytes, int]], partitions: int) -> None:
    assert shuffle_optimized(pairs, partitions) == shuffle_naive(pairs, partitions)


@given(st.lists(st.tuples(st.text(max_size=3), st.integers())), st.integers(min_value=1, max_value=8))
def test_every_key_lands_in_its_partition_with_its_values_in_order(
    pairs: list[tuple[str, int]], partitions: int
) -> None:
    shuffled = shuffle_optimized(pairs, partitions)
    assert len(shuffled) == partitions
    for index, groups in enumerate(shuffled):
        for key, values in groups.items():
            assert partition_of(key, partitions) == index
            assert values == [value for other, value in pairs if other == key]


def test_partitions_are_the_same_in_every_process() -> None:
    """str hashes are salted per process; the partitioner must not depend on them."""
    keys = ["alpha", "beta", "gamma", "delta", "épsilon"]
    code = f"from minireduce import partition_of; print([partition_of(k, 7) for k in {keys!r}])"
    child = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert child.stdout.strip() == str([partition_of(key, 7) for key in keys])
    assert partition_of("alpha", 7) == zlib.crc32(b"alpha") % 7


def test_unpartitionable_keys_are_refused() -> None:
    with pytest.raises(TypeError, match="keys must be str, bytes or int"):
        partition_of(1.5, 4)  # type: ignore[arg-type]
