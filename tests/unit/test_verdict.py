"""Unit and property tests of :mod:`pytest_allocbudget.judging.verdict`."""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_allocbudget.judging.metrics import METRICS
from pytest_allocbudget.judging.tolerance import Tolerance
from pytest_allocbudget.judging.verdict import MetricResult, MetricStatus, Status, Verdict, judge, unstable

KEY = ("tests/test_a.py::test_a", None)
PROFILE = "cpython-3.11"
TEN_PERCENT = {"peak": Tolerance(percent=Fraction(10)), "retained": Tolerance(percent=Fraction(10))}


def run(
    measured: Mapping[str, int],
    budget: Mapping[str, int] | None,
    limits: Mapping[str, int] | None = None,
    tolerances: Mapping[str, Tolerance] | None = None,
    profile_recorded: bool = True,
) -> tuple[Status, dict[str, MetricStatus]]:
    verdict = judge(
        KEY,
        PROFILE,
        measured,
        budget,
        limits or {},
        TEN_PERCENT if tolerances is None else tolerances,
        profile_recorded,
    )
    assert verdict.key == KEY
    assert verdict.profile == PROFILE
    return verdict.status, {result.metric: result.status for result in verdict.metrics}


# ------------------------------------------------------------------------------------------------ statuses


@pytest.mark.smoke
def test_passes_within_tolerance_and_fails_beyond() -> None:
    assert run({"peak": 1100}, {"peak": 1000}) == (Status.PASSED, {"peak": MetricStatus.OK})
    assert run({"peak": 1101}, {"peak": 1000}) == (Status.FAILED, {"peak": MetricStatus.REGRESSED})


def test_improved_passes() -> None:
    assert run({"peak": 899}, {"peak": 1000}) == (Status.PASSED, {"peak": MetricStatus.IMPROVED})
    assert run({"peak": 900}, {"peak": 1000}) == (Status.PASSED, {"peak": MetricStatus.OK})
    assert run({"peak": 0}, {"peak": 1000}) == (Status.PASSED, {"peak": MetricStatus.IMPROVED})


def test_one_regressed_metric_fails_the_entry() -> None:
    status, metrics = run({"peak": 500, "retained": 5000}, {"peak": 1000, "retained": 100})
    assert status is Status.FAILED
    assert metrics == {"peak": MetricStatus.IMPROVED, "retained": MetricStatus.REGRESSED}


def test_fails_over_an_explicit_limit_without_a_budget() -> None:
    for recorded in (True, False):
        assert run({"peak": 2049}, None, {"peak": 2048}, profile_recorded=recorded) == (
            Status.FAILED,
            {"peak": MetricStatus.OVER_LIMIT},
        )


def test_limit_has_no_tolerance() -> None:
    big = {"peak": Tolerance(absolute=10**9)}
    assert run({"peak": 2049}, {"peak": 2000}, {"peak": 2048}, big) == (
        Status.FAILED,
        {"peak": MetricStatus.OVER_LIMIT},
    )
    assert run({"peak": 2048}, {"peak": 2000}, {"peak": 2048}, big) == (Status.PASSED, {"peak": MetricStatus.OK})


def test_limit_wins_over_a_regression() -> None:
    assert run({"peak": 5000}, {"peak": 1000}, {"peak": 4000}) == (Status.FAILED, {"peak": MetricStatus.OVER_LIMIT})


def test_regression_fails_even_under_the_limit() -> None:
    assert run({"peak": 3000}, {"peak": 1000}, {"peak": 4000}) == (Status.FAILED, {"peak": MetricStatus.REGRESSED})


def test_limit_met_without_budget_is_ok_but_still_missing() -> None:
    assert run({"peak": 10}, None, {"peak": 2048}) == (Status.MISSING, {"peak": MetricStatus.OK})
    assert run({"peak": 10}, None, {"peak": 2048}, profile_recorded=False) == (
        Status.UNRECORDED,
        {"peak": MetricStatus.OK},
    )


def test_missing_and_unrecorded() -> None:
    assert run({"peak": 10, "retained": 0}, None, profile_recorded=True) == (
        Status.MISSING,
        {"peak": MetricStatus.UNBUDGETED, "retained": MetricStatus.UNBUDGETED},
    )
    assert run({"peak": 10, "retained": 0}, None, profile_recorded=False) == (
        Status.UNRECORDED,
        {"peak": MetricStatus.UNBUDGETED, "retained": MetricStatus.UNBUDGETED},
    )


def test_entry_without_one_metric_passes_with_that_metric_unbudgeted() -> None:
    assert run({"peak": 10, "retained": 99}, {"peak": 10}) == (
        Status.PASSED,
        {"peak": MetricStatus.OK, "retained": MetricStatus.UNBUDGETED},
    )


