"""The Region context manager: single use, so one window's numbers are never replaced by another's."""

from __future__ import annotations

import pytest

from pytest_allocbudget.measuring.measure import Region


def test_a_region_measures_once_and_refuses_a_second_block() -> None:
    region = Region()
    with region:
        kept = bytes(10_000)
    first = region.measurement
    assert first is not None and first.values["retained"] >= 10_000
    with pytest.raises(RuntimeError, match="a Region measures once"), region:
        pass
    assert region.measurement is first
    del kept


def test_a_region_cannot_be_entered_inside_itself() -> None:
    region = Region()
    with region, pytest.raises(RuntimeError, match="a Region measures once"), region:
        pass
