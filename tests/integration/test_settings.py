"""Settings: the tolerance and the budget file's path from the marker, the command line and the ini file."""

from __future__ import annotations

import pytest


def _set_ini(tester: pytest.Pytester, extra: str) -> None:
    """The tester's fixed ini plus ``extra`` lines (replacing the alloc_budget_* lines an earlier call added)."""
    path = tester.path / "pytest.ini"
    lines = [line for line in path.read_text().splitlines() if not line.startswith("alloc_budget_")]
    path.write_text("\n".join(lines) + "\n" + extra)


def _failed(result: pytest.RunResult) -> set[str]:
    return {line.split()[1].split("::")[1] for line in result.outlines if line.startswith("FAILED ")}


def test_tolerance_precedence_marker_then_command_line_then_ini(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import pytest

        KEEP = []

        @pytest.mark.alloc_budget
        def test_plain():
            KEEP.append(bytes(1_000_000))

        @pytest.mark.alloc_budget(tolerance="20%")
        def test_loose():
            KEEP.append(bytes(1_000_000))

        @pytest.mark.alloc_budget(tolerance="5%")
        def test_tight():
            KEEP.append(bytes(1_000_000))
        """
    )
    tester.runpytest("--alloc-update").assert_outcomes(passed=3)
    # Every retained budget 10% below what the tests keep.
    path = tester.path / "allocbudget.yaml"
    lines = path.read_text().splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line.startswith("      retained: "):
            lines[index] = f"      retained: {int(line.split(':')[1]) * 100 // 110}\n"
    path.write_text("".join(lines))

    result = tester.runpytest()
    assert _failed(result) == {"test_plain", "test_tight"}
    result.stdout.fnmatch_lines(["*retained: measured *; tolerance 2%, 4 KiB = *"])

    _set_ini(tester, "alloc_budget_tolerance = 15%\n")
    assert _failed(tester.runpytest()) == {"test_tight"}
    result = tester.runpytest("--alloc-tolerance", "5%")
    assert _failed(result) == {"test_plain", "test_tight"}
    result.stdout.fnmatch_lines(["*retained: measured *; tolerance 5% = *"])

    _set_ini(tester, "alloc_budget_tolerance = 5%\n")
    assert _failed(tester.runpytest()) == {"test_plain", "test_tight"}
    assert _failed(tester.runpytest("--alloc-tolerance", "15%")) == {"test_tight"}
    assert _failed(tester.runpytest("--alloc-tolerance", "peak: 5%; retained: 15%")) == {"test_tight"}


def test_marker_tolerance_per_metric(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import pytest

        KEEP = []

        @pytest.mark.alloc_budget(tolerance={"peak": "20%"})
        def test_keep():
            KEEP.append(bytes(1_000_000))
        """
    )
    tester.runpytest("--alloc-update").assert_outcomes(passed=1)
    path = tester.path / "allocbudget.yaml"
    lines = path.read_text().splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line.startswith(("      peak: ", "      retained: ")):
            name, value = line.split(":")
            lines[index] = f"{name}: {int(value) * 100 // 110}\n"
    path.write_text("".join(lines))
    # Both metrics 10% over: peak is within the marker's 20%; retained, which the marker's mapping does not name,
    # keeps the command line's 5% and fails.
    result = tester.runpytest("--alloc-tolerance", "5%")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*retained: measured *; tolerance 5% = *"])
    result.stdout.no_fnmatch_line("*peak: measured*")


def test_alloc_file_option_beats_the_ini_file(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import pytest

        @pytest.mark.alloc_budget
        def test_one():
            pass
        """
    )
    _set_ini(tester, "alloc_budget_file = from_ini.yaml\n")
    result = tester.runpytest("--alloc-update", "--alloc-file", "from_cli.yaml")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*wrote from_cli.yaml: 1 created*"])
    assert (tester.path / "from_cli.yaml").is_file()
    assert not (tester.path / "from_ini.yaml").exists()
    assert not (tester.path / "allocbudget.yaml").exists()

    result = tester.runpytest("--alloc-update")
    result.stdout.fnmatch_lines(["*wrote from_ini.yaml: 1 created*"])
    assert (tester.path / "from_ini.yaml").is_file()
    assert not (tester.path / "allocbudget.yaml").exists()


def test_ini_file_path_is_relative_to_the_ini_files_directory(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import pytest

        @pytest.mark.alloc_budget
        def test_one():
            pass
        """
    )
    config = tester.mkdir("config")
    ini = (tester.path / "pytest.ini").read_text().rstrip("\n") + "\nalloc_budget_file = budgets/ab.yaml\n"
    (config / "pytest.ini").write_text(ini)
    (tester.path / "pytest.ini").unlink()
    # The rootdir and the invocation directory are both tester.path; only the ini file is elsewhere.
    result = tester.runpytest("-c", "config/pytest.ini", "--rootdir", str(tester.path), "--alloc-update")
    result.assert_outcomes(passed=1)
    assert (config / "budgets" / "ab.yaml").is_file()
    assert not (tester.path / "budgets").exists()
    assert not (tester.path / "allocbudget.yaml").exists()


