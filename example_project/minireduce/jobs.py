"""The jobs, and the hot paths inside them.

A job is a small frozen dataclass (its parameters are its configuration, so it pickles for process workers) with a
``map`` over one input split that yields (key, value) pairs, a ``reduce`` from one key and all its values to a
result, and optionally a ``combine`` that folds a key's values inside one map task, before the shuffle.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from typing import Any, TypeVar, Union

from .config import slotted
from .frames import parse_frames_optimized
from .records import SALE_FIELDS, Sale, Stats
from .shuffle import Key

__all__ = [
    "KeyStats",
    "SalesStats",
    "SensorStats",
    "WordCount",
    "map_key_values_naive",
    "map_key_values_optimized",
    "map_sales_naive",
    "map_sales_optimized",
    "summarize_naive",
    "summarize_optimized",
]

logger = logging.getLogger("minireduce")

K = TypeVar("K", str, bytes, int)
Number = Union[int, float]
_NUMBER_TYPES = (int, float)

#: Stripped from both ends of a word, so that "end." and "end" count as one word.
_PUNCTUATION = ".,;:!?\"'()[]{}<>-"


# ------------------------------------------------------------------------------------------------ word count


@slotted
@dataclasses.dataclass(frozen=True)
class WordCount:
    """How often each word occurs in lines of text (lower-cased, stripped of surrounding punctuation)."""

    def map(self, lines: Sequence[str]) -> Iterator[tuple[str, int]]:
        for line in lines:
            for word in line.lower().split():
                word = word.strip(_PUNCTUATION)
                if word:
                    yield word, 1

    def combine(self, word: str, counts: list[int]) -> int:
        """Counts add up, so a map task can send one count per word instead of a 1 per occurrence."""
        return sum(counts)

    def reduce(self, word: str, counts: list[int]) -> int:
        return sum(counts)


# --------------------------------------------------------------------------------- numeric (key, value) records


def map_key_values_naive(records: Iterable[tuple[K, Number | None]]) -> list[tuple[K, Number]]:
    """Build the whole list of the split's pairs, then hand it on.

    Every pair tuple stays alive until the consumer is done with the list, and the list itself is reallocated
    again and again as it grows, all for pairs the shuffle reads once and drops.
    """
    pairs: list[tuple[K, Number]] = []
    for key, value in records:
        if value is None or value != value:  # a missing value, or NaN
            continue
        pairs.append((key, value))
    return pairs


def map_key_values_optimized(records: Iterable[tuple[K, Number | None]]) -> Iterator[tuple[K, Number]]:
    """Yield the pairs one at a time: the consumer unpacks each and drops it before the next one is made.

    A tuple freed that way goes back to the interpreter's free list for its size and the next pair reuses it,
    so the whole split costs one generator, whatever its size.
    """
    for key, value in records:
        if value is None or value != value:  # a missing value, or NaN
            continue
        yield key, value


def summarize_naive(key: object, values: Iterable[Number]) -> Stats:
    """Validate and fold the values, formatting two messages per value that are almost never used.

    The debug line is an f-string, so it is formatted before ``logger.debug`` gets to see that debug logging is
    off; the error message is prepared in case the value turns out bad. Each is several new strings per value
    (the repr of the key, of the value, of the running total, and the joined result).
    """
    count = 0
    total: Number = 0
    minimum: Number | None = None
    maximum: Number | None = None
    for value in values:
        logger.debug(f"summarize {key!r}: value {value!r}, running total {total!r}")
        problem = f"summarize {key!r}: value {value!r} is not a number"
        if not isinstance(value, _NUMBER_TYPES):
            raise TypeError(problem)
        count += 1
        total += value
        if minimum is None or value < minimum:
            minimum = value
        if maximum is None or value > maximum:
            maximum = value
    if minimum is None or maximum is None:
        raise ValueError(f"summarize {key!r}: no values")
    return Stats(count, total, minimum, maximum)


def summarize_optimized(key: object, values: Iterable[Number]) -> Stats:
    """The same fold, building strings only when someone will read them.

    Whether debug logging is on is asked once per key, not once per value, and the arguments go to the logger
    unformatted (``%r``), so a disabled logger costs one branch per value. The error message is built in the
    ``raise``, on the error path only. Same messages, same results, when they are produced.
    """
    debug = logger.isEnabledFor(logging.DEBUG)
    count = 0
    total: Number = 0
    minimum: Number | None = None
    maximum: Number | None = None
    for value in values:
        if debug:
            logger.debug("summarize %r: value %r, running total %r", key, value, total)
        if not isinstance(value, _NUMBER_TYPES):
            raise TypeError(f"summarize {key!r}: value {value!r} is not a number")
        count += 1
        total += value
        if minimum is None or value < minimum:
            minimum = value
        if maximum is None or value > maximum:
            maximum = value
    if minimum is None or maximum is None:
        raise ValueError(f"summarize {key!r}: no values")
    return Stats(count, total, minimum, maximum)


@slotted
@dataclasses.dataclass(frozen=True)
class KeyStats:
    """Count, sum, minimum and maximum per key of ``(key, value)`` records; missing (``None``), NaN values skipped."""

    def map(self, records: Sequence[tuple[K, Number | None]]) -> Iterator[tuple[K, Number]]:
        return map_key_values_optimized(records)

    def reduce(self, key: K, values: list[Number]) -> Stats:
        return summarize_optimized(key, values)


# ------------------------------------------------------------------------------------------------------ sales


def map_sales_naive(rows: Iterable[Sequence[Any]], group_by: str) -> Iterator[tuple[Key, float]]:
    """Read each row as a dict of its columns, the way ``csv.DictReader`` hands rows out.

    ``dict(zip(fields, row))`` costs a zip object and its result tuple, the dict, its key table, and a second,
    larger key table when the sixth column goes in (a new dict has room for five): five allocations for a record
    that is read twice and dropped.
    """
    for row in rows:
        sale: dict[str, Any] = dict(zip(SALE_FIELDS, row))
        if sale["amount"] > 0:  # refunds and cancelled lines do not count
            yield sale[group_by], sale["amount"]


_make_sale = Sale._make  # the bound method, made once rather than once per row


def map_sales_optimized(rows: Iterable[Sequence[Any]], group_by: str) -> Iterator[tuple[Key, float]]:
    """Read each row as a :class:`Sale`: one tuple-sized object, with the same named access.

    ``Sale._make(row)`` copies the row's references into a single new tuple; the field names live once, on the
    class, instead of in every record. Calling ``Sale(*row)`` would cost a second allocation per record: CPython
    passes ``__new__`` the class and up to four arguments in a small buffer on the C stack, and allocates one for
    more (a ``Sale`` has six fields).
    """
    make = _make_sale
    for row in rows:
        sale = make(row)
        if sale.amount > 0:  # refunds and cancelled lines do not count
            yield getattr(sale, group_by), sale.amount


@slotted
@dataclasses.dataclass(frozen=True)
class SalesStats:
    """Statistics of the sale amounts per value of one column (``region``, ``store``, ``product`` or ``day``)."""

    group_by: str = "region"

    def __post_init__(self) -> None:
        if self.group_by not in SALE_FIELDS or self.group_by == "amount":
            choices = ", ".join(field for field in SALE_FIELDS if field != "amount")
            raise ValueError(f"SalesStats.group_by must be one of {choices}, got {self.group_by!r}")

    def map(self, rows: Sequence[Sequence[Any]]) -> Iterator[tuple[Key, float]]:
        return map_sales_optimized(rows, self.group_by)

    def reduce(self, key: Key, amounts: list[float]) -> Stats:
        return summarize_optimized(key, amounts)


# ----------------------------------------------------------------------------------------------- binary frames


@slotted
@dataclasses.dataclass(frozen=True)
class SensorStats:
    """Statistics of the readings per sensor, from blocks of length-prefixed binary frames (see ``frames``)."""

    def map(self, blocks: Sequence[bytes]) -> Iterator[tuple[int, tuple[float, ...]]]:
        for block in blocks:
            yield from parse_frames_optimized(block)

    def reduce(self, sensor: int, frames: list[tuple[float, ...]]) -> Stats:
        return summarize_optimized(sensor, chain.from_iterable(frames))
