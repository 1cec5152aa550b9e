"""A plain run: budgets are checked, regressions and missing entries fail their test, the file is never written."""

from __future__ import annotations

import os
import re

import pytest

#: Judge the first call alone, for the tests of the tolerance's arithmetic at its exact edge.
FIRST_CALL = "--alloc-first-call-only"

KEEPER = """
import pytest

KEEP = []

@pytest.mark.alloc_budget
def test_keep():
    KEEP.append(bytes({size}))
"""


def _record(tester: pytest.Pytester, read_budgets, size: int = 1_000_000) -> tuple[str, dict[str, int]]:
    """Write a test that keeps ``size`` bytes, record it; returns its node id and recorded values."""
    tester.makepyfile(KEEPER.format(size=size))
    tester.runpytest("--alloc-update").assert_outcomes(passed=1)
    (nodeid, values), *others = read_budgets().items()
    assert not others
    return nodeid, values


def _set_value(tester: pytest.Pytester, metric: str, old: int, new: int) -> None:
    path = tester.path / "allocbudget.yaml"
    text = path.read_text()
    assert text.count(f"{metric}: {old}\n") == 1
    path.write_text(text.replace(f"{metric}: {old}\n", f"{metric}: {new}\n"))


@pytest.mark.smoke
def test_regression_fails_the_test_with_a_report(tester: pytest.Pytester, read_budgets) -> None:
    nodeid, values = _record(tester, read_budgets)
    _set_value(tester, "peak", values["peak"], values["peak"] // 4)
    # Without the counter, a failing peak is explained by running the test again under a trace hook, which on Python
    # 3.12+ changes what later code allocates in the process that runs it (see test_repeatability.py): run it in a
    # process of its own.
    result = tester.runpytest_subprocess()
    result.assert_outcomes(failed=1, errors=0)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    output = result.stdout.str()
    line = next(line for line in output.splitlines() if line.strip().startswith("peak:"))
    assert "measured" in line
    assert "budget" in line
    assert "tolerance" in line
    assert re.search(r"\(\+\d+(\.\d+)?%\)", line), line
    assert f"{values['peak'] // 4:,}" in line
    # Judged on a second call (the first was over too), which the report says, with the first call's numbers.
    assert (
        f"a second call's, made in a child process because the first call was over too (peak {values['peak']:,} B)"
        in output
    )
    assert "retained:" not in output  # only the failing metric is reported
    result.stdout.fnmatch_lines(
        [
            f"allocation budget exceeded: {nodeid} (profile *)",
            f"*pytest --alloc-update {nodeid}*",
            "*1 measured (*): 0 passed, 1 failed, 0 missing*",
            f"FAILED {nodeid}*",
        ]
    )


def test_default_tolerance_absolute_part_is_4_kib(tester: pytest.Pytester, read_budgets) -> None:
    # 2% of ~100 kB is below 4 KiB, so the absolute part decides.
    _, values = _record(tester, read_budgets, size=100_000)
    measured = values["retained"]
    # Judged on the first call alone, whose numbers the recording's equal: a second call keeps its data in a list
    # that grows differently (see test_second_call.py).
    _set_value(tester, "retained", measured, measured - 4096)
    result = tester.runpytest(FIRST_CALL)
    result.assert_outcomes(passed=1)
    _set_value(tester, "retained", measured - 4096, measured - 4097)
    result = tester.runpytest(FIRST_CALL)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [f"*retained: measured {measured:,} B, budget {measured - 4097:,} B, change +4,097 B*tolerance 2%, 4 KiB*"]
    )


