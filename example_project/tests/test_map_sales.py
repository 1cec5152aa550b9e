"""SalesStats' map: each row read as a dict of its columns against a NamedTuple record."""

from __future__ import annotations

from typing import Callable

from hypothesis import given
from hypothesis import strategies as st

from minireduce import SALE_FIELDS, Sale, samples
from minireduce.jobs import map_sales_naive, map_sales_optimized
from minireduce.shuffle import shuffle_optimized
from pytest_allocbudget import AllocBudget, RegionResult

ROWS = samples.sales_rows(4000, seed=2)
PARTITIONS = 4


def test_map_sales(alloc_budget: AllocBudget, check_saving: Callable[[RegionResult, RegionResult], None]) -> None:
    shuffle_optimized(map_sales_naive(ROWS, "store"), PARTITIONS)  # warm-up: first calls, outside the regions
    shuffle_optimized(map_sales_optimized(ROWS, "store"), PARTITIONS)
    with alloc_budget.measure("naive") as naive:
        expected = shuffle_optimized(map_sales_naive(ROWS, "store"), PARTITIONS)
    with alloc_budget.measure("optimized") as optimized:
        shuffled = shuffle_optimized(map_sales_optimized(ROWS, "store"), PARTITIONS)
    assert shuffled == expected
    assert sum(len(groups) for groups in shuffled) == 30  # stores
    check_saving(naive, optimized)


rows = st.tuples(
    st.integers(),
    st.integers(min_value=1, max_value=365),
    st.sampled_from(["north", "south"]),
    st.text(max_size=4),
    st.text(max_size=4),
    st.floats(allow_nan=False),
)


@given(st.lists(rows), st.sampled_from([field for field in SALE_FIELDS if field != "amount"]))
def test_map_sales_optimized_matches_naive(sales: list[tuple[int, int, str, str, str, float]], group_by: str) -> None:
    assert list(map_sales_optimized(sales, group_by)) == list(map_sales_naive(sales, group_by))


def test_refunds_are_left_out() -> None:
    sales = [Sale(1, 1, "north", "north-01", "sku-0001", 10.0), Sale(2, 1, "north", "north-01", "sku-0001", -10.0)]
    assert list(map_sales_optimized(sales, "product")) == [("sku-0001", 10.0)]
