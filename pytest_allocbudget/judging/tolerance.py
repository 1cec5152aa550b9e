"""Tolerance arithmetic: how far above its budget a measurement may go before it is a regression.

A tolerance is ``max(percent of the budget, an absolute amount)``.  The percent part scales with big numbers; the
absolute part absorbs the few hundred bytes that shared state (caches, interned strings) moves between runs, which
would otherwise make small budgets flaky.  The arithmetic is exact (the percentage is a ``Fraction``, the slack a
ceiling computed in integers) so the same budget gives the same verdict on every machine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction

from .units import parse_size

__all__ = ["Tolerance"]

_PERCENT_RE = re.compile(r"^\s*(?P<number>[0-9]+(?:\.[0-9]+)?)\s*%\s*$")


@dataclass(frozen=True)
class Tolerance:
    """``max(percent % of the budget, absolute)``, in the unit of the metric it applies to."""

    percent: Fraction = Fraction(0)
    absolute: int = 0
    # percent / 100 as a numerator and a denominator, taken apart once: every judged test computes a slack twice per
    # metric, and arithmetic on Fraction objects made up most of the time a verdict took.
    _numerator: int = field(init=False, repr=False, compare=False)
    _denominator: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.percent < 0 or self.absolute < 0:
            raise ValueError("a tolerance cannot be negative")
        ratio = Fraction(self.percent) / 100
        object.__setattr__(self, "_numerator", ratio.numerator)
        object.__setattr__(self, "_denominator", ratio.denominator)

    def slack(self, budget: int) -> int:
        """How much above ``budget`` is still within tolerance (rounded up: the benefit of the doubt)."""
        # ceil(|budget| * percent / 100), exactly: floor division of the negated product rounds up.
        return max(-(-abs(budget) * self._numerator // self._denominator), self.absolute)

    def allowed(self, budget: int) -> int:
        """The highest value that still passes against ``budget``."""
        return budget + self.slack(budget)

    def within(self, budget: int, measured: int) -> bool:
        """True when ``measured`` is no more than the budget plus its slack."""
        return measured <= self.allowed(budget)

    def moved(self, budget: int, measured: int) -> bool:
        """True when ``measured`` differs from ``budget`` by more than the slack, in either direction.

        Used by ``--alloc-update`` so that re-recording leaves an entry alone while it is within tolerance,
        which keeps the budget file's diff to the tests that really changed.
        """
        return abs(measured - budget) > self.slack(budget)

    def describe(self, unit: str) -> str:
        """Human form, the same syntax :meth:`parse` accepts."""
        parts = []
        if self.percent:
            parts.append(f"{_format_percent(self.percent)}%")
        if self.absolute or not parts:
            parts.append(_format_absolute(self.absolute, unit))
        return ", ".join(parts)

    @classmethod
    def parse(cls, spec: object, unit: str) -> Tolerance:
        """Parse ``"5%"``, ``"4 KiB"``, ``"2%, 4 KiB"``, ``0`` or ``16`` (counts).

        ``unit`` is the unit of the metric the tolerance applies to: byte metrics take sizes with a unit, count
        metrics take plain numbers only.  Raises ``ValueError``; callers add where the value came from.
        """
        if isinstance(spec, bool) or not isinstance(spec, (int, str)):
            raise ValueError(f"expected a tolerance such as '5%', '4 KiB' or '2%, 4 KiB', got {spec!r}")
        if isinstance(spec, int):
            return cls(absolute=_parse_absolute(spec, unit))
        parts = [part.strip() for part in spec.split(",")]
        if not 1 <= len(parts) <= 2 or not all(parts):
            raise ValueError(f"expected a tolerance such as '5%', '4 KiB' or '2%, 4 KiB', got {spec!r}")
        percent: Fraction | None = None
        absolute: int | None = None
        for part in parts:
            match = _PERCENT_RE.match(part)
            if match is not None:
                if percent is not None:
                    raise ValueError(f"tolerance {spec!r} has two percentages")
                percent = Fraction(match.group("number"))
            else:
                if absolute is not None:
                    raise ValueError(f"tolerance {spec!r} has two absolute amounts")
                absolute = _parse_absolute(part, unit)
        return cls(percent=percent or Fraction(0), absolute=absolute or 0)


def _parse_absolute(value: object, unit: str) -> int:
    if unit == "bytes":
        return parse_size(value)
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ValueError(f"expected a whole number (a count, no unit suffix), got {value!r}")


def _format_percent(percent: Fraction) -> str:
    """Exact decimal form, so that ``parse(describe())`` gives the same tolerance back."""
    if percent.denominator == 1:
        return str(percent.numerator)
    digits = 0
    scaled = percent
    while scaled.denominator != 1 and digits < 30:  # parse() only makes finite decimals
        scaled *= 10
        digits += 1
    if scaled.denominator != 1:
        return repr(float(percent))
    text = str(scaled.numerator).rjust(digits + 1, "0")
    return f"{text[:-digits]}.{text[-digits:]}"


def _format_absolute(value: int, unit: str) -> str:
    if unit == "bytes":
        for suffix, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
            if value and value % factor == 0:
                return f"{value // factor} {suffix}"
        return f"{value} B"
    return str(value)
