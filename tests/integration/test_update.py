"""``pytest --alloc-update``: what it records, what it leaves alone, and when it writes at all."""

from __future__ import annotations

import os

import pytest

from pytest_allocbudget.budgets import store
from pytest_allocbudget.judging.metrics import METRICS

KEEPERS = """
import pytest

KEEP = []

@pytest.mark.alloc_budget
def test_a():
    KEEP.append(bytes(100_000))

@pytest.mark.alloc_budget
def test_b():
    KEEP.append(bytes(200_000))
"""

SENTINEL = {metric: 7 for metric in METRICS}


def _set_entry(tester: pytest.Pytester, nodeid: str, values: dict[str, int]) -> None:
    """Replace the values of one recorded whole-test entry in allocbudget.yaml, in the file's own layout."""
    path = tester.path / "allocbudget.yaml"
    text = path.read_text()
    budgets = store.loads(text, str(path))
    assert store.dump(budgets) == text  # written by the plugin, so rewriting it changes only this entry
    (entries,) = budgets.profiles.values()
    assert (nodeid, None) in entries
    entries[(nodeid, None)] = dict(values)
    path.write_text(store.dump(budgets))


def _age(path: os.PathLike[str]) -> int:
    """Set an old mtime, so that any rewrite shows even on a coarse clock; returns it."""
    stamp = 1_000_000_000 * 10**9
    os.utime(path, ns=(stamp, stamp))
    return stamp


@pytest.mark.smoke
def test_update_creates_entries_and_an_unchanged_rerun_does_not_rewrite(tester: pytest.Pytester, read_budgets) -> None:
    tester.makepyfile(KEEPERS)
    result = tester.runpytest("--alloc-update")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*allocation budgets*", "*wrote allocbudget.yaml: 2 created, 0 updated, 0 unchanged*"])
    name = "test_update_creates_entries_and_an_unchanged_rerun_does_not_rewrite.py"
    entries = read_budgets()
    assert set(entries) == {f"{name}::test_a", f"{name}::test_b"}
    assert 100_000 <= entries[f"{name}::test_a"]["retained"] < 105_000
    assert 200_000 <= entries[f"{name}::test_b"]["retained"] < 205_000

    path = tester.path / "allocbudget.yaml"
    before = path.read_bytes()
    stamp = _age(path)
    result = tester.runpytest("--alloc-update")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*allocbudget.yaml unchanged: 0 created, 0 updated, 2 unchanged*"])
    assert path.read_bytes() == before
    assert path.stat().st_mtime_ns == stamp


@pytest.mark.parametrize(
    "selection",
    [
        ["-k", "test_a"],
        ["{file}::test_a"],
        ["--deselect", "{file}::test_b"],
    ],
    ids=["keyword", "node-id", "deselect"],
)
def test_update_keeps_entries_of_tests_that_did_not_run(
    tester: pytest.Pytester, read_budgets, selection: list[str]
) -> None:
    tester.makepyfile(KEEPERS)
    tester.runpytest("--alloc-update").assert_outcomes(passed=2)
    name = "test_update_keeps_entries_of_tests_that_did_not_run.py"
    _set_entry(tester, f"{name}::test_a", SENTINEL)
    _set_entry(tester, f"{name}::test_b", SENTINEL)

    result = tester.runpytest("--alloc-update", *(arg.format(file=name) for arg in selection))
    result.assert_outcomes(passed=1, deselected=None)
    result.stdout.fnmatch_lines(["*wrote allocbudget.yaml: 0 created, 1 updated, 0 unchanged*"])
    entries = read_budgets()
    assert entries[f"{name}::test_a"]["retained"] >= 100_000
    assert entries[f"{name}::test_b"] == SENTINEL


