"""Folding a key's values: debug and error messages formatted for every value against only when needed."""

from __future__ import annotations

import logging
from typing import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minireduce import Stats, samples
from minireduce.jobs import summarize_naive, summarize_optimized
from pytest_allocbudget import AllocBudget, RegionResult

# 40 keys with about a hundred float values each, as the shuffle would hand them to KeyStats' reducer.
GROUPS: dict[str, list[float]] = {}
for _key, _value in samples.key_values(4000, seed=5):
    if _value is not None:
        GROUPS.setdefault(_key, []).append(_value)


def test_summarize(
    alloc_budget: AllocBudget,
    check_saving: Callable[[RegionResult, RegionResult], None],
    quiet_minireduce_logger: logging.Logger,
) -> None:
    for key, values in GROUPS.items():  # warm-up: first calls and the logger's level cache, outside the regions
        summarize_naive(key, values)
        summarize_optimized(key, values)
    with alloc_budget.measure("naive") as naive:
        expected = [summarize_naive(key, values) for key, values in GROUPS.items()]
    with alloc_budget.measure("optimized") as optimized:
        stats = [summarize_optimized(key, values) for key, values in GROUPS.items()]
    assert stats == expected
    assert sum(item.count for item in stats) == sum(len(values) for values in GROUPS.values())
    check_saving(naive, optimized)


numbers = st.lists(st.one_of(st.integers(), st.floats(min_value=-1e12, max_value=1e12, allow_nan=False)), min_size=1)


@given(st.text(max_size=3), numbers)
def test_summarize_optimized_matches_naive(key: str, values: list[int | float]) -> None:
    assert summarize_optimized(key, values) == summarize_naive(key, values)


def test_both_log_the_same_lines_when_debug_logging_is_on(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="minireduce"):
        summarize_naive("k", [1.5, 2])
        naive = [record.getMessage() for record in caplog.records]
        caplog.clear()
        summarize_optimized("k", [1.5, 2])
        optimized = [record.getMessage() for record in caplog.records]
    assert naive == ["summarize 'k': value 1.5, running total 0", "summarize 'k': value 2, running total 1.5"]
    assert optimized == naive


@pytest.mark.parametrize("summarize", [summarize_naive, summarize_optimized])
def test_errors_say_which_key_and_value(summarize: Callable[[object, list[object]], Stats]) -> None:
    with pytest.raises(TypeError, match=r"^summarize 'k': value '3' is not a number$"):
        summarize("k", [1, "3"])
    with pytest.raises(ValueError, match=r"^summarize 'k': no values$"):
        summarize("k", [])


def test_stats_mean() -> None:
    assert summarize_optimized("k", [1, 2, 3, 6]) == Stats(4, 12, 1, 6)
    assert summarize_optimized("k", [1, 2, 3, 6]).mean == 3.0
