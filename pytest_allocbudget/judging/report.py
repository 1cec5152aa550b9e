"""Words for people: the failure text of one test, and the session summary.

Every message ends with what to do next, because the person reading a red CI run wants the command, not the theory.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from ..budgets.merge import Change
from ..budgets.store import EntryKey
from ..measuring.explain import Explanation
from ..measuring.measure import LineStat
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
            f"marker (or measure()) by {_exact(over, unit)} (limits have no tolerance)"
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
    verdict: Verdict, lines: Sequence[LineStat], explanation: Explanation | None, rootdir: Path | None
) -> list[str]:
    """The source lines behind a failure, for the metrics that failed, from wherever they could be found."""
    failing = {result.metric for result in verdict.failures}
    out = []
    if explanation is not None and explanation.error:
        out.append(f"the test could not be run again to find its lines: {explanation.error}")
    if explanation is not None and failing & {"allocations", "allocated"} and explanation.alloc_lines:
        out.append(
            f"source lines that made the most allocation calls, in one more run of the test "
            f"({_sampling(explanation)}; freed blocks included):"
        )
        out.extend(
            f"  {_relative(line.filename, rootdir)}:{line.lineno}: {line.count:,} allocation(s), "
            f"{format_bytes(line.size)}"
            for line in explanation.alloc_lines
        )
    if explanation is not None and "peak" in failing and explanation.peak_lines:
        out.append(
            f"source lines holding memory near the peak, in one more run of the test "
            f"({_sampling(explanation)}; captured at {format_bytes(explanation.captured)} of its "
            f"{format_bytes(explanation.peak)} peak):"
        )
        out.extend(_stat_lines(explanation.peak_lines, rootdir))
    if lines:
        out.append("source lines holding memory allocated in the region at its end (tracemalloc):")
        out.extend(_stat_lines(lines, rootdir))
    elif explanation is not None and "retained" in failing and explanation.end_lines:
        out.append(f"source lines holding memory at the end of a second run of the test ({_sampling(explanation)}):")
        out.extend(_stat_lines(explanation.end_lines, rootdir))
    if len(out) > (1 if explanation is not None and explanation.error else 0):
        return out
    if verdict.key[1] is not None:
        out.append(
            "no source lines: regions are not run again; --alloc-explain=trace lists the lines alive at the end "
            "of a failing region, or measure the code as a whole test to have it run again"
        )
    elif explanation is None:
        out.append("no source lines: --alloc-explain=rerun runs a failing test again to find them")
    else:
        out.append("the second run found no lines holding memory: the excess was temporary or freed")
    return out


def _sampling(explanation: Explanation) -> str:
    """How the explanation's run saw its lines, for the heading of a list of them."""
    if not explanation.sample_calls:
        return "tracemalloc"
    if explanation.sample_calls == 1 and explanation.sample_bytes == 1:
        return "every allocation call recorded"
    return (
        f"sampled about every {explanation.sample_calls:,} allocation calls and every "
        f"{format_bytes(explanation.sample_bytes)} requested, scaled up: estimates"
    )


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
    explanation: Explanation | None,
    rootdir: Path | None,
    update: bool,
) -> str:
    """The long report of a region that failed its budget or a limit."""
    out = [f"allocation budget exceeded: {describe_key(verdict.key)} (profile {verdict.profile})"]
    out.extend(f"  {metric_line(result)}" for result in verdict.failures)
    if verdict.first_call is not None:
        first = ", ".join(
            f"{result.metric} {_exact(verdict.first_call[result.metric], result.unit)}"
            for result in verdict.failures
            if result.metric in verdict.first_call
        )
        out.append(
            f"the numbers above are a second call's, made in a child process because the first call was over too "
            f"({first}): work paid once per process does not explain the excess"
        )
    if verdict.start_call is not None:
        start = ", ".join(
            f"{result.metric} {_exact(verdict.start_call[result.metric], result.unit)}"
            for result in verdict.failures
            if result.metric in verdict.start_call
        )
        out.append(
            f"a call from the session's start, before any other test ran, was over too ({start}): what earlier "
            f"tests left does not explain it either"
        )
    out.extend(_lines_text(verdict, lines, explanation, rootdir))
    if any(result.status is MetricStatus.REGRESSED for result in verdict.failures) and not update:
        out.append(f"if the increase is intended, re-record: {rerecord_command(verdict.key[0])}")
    elif all(result.status is MetricStatus.OVER_LIMIT for result in verdict.failures):
        out.append("raise the limit on the marker if the increase is intended; --alloc-update does not change it")
    return "\n".join(out)