def test_update_keeps_entries_of_failed_skipped_and_xfailed_tests(
    tester: pytest.Pytester, read_budgets, monkeypatch: pytest.MonkeyPatch
) -> None:
    tester.makepyfile(
        """
        import os
        import pytest

        BROKEN = os.environ.get("ALLOCBUDGET_TEST_BROKEN") == "1"
        KEEP = []

        @pytest.mark.alloc_budget
        def test_passes():
            KEEP.append(bytes(10_000))

        @pytest.mark.alloc_budget
        def test_fails():
            KEEP.append(bytes(10_000))
            assert not BROKEN

        @pytest.mark.alloc_budget
        def test_skips():
            KEEP.append(bytes(10_000))
            if BROKEN:
                pytest.skip("broken")

        @pytest.mark.alloc_budget
        @pytest.mark.xfail(BROKEN, reason="broken", strict=True)
        def test_xfails():
            KEEP.append(bytes(10_000))
            assert not BROKEN
        """
    )
    monkeypatch.setenv("ALLOCBUDGET_TEST_BROKEN", "0")
    tester.runpytest("--alloc-update").assert_outcomes(passed=4)
    name = "test_update_keeps_entries_of_failed_skipped_and_xfailed_tests.py"
    for test in ("test_passes", "test_fails", "test_skips", "test_xfails"):
        _set_entry(tester, f"{name}::{test}", SENTINEL)

    monkeypatch.setenv("ALLOCBUDGET_TEST_BROKEN", "1")
    result = tester.runpytest("--alloc-update")
    result.assert_outcomes(passed=1, failed=1, skipped=1, xfailed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*wrote allocbudget.yaml: 0 created, 1 updated, 0 unchanged*"])
    entries = read_budgets()
    assert entries[f"{name}::test_passes"]["retained"] >= 10_000
    for test in ("test_fails", "test_skips", "test_xfails"):
        assert entries[f"{name}::{test}"] == SENTINEL, test


def test_update_keeps_other_profiles(tester: pytest.Pytester, read_budgets, profile: str) -> None:
    tester.makepyfile(
        """
        import pytest

        @pytest.mark.alloc_budget
        def test_one():
            pass
        """
    )
    name = "test_update_keeps_other_profiles.py"
    old_profiles = (
        "version: 1\n"
        "profiles:\n"
        "  cpython-2.7:\n"
        f"    {name}::test_gone:\n"
        "      peak: 6\n"
        "      retained: 0\n"
        "      regions:\n"
        "        step:\n"
        "          peak: 99\n"
        f"    {name}::test_one:\n"
        "      peak: 123\n"
        "      retained: 45\n"
    )
    (tester.path / "allocbudget.yaml").write_text(old_profiles)
    result = tester.runpytest("--alloc-update")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*wrote allocbudget.yaml: 1 created, 0 updated, 0 unchanged*"])
    profiles = read_budgets(profile=None)
    assert set(profiles) == {"cpython-2.7", profile}
    assert profiles["cpython-2.7"] == {
        f"{name}::test_one": {"peak": 123, "retained": 45},
        f"{name}::test_gone": {"peak": 6, "retained": 0, "regions": {"step": {"peak": 99}}},
    }
    assert list(profiles[profile]) == [f"{name}::test_one"]
    # The other profile's text survives as it was written (it was written in the file's own sorted layout).
    assert old_profiles.split("profiles:\n")[1] in (tester.path / "allocbudget.yaml").read_text()


def test_update_rewrites_an_entry_only_beyond_tolerance(tester: pytest.Pytester, read_budgets) -> None:
    tester.makepyfile(
        """
        import pytest

        KEEP = []

        @pytest.mark.alloc_budget
        def test_keep():
            KEEP.append(bytes(1_000_000))
        """
    )
    tester.runpytest("--alloc-update").assert_outcomes(passed=1)
    nodeid = "test_update_rewrites_an_entry_only_beyond_tolerance.py::test_keep"
    measured = read_budgets()[nodeid]
    path = tester.path / "allocbudget.yaml"

    # One byte off: within tolerance, so the file is not touched and keeps the hand-edited value.
    nudged = {**measured, "retained": measured["retained"] + 1}
    _set_entry(tester, nodeid, nudged)
    before = path.read_bytes()
    stamp = _age(path)
    result = tester.runpytest("--alloc-update")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*allocbudget.yaml unchanged: 0 created, 0 updated, 1 unchanged*"])
    assert path.read_bytes() == before
    assert path.stat().st_mtime_ns == stamp
    assert read_budgets()[nodeid] == nudged

    # Half the measured value: a regression in a check run, re-recorded (and passing) in an update run.
    _set_entry(tester, nodeid, {**measured, "peak": measured["peak"] // 2, "retained": measured["retained"] // 2})
    result = tester.runpytest("--alloc-update")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*wrote allocbudget.yaml: 0 created, 1 updated, 0 unchanged*"])
    assert read_budgets()[nodeid] == measured

    # 50% above the measured value: an improvement, also re-recorded.
    _set_entry(tester, nodeid, {**measured, "peak": measured["peak"] * 3 // 2})
    result = tester.runpytest("--alloc-update")
    result.stdout.fnmatch_lines(["*wrote allocbudget.yaml: 0 created, 1 updated, 0 unchanged*"])
    assert read_budgets()[nodeid] == measured


def test_update_counts_created_updated_and_unchanged_together(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        KEEPERS
        + """
@pytest.mark.alloc_budget
def test_c():
    pass
"""
    )
    tester.runpytest("--alloc-update", "-k", "test_a or test_c").assert_outcomes(passed=2, deselected=1)
    _set_entry(tester, "test_update_counts_created_updated_and_unchanged_together.py::test_a", SENTINEL)
    result = tester.runpytest("--alloc-update")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*3 measured*", "*wrote allocbudget.yaml: 1 created, 1 updated, 1 unchanged*"])
