"""The metrics the plugin knows, in one table.

Everything downstream (the budget file's validation, the verdict, the reports, the docs) iterates over this table
instead of naming metrics, so a new metric is a new row here plus a measurer that fills it in.
"""

from __future__ import annotations

from dataclasses import dataclass

from .tolerance import Tolerance

__all__ = ["METRICS", "Metric", "metric_names"]


@dataclass(frozen=True)
class Metric:
    """One measured quantity: its name in the budget file, its unit and the tolerance used when none is set."""

    name: str
    unit: str  # "bytes" or "count": decides how limits are parsed and values rendered
    summary: str
    default_tolerance: Tolerance


_BYTES_DEFAULT = Tolerance.parse("2%, 4 KiB", unit="bytes")
_COUNT_DEFAULT = Tolerance.parse("2%, 16", unit="count")
#: The default tolerance of ``allocations`` for a test judged on a call from the session's start
#: (``--alloc-from-start``): that call starts from the same state in every order and worker, so its count repeats
#: exactly, and a regression of one or two allocations is caught instead of passing under the floor of 16.
FROM_START_ALLOCATIONS = Tolerance.parse("0.01%, 1", unit="count")

METRICS: dict[str, Metric] = {
    metric.name: metric
    for metric in (
        Metric(
            "peak",
            "bytes",
            "highest traced memory above the start of the region",
            _BYTES_DEFAULT,
        ),
        Metric(
            "retained",
            "bytes",
            "memory allocated in the region and still alive at its end, after a full collection",
            _BYTES_DEFAULT,
        ),
        Metric(
            "allocations",
            "count",
            "number of allocation calls in the region, freed blocks included (needs the allocation counter)",
            _COUNT_DEFAULT,
        ),
        Metric(
            "allocated",
            "bytes",
            "total bytes requested by those calls, freed blocks included (needs the allocation counter)",
            _BYTES_DEFAULT,
        ),
    )
}


def metric_names() -> tuple[str, ...]:
    """The metric names in their canonical (report and file) order."""
    return tuple(METRICS)
