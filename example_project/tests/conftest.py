"""Shared settings for the example's tests.

Hypothesis runs derandomized and without its example database: the suite must give the same examples on every
run, and a check run must leave no new files in the working tree.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Callable

import pytest
from hypothesis import settings

from pytest_allocbudget import RegionResult

settings.register_profile("minireduce", max_examples=60, deadline=None, derandomize=True, database=None)
settings.load_profile("minireduce")

#: The optimised twin of every pair must make at most this share of its naive twin's allocation calls.
MAX_SHARE = 0.4


@pytest.fixture
def check_saving() -> Callable[[RegionResult, RegionResult], None]:
    """Assert, on the numbers just measured, what test_budgets_prove_the_savings.py asserts on the recorded ones."""

    def check(naive: RegionResult, optimized: RegionResult) -> None:
        if "allocations" not in naive.values:  # measured with tracemalloc: no counts to compare
            return
        share = optimized["allocations"] / naive["allocations"]
        assert share <= MAX_SHARE, (
            f"optimized made {optimized['allocations']:,} allocations, naive {naive['allocations']:,}: "
            f"{share:.0%} of them, more than {MAX_SHARE:.0%}"
        )

    return check


@pytest.fixture
def quiet_minireduce_logger() -> Iterator[logging.Logger]:
    """The engine's logger at INFO, whatever ``--log-level`` says, so that its debug lines are off as in production.

    Budgeted tests that log must not depend on the command line: with debug logging on, both twins format their
    messages and the numbers change.
    """
    logger = logging.getLogger("minireduce")
    level = logger.level
    logger.setLevel(logging.INFO)
    yield logger
    logger.setLevel(level)
