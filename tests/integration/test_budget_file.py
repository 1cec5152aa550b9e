"""The budget file: where it lives, what it looks like, and what happens when it is broken or cannot be written."""

from __future__ import annotations

import os

import pytest

TESTS = """
import pytest

KEEP = []

@pytest.mark.alloc_budget
def test_b():
    KEEP.append(bytes(1000))

@pytest.mark.alloc_budget
def test_a():
    pass

def test_regions(alloc_budget):
    with alloc_budget.measure("second"):
        pass
    with alloc_budget.measure("first"):
        pass
"""


def _assert_no_traceback(result: pytest.RunResult) -> None:
    output = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in output
    assert "INTERNALERROR" not in output


@pytest.mark.smoke
def test_file_layout_is_sorted_and_grouped_by_profile(
    tester: pytest.Pytester, profile: str, recorded_metrics: tuple[str, ...]
) -> None:
    tester.makepyfile(TESTS)
    tester.runpytest("--alloc-update").assert_outcomes(passed=3)
    text = (tester.path / "allocbudget.yaml").read_text()
    body = [line for line in text.splitlines() if not line.startswith("#")]
    name = "test_file_layout_is_sorted_and_grouped_by_profile.py"
    metrics = ("allocated", "allocations", "peak", "retained")
    skeleton = [line.split(":")[0] if line.lstrip().startswith(metrics) else line for line in body]
    entry = [f"      {metric}" for metric in recorded_metrics]  # sorted by name in every entry
    region = [f"          {metric}" for metric in recorded_metrics]
    assert skeleton == [
        "version: 1",
        "hash_seed: 0",
        "profiles:",
        f"  {profile}:",
        f"    {name}::test_a:",
        *entry,
        f"    {name}::test_b:",
        *entry,
        f"    {name}::test_regions:",
        "      regions:",
        "        first:",
        *region,
        "        second:",
        *region,
    ]
    assert text.startswith("# ")
    assert text.endswith("\n")


def test_default_file_is_at_the_rootdir(tester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    sub = tester.mkpydir("sub")
    (sub / "test_deep.py").write_text("import pytest\n\n@pytest.mark.alloc_budget\ndef test_deep():\n    pass\n")
    monkeypatch.chdir(sub)
    result = tester.runpytest("--alloc-update", "test_deep.py")
    result.assert_outcomes(passed=1)
    assert (tester.path / "allocbudget.yaml").is_file()
    assert not (sub / "allocbudget.yaml").exists()
    assert "sub/test_deep.py::test_deep:" in (tester.path / "allocbudget.yaml").read_text()
    monkeypatch.chdir(tester.path)
    tester.runpytest().assert_outcomes(passed=1)


@pytest.mark.parametrize("update", [False, True], ids=["check", "update"])
def test_corrupt_file_is_a_usage_error_and_is_not_overwritten(tester: pytest.Pytester, update: bool) -> None:
    tester.makepyfile(TESTS)
    path = tester.path / "allocbudget.yaml"
    path.write_text("version: 1\nprofiles:\n  cpython-3.11:\n    test_x.py::test_x: [peak\n")
    before = path.read_bytes()
    result = tester.runpytest(*(["--alloc-update"] if update else []))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {path}:*: not valid YAML*"])
    _assert_no_traceback(result)
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "version: 1\nprofiles:\n  cpython-3.11:\n    t.py::test_x:\n      peak: 10\n      rss: 3\n",
            ":6 at profiles.cpython-3.11.t.py::test_x.rss: unknown metric 'rss'",
        ),
        (
            "version: 1\nprofiles:\n  cpython-3.11:\n    t.py::test_x:\n      peak: 10\n      peak: 11\n",
            ":6 at profiles.cpython-3.11.t.py::test_x.peak: duplicate key 'peak'",
        ),
        (
            "version: 1\nprofiles:\n  cpython-3.11:\n    t.py::test_x:\n      peak: lots\n",
            ":5 at profiles.cpython-3.11.t.py::test_x.peak: expected a whole number >= 0, got 'lots'",
        ),
        ("version: 2\nprofiles: {}\n", ":1 at version: unsupported version 2"),
    ],
    ids=["unknown-metric", "duplicate-key", "bad-value", "version"],
)
def test_invalid_file_content_names_the_line_and_key(tester: pytest.Pytester, text: str, expected: str) -> None:
    tester.makepyfile(TESTS)
    path = tester.path / "allocbudget.yaml"
    path.write_text(text)
    result = tester.runpytest("--alloc-update")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {path}{expected}*"])
    _assert_no_traceback(result)
    assert path.read_text() == text


