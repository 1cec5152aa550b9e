"""Byte sizes and counts as people write them, and back.

Budgets are stored as plain integers so that the file diffs cleanly; people, however, write limits as
``"2 MiB"`` and read reports in KiB.  Parsing is strict (an unknown suffix is an error, not a guess) so that a typo
in a marker cannot silently turn a limit into a different number.
"""

from __future__ import annotations

import re

__all__ = ["UNIT_FACTORS", "format_bytes", "format_count", "format_quantity", "parse_size"]

#: Suffixes accepted by :func:`parse_size`, case-sensitive.
UNIT_FACTORS: dict[str, int] = {
    "B": 1,
    "KB": 1000,
    "KiB": 1024,
    "MB": 1000**2,
    "MiB": 1024**2,
    "GB": 1000**3,
    "GiB": 1024**3,
}
_SIZE_RE = re.compile(r"^\s*(?P<number>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[A-Za-z]*)\s*$")


def parse_size(value: object) -> int:
    """Turn ``1024``, ``"1024"``, ``"4 KiB"`` or ``"1.5 MB"`` into a whole number of bytes.

    Raises ``ValueError`` with a message that lists the accepted forms; callers add where the value came from.
    Fractions of a byte are rejected rather than rounded, because a budget is an exact number.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a size such as 4096 or '4 KiB', got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a size cannot be negative, got {value!r}")
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a size such as 4096 or '4 KiB', got {value!r}")
    match = _SIZE_RE.match(value)
    if match is None:
        raise ValueError(f"expected a size such as 4096 or '4 KiB' (units: {', '.join(UNIT_FACTORS)}), got {value!r}")
    unit = match.group("unit") or "B"
    factor = UNIT_FACTORS.get(unit)
    if factor is None:  # case matters: "Mb" (megabits) is not "MB"
        raise ValueError(f"unknown unit {unit!r} in {value!r}; use one of {', '.join(UNIT_FACTORS)}")
    number = match.group("number")
    whole, _, fraction = number.partition(".")
    numerator = int(whole + fraction) * factor
    denominator = 10 ** len(fraction)
    if numerator % denominator:
        raise ValueError(f"{value!r} is not a whole number of bytes")
    result: int = numerator // denominator
    return result


def format_bytes(value: int) -> str:
    """Render a byte count for reports: exact below 1 KiB, binary units with one decimal above."""
    sign = "-" if value < 0 else ""
    magnitude = abs(value)
    if magnitude < 1024:
        return f"{sign}{magnitude} B"
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        # Compare after rounding, so that 1,048,575 B reads "1.0 MiB", not "1024.0 KiB".
        if round(magnitude / factor, 1) >= 1 or unit == "KiB":
            return f"{sign}{magnitude / factor:.1f} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def format_count(value: int) -> str:
    """Render a count with thousands separators, which makes six-digit numbers readable at a glance."""
    return f"{value:,}"


def format_quantity(value: int, unit: str) -> str:
    """Render ``value`` in the unit of its metric (``"bytes"`` or ``"count"``)."""
    return format_bytes(value) if unit == "bytes" else format_count(value)
