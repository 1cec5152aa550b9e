"""Unit tests of :mod:`pytest_allocbudget.wiring.settings`."""

from __future__ import annotations

import platform
import re
import sys
from collections.abc import Mapping
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_allocbudget.judging.metrics import METRICS
from pytest_allocbudget.judging.tolerance import Tolerance
from pytest_allocbudget.wiring import settings
from pytest_allocbudget.wiring.settings import (
    DEFAULT_FILE,
    DEFAULT_LOCK_TIMEOUT,
    MARKER,
    MarkerPlan,
    RunSettings,
    SettingsError,
    parse_marker,
    parse_tolerances,
    profile_name,
    resolve_path,
    resolve_plan,
    resolve_run_settings,
)

NODE = "tests/test_a.py::test_a[1]"
SOURCE = "--alloc-tolerance = 'x'"
FIVE = Tolerance(percent=Fraction(5))
#: What a single spec without a byte size (``"5%"``, ``0``) gives: the same tolerance for every metric.
ALL_FIVE = {"peak": FIVE, "retained": FIVE, "allocations": FIVE, "allocated": FIVE}

Marks = list[tuple[tuple[object, ...], Mapping[str, object]]]

# ------------------------------------------------------------------------------------------------ tolerances


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("5%", ALL_FIVE),
        # a byte size does not fit the count metric: it is left to its own default
        ("2%, 4 KiB", {name: Tolerance(Fraction(2), 4096) for name in ("peak", "retained", "allocated")}),
        ("4 KiB", {name: Tolerance(absolute=4096) for name in ("peak", "retained", "allocated")}),
        (0, {"peak": Tolerance(), "retained": Tolerance(), "allocations": Tolerance(), "allocated": Tolerance()}),
        ("allocations: 5%, 16", {"allocations": Tolerance(Fraction(5), 16)}),
        ({"allocated": "1 KiB", "allocations": 0}, {"allocated": Tolerance(absolute=1024), "allocations": Tolerance()}),
        pytest.param("peak: 5%; retained: 0", {"peak": FIVE, "retained": Tolerance()}, marks=pytest.mark.smoke),
        ("peak: 5%, 1 KiB", {"peak": Tolerance(Fraction(5), 1024)}),
        (" peak : 5% ; ", {"peak": FIVE}),
        ("retained: 4 KiB;", {"retained": Tolerance(absolute=4096)}),
        ({"peak": "5%"}, {"peak": FIVE}),
        ({"peak": "5%", "retained": 0}, {"peak": FIVE, "retained": Tolerance()}),
        ({}, {}),
    ],
)
def test_parse_tolerances(spec: object, expected: dict[str, Tolerance]) -> None:
    assert parse_tolerances(spec, SOURCE) == expected


def test_parse_tolerances_single_spec_covers_every_metric_it_fits() -> None:
    assert set(parse_tolerances("5%", SOURCE)) == set(METRICS)
    assert set(parse_tolerances("1 MiB", SOURCE)) == {
        name for name, metric in METRICS.items() if metric.unit == "bytes"
    }


@pytest.mark.parametrize(
    ("spec", "fragment"), [("allocations: 4 KiB", "allocations: "), ({"allocations": "1.5"}, "allocations: ")]
)
def test_parse_tolerances_count_metric_takes_plain_numbers(spec: object, fragment: str) -> None:
    with pytest.raises(SettingsError) as info:
        parse_tolerances(spec, SOURCE)
    message = str(info.value)
    assert message.startswith(f"{SOURCE}: {fragment}")
    assert "whole number (a count, no unit suffix)" in message