def missing_text(key: EntryKey, profile: str, path: Path, strict: bool = False) -> str:
    """The report of a budgeted region with no entry (in strict mode, also when its whole profile has none)."""
    text = f"no budget recorded for {describe_key(key)} under {profile} in {path.name}; run {rerecord_command(key[0])}"
    if strict:
        text += f" (strict mode: {path.name} has no budgets for {profile} at all, which fails instead of warning)"
    return text


def unmeasurable_text(key: EntryKey, metrics: Sequence[str], reason: str) -> str:
    """Strict mode: budgets were recorded for metrics this run cannot measure."""
    return (
        f"{describe_key(key)} has budgets for {', '.join(metrics)}, which cannot be measured here ({reason}); "
        "strict mode fails instead of skipping them"
    )


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
    strict: bool = False,
) -> list[tuple[str, str | None]]:
    """The terminal summary section: (text, colour) lines.

    ``changes`` is given in update mode only; ``error`` says why the budget file could not be written.
    """

    def count(status: Status) -> int:
        return sum(1 for verdict in verdicts if verdict.status is status)

    measured = f"{len(verdicts)} measured ({measured_breakdown(verdicts)}"
    if changes is not None:
        lines: list[tuple[str, str | None]] = [(f"{measured}; profile {profile})", None)]
        if error is not None:
            lines.append((f"error: {error}", "red"))
        else:
            counts = ", ".join(f"{changes.get(change, 0)} {change.value}" for change in Change)
            action = f"wrote {path}" if written else f"{path} unchanged"
            lines.append((f"{action}: {counts}", None))
        return lines
    unrecorded, unsteady = count(Status.UNRECORDED), count(Status.UNSTABLE)
    unchecked = f", {unrecorded} not checked" if unrecorded else ""  # so that the counts add up to the total
    unchecked += f", {unsteady} unstable" if unsteady else ""
    lines = [
        (
            f"{measured}): {count(Status.PASSED)} passed, {count(Status.FAILED)} failed, "
            f"{count(Status.MISSING)} missing{unchecked} (profile {profile}, {path})",
            None,
        )
    ]
    if unrecorded and not strict:
        lines.append(
            (
                f"warning: {path} has no budgets for {profile}; {unrecorded} budgeted test(s) were measured "
                "but not checked. Record them with: pytest --alloc-update",
                "yellow",
            )
        )
    judged_from_start = sum(1 for verdict in verdicts if verdict.from_start)
    if judged_from_start:
        lines.append(
            (
                f"{judged_from_start} judged on a call from the session's start (--alloc-from-start): each in a child "
                "of a process kept from before the first test, after one unmeasured call",
                None,
            )
        )
    second = [v for v in verdicts if v.first_call is not None and v.start_call is None and v.status is Status.PASSED]
    lines += _listing(
        f"{len(second)} passed on a second call: the first call was over its budget, a second one in a child "
        "process was within it (work paid once per process, such as a first import or a cache, landed on the first "
        "call):",
        [f"{describe_key(v.key)}: {first_call_excess(v)}" for v in second],
    )
    from_start = [v for v in verdicts if v.start_call is not None and v.status is Status.PASSED]
    lines += _listing(
        f"{len(from_start)} passed on a call from the start of the session: over the budget on three calls after the "
        "tests before them, within it from where the session started (their cost grows with what earlier tests did):",
        [f"{describe_key(v.key)}: {first_call_excess(v)}" for v in from_start],
    )
    shaky = [v for v in verdicts if v.status is Status.UNSTABLE]
    lines += _listing(
        f"{len(shaky)} unstable, not failed: over the budget on one call and within it on another made from the same "
        "state, so the test's own numbers vary (unseeded randomness, the clock, threads). Make them repeat, or give "
        "the test a wider tolerance:",
        [f"{describe_key(v.key)}: {unstable_spread(v)}" for v in shaky],
        "yellow",
    )
    tighten = [verdict for verdict in verdicts if verdict.improvements]
    lines += _listing(
        f"{len(tighten)} budget(s) could be tightened (pytest --alloc-update records them):",
        [improvement_line(v.key, v.improvements) for v in tighten],
    )
    return lines


