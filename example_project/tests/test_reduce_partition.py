"""Handing a partition to the reducer: defensive copies against lending the engine's own lists."""

from __future__ import annotations

from typing import Callable

from hypothesis import given
from hypothesis import strategies as st

from minireduce import KeyStats, WordCount, samples
from minireduce.engine import reduce_partition_naive, reduce_partition_optimized
from minireduce.shuffle import shuffle_optimized
from pytest_allocbudget import AllocBudget, RegionResult

JOB = WordCount()
# One partition's groups, as the shuffle hands them over: each word with a list of 1s, one per occurrence.
GROUPS = shuffle_optimized(JOB.map(samples.text_lines(800, seed=4)), 1)[0]


def test_reduce_partition(
    alloc_budget: AllocBudget, check_saving: Callable[[RegionResult, RegionResult], None]
) -> None:
    reduce_partition_naive(JOB, GROUPS)  # warm-up: first calls, outside the regions
    reduce_partition_optimized(JOB, GROUPS)
    with alloc_budget.measure("naive") as naive:
        expected = reduce_partition_naive(JOB, GROUPS)
    with alloc_budget.measure("optimized") as optimized:
        counts = reduce_partition_optimized(JOB, GROUPS)
    assert counts == expected
    assert sum(counts.values()) == sum(len(values) for values in GROUPS.values())
    check_saving(naive, optimized)


@given(st.dictionaries(st.text(max_size=3), st.lists(st.integers(), min_size=1)))
def test_reduce_partition_optimized_matches_naive(groups: dict[str, list[int]]) -> None:
    assert reduce_partition_optimized(WordCount(), groups) == reduce_partition_naive(WordCount(), groups)
    assert reduce_partition_optimized(KeyStats(), groups) == reduce_partition_naive(KeyStats(), groups)


def test_the_optimized_path_lends_the_lists_and_leaves_them_alone() -> None:
    groups = {"a": [1, 2], "b": [3]}
    seen = []

    class Recording:
        def map(self, records: object) -> list[tuple[str, int]]:
            return []

        def reduce(self, key: str, values: list[int]) -> int:
            seen.append(values)
            return len(values)

    assert reduce_partition_optimized(Recording(), groups) == {"a": 2, "b": 1}
    assert seen[0] is groups["a"] and seen[1] is groups["b"]  # borrowed, not copied
    assert groups == {"a": [1, 2], "b": [3]}