@pytest.mark.parametrize("spec", ["bogus: 5%", "peak: 5%; heap: 1 KiB", {"heap": "5%"}])
def test_parse_tolerances_unknown_metric(spec: object) -> None:
    with pytest.raises(SettingsError) as info:
        parse_tolerances(spec, SOURCE)
    message = str(info.value)
    assert message.startswith(f"{SOURCE}: unknown metric ")
    assert message.endswith("known metrics: peak, retained, allocations, allocated")


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("peak: lots", "peak: "),
        ("peak: 5%; retained: -1", "retained: "),
        ({"peak": "1.5 B"}, "peak: "),
        ({"retained": True}, "retained: "),
        ("peak: 5%; 3%", "expected 'metric: tolerance' in '3%'"),
        ("five percent", "got 'five percent'"),
        ("", "expected a tolerance"),
        (True, "expected a tolerance"),
        (1.5, "expected a tolerance"),
        ("5%, 6%", "two percentages"),
    ],
)
def test_parse_tolerances_bad_value_names_the_source(spec: object, fragment: str) -> None:
    with pytest.raises(SettingsError) as info:
        parse_tolerances(spec, SOURCE)
    message = str(info.value)
    assert message.startswith(f"{SOURCE}: ")
    assert fragment in message


def test_settings_error_is_a_value_error() -> None:
    assert issubclass(SettingsError, ValueError)


# ------------------------------------------------------------------------------------------------ marker


def test_parse_marker_bare() -> None:
    assert parse_marker([((), {})], NODE) == MarkerPlan()
    assert parse_marker([((True,), {})], NODE) == MarkerPlan({}, {}, None, None)  # warmup, isolate: as the run says


def test_parse_marker_all_arguments() -> None:
    plan = parse_marker([((), {"peak": "2 MiB", "retained": 0, "tolerance": "5%", "warmup": True})], NODE)
    assert plan == MarkerPlan({"peak": 2 * 1024**2, "retained": 0}, ALL_FIVE, True)


def test_parse_marker_count_limits() -> None:
    plan = parse_marker([((), {"allocations": 500, "allocated": "64 KiB"})], NODE)
    assert plan == MarkerPlan({"allocations": 500, "allocated": 64 * 1024})


def test_parse_marker_none_values_are_ignored() -> None:
    plan = parse_marker([((), {"peak": None, "retained": None, "tolerance": None})], NODE)
    assert plan == MarkerPlan()


def test_parse_marker_tolerance_mapping() -> None:
    plan = parse_marker([((), {"tolerance": {"retained": "1 KiB"}})], NODE)
    assert plan is not None
    assert plan.tolerances == {"retained": Tolerance(absolute=1024)}


def test_parse_marker_closest_wins() -> None:
    marks: Marks = [
        ((), {"peak": "1 MiB", "retained": 100, "tolerance": "5%"}),  # module
        ((), {"peak": "2 MiB", "warmup": True}),  # class
        ((), {"peak": 300}),  # function: closest
    ]
    plan = parse_marker(marks, NODE)
    assert plan == MarkerPlan({"peak": 300, "retained": 100}, ALL_FIVE, True)


def test_parse_marker_a_closer_none_does_not_lift_a_farther_limit() -> None:
    plan = parse_marker([((), {"peak": 100}), ((), {"peak": None})], NODE)
    assert plan == MarkerPlan({"peak": 100})


@pytest.mark.parametrize("order", [("1 KiB", "1 MiB"), ("1 MiB", "1 KiB")], ids=["strict-first", "strict-last"])
def test_parse_marker_stacked_limits_keep_the_lowest_in_either_order(order: tuple[str, str]) -> None:
    plan = parse_marker([((), {"peak": order[0]}), ((), {"peak": order[1], "retained": 0})], NODE)
    assert plan == MarkerPlan({"peak": 1024, "retained": 0})


def test_parse_marker_a_bad_farther_limit_is_an_error_even_under_a_closer_one() -> None:
    with pytest.raises(SettingsError, match=r"peak='lots': expected a size"):
        parse_marker([((), {"peak": "lots"}), ((), {"peak": 5})], NODE)


def test_parse_marker_disabled() -> None:
    assert parse_marker([((False,), {})], NODE) is None
    assert parse_marker([((True,), {"peak": 1}), ((False,), {})], NODE) is None  # closest says False
    assert parse_marker([((False,), {}), ((True,), {"peak": 1})], NODE) == MarkerPlan({"peak": 1})  # closest True


def test_parse_marker_bare_closer_marker_keeps_a_farther_false() -> None:
    # docs/reference.md: "a bare @pytest.mark.alloc_budget under alloc_budget(False) stays off"
    assert parse_marker([((False,), {}), ((), {})], NODE) is None
    assert parse_marker([((False,), {}), ((), {"peak": 1})], NODE) is None


