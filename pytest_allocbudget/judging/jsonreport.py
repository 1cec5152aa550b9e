"""The JSON report (``--alloc-json``): every measurement with its budget, tolerance and verdict, and the summary.

The schema is versioned (``schema_version``) and documented in docs/reference.md; a field is only ever added in a
minor change, and renaming or removing one means a new version.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..budgets.store import write_atomically
from ..wiring.session import BudgetSession
from ..wiring.transport import verdict_to_dict
from .report import describe_key
from .verdict import Status

__all__ = ["SCHEMA_VERSION", "json_report", "write_json"]

SCHEMA_VERSION = 1


def json_report(
    session: BudgetSession,
    *,
    stale: list[str],
    full_run: bool,
    strict: bool,
    engine: str,
    unmeasurable: str | None,
) -> dict[str, Any]:
    """The report as JSON-compatible data."""
    verdicts = sorted(session.verdicts, key=lambda v: (v.key[0], v.key[1] or ""))

    def count(status: Status) -> int:
        return sum(1 for verdict in verdicts if verdict.status is status)

    summary: dict[str, Any] = {
        "measured": len(verdicts),
        "passed": count(Status.PASSED),
        "failed": count(Status.FAILED),
        "missing": count(Status.MISSING),
        "unrecorded": count(Status.UNRECORDED),
        "unstable": count(Status.UNSTABLE),
        "improved": sum(1 for verdict in verdicts if verdict.improvements),
        "passed_on_second_call": sum(
            1
            for verdict in verdicts
            if verdict.first_call is not None and verdict.start_call is None and verdict.status is Status.PASSED
        ),
        "judged_from_start": sum(1 for verdict in verdicts if verdict.from_start),
        "passed_from_the_start": sum(
            1 for verdict in verdicts if verdict.start_call is not None and verdict.status is Status.PASSED
        ),
        "stale": stale,
        "pruned": [describe_key(key) for key in session.pruned],
    }
    if session.update:
        summary["changes"] = {change.value: number for change, number in session.change_counts().items()}
        summary["written"] = session.written
    return {
        "schema_version": SCHEMA_VERSION,
        "mode": "update" if session.update else "check",
        "profile": session.profile,
        "engine": engine,
        "counts_unavailable": unmeasurable,
        "strict": strict,
        "full_run": full_run,
        "budget_file": str(session.path),
        "results": [verdict_to_dict(verdict) for verdict in verdicts],
        "summary": summary,
    }


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write atomically, like the budget file: a reader never sees half a report."""
    write_atomically(path, json.dumps(document, indent=2, sort_keys=True) + "\n")
