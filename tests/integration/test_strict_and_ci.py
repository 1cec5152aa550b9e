"""Strict mode (``--alloc-strict``, ini ``alloc_budget_strict``) and what changes when a CI environment is detected."""

from __future__ import annotations

import pytest

TESTS = """
import pytest

KEEP = []

@pytest.mark.alloc_budget
def test_keep():
    KEEP.append(bytes(20_000))

@pytest.mark.alloc_budget
def test_small():
    assert len([0] * 100) == 100
"""

NEW = """

@pytest.mark.alloc_budget
def test_new():
    KEEP.append(bytes(1_000))
"""

NO_BUDGETS_WARNING = "warning: allocbudget.yaml has no budgets for"


def _ini(tester: pytest.Pytester, **keys: str) -> None:
    """The fixed ini of the ``tester`` fixture, plus ini keys."""
    lines = ["[pytest]", "addopts = -p no:cacheprovider -p no:randomly -p no:xdist -p no:anyio -p no:asyncio"]
    lines += [f"{key} = {value}" for key, value in keys.items()]
    tester.makefile(".ini", pytest="\n".join(lines) + "\n")


#: The two ways to turn strict mode on: the option, or the ini key.
STRICT = [
    pytest.param(("--alloc-strict",), {}, id="option"),
    pytest.param((), {"alloc_budget_strict": "true"}, id="ini"),
]


@pytest.mark.parametrize(("args", "ini"), STRICT)
def test_strict_fails_a_missing_entry(tester: pytest.Pytester, args: tuple[str, ...], ini: dict[str, str]) -> None:
    tester.makepyfile(TESTS)
    tester.runpytest("--alloc-update").assert_outcomes(passed=2)
    tester.makepyfile(TESTS + NEW)
    _ini(tester, **ini)
    result = tester.runpytest(*args)
    result.assert_outcomes(passed=2, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    nodeid = "test_strict_fails_a_missing_entry.py::test_new"
    result.stdout.fnmatch_lines(
        [
            f"no budget recorded for {nodeid} under * in allocbudget.yaml; run pytest --alloc-update {nodeid}",
            "*3 measured (*): 2 passed, 0 failed, 1 missing*",
            f"FAILED {nodeid}*",
        ]
    )


@pytest.mark.parametrize(("args", "ini"), STRICT)
def test_strict_fails_a_profile_with_no_entries_instead_of_warning(
    tester: pytest.Pytester, args: tuple[str, ...], ini: dict[str, str], profile: str
) -> None:
    tester.makepyfile(TESTS)
    # Not strict: a profile with no entries (here, no file at all) is measured, not checked, and warns.
    result = tester.runpytest()
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines([f"{NO_BUDGETS_WARNING} {profile}; 2 budgeted test(s) were measured but not checked*"])

    _ini(tester, **ini)
    result = tester.runpytest(*args)
    result.assert_outcomes(failed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    name = "test_strict_fails_a_profile_with_no_entries_instead_of_warning.py"
    result.stdout.fnmatch_lines(
        [
            f"no budget recorded for {name}::test_keep under {profile} in allocbudget.yaml; run pytest --alloc-update "
            f"{name}::test_keep (strict mode: allocbudget.yaml has no budgets for {profile} at all, which fails "
            "instead of warning)",
        ]
    )
    assert NO_BUDGETS_WARNING not in result.stdout.str()
    assert not (tester.path / "allocbudget.yaml").exists()  # a check run never writes


@pytest.mark.parametrize(("args", "ini"), STRICT)
def test_strict_stale_entries_fail_the_session_and_are_listed(
    tester: pytest.Pytester, args: tuple[str, ...], ini: dict[str, str], add_entry
) -> None:
    tester.makepyfile(TESTS)
    tester.runpytest("--alloc-update").assert_outcomes(passed=2)
    name = "test_strict_stale_entries_fail_the_session_and_are_listed.py"
    add_entry(f"{name}::test_gone")
    add_entry(f"{name}::test_small", "old region")

    result = tester.runpytest()  # not strict: listed, kept, and the run passes
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["2 stale entries (*) are kept; remove them with: pytest --alloc-update --alloc-prune"])

    _ini(tester, **ini)
    result = tester.runpytest(*args)
    result.assert_outcomes(passed=2)  # every test passed, but the session fails
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "2 stale entries (their tests no longer exist or no longer measure them) fail the run in strict mode; "
            "remove them with: pytest --alloc-update --alloc-prune",
            f"  {name}::test_gone",
            f"  {name}::test_small [[]region 'old region'[]]",
        ]
    )


