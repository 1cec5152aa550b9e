"""Stale entries: budgets of tests and regions that no longer exist, listed on a full run and pruned on request.

Only a full run (every collected test selected and run) can tell that a test is gone, and only for the test files it
collected; a partial run lists nothing and prunes nothing.
"""

from __future__ import annotations

import pytest

ONE = """
import pytest

KEEP = []

@pytest.mark.alloc_budget
def test_a():
    KEEP.append(bytes(10_000))

@pytest.mark.alloc_budget
def test_b():
    KEEP.append(bytes(20_000))

def test_regions(alloc_budget):
    with alloc_budget.measure("step"):
        KEEP.append(bytes(5_000))
    with alloc_budget.measure("other"):
        KEEP.append(bytes(6_000))
"""

TWO = """
import pytest

@pytest.mark.alloc_budget
def test_c():
    assert sum(range(100)) == 4950
"""

#: Entries recorded from ONE and TWO.
RECORDED = {
    ("test_one.py::test_a", None),
    ("test_one.py::test_b", None),
    ("test_one.py::test_regions", "step"),
    ("test_one.py::test_regions", "other"),
    ("test_two.py::test_c", None),
}


def _keys(read_budgets) -> set[tuple[str, str | None]]:
    """The entry keys of this profile in allocbudget.yaml."""
    keys: set[tuple[str, str | None]] = set()
    for nodeid, values in read_budgets().items():
        keys.update((nodeid, region) for region in values.get("regions", {}))
        if set(values) - {"regions"}:
            keys.add((nodeid, None))
    return keys


@pytest.fixture
def recorded(tester: pytest.Pytester, read_budgets) -> pytest.Pytester:
    """Two test files, recorded."""
    tester.makepyfile(test_one=ONE, test_two=TWO)
    result = tester.runpytest("--alloc-update")
    result.assert_outcomes(passed=4)
    assert "stale entr" not in result.stdout.str()
    assert _keys(read_budgets) == RECORDED
    return tester


EDITS = {
    # what changes in the sources -> the stale entries, as the summary names them
    "renamed test": (
        lambda t: t.makepyfile(test_one=ONE.replace("def test_b", "def test_b2")),
        ["test_one.py::test_b"],
    ),
    "deleted file": (lambda t: (t.path / "test_two.py").unlink(), ["test_two.py::test_c"]),
    "renamed region": (
        lambda t: t.makepyfile(test_one=ONE.replace('"step"', '"stage"')),
        ["test_one.py::test_regions [region 'step']"],
    ),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_a_full_run_lists_stale_entries_and_prune_removes_them(
    recorded: pytest.Pytester, read_budgets, edit: str
) -> None:
    change, stale = EDITS[edit]
    change(recorded)
    result = recorded.runpytest()
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)  # a renamed test or region is missing
    result.stdout.fnmatch_lines(
        ["1 stale entry (its test no longer exists or no longer measures it) is kept; remove it with: *"]
        + [f"  {name}" for name in stale]
    )
    assert _keys(read_budgets) == RECORDED  # a check run never writes

    result = recorded.runpytest("--alloc-update", "--alloc-prune")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["pruned 1 stale entry:", *[f"  {name}" for name in stale]])
    keys = _keys(read_budgets)
    assert len(keys & RECORDED) == len(RECORDED) - 1

    result = recorded.runpytest("--alloc-update", "--alloc-prune")
    assert "stale entr" not in result.stdout.str()
    result.stdout.fnmatch_lines(["allocbudget.yaml unchanged: 0 created, 0 updated, * unchanged"])


@pytest.mark.smoke
def test_prune_names_every_stale_entry(recorded: pytest.Pytester, read_budgets) -> None:
    recorded.makepyfile(test_one=ONE.replace("def test_b", "def test_b2").replace('"step"', '"stage"'))
    (recorded.path / "test_two.py").unlink()
    result = recorded.runpytest()
    result.stdout.fnmatch_lines(
        [
            "3 stale entries (*) are kept; remove them with: pytest --alloc-update --alloc-prune",
            "  test_one.py::test_b",
            "  test_one.py::test_regions [[]region 'step'[]]",
            "  test_two.py::test_c",
        ]
    )
    result = recorded.runpytest("--alloc-update", "--alloc-prune")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "wrote allocbudget.yaml: 2 created, 0 updated, 2 unchanged",
            "pruned 3 stale entries:",
            "  test_one.py::test_b",
            "  test_one.py::test_regions [[]region 'step'[]]",
            "  test_two.py::test_c",
        ]
    )
    assert _keys(read_budgets) == {
        ("test_one.py::test_a", None),
        ("test_one.py::test_b2", None),
        ("test_one.py::test_regions", "stage"),
        ("test_one.py::test_regions", "other"),
    }


