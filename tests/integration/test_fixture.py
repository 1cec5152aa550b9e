"""The ``alloc_budget`` fixture: named regions of a test, each with its own budget entry."""

from __future__ import annotations

import pytest

from pytest_allocbudget.measuring.counter import unavailable_reason


@pytest.mark.smoke
def test_two_regions_get_two_entries_nested_under_regions(tester: pytest.Pytester, read_budgets) -> None:
    tester.makepyfile(
        """
        KEEP = []

        def test_pipeline(alloc_budget):
            data = bytes(10_000_000)  # outside every region: not measured
            with alloc_budget.measure("load") as load:
                KEEP.append(bytes(100_000))
            with alloc_budget.measure("transform") as transform:
                assert len([bytes(1000) for _ in range(10)]) == 10
            assert load.retained >= 100_000
            assert transform.retained < 1024
            assert transform.peak > 10_000
            del data
        """
    )
    result = tester.runpytest("--alloc-update")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*2 created, 0 updated, 0 unchanged*"])
    entry = read_budgets()["test_two_regions_get_two_entries_nested_under_regions.py::test_pipeline"]
    assert list(entry) == ["regions"]
    assert sorted(entry["regions"]) == ["load", "transform"]
    assert 100_000 <= entry["regions"]["load"]["retained"] < 105_000
    assert entry["regions"]["load"]["peak"] < 1_000_000
    assert entry["regions"]["transform"]["retained"] < 1024
    text = (tester.path / "allocbudget.yaml").read_text()
    assert "    test_two_regions_get_two_entries_nested_under_regions.py::test_pipeline:\n      regions:\n" in text
    result = tester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*2 measured (2 regions): 2 passed, 0 failed, 0 missing*"])


def test_region_numbers_are_readable_after_the_block_only(
    tester: pytest.Pytester, recorded_metrics: tuple[str, ...]
) -> None:
    tester.makepyfile(
        f"""
        import pytest

        def test_numbers(alloc_budget):
            with alloc_budget.measure("build") as m:
                with pytest.raises(RuntimeError, match="'build' has no numbers yet"):
                    m.peak
                with pytest.raises(RuntimeError, match="'build' has no numbers yet"):
                    m.retained
                with pytest.raises(RuntimeError, match="'build' has no numbers yet"):
                    m["allocations"]
                data = [bytes(1000) for _ in range(100)]
            assert m.peak > 100_000
            assert m.retained >= 0
            assert sorted(m.values) == {sorted(recorded_metrics)!r}
            assert m.values["peak"] == m.peak
            assert m.values["retained"] == m.retained
            assert m["peak"] == m.peak
            if "allocations" in m.values:
                assert m["allocations"] >= 100  # one block per bytes object, at least
                assert m["allocated"] >= 100_000
                assert m["allocated"] >= m.peak  # every live byte was allocated in the region
            del data
        """
    )
    result = tester.runpytest("--alloc-update")
    result.assert_outcomes(passed=1)


def test_region_name_must_be_unique(tester: pytest.Pytester, read_budgets) -> None:
    tester.makepyfile(
        """
        def test_twice(alloc_budget):
            with alloc_budget.measure("step"):
                pass
            with alloc_budget.measure("step"):
                pass
        """
    )
    result = tester.runpytest("--alloc-update")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["E*ValueError: *test_twice*region 'step' was already measured*"])
    # The test failed, so not even its first region is recorded.
    assert not (tester.path / "allocbudget.yaml").exists()


def test_one_measure_context_cannot_be_entered_twice(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        KEEP = []

        def test_reused(alloc_budget):
            region = alloc_budget.measure("step")
            with region:
                KEEP.append(bytes(50_000))
            with region:
                pass
        """
    )
    result = tester.runpytest("--alloc-update")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["E*RuntimeError: *test_reused: alloc_budget.measure('step') was entered twice*"])
    assert not (tester.path / "allocbudget.yaml").exists()


def test_regions_cannot_nest(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        def test_nested(alloc_budget):
            with alloc_budget.measure("outer"):
                with alloc_budget.measure("inner"):
                    pass
        """
    )
    result = tester.runpytest("--alloc-update")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["E*RuntimeError: *'inner'*cannot nest*'outer'*"])
    assert not (tester.path / "allocbudget.yaml").exists()


