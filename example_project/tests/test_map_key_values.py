"""The map phase of KeyStats: building the split's list of pairs against yielding them one by one.

The pairs go to the shuffle, as in the engine, since what a generator saves depends on its consumer: the shuffle
unpacks each pair and drops it, so the generator's tuples are freed as fast as they are made.
"""

from __future__ import annotations

from typing import Callable

from hypothesis import given
from hypothesis import strategies as st

from minireduce import samples
from minireduce.jobs import map_key_values_naive, map_key_values_optimized
from minireduce.shuffle import shuffle_optimized
from pytest_allocbudget import AllocBudget, RegionResult

RECORDS = samples.key_values(4000, seed=1)
PARTITIONS = 4


def test_map_key_values(alloc_budget: AllocBudget, check_saving: Callable[[RegionResult, RegionResult], None]) -> None:
    shuffle_optimized(map_key_values_naive(RECORDS), PARTITIONS)  # warm-up: first calls, outside the regions
    shuffle_optimized(map_key_values_optimized(RECORDS), PARTITIONS)
    with alloc_budget.measure("naive") as naive:
        expected = shuffle_optimized(map_key_values_naive(RECORDS), PARTITIONS)
    with alloc_budget.measure("optimized") as optimized:
        shuffled = shuffle_optimized(map_key_values_optimized(RECORDS), PARTITIONS)
    assert shuffled == expected
    assert sum(len(values) for groups in shuffled for values in groups.values()) == sum(
        value is not None for _, value in RECORDS
    )
    check_saving(naive, optimized)


values = st.one_of(st.none(), st.integers(), st.floats(allow_nan=True, allow_infinity=True))


@given(st.lists(st.tuples(st.text(max_size=3), values)))
def test_map_key_values_optimized_matches_naive(records: list[tuple[str, int | float | None]]) -> None:
    assert list(map_key_values_optimized(records)) == map_key_values_naive(records)


def test_missing_and_nan_values_are_skipped() -> None:
    records = [("a", 1.5), ("b", None), ("a", float("nan")), ("c", 0)]
    assert list(map_key_values_optimized(records)) == [("a", 1.5), ("c", 0)]