def test_parse_marker_disabled_does_not_validate_arguments() -> None:
    assert parse_marker([((False,), {"peak": "lots"})], NODE) is None


@pytest.mark.parametrize("args", [(1,), ("yes",), (None,), (True, False)])
def test_parse_marker_bad_positional(args: tuple[object, ...]) -> None:
    with pytest.raises(SettingsError) as info:
        parse_marker([(args, {})], NODE)
    message = str(info.value)
    assert message.startswith(f"{NODE}: @pytest.mark.{MARKER}")
    assert repr(args if len(args) > 1 else args[0]) in message


def test_parse_marker_unknown_keyword_names_node_argument_and_value() -> None:
    with pytest.raises(SettingsError) as info:
        parse_marker([((), {"heap": "1 MiB"})], NODE)
    assert str(info.value) == (
        f"{NODE}: @pytest.mark.{MARKER}: unknown argument heap='1 MiB'; "
        "expected one of enabled, tolerance, warmup, isolate, from_start, peak, retained, allocations, allocated"
    )


def test_parse_marker_enabled_by_keyword() -> None:
    assert parse_marker([((), {"enabled": False})], NODE) is None
    assert parse_marker([((), {"enabled": True, "peak": 5})], NODE) == MarkerPlan(limits={"peak": 5})
    with pytest.raises(SettingsError, match=r"enabled must be True or False, got 'no'"):
        parse_marker([((), {"enabled": "no"})], NODE)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("peak", "lots"),
        ("peak", "1.5 B"),
        ("retained", -1),
        ("peak", 1.5),
        ("allocated", "lots"),
        ("allocations", "1 KiB"),  # a count takes no unit
        ("allocations", -1),
        ("allocations", True),
    ],
)
def test_parse_marker_bad_size(name: str, value: object) -> None:
    with pytest.raises(SettingsError) as info:
        parse_marker([((), {name: value})], NODE)
    assert str(info.value).startswith(f"{NODE}: @pytest.mark.{MARKER}: {name}={value!r}: ")


@pytest.mark.parametrize("name", ["warmup", "isolate", "from_start"])
@pytest.mark.parametrize("value", [1, "yes", 0])
def test_parse_marker_switches_must_be_bool(name: str, value: object) -> None:
    with pytest.raises(SettingsError) as info:
        parse_marker([((), {name: value})], NODE)
    assert str(info.value) == f"{NODE}: @pytest.mark.{MARKER}: {name} must be True or False, got {value!r}"


def test_parse_marker_switches_closest_marker_wins_and_none_means_as_the_run_says() -> None:
    module, function = ((), {"warmup": True, "isolate": True}), ((), {"isolate": False})
    assert parse_marker([module, function], NODE) == MarkerPlan(warmup=True, isolate=False)
    assert parse_marker([module, ((), {"warmup": None})], NODE) == MarkerPlan(warmup=None, isolate=True)
    assert parse_marker([((), {"from_start": True}), ((), {"from_start": False})], NODE) == MarkerPlan(from_start=False)


def test_parse_marker_bad_tolerance_names_node_and_value() -> None:
    with pytest.raises(SettingsError) as info:
        parse_marker([((), {"tolerance": "5%, 6%"})], NODE)
    message = str(info.value)
    assert message.startswith(f"{NODE}: @pytest.mark.{MARKER}: tolerance='5%, 6%': ")
    assert "two percentages" in message


@given(st.lists(st.dictionaries(st.sampled_from(sorted(METRICS)), st.integers(0, 10**9)), max_size=5))
def test_parse_marker_limits_are_the_lowest_values(kwargs_per_mark: list[dict[str, int]]) -> None:
    expected: dict[str, int] = {}
    for kwargs in kwargs_per_mark:
        for metric, value in kwargs.items():
            expected[metric] = min(value, expected.get(metric, value))
    plan = parse_marker([((), kwargs) for kwargs in kwargs_per_mark], NODE)
    assert plan is not None
    assert dict(plan.limits) == expected


# ------------------------------------------------------------------------------------------------ profile