def test_regions_in_a_marked_test_raise(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import pytest

        @pytest.mark.alloc_budget
        def test_both(alloc_budget):
            with alloc_budget.measure("part"):
                pass
        """
    )
    result = tester.runpytest("--alloc-update")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["E*RuntimeError: *test_both*measured as a whole by @pytest.mark.alloc_budget*"])
    assert not (tester.path / "allocbudget.yaml").exists()


def test_region_whose_block_raises_is_not_recorded(tester: pytest.Pytester, read_budgets) -> None:
    tester.makepyfile(
        """
        import pytest

        def test_caught(alloc_budget):
            with pytest.raises(ZeroDivisionError):
                with alloc_budget.measure("broken") as broken:
                    data = bytes(100_000)
                    1 / 0
            with pytest.raises(RuntimeError):
                broken.peak
            with alloc_budget.measure("fine"):
                pass
        """
    )
    result = tester.runpytest("--alloc-update")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*1 created, 0 updated, 0 unchanged*"])
    entry = read_budgets()["test_region_whose_block_raises_is_not_recorded.py::test_caught"]
    assert list(entry["regions"]) == ["fine"]


def test_region_limit(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        def test_small(alloc_budget):
            with alloc_budget.measure("step", peak="64 KiB"):
                bytes(1000)

        def test_big(alloc_budget):
            with alloc_budget.measure("step", peak="64 KiB"):
                bytes(1_000_000)
        """
    )
    result = tester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*allocation budget exceeded: test_region_limit.py::test_big [[]region 'step'[]]*",
            "*peak: measured *, above the limit 65,536 B set on the marker*",
            "FAILED test_region_limit.py::test_big*",
        ]
    )


@pytest.mark.parametrize(
    "args",
    [[], ["--alloc-explain=off"], ["--alloc-explain=trace"], ["--alloc-engine=tracemalloc"]],
    ids=["default", "off", "trace", "tracemalloc"],
)
def test_region_failure_lists_the_lines_alive_at_its_end_only_when_tracemalloc_ran(
    tester: pytest.Pytester, args: list[str]
) -> None:
    tester.makepyfile(
        """
        KEEP = []

        def test_keeps(alloc_budget):
            with alloc_budget.measure("step", retained=0):
                KEEP.append(bytearray(5000))
        """
    )
    name = "test_region_failure_lists_the_lines_alive_at_its_end_only_when_tracemalloc_ran.py"
    lines = (tester.path / name).read_text().splitlines()
    line = next(number for number, text in enumerate(lines, 1) if "KEEP.append" in text)
    result = tester.runpytest(*args)
    result.assert_outcomes(failed=1)
    header = [
        f"allocation budget exceeded: {name}::test_keeps [[]region 'step'[]] (profile *)",
        "  retained: measured *, above the limit 0 B set on the marker*",
    ]
    # Regions are not run again: only a tracemalloc that ran in the region itself can name their lines, which is the
    # case in trace mode, with the tracemalloc engine, and without the counter unless explaining is off.
    traced = args != ["--alloc-explain=off"] and (args != [] or unavailable_reason() is not None)
    if traced:
        result.stdout.fnmatch_lines(
            [
                *header,
                "source lines holding memory allocated in the region at its end (tracemalloc):",
                f"  {name}:{line}: * KiB in * block(s)",
            ]
        )
    else:
        result.stdout.fnmatch_lines(
            [
                *header,
                "no source lines: regions are not run again; --alloc-explain=trace lists the lines alive at the end "
                "of a failing region, or measure the code as a whole test to have it run again",
            ]
        )
        assert f"{name}:{line}" not in result.stdout.str()


def test_region_bad_limit_names_the_region_and_value(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        def test_bad(alloc_budget):
            with alloc_budget.measure("step", peak="2 parsecs"):
                pass
        """
    )
    result = tester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["E*ValueError: *test_bad*'step'*peak='2 parsecs'*"])


def test_region_tolerance_and_missing_entry(tester: pytest.Pytester, read_budgets) -> None:
    tester.makepyfile(
        """
        KEEP = []

        def test_regions(alloc_budget):
            with alloc_budget.measure("kept", tolerance="50%"):
                KEEP.append(bytes(100_000))
        """
    )
    tester.runpytest("--alloc-update").assert_outcomes(passed=1)
    path = tester.path / "allocbudget.yaml"
    recorded = read_budgets()["test_region_tolerance_and_missing_entry.py::test_regions"]["regions"]["kept"]
    # 30% below the measurement: within the region's own 50%, far beyond the default 2%.
    lowered = recorded["retained"] * 10 // 13
    path.write_text(path.read_text().replace(f"retained: {recorded['retained']}", f"retained: {lowered}"))
    tester.runpytest().assert_outcomes(passed=1)
    # The region's own tolerance beats the command line's.
    tester.runpytest("--alloc-tolerance", "0").assert_outcomes(passed=1)
    # A new region in a recorded profile is missing, and fails.
    tester.makepyfile(
        """
        def test_regions(alloc_budget):
            with alloc_budget.measure("renamed"):
                pass
        """
    )
    result = tester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*no budget recorded for test_region_tolerance_and_missing_entry.py::test_regions [[]region 'renamed'[]]"
            " under * in allocbudget.yaml; run pytest --alloc-update test_region_tolerance_and_missing_entry.py::"
            "test_regions*"
        ]
    )