def test_strict_fails_recorded_count_budgets_that_the_tracemalloc_engine_cannot_measure(
    tester: pytest.Pytester, recorded_metrics: tuple[str, ...]
) -> None:
    if "allocations" not in recorded_metrics:
        pytest.skip("the allocation counter is not available here, so no count budgets can be recorded")
    tester.makepyfile(TESTS)
    tester.runpytest("--alloc-update").assert_outcomes(passed=2)

    # Not strict: peak and retained are checked, the count budgets are left alone.
    tester.runpytest("--alloc-engine=tracemalloc").assert_outcomes(passed=2)

    result = tester.runpytest("--alloc-strict", "--alloc-engine=tracemalloc")
    result.assert_outcomes(failed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    name = "test_strict_fails_recorded_count_budgets_that_the_tracemalloc_engine_cannot_measure.py"
    result.stdout.fnmatch_lines(
        [
            f"{name}::test_keep has budgets for allocated, allocations, which cannot be measured here (*); strict "
            "mode fails instead of skipping them",
        ]
    )


def test_strict_fails_recorded_count_budgets_where_the_counter_is_missing(
    without_counter: pytest.Pytester, recorded_metrics: tuple[str, ...]
) -> None:
    if "allocations" not in recorded_metrics:
        pytest.skip("the allocation counter is not available here, so no count budgets can be recorded")
    without_counter.makepyfile(TESTS)
    without_counter.runpytest("--alloc-update").assert_outcomes(passed=2)  # in this process, with the counter
    result = without_counter.runpytest_subprocess("--alloc-strict")
    result.assert_outcomes(failed=2)
    name = "test_strict_fails_recorded_count_budgets_where_the_counter_is_missing.py"
    result.stdout.fnmatch_lines(
        [
            f"{name}::test_small has budgets for allocated, allocations, which cannot be measured here (the "
            "allocation counter extension *); strict mode fails instead of skipping them",
        ]
    )


# ------------------------------------------------------------------------------------------------ CI


@pytest.mark.parametrize(
    "variable", [pytest.param("CI", marks=pytest.mark.smoke), "GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE"]
)
def test_in_ci_strict_mode_is_on_and_update_is_refused_unless_allowed(
    tester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, variable: str, profile: str
) -> None:
    tester.makepyfile(TESTS)
    monkeypatch.setenv(variable, "true")
    # Strict: the profile has no entries, which fails instead of warning.
    result = tester.runpytest()
    result.assert_outcomes(failed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([f"strict mode is on: a CI environment was detected ({variable} is set)"])
    assert NO_BUDGETS_WARNING not in result.stdout.str()

    result = tester.runpytest("--alloc-update")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: --alloc-update is refused in CI ({variable} is set in the environment)*--alloc-update-in-ci*"]
    )
    assert not (tester.path / "allocbudget.yaml").exists()

    result = tester.runpytest("--alloc-update", "--alloc-update-in-ci")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["wrote allocbudget.yaml: 2 created, 0 updated, 0 unchanged"])

    result = tester.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [f"2 measured (*): 2 passed, 0 failed, 0 missing (profile {profile}, allocbudget.yaml)"]
    )


@pytest.mark.parametrize("value", ["false", "0"])
def test_a_false_ci_variable_is_not_ci(
    tester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, value: str, profile: str
) -> None:
    tester.makepyfile(TESTS)
    monkeypatch.setenv("CI", value)
    result = tester.runpytest()
    result.assert_outcomes(passed=2)  # not strict: an unrecorded profile only warns
    result.stdout.fnmatch_lines([f"{NO_BUDGETS_WARNING} {profile}*"])
    assert "strict mode is on" not in result.stdout.str()
    result = tester.runpytest("--alloc-update")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["wrote allocbudget.yaml: 2 created, 0 updated, 0 unchanged"])


def test_ini_strict_false_turns_strict_mode_off_in_ci(
    tester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, profile: str, add_entry
) -> None:
    tester.makepyfile(TESTS)
    monkeypatch.setenv("CI", "true")
    _ini(tester, alloc_budget_strict="false")
    result = tester.runpytest()
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines([f"{NO_BUDGETS_WARNING} {profile}*"])
    assert "strict mode is on" not in result.stdout.str()

    # Nor does a stale entry fail the run.
    tester.runpytest("--alloc-update", "--alloc-update-in-ci").assert_outcomes(passed=2)
    add_entry("test_ini_strict_false_turns_strict_mode_off_in_ci.py::test_gone")
    result = tester.runpytest()
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["1 stale entry (*) is kept; *"])
