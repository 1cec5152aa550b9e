"""GitHub Actions' formats: error annotations on a test's line, and the Markdown step summary.  No pytest in here.

Only a run that measured something writes them, so this module is imported only then.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .report import describe_key, measured_breakdown
from .units import format_quantity
from .verdict import MetricStatus, Status, Verdict

__all__ = ["github_annotation", "github_summary"]


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotation(path: str, line: int, title: str, message: str) -> str:
    """A workflow command that GitHub shows as an error on the file and line of the failing test."""
    return f"::error file={_escape_property(path)},line={line},title={_escape_property(title)}::{_escape_data(message)}"


def _change(result_measured: int, budget: int | None, unit: str) -> str:
    if budget is None:
        return format_quantity(result_measured, unit)
    percent = f" ({(result_measured - budget) * 100 / budget:+.1f}%)" if budget else ""
    return f"{format_quantity(budget, unit)} → {format_quantity(result_measured, unit)}{percent}"


def github_summary(verdicts: Sequence[Verdict], profile: str, stale: Iterable[str] = ()) -> str:
    """A Markdown section for ``$GITHUB_STEP_SUMMARY``: regressions, improvements and missing budgets."""
    rows: dict[str, list[str]] = {"Regressions": [], "Improvements": [], "Missing budgets": [], "Unstable": []}
    for verdict in verdicts:
        name = describe_key(verdict.key).replace("|", "\\|")
        if verdict.status is Status.UNSTABLE:
            metrics = ", ".join(result.metric for result in verdict.failures)
            rows["Unstable"].append(f"| `{name}` | {metrics} | over its budget on one call, within on another |")
            continue
        for result in verdict.failures:
            change = _change(result.measured, result.budget if result.budget is not None else result.limit, result.unit)
            limit = " (limit)" if result.status is MetricStatus.OVER_LIMIT else ""
            rows["Regressions"].append(f"| `{name}` | {result.metric}{limit} | {change} |")
        for result in verdict.improvements:
            rows["Improvements"].append(
                f"| `{name}` | {result.metric} | {_change(result.measured, result.budget, result.unit)} |"
            )
        if verdict.status in (Status.MISSING, Status.UNRECORDED):
            rows["Missing budgets"].append(f"| `{name}` | all | no budget under {profile} |")
    stale = sorted(stale)
    lines = [f"## Allocation budgets ({profile})", ""]
    singular = {
        "Regressions": "regression",
        "Improvements": "improvement",
        "Missing budgets": "missing budget",
        "Unstable": "unstable",
    }
    counts = ", ".join(
        f"{len(items)} {singular[title] if len(items) == 1 else title.lower()}"
        for title, items in rows.items()
        if items or title != "Unstable"  # said only where there is one: most runs have none
    )
    measured = f"{len(verdicts)} measured ({measured_breakdown(verdicts)})"
    lines.append(f"{measured}: {counts}" + (f", {len(stale)} stale" if stale else "") + ".")
    for title, items in rows.items():
        if items:
            lines += ["", f"### {title}", "", "| test | metric | budget → measured |", "|---|---|---|", *items]
    if stale:
        lines += ["", "### Stale entries", "", *[f"- `{name}`" for name in stale]]
    return "\n".join(lines) + "\n"