def test_default_tolerance_percent_part_is_2_percent(tester: pytest.Pytester, read_budgets) -> None:
    # 2% of ~1 MB is above 4 KiB, so the percentage decides: the lowest budget that still passes is the smallest b
    # with b + ceil(2% of b) >= measured.
    _, values = _record(tester, read_budgets)
    measured = values["retained"]
    lowest = next(b for b in range(measured * 100 // 102 - 2, measured) if b + -(-b * 2 // 100) >= measured)
    _set_value(tester, "retained", measured, lowest)
    tester.runpytest(FIRST_CALL).assert_outcomes(passed=1)
    _set_value(tester, "retained", lowest, lowest - 1)
    tester.runpytest(FIRST_CALL).assert_outcomes(failed=1)


def test_check_run_never_writes_the_file(tester: pytest.Pytester, read_budgets) -> None:
    _, values = _record(tester, read_budgets)
    tester.makepyfile(
        test_new="""
        import pytest

        @pytest.mark.alloc_budget
        def test_missing():
            pass
        """
    )
    _set_value(tester, "retained", values["retained"], 10)  # regression
    path = tester.path / "allocbudget.yaml"
    before = path.read_bytes()
    stamp = 1_000_000_000 * 10**9
    os.utime(path, ns=(stamp, stamp))
    result = tester.runpytest()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*2 measured (*): 0 passed, 1 failed, 1 missing*"])
    assert path.read_bytes() == before
    assert path.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in tester.path.iterdir() if "allocbudget" in p.name) == ["allocbudget.yaml"]


def test_check_run_without_a_file_does_not_create_one(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import pytest

        @pytest.mark.alloc_budget
        def test_one():
            pass
        """
    )
    tester.runpytest().assert_outcomes(passed=1)
    assert not (tester.path / "allocbudget.yaml").exists()


def test_missing_entry_fails(tester: pytest.Pytester, read_budgets, profile: str) -> None:
    _record(tester, read_budgets)
    tester.makepyfile(
        test_new="""
        import pytest

        @pytest.mark.alloc_budget
        def test_missing():
            pass
        """
    )
    result = tester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            f"no budget recorded for test_new.py::test_missing under {profile} in allocbudget.yaml; "
            "run pytest --alloc-update test_new.py::test_missing",
            "*2 measured (*): 1 passed, 0 failed, 1 missing*",
            "FAILED test_new.py::test_missing*",
        ]
    )


@pytest.mark.parametrize("existing", [None, "other-profile"], ids=["no-file", "other-profile-only"])
def test_unrecorded_profile_warns_and_passes(tester: pytest.Pytester, profile: str, existing: str | None) -> None:
    tester.makepyfile(
        """
        import pytest

        @pytest.mark.alloc_budget
        def test_one():
            pass

        @pytest.mark.alloc_budget
        def test_two():
            pass
        """
    )
    if existing is not None:
        name = "test_unrecorded_profile_warns_and_passes.py"
        (tester.path / "allocbudget.yaml").write_text(
            f"version: 1\nprofiles:\n  cpython-2.7:\n    {name}::test_one:\n      peak: 1\n      retained: 0\n"
        )
    result = tester.runpytest()
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "*allocation budgets*",
            "*2 measured (*): 0 passed, 0 failed, 0 missing*",
            f"warning: allocbudget.yaml has no budgets for {profile}; 2 budgeted test(s) were measured but not "
            "checked. Record them with: pytest --alloc-update",
        ]
    )


def test_improvements_are_listed_as_budgets_to_tighten(tester: pytest.Pytester, read_budgets) -> None:
    nodeid, values = _record(tester, read_budgets)
    _set_value(tester, "retained", values["retained"], values["retained"] * 2)
    result = tester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*-- allocation budgets --*",
            "*1 measured (*): 1 passed, 0 failed, 0 missing*",
            "1 budget(s) could be tightened (pytest --alloc-update records them):",
            f"  {nodeid}: retained * (budget *, -50.0%)",
        ]
    )
    # only retained moved: the line lists no other metric
    (tighten,) = [line for line in result.outlines if line.startswith(f"  {nodeid}: ")]
    assert tighten.startswith(f"  {nodeid}: retained ")
    assert tighten.count("(budget ") == 1


def test_summary_counts(tester: pytest.Pytester, set_budget) -> None:
    tester.makepyfile(
        """
        import pytest

        KEEP = []

        @pytest.mark.alloc_budget
        def test_ok():
            pass

        @pytest.mark.alloc_budget
        def test_regressed():
            KEEP.append(bytes(100_000))

        @pytest.mark.alloc_budget
        def test_missing():
            pass

        @pytest.mark.alloc_budget
        def test_fails_itself():
            assert False

        def test_unbudgeted():
            pass
        """
    )
    tester.runpytest("--alloc-update", "-k", "test_ok or test_regressed").assert_outcomes(passed=2, deselected=3)
    set_budget("test_summary_counts.py::test_regressed", retained=0)
    result = tester.runpytest()
    result.assert_outcomes(passed=2, failed=3)
    result.stdout.fnmatch_lines(["3 measured (*): 1 passed, 1 failed, 1 missing (profile *, allocbudget.yaml)"])
