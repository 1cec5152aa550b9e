"""Unit and property tests of :mod:`pytest_allocbudget.judging.tolerance`."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from pytest_allocbudget.judging.tolerance import Tolerance

UNITS = ("bytes", "count")

budgets = st.integers(min_value=0, max_value=2**40)
measurements = st.integers(min_value=0, max_value=2**41)
tolerances = st.builds(
    Tolerance,
    percent=st.fractions(min_value=0, max_value=1000, max_denominator=10_000),
    absolute=st.integers(min_value=0, max_value=2**24),
)
# Percentages as people write them: up to two decimals, up to four significant digits (what describe() renders).
written_percents = st.builds(lambda n, k: Fraction(n, 10**k), st.integers(1, 9999), st.integers(0, 2))


# ------------------------------------------------------------------------------------------------ parse


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("5%", Tolerance(percent=Fraction(5))),
        (" 5 % ", Tolerance(percent=Fraction(5))),
        ("2.5%", Tolerance(percent=Fraction(5, 2))),
        ("0.25%", Tolerance(percent=Fraction(1, 4))),
        ("4 KiB", Tolerance(absolute=4096)),
        ("4096", Tolerance(absolute=4096)),
        pytest.param("2%, 4 KiB", Tolerance(percent=Fraction(2), absolute=4096), marks=pytest.mark.smoke),
        ("4 KiB, 2%", Tolerance(percent=Fraction(2), absolute=4096)),
        ("2%,4KiB", Tolerance(percent=Fraction(2), absolute=4096)),
        ("1.5 KiB", Tolerance(absolute=1536)),
        ("1 MB", Tolerance(absolute=1_000_000)),
        (0, Tolerance()),
        ("0", Tolerance()),
        ("0%", Tolerance()),
        (4096, Tolerance(absolute=4096)),
    ],
)
def test_parse_bytes(spec: object, expected: Tolerance) -> None:
    assert Tolerance.parse(spec, "bytes") == expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (16, Tolerance(absolute=16)),
        (0, Tolerance()),
        ("16", Tolerance(absolute=16)),
        (" 16 ", Tolerance(absolute=16)),
        ("5%", Tolerance(percent=Fraction(5))),
        ("5%, 16", Tolerance(percent=Fraction(5), absolute=16)),
        ("16, 5%", Tolerance(percent=Fraction(5), absolute=16)),
    ],
)
def test_parse_count(spec: object, expected: Tolerance) -> None:
    assert Tolerance.parse(spec, "count") == expected


@pytest.mark.parametrize(
    ("spec", "bad"),
    [("4 KiB", "4 KiB"), ("16 B", "16 B"), ("2%, 4 KiB", "4 KiB"), ("1.5", "1.5"), ("-1", "-1"), (-1, -1)],
)
def test_parse_count_rejects_byte_units_and_non_counts(spec: object, bad: object) -> None:
    with pytest.raises(ValueError, match=r"expected a whole number \(a count, no unit suffix\)") as info:
        Tolerance.parse(spec, "count")
    assert str(info.value).endswith(f"got {bad!r}")


@pytest.mark.parametrize(("spec", "what"), [("2%, 3%", "two percentages"), ("1%,1%", "two percentages")])
def test_parse_rejects_two_percentages(spec: str, what: str) -> None:
    with pytest.raises(ValueError, match=what) as info:
        Tolerance.parse(spec, "bytes")
    assert repr(spec) in str(info.value)


@pytest.mark.parametrize(("spec", "unit"), [("4 KiB, 8 KiB", "bytes"), ("1, 2", "count"), ("0, 0", "bytes")])
def test_parse_rejects_two_absolutes(spec: str, unit: str) -> None:
    with pytest.raises(ValueError, match="two absolute amounts") as info:
        Tolerance.parse(spec, unit)
    assert repr(spec) in str(info.value)


@pytest.mark.parametrize("spec", ["", "   ", ",", "5%,", ", 5%", "1%, 2 KiB, 3 KiB", "1%,,2 KiB"])
@pytest.mark.parametrize("unit", UNITS)
def test_parse_rejects_empty_or_too_many_parts(spec: str, unit: str) -> None:
    with pytest.raises(ValueError, match="expected a tolerance") as info:
        Tolerance.parse(spec, unit)
    assert repr(spec) in str(info.value)


@pytest.mark.parametrize("spec", [True, False, None, 1.5, 5.0, [5], {"peak": 5}, Fraction(5)])
@pytest.mark.parametrize("unit", UNITS)
def test_parse_rejects_other_types(spec: object, unit: str) -> None:
    with pytest.raises(ValueError, match="expected a tolerance") as info:
        Tolerance.parse(spec, unit)
    assert repr(spec) in str(info.value)


@pytest.mark.parametrize("spec", ["-5%", "5 %%", "five%", "5% KiB", "4 KiX", "0.5 B", "-4 KiB"])
def test_parse_rejects_bad_parts(spec: str) -> None:
    with pytest.raises(ValueError):
        Tolerance.parse(spec, "bytes")


def test_negative_tolerance_cannot_be_built() -> None:
    with pytest.raises(ValueError, match="negative"):
        Tolerance(percent=Fraction(-1))
    with pytest.raises(ValueError, match="negative"):
        Tolerance(absolute=-1)


# ------------------------------------------------------------------------------------------------ arithmetic


@pytest.mark.parametrize(
    ("tolerance", "budget", "slack"),
    [
        (Tolerance(), 1000, 0),
        (Tolerance(absolute=4096), 0, 4096),
        (Tolerance(absolute=4096), 10**9, 4096),
        (Tolerance(percent=Fraction(5)), 1000, 50),
        (Tolerance(percent=Fraction(5)), 1001, 51),  # 50.05 rounded up: the benefit of the doubt
        (Tolerance(percent=Fraction(5)), 0, 0),
        (Tolerance(percent=Fraction(2), absolute=4096), 100_000, 4096),  # 2000 < 4096
        (Tolerance(percent=Fraction(2), absolute=4096), 1_000_000, 20_000),  # 20000 > 4096
        (Tolerance(percent=Fraction(1, 3)), 300, 1),
        (Tolerance(percent=Fraction(1, 3)), 301, 2),
        (Tolerance(percent=Fraction(5)), -1000, 50),  # the magnitude of the budget, never negative
    ],
)
def test_slack(tolerance: Tolerance, budget: int, slack: int) -> None:
    assert tolerance.slack(budget) == slack
    assert tolerance.allowed(budget) == budget + slack


def test_within_and_moved_at_the_edges() -> None:
    tolerance = Tolerance(percent=Fraction(10))  # slack 100 on a budget of 1000
    assert tolerance.within(1000, 1100)
    assert not tolerance.within(1000, 1101)
    assert tolerance.within(1000, 0)  # far below is within (it passes)
    assert not tolerance.moved(1000, 1100)
    assert tolerance.moved(1000, 1101)
    assert not tolerance.moved(1000, 900)
    assert tolerance.moved(1000, 899)  # moved looks both ways
    zero = Tolerance()
    assert zero.within(5, 5)
    assert not zero.within(5, 6)
    assert not zero.moved(5, 5)
    assert zero.moved(5, 4)
    assert zero.moved(5, 6)


def test_arithmetic_is_exact_for_large_budgets() -> None:
    # 1% of 10**20 + 1 is 10**18 + 0.01: a float computation would lose the fraction, the ceiling must not.
    tolerance = Tolerance(percent=Fraction(1))
    assert tolerance.slack(10**20) == 10**18
    assert tolerance.slack(10**20 + 1) == 10**18 + 1


@given(tolerances, st.integers(min_value=-(2**70), max_value=2**70))
@example(Tolerance(percent=Fraction(1, 3)), 301)
@example(Tolerance(percent=Fraction(9999, 100), absolute=1), -(10**20) - 1)
def test_slack_is_the_ceiling_of_the_exact_fraction(tolerance: Tolerance, budget: int) -> None:
    # The definition, in Fraction arithmetic: the integer computation must give the same slack for every budget.
    assert tolerance.slack(budget) == max(math.ceil(abs(budget) * tolerance.percent / 100), tolerance.absolute)


@given(tolerances, budgets)
def test_within_budget_itself(tolerance: Tolerance, budget: int) -> None:
    assert tolerance.within(budget, budget)
    assert not tolerance.moved(budget, budget)


@given(tolerances, budgets, measurements, measurements)
def test_within_is_monotone(tolerance: Tolerance, budget: int, first: int, second: int) -> None:
    smaller, measured = sorted((first, second))
    if tolerance.within(budget, measured):
        assert tolerance.within(budget, smaller)
    if not tolerance.within(budget, smaller):
        assert not tolerance.within(budget, measured)


@given(tolerances, budgets)
def test_slack_is_at_least_each_part(tolerance: Tolerance, budget: int) -> None:
    slack = tolerance.slack(budget)
    assert isinstance(slack, int)
    assert slack >= tolerance.absolute
    assert slack >= tolerance.percent * budget / 100
    # and no more than needed: the larger part, rounded up to a whole unit
    assert slack == max(tolerance.absolute, math.ceil(tolerance.percent * budget / 100))


@given(tolerances, budgets)
def test_allowed_is_the_last_passing_value(tolerance: Tolerance, budget: int) -> None:
    allowed = tolerance.allowed(budget)
    assert allowed >= budget
    assert tolerance.within(budget, allowed)
    assert not tolerance.within(budget, allowed + 1)


@given(tolerances, budgets, measurements)
def test_moved_iff_beyond_slack(tolerance: Tolerance, budget: int, measured: int) -> None:
    slack = tolerance.slack(budget)
    if abs(measured - budget) <= slack:
        assert not tolerance.moved(budget, measured)
    else:
        assert tolerance.moved(budget, measured)
    # moving up beyond the slack is exactly failing ``within``
    if measured > budget:
        assert tolerance.moved(budget, measured) == (not tolerance.within(budget, measured))


# ------------------------------------------------------------------------------------------------ describe


@pytest.mark.parametrize(
    ("tolerance", "unit", "text"),
    [
        (Tolerance(), "bytes", "0 B"),
        (Tolerance(), "count", "0"),
        (Tolerance(percent=Fraction(5)), "bytes", "5%"),
        (Tolerance(percent=Fraction(5, 2)), "bytes", "2.5%"),
        (Tolerance(absolute=4096), "bytes", "4 KiB"),
        (Tolerance(absolute=4097), "bytes", "4097 B"),
        (Tolerance(absolute=3 * 1024**2), "bytes", "3 MiB"),
        (Tolerance(absolute=2 * 1024**3), "bytes", "2 GiB"),
        (Tolerance(absolute=1000), "bytes", "1000 B"),
        (Tolerance(absolute=16), "count", "16"),
        (Tolerance(percent=Fraction(2), absolute=4096), "bytes", "2%, 4 KiB"),
        (Tolerance(percent=Fraction(2), absolute=16), "count", "2%, 16"),
    ],
)
def test_describe(tolerance: Tolerance, unit: str, text: str) -> None:
    assert tolerance.describe(unit) == text
    assert Tolerance.parse(text, unit) == tolerance


@given(
    st.one_of(st.just(Fraction(0)), written_percents),
    st.integers(min_value=0, max_value=2**40),
    st.sampled_from(UNITS),
)
def test_describe_round_trips_through_parse(percent: Fraction, absolute: int, unit: str) -> None:
    tolerance = Tolerance(percent=percent, absolute=absolute)
    assert Tolerance.parse(tolerance.describe(unit), unit) == tolerance


@given(st.sampled_from(["5%", "0.5%", "12.25%", "4 KiB", "2%, 4 KiB", "4 KiB, 2%", "1.5 MiB", "100 B", "0"]))
def test_parse_then_describe_is_stable(spec: str) -> None:
    tolerance = Tolerance.parse(spec, "bytes")
    text = tolerance.describe("bytes")
    assert Tolerance.parse(text, "bytes") == tolerance
    assert Tolerance.parse(text, "bytes").describe("bytes") == text


@pytest.mark.parametrize("spec", ["33.333333%", "1.2345678%", "1234567.5%", "0.00001%"])
def test_describe_round_trips_precise_percents(spec: str) -> None:
    tolerance = Tolerance.parse(spec, "bytes")
    assert Tolerance.parse(tolerance.describe("bytes"), "bytes") == tolerance


@example(Tolerance(percent=Fraction(1, 3)))
@given(tolerances)
def test_describe_renders_every_tolerance_parseably(tolerance: Tolerance) -> None:
    # Fractions that are not decimals cannot round-trip exactly; describe must still produce something parse accepts.
    assume(tolerance.percent < 10**5 and (tolerance.percent == 0 or tolerance.percent >= Fraction(1, 1000)))
    parsed = Tolerance.parse(tolerance.describe("bytes"), "bytes")
    assert parsed.absolute == tolerance.absolute
    assert abs(parsed.percent - tolerance.percent) <= tolerance.percent / 10**5