def test_alloc_file_option_is_relative_to_the_invocation_directory(
    tester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    tester.makepyfile(
        """
        import pytest

        @pytest.mark.alloc_budget
        def test_one():
            pass
        """
    )
    elsewhere = tester.mkdir("elsewhere")
    monkeypatch.chdir(elsewhere)
    result = tester.runpytest("--alloc-update", "--alloc-file", "mine.yaml", str(tester.path))
    result.assert_outcomes(passed=1)
    assert (elsewhere / "mine.yaml").is_file()
    assert not (tester.path / "mine.yaml").exists()


@pytest.mark.parametrize(
    ("ini", "args", "expected"),
    [
        ("alloc_budget_tolerance = lots\n", [], "ERROR: ini option alloc_budget_tolerance in */pytest.ini = 'lots': *"),
        ("", ["--alloc-tolerance", "5 parsecs"], "ERROR: --alloc-tolerance = '5 parsecs': *'parsecs'*"),
        ("", ["--alloc-tolerance=-5%"], "ERROR: --alloc-tolerance = '-5%': *"),
        ("", ["--alloc-tolerance", "rss: 5%"], "ERROR: --alloc-tolerance = 'rss: 5%': unknown metric 'rss'*"),
        (
            "alloc_budget_tolerance = 5%\n",
            ["--alloc-tolerance", "lots"],
            "ERROR: --alloc-tolerance = 'lots': *",
        ),
        ("", ["--alloc-explain", "full"], "ERROR: --alloc-explain: expected one of rerun, trace, off, got 'full'"),
        (
            "alloc_budget_explain = end\n",  # a mode of earlier versions
            [],
            "ERROR: ini option alloc_budget_explain in */pytest.ini: expected one of rerun, trace, off, got 'end'",
        ),
        (
            "",
            ["--alloc-engine", "valgrind"],
            "ERROR: --alloc-engine: expected one of auto, counter, tracemalloc, got 'valgrind'",
        ),
        (
            "alloc_budget_engine = heaptrack\n",
            [],
            "ERROR: ini option alloc_budget_engine in */pytest.ini: expected one of auto, counter, tracemalloc, "
            "got 'heaptrack'",
        ),
        ("", ["--alloc-tolerance", "allocations: 4 KiB"], "ERROR: --alloc-tolerance = *allocations: *count*"),
        (
            "",
            ["--alloc-tolerance", "peak: 1000%; peak: 0"],
            "ERROR: --alloc-tolerance = 'peak: 1000%; peak: 0': peak is given twice; give each metric one tolerance",
        ),
        (
            "alloc_budget_tolerance = retained: 5%; peak: 1%; retained: 0\n",
            [],
            "ERROR: ini option alloc_budget_tolerance in */pytest.ini = *: retained is given twice*",
        ),
        (
            "",
            ["--alloc-lock-timeout=soon"],
            "ERROR: --alloc-lock-timeout: expected a number of seconds >= 0, got 'soon'",
        ),
        (
            "alloc_budget_lock_timeout = -1\n",
            [],
            "ERROR: ini option alloc_budget_lock_timeout in */pytest.ini: expected a number of seconds >= 0, got '-1'",
        ),
        ("", ["--alloc-lock-timeout=inf"], "ERROR: --alloc-lock-timeout: expected a number of seconds >= 0, got 'inf'"),
    ],
    ids=[
        "ini",
        "option-unit",
        "option-negative",
        "option-metric",
        "option-over-good-ini",
        "explain",
        "explain-ini",
        "engine",
        "engine-ini",
        "count-tolerance-unit",
        "option-metric-twice",
        "ini-metric-twice",
        "lock-timeout",
        "lock-timeout-ini",
        "lock-timeout-infinite",
    ],
)
def test_bad_setting_is_a_usage_error_naming_its_source(
    tester: pytest.Pytester, ini: str, args: list[str], expected: str
) -> None:
    tester.makepyfile(
        """
        import pytest

        @pytest.mark.alloc_budget
        def test_one():
            pass
        """
    )
    _set_ini(tester, ini)
    result = tester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
