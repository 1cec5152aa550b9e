"""Verdicts and measurements as plain data: for pytest-xdist workers to send to the controller, and for the JSON
report.  No pytest in here.

Workers measure and judge their own tests; only the controller merges and writes the budget file, once, so two
workers can never write the same file at the same time.  What travels is plain JSON-compatible data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from ..budgets.store import EntryKey, Values
from ..judging.tolerance import Tolerance
from ..judging.verdict import MetricResult, MetricStatus, Status, Verdict

__all__ = ["WorkerResults", "tolerance_from_dict", "tolerance_to_dict", "verdict_from_dict", "verdict_to_dict"]


def tolerance_to_dict(tolerance: Tolerance) -> dict[str, Any]:
    return {"percent": str(tolerance.percent), "absolute": tolerance.absolute}


def tolerance_from_dict(data: Mapping[str, Any]) -> Tolerance:
    return Tolerance(Fraction(data["percent"]), int(data["absolute"]))


def verdict_to_dict(verdict: Verdict) -> dict[str, Any]:
    """A verdict as JSON-compatible data (the JSON report's ``results`` items)."""
    metrics = {}
    for result in verdict.metrics:
        metrics[result.metric] = {
            "measured": result.measured,
            "budget": result.budget,
            "limit": result.limit,
            "tolerance": tolerance_to_dict(result.tolerance),
            "allowed": None if result.budget is None else result.tolerance.allowed(result.budget),
            "change": result.change,
            "change_percent": None if result.change_percent is None else round(result.change_percent, 3),
            "status": result.status.value,
        }
    return {
        "nodeid": verdict.key[0],
        "region": verdict.key[1],
        "profile": verdict.profile,
        "status": verdict.status.value,
        "metrics": metrics,
        "first_call": None if verdict.first_call is None else dict(verdict.first_call),
        "third_call": None if verdict.third_call is None else dict(verdict.third_call),
        "start_call": None if verdict.start_call is None else dict(verdict.start_call),
        "from_start": verdict.from_start,
    }


def verdict_from_dict(data: Mapping[str, Any]) -> Verdict:
    results = tuple(
        MetricResult(
            metric,
            int(item["measured"]),
            item["budget"],
            item["limit"],
            tolerance_from_dict(item["tolerance"]),
            MetricStatus(item["status"]),
        )
        for metric, item in data["metrics"].items()
    )
    first_call, third_call, start_call = (
        _values(data.get(name)) for name in ("first_call", "third_call", "start_call")
    )
    key = (data["nodeid"], data["region"])
    return Verdict(
        key,
        data["profile"],
        Status(data["status"]),
        results,
        first_call,
        third_call,
        start_call,
        from_start=bool(data.get("from_start", False)),
    )


def _values(data: Mapping[str, Any] | None) -> dict[str, int] | None:
    return None if data is None else {str(name): int(value) for name, value in data.items()}


@dataclass
class WorkerResults:
    """What one xdist worker tells the controller when it finishes."""

    verdicts: list[Verdict] = field(default_factory=list)
    pending: dict[EntryKey, Values] = field(default_factory=dict)
    pending_tolerances: dict[EntryKey, Mapping[str, Tolerance]] = field(default_factory=dict)
    budgeted: list[str] = field(default_factory=list)  # node ids of the budgeted tests this worker collected
    files: list[str] = field(default_factory=list)  # the test files it collected
    passed_regions: dict[str, list[str]] = field(default_factory=dict)  # regions measured by tests that passed
    finished: int = 0  # tests it ran to the end
    collected: int = 0  # tests it collected (every worker collects them all)
    selection_complete: bool = True  # nothing deselected, no node id arguments
    interference: str | None = None
    problems: list[str] = field(default_factory=list)  # messages for the summary (strict mode)

    def encode(self) -> str:
        return json.dumps(
            {
                "verdicts": [verdict_to_dict(verdict) for verdict in self.verdicts],
                "pending": [[list(key), values] for key, values in self.pending.items()],
                "pending_tolerances": [
                    [list(key), {m: tolerance_to_dict(t) for m, t in tolerances.items()}]
                    for key, tolerances in self.pending_tolerances.items()
                ],
                "budgeted": self.budgeted,
                "files": self.files,
                "passed_regions": self.passed_regions,
                "finished": self.finished,
                "collected": self.collected,
                "selection_complete": self.selection_complete,
                "interference": self.interference,
                "problems": self.problems,
            }
        )

    @classmethod
    def decode(cls, text: str) -> WorkerResults:
        data = json.loads(text)
        return cls(
            verdicts=[verdict_from_dict(item) for item in data["verdicts"]],
            pending={(key[0], key[1]): dict(values) for key, values in data["pending"]},
            pending_tolerances={
                (key[0], key[1]): {m: tolerance_from_dict(t) for m, t in tolerances.items()}
                for key, tolerances in data["pending_tolerances"]
            },
            budgeted=list(data["budgeted"]),
            files=list(data["files"]),
            passed_regions={k: list(v) for k, v in data["passed_regions"].items()},
            finished=int(data["finished"]),
            collected=int(data["collected"]),
            selection_complete=bool(data["selection_complete"]),
            interference=data["interference"],
            problems=list(data["problems"]),
        )
