"""Unit and property tests of :mod:`pytest_allocbudget.judging.units`."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_allocbudget.judging.units import UNIT_FACTORS, format_bytes, format_count, format_quantity, parse_size

# ------------------------------------------------------------------------------------------------ parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (0, 0),
        (4096, 4096),
        ("0", 0),
        ("4096", 4096),
        ("12 B", 12),
        ("12B", 12),
        ("4 KB", 4000),
        pytest.param("4 KiB", 4096, marks=pytest.mark.smoke),
        ("2 MB", 2_000_000),
        ("2 MiB", 2 * 1024 * 1024),
        ("3 GB", 3_000_000_000),
        ("3 GiB", 3 * 1024**3),
        ("  4 KiB  ", 4096),
        ("4KiB", 4096),
    ],
)
def test_parse_size_accepts_ints_and_every_unit(text: object, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("unit", sorted(UNIT_FACTORS))
def test_parse_size_units_are_case_sensitive(unit: str) -> None:
    # "Mb" reads as megabits to many people: only the documented spelling is accepted.
    assert parse_size(f"7 {unit}") == 7 * UNIT_FACTORS[unit]
    for spelling in {unit.lower(), unit.upper(), unit.swapcase()} - {unit}:
        with pytest.raises(ValueError, match="unknown unit"):
            parse_size(f"7 {spelling}")


def test_parse_size_unit_factors_are_the_documented_ones() -> None:
    assert UNIT_FACTORS == {
        "B": 1,
        "KB": 10**3,
        "KiB": 2**10,
        "MB": 10**6,
        "MiB": 2**20,
        "GB": 10**9,
        "GiB": 2**30,
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.5 KiB", 1536),
        ("1.50 KiB", 1536),
        ("0.5 KiB", 512),
        ("1.5 MB", 1_500_000),
        ("0.001 KB", 1),
        ("2.25 MiB", 2 * 1024 * 1024 + 256 * 1024),
        ("3.0", 3),
        ("3.000 B", 3),
    ],
)
def test_parse_size_decimals_giving_whole_bytes(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["0.5", "0.5 B", "1.1 KiB", "0.0001 KB", "1.0000001 MB"])
def test_parse_size_rejects_fractions_of_a_byte(text: str) -> None:
    with pytest.raises(ValueError, match="not a whole number of bytes") as info:
        parse_size(text)
    assert repr(text) in str(info.value)


@pytest.mark.parametrize("value", [-1, -4096])
def test_parse_size_rejects_negative_ints(value: int) -> None:
    with pytest.raises(ValueError, match="negative") as info:
        parse_size(value)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize("text", ["-1", "-4 KiB", " -0.5 MB"])
def test_parse_size_rejects_negative_strings(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_size(text)
    assert repr(text) in str(info.value)


@pytest.mark.parametrize("value", [True, False])
def test_parse_size_rejects_bools(value: bool) -> None:
    with pytest.raises(ValueError) as info:
        parse_size(value)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize("value", [1.0, 1.5, 4096.0, None, [4096], {"peak": 1}, b"4096"])
def test_parse_size_rejects_floats_and_other_types(value: object) -> None:
    with pytest.raises(ValueError, match="expected a size") as info:
        parse_size(value)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize("text", ["4 K", "4 kilobytes", "4 TiB", "4 bytes", "4 Ki", "1.5 iB"])
def test_parse_size_rejects_unknown_units(text: str) -> None:
    with pytest.raises(ValueError, match="unknown unit") as info:
        parse_size(text)
    message = str(info.value)
    assert repr(text) in message
    for unit in UNIT_FACTORS:  # the message lists the accepted units
        assert unit in message


@pytest.mark.parametrize(
    "text",
    ["", "   ", "KiB", "four KiB", "4 4 KiB", "1.", ".5 KiB", "1,5 KiB", "4 KiB!", "0x10", "1e3", "+4", "4 Ki B"],
)
def test_parse_size_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_size(text)
    assert repr(text) in str(info.value)


@given(st.integers(min_value=0, max_value=2**63))
def test_parse_size_int_and_its_string_agree(value: int) -> None:
    assert parse_size(value) == value
    assert parse_size(str(value)) == value
    assert parse_size(f"{value} B") == value


@given(st.integers(min_value=0, max_value=10**12), st.sampled_from(sorted(UNIT_FACTORS)))
def test_parse_size_scales_by_the_unit(number: int, unit: str) -> None:
    assert parse_size(f"{number} {unit}") == number * UNIT_FACTORS[unit]


@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=1, max_value=4))
def test_parse_size_decimal_kib_is_exact_or_rejected(millis: int, digits: int) -> None:
    # ``whole.fraction KiB`` is accepted exactly when it is a whole number of bytes.
    scale = 10**digits
    text = f"{millis // scale}.{millis % scale:0{digits}d} KiB"
    numerator = millis * 1024
    if numerator % scale == 0:
        assert parse_size(text) == numerator // scale
    else:
        with pytest.raises(ValueError, match="whole number of bytes"):
            parse_size(text)


# ------------------------------------------------------------------------------------------------ formatting


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "0 B"),
        (1, "1 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (10 * 1024, "10.0 KiB"),
        (1024**2, "1.0 MiB"),
        (5 * 1024**2 + 512 * 1024, "5.5 MiB"),
        (1024**3, "1.0 GiB"),
        (3 * 1024**4, "3072.0 GiB"),
        (-1, "-1 B"),
        (-1536, "-1.5 KiB"),
        (-(1024**2), "-1.0 MiB"),
    ],
)
def test_format_bytes(value: int, expected: str) -> None:
    assert format_bytes(value) == expected


@given(st.integers(min_value=-(2**50), max_value=2**50))
def test_format_bytes_sign_and_exactness(value: int) -> None:
    text = format_bytes(value)
    assert text.startswith("-") == (value < 0)
    assert format_bytes(-value) == (text[1:] if value < 0 else ("-" + text if value else text))
    if abs(value) < 1024:
        assert text == f"{value} B"
        assert parse_size(text.lstrip("-")) == abs(value)
    else:
        number, unit = text.lstrip("-").split(" ")
        assert unit in ("KiB", "MiB", "GiB")
        assert number.count(".") == 1
        assert len(number.split(".")[1]) == 1
        # one decimal: within half a tenth of the unit of the true value
        assert abs(float(number) * UNIT_FACTORS[unit] - abs(value)) <= 0.0500001 * UNIT_FACTORS[unit]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, "0"), (999, "999"), (1000, "1,000"), (123456, "123,456"), (1234567, "1,234,567"), (-1234, "-1,234")],
)
def test_format_count(value: int, expected: str) -> None:
    assert format_count(value) == expected


def test_format_quantity_by_unit() -> None:
    assert format_quantity(2048, "bytes") == "2.0 KiB"
    assert format_quantity(2048, "count") == "2,048"