def test_update_without_prune_keeps_stale_entries(recorded: pytest.Pytester, read_budgets) -> None:
    (recorded.path / "test_two.py").unlink()
    result = recorded.runpytest("--alloc-update")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["1 stale entry (*) is kept; remove it with: pytest --alloc-update --alloc-prune"])
    assert _keys(read_budgets) == RECORDED


@pytest.mark.parametrize(
    "selection",
    [
        ["-k", "test_a or test_c"],
        ["test_one.py::test_a"],
        ["--deselect", "test_one.py::test_b"],
        ["-m", "alloc_budget"],
        ["test_one.py"],
    ],
    ids=["keyword", "node-id", "deselect", "marker-expression", "file-path"],
)
def test_a_partial_run_never_calls_entries_of_tests_it_left_out_stale(
    recorded: pytest.Pytester, read_budgets, add_entry, selection: list[str]
) -> None:
    # An entry whose test is gone, in the file the selection leaves out (or only partly selects).
    add_entry("test_two.py::test_gone")
    if selection != ["test_one.py"]:
        add_entry("test_one.py::test_gone")  # a path argument runs all of test_one.py, which can tell
    before = _keys(read_budgets)

    result = recorded.runpytest(*selection)
    assert result.ret == pytest.ExitCode.OK
    output = result.stdout.str()
    assert "stale entr" not in output
    assert "test_gone" not in output

    result = recorded.runpytest("--alloc-update", "--alloc-prune", *selection)
    assert result.ret == pytest.ExitCode.OK
    output = result.stdout.str()
    assert "pruned" not in output.replace("nothing was pruned", "")
    if selection != ["test_one.py"]:  # a path argument is a full run of the files it names
        result.stdout.fnmatch_lines(["--alloc-prune: not a full run (*), so nothing was pruned"])
    assert "stale entr" not in output
    assert "test_gone" not in output
    assert _keys(read_budgets) == before


def test_prune_without_update_is_a_usage_error(recorded: pytest.Pytester) -> None:
    result = recorded.runpytest("--alloc-prune")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --alloc-prune removes stale entries while recording: use it with --alloc-update"]
    )


def test_a_test_that_failed_does_not_make_its_regions_stale(
    recorded: pytest.Pytester, read_budgets, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The test fails between its two regions: the second one was not measured, but it is not gone.
    recorded.makepyfile(
        test_one=ONE.replace(
            '    with alloc_budget.measure("other"):',
            '    assert os.environ.get("ALLOCBUDGET_TEST_BROKEN") != "1"\n    with alloc_budget.measure("other"):',
        ).replace("import pytest", "import os\nimport pytest")
    )
    monkeypatch.setenv("ALLOCBUDGET_TEST_BROKEN", "1")
    result = recorded.runpytest()
    result.assert_outcomes(passed=3, failed=1)
    assert "stale entr" not in result.stdout.str()

    result = recorded.runpytest("--alloc-update", "--alloc-prune")
    result.assert_outcomes(passed=3, failed=1)
    assert "stale entr" not in result.stdout.str()
    assert _keys(read_budgets) == RECORDED


def test_a_marked_test_that_failed_is_not_stale(recorded: pytest.Pytester, read_budgets) -> None:
    recorded.makepyfile(test_two=TWO.replace("== 4950", "== 0"))
    result = recorded.runpytest("--alloc-update", "--alloc-prune")
    result.assert_outcomes(passed=3, failed=1)
    assert "stale entr" not in result.stdout.str()
    assert _keys(read_budgets) == RECORDED


def test_entries_of_other_profiles_are_never_stale_or_pruned(
    recorded: pytest.Pytester, read_budgets, add_entry, profile: str
) -> None:
    add_entry("test_one.py::test_gone", profile="cpython-2.7")
    add_entry("test_two.py::test_c", profile="cpython-2.7")
    add_entry("test_deleted.py::test_x", profile="cpython-2.7")
    other_before = read_budgets(profile="cpython-2.7")

    result = recorded.runpytest()
    assert "stale entr" not in result.stdout.str()
    (recorded.path / "test_two.py").unlink()  # now this profile has one stale entry
    result = recorded.runpytest("--alloc-update", "--alloc-prune")
    result.stdout.fnmatch_lines(["pruned 1 stale entry:", "  test_two.py::test_c"])
    assert "test_gone" not in result.stdout.str()
    assert "test_deleted" not in result.stdout.str()
    assert read_budgets(profile="cpython-2.7") == other_before
    assert set(read_budgets(profile=None)) == {"cpython-2.7", profile}
