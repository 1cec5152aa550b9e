"""Unit tests of :mod:`pytest_allocbudget.judging.report`: the words people read when a budget fails."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_allocbudget.budgets.merge import Change
from pytest_allocbudget.budgets.store import EntryKey
from pytest_allocbudget.judging.report import (
    describe_key,
    failure_text,
    improvement_line,
    metric_line,
    missing_text,
    rerecord_command,
    stale_lines,
    summary_lines,
)
from pytest_allocbudget.judging.tolerance import Tolerance
from pytest_allocbudget.judging.verdict import MetricStatus, Status, Verdict, judge
from pytest_allocbudget.measuring.explain import Explanation
from pytest_allocbudget.measuring.measure import LineStat

NODE = "tests/test_a.py::test_a"
PROFILE = "cpython-3.11"
DEFAULT = {"peak": Tolerance(Fraction(2), 4096), "retained": Tolerance(Fraction(2), 4096)}


def report(
    result: Verdict,
    lines: list[LineStat] | None = None,
    explanation: Explanation | None = None,
    rootdir: Path | None = None,
    update: bool = False,
) -> str:
    return failure_text(result, lines=lines or [], explanation=explanation, rootdir=rootdir, update=update)


def verdict(
    measured: Mapping[str, int],
    budget: Mapping[str, int] | None,
    limits: Mapping[str, int] | None = None,
    key: EntryKey = (NODE, None),
) -> Verdict:
    return judge(key, PROFILE, measured, budget, limits or {}, DEFAULT, True)


# ------------------------------------------------------------------------------------------------ keys


@pytest.mark.parametrize(
    ("key", "text"),
    [
        ((NODE, None), NODE),
        ((NODE, "setup"), f"{NODE} [region 'setup']"),
        ((NODE, "it's"), f'{NODE} [region "it\'s"]'),
        ((NODE, ""), f"{NODE} [region '']"),
    ],
)
def test_describe_key(key: EntryKey, text: str) -> None:
    assert describe_key(key) == text


@pytest.mark.parametrize(
    ("nodeid", "command"),
    [
        (NODE, f"pytest --alloc-update {NODE}"),
        ("tests/test_a.py::test_a[1-2]", "pytest --alloc-update 'tests/test_a.py::test_a[1-2]'"),
        ("t.py::test[a b]", "pytest --alloc-update 't.py::test[a b]'"),
        ("t.py::test[it's]", "pytest --alloc-update 't.py::test[it'\"'\"'s]'"),
    ],
)
def test_rerecord_command_is_shell_quoted(nodeid: str, command: str) -> None:
    assert rerecord_command(nodeid) == command


@given(st.text(min_size=1))
def test_rerecord_command_round_trips_through_the_shell(nodeid: str) -> None:
    assert shlex.split(rerecord_command(nodeid)) == ["pytest", "--alloc-update", nodeid]


# ------------------------------------------------------------------------------------------------ failure text


@pytest.mark.smoke
def test_failure_text_for_a_regression() -> None:
    text = report(verdict({"peak": 110_000}, {"peak": 100_000}), update=False)
    lines = text.splitlines()
    assert lines[0] == f"allocation budget exceeded: {NODE} (profile {PROFILE})"
    assert lines[1] == (
        "  peak: measured 110,000 B, budget 100,000 B, change +10,000 B (+10.0%); "
        "tolerance 2%, 4 KiB = 4,096 B, so at most 104,096 B passes"
    )
    assert lines[-1] == f"if the increase is intended, re-record: pytest --alloc-update {NODE}"


def test_failure_text_lists_only_failing_metrics() -> None:
    text = report(verdict({"peak": 100, "retained": 50_000}, {"peak": 100, "retained": 1000}), update=False)
    assert "  retained: measured 50,000 B, budget 1,000 B, change +49,000 B (+4900.0%);" in text
    assert "peak:" not in text


def test_failure_text_with_a_zero_budget_has_no_percent() -> None:
    text = report(verdict({"retained": 5000}, {"retained": 0}), update=False)
    assert "  retained: measured 5,000 B, budget 0 B, change +5,000 B; tolerance 2%, 4 KiB = 4,096 B, " in text
    assert "%)" not in text


def test_failure_text_for_a_region_re_records_the_test() -> None:
    text = report(verdict({"peak": 10**6}, {"peak": 1}, key=(f"{NODE}[x y]", "load")), update=False)
    assert text.splitlines()[0] == f"allocation budget exceeded: {NODE}[x y] [region 'load'] (profile {PROFILE})"
    assert text.endswith(f"re-record: pytest --alloc-update '{NODE}[x y]'")


def test_failure_text_during_update_does_not_suggest_re_recording() -> None:
    text = report(verdict({"peak": 110_000}, {"peak": 100_000}), update=True)
    assert "--alloc-update" not in text
    assert "re-record" not in text


def test_failure_text_over_limit() -> None:
    text = report(verdict({"peak": 3000}, None, {"peak": 2048}), update=False)
    line = (
        "  peak: measured 3,000 B, above the limit 2,048 B set on the marker (or measure()) by 952 B "
        "(limits have no tolerance)"
    )
    assert line in text.splitlines()
    assert text.splitlines()[-1] == (
        "raise the limit on the marker if the increase is intended; --alloc-update does not change it"
    )
    assert "re-record" not in text


def test_failure_text_limit_and_regression_suggests_re_recording() -> None:
    text = report(verdict({"peak": 3000, "retained": 9000}, {"retained": 10}, {"peak": 2048}), update=False)
    assert "above the limit 2,048 B" in text
    assert "retained: measured 9,000 B, budget 10 B" in text
    assert text.splitlines()[-1] == f"if the increase is intended, re-record: pytest --alloc-update {NODE}"


def test_failure_text_lists_source_lines_relative_to_rootdir(tmp_path: Path) -> None:
    lines = [
        LineStat(str(tmp_path / "src" / "mod.py"), 12, 2048, 3),
        LineStat("/usr/lib/python3/json/decoder.py", 353, 100, 1),
        LineStat(str(tmp_path / "big.py"), 1, 5 * 1024**2, 12_345),
    ]
    text = report(verdict({"retained": 10**6}, {"retained": 1}), lines=lines, rootdir=tmp_path)
    assert "\n  src/mod.py:12: 2.0 KiB in 3 block(s)" in text
    assert "\n  /usr/lib/python3/json/decoder.py:353: 100 B in 1 block(s)" in text
    assert "\n  big.py:1: 5.0 MiB in 12,345 block(s)" in text
    assert text.index("src/mod.py") < text.index("decoder.py") < text.index("big.py")  # in the order given


def test_failure_text_without_rootdir_keeps_absolute_names() -> None:
    text = report(verdict({"peak": 10**6}, {"peak": 1}), lines=[LineStat("/x/y.py", 3, 10, 1)])
    assert "\n  /x/y.py:3: 10 B in 1 block(s)" in text


def test_failure_text_without_lines_says_how_to_get_them() -> None:
    text = report(verdict({"peak": 10**6}, {"peak": 1}))
    assert "no source lines: --alloc-explain=rerun runs a failing test again to find them" in text
    region = verdict({"peak": 10**6}, {"peak": 1})
    region = Verdict((NODE, "parse"), region.profile, region.status, region.metrics)
    assert "regions are not run again; --alloc-explain=trace" in report(region)
    text = report(verdict({"peak": 10**6}, {"peak": 1}), explanation=Explanation())
    assert "the second run found no lines holding memory" in text


def test_failure_text_lists_allocation_lines_for_count_failures(tmp_path: Path) -> None:
    explanation = Explanation(
        alloc_lines=[LineStat(str(tmp_path / "hot.py"), 9, 4096, 1234)],
        peak_lines=[LineStat(str(tmp_path / "hot.py"), 7, 3 * 1024**2, 40)],
    )
    text = report(verdict({"allocations": 5000}, {"allocations": 100}), explanation=explanation, rootdir=tmp_path)
    assert "\n  hot.py:9: 1,234 allocation(s), 4.0 KiB" in text
    assert "near the peak" not in text  # peak did not fail: its lines are not shown


def test_failure_text_says_how_the_lines_were_sampled(tmp_path: Path) -> None:
    line = [LineStat(str(tmp_path / "hot.py"), 9, 4096, 1234)]
    failing = verdict({"allocations": 5000}, {"allocations": 100})
    sampled = report(failing, explanation=Explanation(alloc_lines=line, sample_calls=50, sample_bytes=2048))
    assert "sampled about every 50 allocation calls and every 2.0 KiB requested, scaled up: estimates" in sampled
    exact = report(failing, explanation=Explanation(alloc_lines=line, sample_calls=1, sample_bytes=1))
    assert "(every allocation call recorded; freed blocks included)" in exact


def test_failure_text_includes_the_peak_explanation(tmp_path: Path) -> None:
    peak = Explanation(
        peak_lines=[LineStat(str(tmp_path / "hot.py"), 7, 3 * 1024**2, 40)], captured=3 * 1024**2, peak=4 * 1024**2
    )
    text = report(verdict({"peak": 4 * 1024**2}, {"peak": 1024}), explanation=peak, rootdir=tmp_path)
    assert "(tracemalloc; captured at 3.0 MiB of its 4.0 MiB peak)" in text
    assert "\n  hot.py:7: 3.0 MiB in 40 block(s)" in text
    assert "no source lines" not in text
    assert text.splitlines()[-1] == f"if the increase is intended, re-record: pytest --alloc-update {NODE}"


def test_failure_text_reports_why_the_peak_was_not_explained() -> None:
    peak = Explanation(error="the test raised ValueError on its second run")
    text = report(verdict({"peak": 10**6}, {"peak": 1}), explanation=peak)
    assert "the test raised ValueError on its second run" in text


def test_metric_line_improvement_shows_negative_change() -> None:
    result = verdict({"peak": 50_000}, {"peak": 100_000}).metrics[0]
    assert result.status is MetricStatus.IMPROVED
    assert "change -50,000 B (-50.0%)" in metric_line(result)


@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=1, max_value=10**12))
def test_failure_text_states_the_numbers(budget: int, excess: int) -> None:
    tolerance = DEFAULT["peak"]
    measured = tolerance.allowed(budget) + excess
    result = verdict({"peak": measured}, {"peak": budget})
    assert result.status is Status.FAILED
    text = report(result)
    assert f"measured {measured:,} B" in text
    assert f"budget {budget:,} B" in text
    assert f"change +{measured - budget:,} B" in text
    if budget:
        assert f"({(measured - budget) * 100 / budget:+.1f}%)" in text
    assert f"tolerance {tolerance.describe('bytes')} = {tolerance.slack(budget):,} B" in text
    assert f"so at most {tolerance.allowed(budget):,} B passes" in text
    assert text.endswith(rerecord_command(NODE))


# ------------------------------------------------------------------------------------------------ other messages


def test_missing_text() -> None:
    path = Path("/project/config/allocbudget.yaml")
    assert missing_text((NODE, None), PROFILE, path) == (
        f"no budget recorded for {NODE} under {PROFILE} in allocbudget.yaml; run pytest --alloc-update {NODE}"
    )
    text = missing_text((NODE, "setup"), "pypy-3.10", path)
    assert text.startswith(f"no budget recorded for {NODE} [region 'setup'] under pypy-3.10")
    assert text.endswith(f"run pytest --alloc-update {NODE}")


def test_improvement_line() -> None:
    result = verdict({"peak": 50 * 1024, "retained": 0}, {"peak": 100 * 1024, "retained": 100_000})
    assert improvement_line((NODE, "r"), result.improvements) == (
        f"{NODE} [region 'r']: peak 50.0 KiB (budget 100.0 KiB, -50.0%), retained 0 B (budget 97.7 KiB, -100.0%)"
    )


def test_summary_lines_in_update_mode() -> None:
    path = Path("allocbudget.yaml")
    lines = summary_lines([], PROFILE, path, {Change.CREATED: 2, Change.UPDATED: 1}, written=True)
    texts = [text for text, _ in lines]
    assert "wrote allocbudget.yaml: 2 created, 1 updated, 0 unchanged" in texts
    lines = summary_lines([], PROFILE, path, {}, written=False)
    assert "allocbudget.yaml unchanged: 0 created, 0 updated, 0 unchanged" in [text for text, _ in lines]


def test_summary_lines_in_check_mode() -> None:
    path = Path("allocbudget.yaml")
    verdicts = [
        verdict({"peak": 100}, {"peak": 100}),
        verdict({"peak": 10**6}, {"peak": 100}),
        verdict({"peak": 100}, None),
        verdict({"peak": 100}, {"peak": 10**6}, key=("tests/test_b.py::test_b", None)),
    ]
    lines = summary_lines(verdicts, PROFILE, path, None, written=False)
    assert lines[0][0].startswith("4 measured (4 tests): 2 passed, 1 failed, 1 missing")
    assert PROFILE in lines[0][0]
    assert any("1 budget(s) could be tightened" in text for text, _ in lines)
    assert any(text.strip().startswith("tests/test_b.py::test_b: peak 100 B") for text, _ in lines)


def test_summary_lines_warn_about_an_unrecorded_profile() -> None:
    unrecorded = judge((NODE, None), PROFILE, {"peak": 1}, None, {}, DEFAULT, False)
    lines = summary_lines([unrecorded], PROFILE, Path("allocbudget.yaml"), None, written=False)
    warnings = [text for text, colour in lines if colour is not None]
    assert len(warnings) == 1
    assert f"no budgets for {PROFILE}" in warnings[0]
    assert "pytest --alloc-update" in warnings[0]


def test_the_summary_says_how_many_of_the_measured_are_tests_and_how_many_regions() -> None:
    path = Path("allocbudget.yaml")
    verdicts = [
        verdict({"peak": 100}, {"peak": 100}),
        verdict({"peak": 100}, {"peak": 100}, key=(NODE, "load")),
        verdict({"peak": 100}, {"peak": 100}, key=(NODE, "save")),
    ]
    check = summary_lines(verdicts, PROFILE, path, None, written=False)[0][0]
    assert check.startswith("3 measured (1 test, 2 regions): 3 passed, 0 failed, 0 missing (profile ")
    update = summary_lines(verdicts[1:], PROFILE, path, {}, written=False)[0][0]
    assert update == f"2 measured (2 regions; profile {PROFILE})"


def test_the_summary_counts_add_up_when_the_profile_has_no_budgets() -> None:
    # Seven budgeted tests and no budget file: four over a marker's limit, three measured but not checked.
    unrecorded = [judge((f"t.py::test_{n}", None), PROFILE, {"peak": 1}, None, {}, DEFAULT, False) for n in range(3)]
    over = [
        judge((f"t.py::test_over{n}", None), PROFILE, {"peak": 9}, None, {"peak": 1}, DEFAULT, False) for n in range(4)
    ]
    text = summary_lines(over + unrecorded, PROFILE, Path("allocbudget.yaml"), None, written=False)[0][0]
    assert text.startswith("7 measured (7 tests): 0 passed, 4 failed, 0 missing, 3 not checked (profile ")


@pytest.mark.parametrize("update", [False, True])
@pytest.mark.parametrize("strict", [False, True])
def test_stale_lines_agree_in_number(update: bool, strict: bool) -> None:
    one = stale_lines([("t.py::test_gone", None)], [], update, strict)[0][0]
    assert one.startswith("1 stale entry (its test no longer exists or no longer measures it) ")
    assert "; remove it with: pytest --alloc-update --alloc-prune" in one
    two = stale_lines([("t.py::test_a", None), ("t.py::test_b", None)], [], update, strict)[0][0]
    assert two.startswith("2 stale entries (their tests no longer exist or no longer measure them) ")
    assert "; remove them with: pytest --alloc-update --alloc-prune" in two


def test_a_failure_judged_on_a_second_call_names_the_first_call_s_numbers() -> None:
    judged = replace(verdict({"peak": 9_000}, {"peak": 1_000}), first_call={"peak": 12_345, "retained": 0})
    text = report(judged)
    assert (
        "the numbers above are a second call's, made in a child process because the first call was over too "
        "(peak 12,345 B): work paid once per process does not explain the excess"
    ) in text.splitlines()


def test_the_summary_lists_the_tests_that_passed_on_a_second_call() -> None:
    passed = replace(verdict({"peak": 1_000}, {"peak": 1_000}), first_call={"peak": 300_000})
    lines = [text for text, _ in summary_lines([passed], PROFILE, Path("allocbudget.yaml"), None, written=False)]
    assert lines[1].startswith("1 passed on a second call: the first call was over its budget, a second one")
    assert lines[2] == f"  {NODE}: peak 293.0 KiB, then 1000 B (budget 1000 B)"