ENTRY = "version: 1\nprofiles:\n  cpython-3.11:\n    t.py::test_x:\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            ENTRY + f"      peak: {'1' * 5000}\n",
            ":5 at profiles.cpython-3.11.t.py::test_x.peak: a number of 5000 digits is too large; a value is at most "
            "18446744073709551615 (2**64 - 1)",
        ),
        (
            ENTRY + "      peak: 010\n",
            ":5 at profiles.cpython-3.11.t.py::test_x.peak: expected a whole number >= 0 in plain decimal digits, "
            "got '010'",
        ),
        (
            ENTRY + "      regions: &r\n        a: {peak: 1}\n    t.py::test_y:\n      regions: *r\n",
            ":5 at profiles.cpython-3.11.t.py::test_x.regions: YAML anchors (&r) are not allowed in a budget file",
        ),
    ],
    ids=["past-64-bits", "leading-zero", "alias"],
)
def test_values_yaml_readers_disagree_on_are_a_usage_error(tester: pytest.Pytester, text: str, expected: str) -> None:
    tester.makepyfile(TESTS)
    path = tester.path / "allocbudget.yaml"
    path.write_text(text)
    result = tester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {path}{expected}*"])
    _assert_no_traceback(result)


def test_unreadable_location_is_a_clear_error(tester: pytest.Pytester) -> None:
    # Below a regular file: neither readable nor writable, even for root.
    tester.makepyfile(TESTS)
    (tester.path / "somefile").write_text("not a directory\n")
    result = tester.runpytest("--alloc-update", "--alloc-file", "somefile/sub/allocbudget.yaml")
    assert result.ret != pytest.ExitCode.OK
    result.stderr.fnmatch_lines([f"ERROR: *budget file {tester.path / 'somefile/sub/allocbudget.yaml'}*"])
    _assert_no_traceback(result)
    assert (tester.path / "somefile").read_text() == "not a directory\n"


def test_unwritable_file_at_the_end_of_an_update_is_a_clear_error(tester: pytest.Pytester) -> None:
    # Reading a missing file is fine (no budgets yet); writing fails because the temporary file's name, which adds
    # a prefix and a suffix to the budget file's, is longer than any file system allows.
    tester.makepyfile(TESTS)
    name = "b" * 245 + ".yaml"
    result = tester.runpytest("--alloc-update", "--alloc-file", name)
    result.assert_outcomes(passed=3)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines([f"error: cannot write the budget file {tester.path / name}: *"])
    _assert_no_traceback(result)
    assert sorted(os.listdir(tester.path)) == [
        "pytest.ini",
        "test_unwritable_file_at_the_end_of_an_update_is_a_clear_error.py",
    ]


def test_unwritable_file_summary_stays_an_update_summary(tester: pytest.Pytester) -> None:
    tester.makepyfile(TESTS)
    result = tester.runpytest("--alloc-update", "--alloc-file", "b" * 245 + ".yaml")
    section = result.stdout.str().split("allocation budgets")[1]
    assert "4 measured (2 tests, 2 regions; profile " in section
    assert "Record them with: pytest --alloc-update" not in section
    assert " passed, 0 failed, 0 missing" not in section


def test_empty_file_is_no_budgets(tester: pytest.Pytester, profile: str) -> None:
    tester.makepyfile(TESTS)
    (tester.path / "allocbudget.yaml").write_text("")
    result = tester.runpytest()
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([f"warning: allocbudget.yaml has no budgets for {profile}; 4 budgeted test(s)*"])


def test_rewrite_keeps_the_files_permissions(tester: pytest.Pytester) -> None:
    tester.makepyfile(TESTS)
    path = tester.path / "allocbudget.yaml"
    path.write_text("version: 1\nprofiles:\n  cpython-2.7:\n    t.py::test_x:\n      peak: 1\n")
    path.chmod(0o640)
    tester.runpytest("--alloc-update").assert_outcomes(passed=3)
    assert "test_rewrite_keeps_the_files_permissions.py::test_a" in path.read_text()
    assert path.stat().st_mode & 0o777 == 0o640


def test_unusual_node_ids_round_trip(tester: pytest.Pytester, read_budgets) -> None:
    tester.makepyfile(
        """
        import pytest

        IDS = ["a: b", "#hash", "'single' \\"double\\"", "\\u00fc", "yes", "x" * 150]

        @pytest.mark.alloc_budget
        @pytest.mark.parametrize("value", range(len(IDS)), ids=IDS)
        def test_odd(value):
            pass

        def test_regions(alloc_budget):
            for name in ["no", "1", "a: b", "- dash"]:
                with alloc_budget.measure(name):
                    pass
        """
    )
    tester.runpytest("--alloc-update").assert_outcomes(passed=7)
    entries = read_budgets()
    name = "test_unusual_node_ids_round_trip.py"
    assert f"{name}::test_odd[a: b]" in entries
    assert f"{name}::test_odd[yes]" in entries
    assert f"{name}::test_odd[{'x' * 150}]" in entries
    assert sorted(entries[f"{name}::test_regions"]["regions"]) == ["- dash", "1", "a: b", "no"]
    assert len(entries) == 7
    result = tester.runpytest()
    result.assert_outcomes(passed=7)
    result.stdout.fnmatch_lines(["10 measured (*): 10 passed, 0 failed, 0 missing*"])