def test_profile_name_format() -> None:
    name = profile_name()
    assert name.startswith(f"{sys.implementation.name}-{sys.version_info[0]}.{sys.version_info[1]}")
    assert re.fullmatch(r"[a-z]+-\d+\.\d+t?", name)
    if platform.python_implementation() == "CPython":
        assert re.match(r"^cpython-3\.\d+t?$", name)


def test_profile_name_free_threaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings.sysconfig, "get_config_var", lambda name: 1 if name == "Py_GIL_DISABLED" else None)
    assert profile_name().endswith("t")
    monkeypatch.setattr(settings.sysconfig, "get_config_var", lambda name: 0)
    assert not profile_name().endswith("t")


# ------------------------------------------------------------------------------------------------ path


def test_resolve_path_option_wins_relative_to_invocation(tmp_path: Path) -> None:
    path = resolve_path("sub/budgets.yaml", "ini.yaml", tmp_path / "cfg" / "pytest.ini", tmp_path / "root", tmp_path)
    assert path == (tmp_path / "sub" / "budgets.yaml").resolve()


def test_resolve_path_absolute_option(tmp_path: Path) -> None:
    target = tmp_path / "abs.yaml"
    assert resolve_path(str(target), "ini.yaml", None, tmp_path / "root", tmp_path / "elsewhere") == target.resolve()


def test_resolve_path_ini_relative_to_ini_file(tmp_path: Path) -> None:
    path = resolve_path(None, "b/budgets.yaml", tmp_path / "cfg" / "tox.ini", tmp_path / "root", tmp_path / "inv")
    assert path == (tmp_path / "cfg" / "b" / "budgets.yaml").resolve()


def test_resolve_path_ini_without_inipath_uses_rootdir(tmp_path: Path) -> None:
    path = resolve_path("", "budgets.yaml", None, tmp_path / "root", tmp_path / "inv")
    assert path == (tmp_path / "root" / "budgets.yaml").resolve()


def test_resolve_path_default(tmp_path: Path) -> None:
    path = resolve_path(None, "", tmp_path / "cfg" / "pytest.ini", tmp_path / "root", tmp_path / "inv")
    assert path == (tmp_path / "root" / DEFAULT_FILE).resolve()
    assert DEFAULT_FILE == "allocbudget.yaml"


def test_resolve_path_is_normalised(tmp_path: Path) -> None:
    path = resolve_path("a/../b.yaml", "", None, tmp_path, tmp_path)
    assert path == (tmp_path / "b.yaml").resolve()
    assert path.is_absolute()


@pytest.mark.parametrize("run_warmup", [False, True])
@pytest.mark.parametrize("run_isolate", [False, True])
@pytest.mark.parametrize("marker", [None, False, True])
def test_resolve_plan_marker_wins_over_the_run(run_warmup: bool, run_isolate: bool, marker: bool | None) -> None:
    run = RunSettings(
        Path("allocbudget.yaml"), False, {}, "rerun", "auto", False, False, False, None, run_warmup, run_isolate
    )
    run = replace(run, from_start=run_isolate)
    plan = resolve_plan(MarkerPlan(limits={"peak": 1}, warmup=marker, isolate=marker, from_start=marker), run)
    assert plan.limits == {"peak": 1}
    assert plan.warmup is (run_warmup if marker is None else marker)
    assert plan.isolate is (run_isolate if marker is None else marker)
    assert plan.from_start is (run_isolate if marker is None else marker)


@pytest.mark.parametrize(
    ("option", "ini", "expected"),
    [(None, "", DEFAULT_LOCK_TIMEOUT), (None, "2.5", 2.5), ("0", "2.5", 0.0), ("90", "", 90.0)],
)
def test_lock_timeout_option_then_ini_then_default(
    tmp_path: Path, option: str | None, ini: str, expected: float
) -> None:
    options = {"--alloc-lock-timeout": option}
    ini_keys = {"alloc_budget_lock_timeout": ini}
    run = resolve_run_settings(options.get, lambda key: ini_keys.get(key, ""), None, tmp_path, tmp_path)
    assert run.lock_timeout == expected
    assert DEFAULT_LOCK_TIMEOUT == 60
