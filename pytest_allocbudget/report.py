"""Words for people: the failure text of one test, and the session summary.

Every message ends with what to do next, because the person reading a red CI run wants the command, not the theory.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from .explain import PeakExplanation
from .measure import LineStat
from .merge import Change
from .store import EntryKey
from .units import format_bytes, format_quantity
from .verdict import MetricResult, MetricStatus, Status, Verdict

__all__ = [
    "describe_key",
    "failure_text",
    "missing_text",
    "rerecord_command",
]


def describe_key(key: EntryKey) -> str:
    """``nodeid`` for a whole test, ``nodeid [region 'name']`` for a region."""
    nodeid, region = key
    return nodeid if region is None else f"{nodeid} [region {region!r}]"


def rerecord_command(nodeid: str) -> str:
    return f"pytest --alloc-update {shlex.quote(nodeid)}"


def _exact(value: int, unit: str) -> str:
    if unit == "bytes":
        return f"{value:,} B"
    return f"{value:,}"


def metric_line(result: MetricResult) -> str:
    """One line per failing metric: measured, budget or limit, change in the unit and in %, tolerance."""
    unit = result.unit
    measured = _exact(result.measured, unit)
    if result.status is MetricStatus.OVER_LIMIT:
        assert result.limit is not None
        over = result.measured - result.limit
        return (
            f"{result.metric}: measured {measured}, above the limit {_exact(result.limit, unit)} set on the "
            f"marker by {_exact(over, unit)} (limits have no tolerance)"
        )
    assert result.budget is not None
    change = result.measured - result.budget
    percent = result.change_percent
    percent_text = f" ({percent:+.1f}%)" if percent is not None else ""
    slack = result.tolerance.slack(result.budget)
    return (
        f"{result.metric}: measured {measured}, budget {_exact(result.budget, unit)}, "
        f"change {'+' if change >= 0 else ''}{_exact(change, unit)}{percent_text}; "
        f"tolerance {result.tolerance.describe(unit)} = {_exact(slack, unit)}, "
        f"so at most {_exact(result.budget + slack, unit)} passes"
    )


def _stat_lines(lines: Sequence[LineStat], rootdir: Path | None) -> list[str]:
    return [
        f"  {_relative(line.filename, rootdir)}:{line.lineno}: {format_bytes(line.size)} in {line.count:,} block(s)"
        for line in lines
    ]


def _lines_text(
    verdict: Verdict, lines: Sequence[LineStat], peak: PeakExplanation | None, rootdir: Path | None
) -> list[str]:
    out = []
    peak_failed = any(result.metric == "peak" for result in verdict.failures)
    if peak is not None and peak.lines:
        out.append(
            f"source lines holding memory near the peak, from a second run of the test under tracemalloc "
            f"(captured at {format_bytes(peak.captured)} of its {format_bytes(peak.peak)} peak):"
        )
        out.extend(_stat_lines(peak.lines, rootdir))
    elif peak is not None and peak.error:
        out.append(f"the peak could not be explained by a second run: {peak.error}")
    if lines:
        out.append("source lines holding memory allocated in the region at its end (tracemalloc):")
        out.extend(_stat_lines(lines, rootdir))
    elif not (peak is not None and peak.lines):
        if peak_failed and verdict.key[1] is not None:
            out.append(
                "no block allocated in the region was still alive at its end, so the excess was temporary; "
                "regions are not re-run, so measure a smaller region or the test as a whole to find its lines"
            )
        elif peak_failed:
            out.append(
                "no block allocated in the test was still alive at its end, so the excess was temporary; "
                "run with --alloc-explain=rerun to re-run the test and find the lines behind its peak"
            )
        else:
            out.append("tracemalloc found no block of the region alive at its end")
    return out


def _relative(filename: str, rootdir: Path | None) -> str:
    if rootdir is None:
        return filename
    try:
        return os.path.relpath(filename, rootdir) if filename.startswith(str(rootdir)) else filename
    except ValueError:  # pragma: no cover - different drives on Windows
        return filename


def failure_text(
    verdict: Verdict,
    lines: Sequence[LineStat],
    peak: PeakExplanation | None,
    rootdir: Path | None,
    update: bool,
) -> str:
    """The long report of a region that failed its budget or a limit."""
    out = [f"allocation budget exceeded: {describe_key(verdict.key)} (profile {verdict.profile})"]
    out.extend(f"  {metric_line(result)}" for result in verdict.failures)
    out.extend(_lines_text(verdict, lines, peak, rootdir))
    if any(result.status is MetricStatus.REGRESSED for result in verdict.failures) and not update:
        out.append(f"if the increase is intended, re-record: {rerecord_command(verdict.key[0])}")
    elif all(result.status is MetricStatus.OVER_LIMIT for result in verdict.failures):
        out.append("raise the limit on the marker if the increase is intended; --alloc-update does not change it")
    return "\n".join(out)


def missing_text(key: EntryKey, profile: str, path: Path) -> str:
    """The report of a budgeted region with no entry, in a profile that has entries."""
    return f"no budget recorded for {describe_key(key)} under {profile} in {path.name}; run {rerecord_command(key[0])}"


def improvement_line(key: EntryKey, results: Iterable[MetricResult]) -> str:
    parts = []
    for result in results:
        assert result.budget is not None
        parts.append(
            f"{result.metric} {format_quantity(result.measured, result.unit)} "
            f"(budget {format_quantity(result.budget, result.unit)}, {result.change_percent or 0:+.1f}%)"
        )
    return f"{describe_key(key)}: {', '.join(parts)}"


def summary_lines(
    verdicts: Sequence[Verdict],
    profile: str,
    path: Path,
    changes: Mapping[Change, int] | None,
    written: bool,
    error: str | None = None,
) -> list[tuple[str, str | None]]:
    """The terminal summary section: (text, colour) lines.

    ``changes`` is given in update mode only; ``error`` says why the budget file could not be written.
    """

    def count(status: Status) -> int:
        return sum(1 for verdict in verdicts if verdict.status is status)

    if changes is not None:
        lines: list[tuple[str, str | None]] = [(f"{len(verdicts)} measured (profile {profile})", None)]
        if error is not None:
            lines.append((f"error: {error}", "red"))
        else:
            counts = ", ".join(f"{changes.get(change, 0)} {change.value}" for change in Change)
            action = f"wrote {path}" if written else f"{path} unchanged"
            lines.append((f"{action}: {counts}", None))
        return lines
    lines = [
        (
            f"{len(verdicts)} measured, {count(Status.PASSED)} passed, {count(Status.FAILED)} failed, "
            f"{count(Status.MISSING)} missing (profile {profile}, {path})",
            None,
        )
    ]
    unrecorded = count(Status.UNRECORDED)
    if unrecorded:
        lines.append(
            (
                f"warning: {path} has no budgets for {profile}; {unrecorded} budgeted test(s) were measured "
                "but not checked. Record them with: pytest --alloc-update",
                "yellow",
            )
        )
    tighten = [verdict for verdict in verdicts if verdict.improvements]
    if tighten:
        lines.append((f"{len(tighten)} budget(s) could be tightened (pytest --alloc-update records them):", None))
        lines.extend((f"  {improvement_line(v.key, v.improvements)}", None) for v in tighten[:10])
        if len(tighten) > 10:
            lines.append((f"  ... and {len(tighten) - 10} more", None))
    return lines