def _listing(title: str, items: Sequence[str], color: str | None = None) -> list[tuple[str, str | None]]:
    """A titled list of the summary, ten items at most; nothing when there are none."""
    if not items:
        return []
    lines: list[tuple[str, str | None]] = [(title, color)]
    lines.extend((f"  {item}", color) for item in items[:10])
    if len(items) > 10:
        lines.append((f"  ... and {len(items) - 10} more", color))
    return lines


def first_call_excess(verdict: Verdict) -> str:
    """What the first call of a test that passed on its second measured, against its budget, metric by metric."""
    assert verdict.first_call is not None
    parts = []
    for result in verdict.metrics:
        first = verdict.first_call.get(result.metric)
        if first is None or result.budget is None or first <= result.tolerance.allowed(result.budget):
            continue
        then = format_quantity(result.measured, result.unit)
        budget = format_quantity(result.budget, result.unit)
        parts.append(f"{result.metric} {format_quantity(first, result.unit)}, then {then} (budget {budget})")
    return ", ".join(parts) or "over a limit on the first call only"


def unstable_spread(verdict: Verdict) -> str:
    """What the two calls from the same state of an unstable test measured, for each metric over its budget."""
    assert verdict.third_call is not None
    parts = []
    for result in verdict.failures:
        third = verdict.third_call.get(result.metric)
        if third is None or result.budget is None:
            continue
        one, other = format_quantity(result.measured, result.unit), format_quantity(third, result.unit)
        parts.append(f"{result.metric} {one}, then {other} (budget {format_quantity(result.budget, result.unit)})")
    return ", ".join(parts)


def measured_breakdown(verdicts: Sequence[Verdict]) -> str:
    """``15 tests, 1 region``: what the measured count is made of, since it sits next to pytest's count of tests
    and a test measured by regions counts once per region."""
    regions = sum(1 for verdict in verdicts if verdict.key[1] is not None)
    tests = len(verdicts) - regions
    parts = [f"{tests} test{'' if tests == 1 else 's'}"] if tests or not regions else []
    if regions:
        parts.append(f"{regions} region{'' if regions == 1 else 's'}")
    return ", ".join(parts)


def counter_missing_text(reason: str, strict: bool = False) -> str:
    """Said once per run when the allocation counter cannot be used."""
    consequence = (
        "tests with recorded allocations or allocated budgets failed (strict mode)"
        if strict
        else "recorded allocations and allocated budgets were not checked"
    )
    return f"allocation counts unavailable: {reason}. peak and retained were measured with tracemalloc; {consequence}"


def interference_text(what: str) -> str:
    """Said once per run when a tracer or profiler was active while tests were measured."""
    return (
        f"{what} was active while tests were measured: tracing and profiling change what the interpreter "
        "allocates, so record and check budgets under the same tools (for example both with or both without "
        "coverage)"
    )


def stale_lines(
    stale: Sequence[EntryKey] | None, pruned: Sequence[EntryKey], update: bool, strict: bool
) -> list[tuple[str, str | None]]:
    """Summary lines about stale entries (``stale`` is None when the run was not a full run)."""
    if pruned:
        lines: list[tuple[str, str | None]] = [
            (f"pruned {len(pruned)} stale entr{'y' if len(pruned) == 1 else 'ies'}:", None)
        ]
        lines.extend((f"  {describe_key(key)}", None) for key in pruned[:20])
        if len(pruned) > 20:
            lines.append((f"  ... and {len(pruned) - 20} more", None))
        return lines
    if not stale:
        return []
    color = "red" if strict and not update else "yellow"
    if len(stale) == 1:
        verb = "fails the run in strict mode" if strict and not update else "is kept"
        text = f"1 stale entry (its test no longer exists or no longer measures it) {verb}; remove it"
    else:
        verb = "fail the run in strict mode" if strict and not update else "are kept"
        text = f"{len(stale)} stale entries (their tests no longer exist or no longer measure them) {verb}; remove them"
    lines = [(f"{text} with: pytest --alloc-update --alloc-prune", color)]
    lines.extend((f"  {describe_key(key)}", None) for key in stale[:20])
    if len(stale) > 20:
        lines.append((f"  ... and {len(stale) - 20} more", None))
    return lines