def test_only_measured_known_metrics_are_judged_in_metric_order() -> None:
    verdict = judge(KEY, PROFILE, {"retained": 1, "heap": 5, "peak": 2}, {"peak": 2, "retained": 1}, {}, {}, True)
    assert [result.metric for result in verdict.metrics] == ["peak", "retained"]
    assert judge(KEY, PROFILE, {}, {"peak": 1}, {}, {}, True).metrics == ()


def test_default_tolerance_comes_from_the_metric() -> None:
    default = METRICS["peak"].default_tolerance
    assert default == Tolerance(percent=Fraction(2), absolute=4096)
    allowed = default.allowed(1000)
    verdict = judge(KEY, PROFILE, {"peak": allowed}, {"peak": 1000}, {}, {}, True)
    assert verdict.status is Status.PASSED
    assert verdict.metrics[0].tolerance == default
    verdict = judge(KEY, PROFILE, {"peak": allowed + 1}, {"peak": 1000}, {}, {}, True)
    assert verdict.status is Status.FAILED


def test_default_tolerance_of_the_count_and_allocated_metrics() -> None:
    assert METRICS["allocations"].default_tolerance == Tolerance(percent=Fraction(2), absolute=16)
    assert METRICS["allocated"].default_tolerance == Tolerance(percent=Fraction(2), absolute=4096)
    # small counts get the absolute 16, large ones 2%
    assert judge(KEY, PROFILE, {"allocations": 116}, {"allocations": 100}, {}, {}, True).status is Status.PASSED
    assert judge(KEY, PROFILE, {"allocations": 117}, {"allocations": 100}, {}, {}, True).status is Status.FAILED
    assert judge(KEY, PROFILE, {"allocations": 10_200}, {"allocations": 10_000}, {}, {}, True).status is Status.PASSED
    assert judge(KEY, PROFILE, {"allocations": 10_201}, {"allocations": 10_000}, {}, {}, True).status is Status.FAILED


def test_a_regression_in_allocations_alone_fails() -> None:
    budget = {"peak": 1000, "retained": 0, "allocations": 100, "allocated": 5000}
    status, metrics = run(
        {"peak": 1000, "retained": 0, "allocations": 10_000, "allocated": 5000}, budget, tolerances={}
    )
    assert status is Status.FAILED
    assert metrics == {
        "peak": MetricStatus.OK,
        "retained": MetricStatus.OK,
        "allocations": MetricStatus.REGRESSED,
        "allocated": MetricStatus.OK,
    }


def test_recorded_metrics_that_were_not_measured_are_not_judged() -> None:
    # a tracemalloc-only run measures peak and retained; the entry's counter metrics are neither failed nor passed
    budget = {"peak": 1000, "retained": 0, "allocations": 1, "allocated": 1}
    verdict = judge(KEY, PROFILE, {"peak": 1000, "retained": 0}, budget, {}, {}, True)
    assert verdict.status is Status.PASSED
    assert [result.metric for result in verdict.metrics] == ["peak", "retained"]


def test_failures_and_improvements() -> None:
    verdict = judge(
        KEY, PROFILE, {"peak": 5000, "retained": 0}, {"peak": 100, "retained": 10_000}, {}, TEN_PERCENT, True
    )
    assert [result.metric for result in verdict.failures] == ["peak"]
    assert [result.metric for result in verdict.improvements] == ["retained"]
    verdict = judge(KEY, PROFILE, {"peak": 100}, {"peak": 100}, {}, TEN_PERCENT, True)
    assert verdict.failures == ()
    assert verdict.improvements == ()


# ------------------------------------------------------------------------------------------------ MetricResult


def _result(measured: int, budget: int | None, limit: int | None = None) -> MetricResult:
    return MetricResult("peak", measured, budget, limit, Tolerance(), MetricStatus.OK)


def test_change_and_change_percent() -> None:
    assert _result(1500, 1000).change == 500
    assert _result(1500, 1000).change_percent == pytest.approx(50.0)
    assert _result(750, 1000).change == -250
    assert _result(750, 1000).change_percent == pytest.approx(-25.0)
    assert _result(1000, 1000).change_percent == 0.0


def test_change_without_budget_or_with_zero_budget() -> None:
    assert _result(10, None).change is None
    assert _result(10, None).change_percent is None
    assert _result(10, 0).change == 10
    assert _result(10, 0).change_percent is None


def test_metric_result_unit() -> None:
    assert _result(1, 1).unit == "bytes"
    assert MetricResult("allocations", 1, 1, None, Tolerance(), MetricStatus.OK).unit == "count"
    assert {name: metric.unit for name, metric in METRICS.items()} == {
        "peak": "bytes",
        "retained": "bytes",
        "allocations": "count",
        "allocated": "bytes",
    }
    assert list(METRICS) == ["peak", "retained", "allocations", "allocated"]  # the canonical order


def test_verdict_carries_the_judged_values() -> None:
    verdict = judge(KEY, PROFILE, {"peak": 2000}, {"peak": 1000}, {"peak": 3000}, TEN_PERCENT, True)
    (result,) = verdict.metrics
    assert (result.metric, result.measured, result.budget, result.limit) == ("peak", 2000, 1000, 3000)
    assert result.tolerance == TEN_PERCENT["peak"]
    assert result.change == 1000


