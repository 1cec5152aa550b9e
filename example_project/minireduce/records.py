"""Per-record and per-key value types.

Records flow through the engine by the thousand, so their representation is a hot path of its own. A ``NamedTuple``
is one tuple-sized object with named fields, compares and hashes like a tuple, pickles compactly, and cannot be
changed by the code it is handed to. A ``dict`` per record costs a dict object and its key table (and a second
table once it holds six keys); see :func:`minireduce.jobs.map_sales_naive`.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["SALE_FIELDS", "Sale", "Stats"]


class Stats(NamedTuple):
    """Count, sum, minimum and maximum of one key's values: the result of the aggregating jobs."""

    count: int  # type: ignore[assignment]  # shadows tuple.count(), on purpose: stats.count reads best
    total: float
    minimum: float
    maximum: float

    @property
    def mean(self) -> float:
        """Derived on demand rather than stored: most callers never ask for it."""
        return self.total / self.count


class Sale(NamedTuple):
    """One line of a sales export: what :class:`minireduce.jobs.SalesStats` reads its rows as."""

    order: int
    day: int
    region: str
    store: str
    product: str
    amount: float


#: The column names of a sales row, in order (what a CSV header would give a ``csv.DictReader``).
SALE_FIELDS: tuple[str, ...] = Sale._fields