# ------------------------------------------------------------------------------------------------ properties

metric_names = st.sampled_from(sorted(METRICS))
amounts = st.integers(min_value=0, max_value=10**7)
tolerance_values = st.builds(
    Tolerance,
    percent=st.fractions(min_value=0, max_value=100, max_denominator=100),
    absolute=st.integers(min_value=0, max_value=10_000),
)


@given(
    st.dictionaries(metric_names, amounts),
    st.one_of(st.none(), st.dictionaries(metric_names, amounts)),
    st.dictionaries(metric_names, amounts),
    st.dictionaries(metric_names, tolerance_values),
    st.booleans(),
)
def test_judge_fails_iff_a_metric_exceeds_budget_plus_slack_or_its_limit(
    measured: dict[str, int],
    budget: dict[str, int] | None,
    limits: dict[str, int],
    tolerances: dict[str, Tolerance],
    profile_recorded: bool,
) -> None:
    verdict = judge(KEY, PROFILE, measured, budget, limits, tolerances, profile_recorded)

    def exceeds(metric: str, value: int) -> bool:
        tolerance = tolerances.get(metric, METRICS[metric].default_tolerance)
        recorded = None if budget is None else budget.get(metric)
        over_budget = recorded is not None and value > recorded + tolerance.slack(recorded)
        over_limit = metric in limits and value > limits[metric]
        return over_budget or over_limit

    failing = {metric for metric, value in measured.items() if exceeds(metric, value)}
    assert (verdict.status is Status.FAILED) == bool(failing)
    assert {result.metric for result in verdict.failures} == failing
    assert {result.metric for result in verdict.metrics} == set(measured)
    if not failing:
        if budget is None:
            assert verdict.status is (Status.MISSING if profile_recorded else Status.UNRECORDED)
        else:
            assert verdict.status is Status.PASSED
    for result in verdict.metrics:
        if result.status is MetricStatus.OVER_LIMIT:
            assert result.limit is not None
            assert result.measured > result.limit
        if result.status is MetricStatus.UNBUDGETED:
            assert result.budget is None
            assert result.limit is None
        if result.status is MetricStatus.IMPROVED:
            assert result.budget is not None
            assert result.measured < result.budget - result.tolerance.slack(result.budget)
        if result.budget is not None:
            assert result.change == result.measured - result.budget


# ------------------------------------------------------------------------------------------------ unstable

BUDGET = {"allocations": 100, "peak": 10_000}
TIGHT = {"allocations": Tolerance(absolute=0), "peak": Tolerance(absolute=0)}


def _judged(measured: Mapping[str, int], limits: Mapping[str, int] | None = None) -> Verdict:
    return judge(KEY, PROFILE, measured, BUDGET, limits or {}, TIGHT, True)


@pytest.mark.parametrize(
    ("second", "third", "expected"),
    [
        ({"allocations": 150, "peak": 10_000}, {"allocations": 100, "peak": 10_000}, True),  # within on the third
        ({"allocations": 150, "peak": 10_000}, {"allocations": 90, "peak": 12_000}, True),  # peak was not over
        ({"allocations": 150, "peak": 10_000}, {"allocations": 150, "peak": 10_000}, False),  # over on both: regressed
        ({"allocations": 150, "peak": 10_000}, {"allocations": 101, "peak": 10_000}, False),  # still over, by less
        ({"allocations": 150, "peak": 12_000}, {"allocations": 100, "peak": 12_000}, False),  # peak over on both
        ({"allocations": 150}, {"peak": 10_000}, False),  # the metric that was over was not measured again
        ({"allocations": 100, "peak": 10_000}, {"allocations": 100, "peak": 10_000}, False),  # second call passed
    ],
)
def test_unstable_when_every_metric_over_the_budget_is_within_it_on_the_third_call(
    second: dict[str, int], third: dict[str, int], expected: bool
) -> None:
    assert unstable(_judged(second), _judged(third)) is expected


def test_a_limit_passed_on_one_call_always_fails() -> None:
    limits = {"allocations": 120}
    assert not unstable(_judged({"allocations": 150}, limits), _judged({"allocations": 100}, limits))


@given(
    st.dictionaries(st.sampled_from(["allocations", "peak"]), st.integers(0, 20_000), min_size=1),
    st.dictionaries(st.sampled_from(["allocations", "peak"]), st.integers(0, 20_000), min_size=1),
)
def test_a_test_over_on_both_calls_in_some_metric_is_never_unstable(
    second: dict[str, int], third: dict[str, int]
) -> None:
    one, other = _judged(second), _judged(third)
    over_on_both = {r.metric for r in one.failures} & {r.metric for r in other.failures}
    if over_on_both or one.status is not Status.FAILED:
        assert not unstable(one, other)
    else:
        assert unstable(one, other) == all(r.metric in third for r in one.failures)
