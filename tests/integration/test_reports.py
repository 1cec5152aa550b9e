"""Reports for machines: the JSON report (``--alloc-json``), GitHub Actions' step summary and annotations, and the
numbers as ``--junitxml`` properties."""

from __future__ import annotations

import ast
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

TESTS = """
import pytest

KEEP = []

@pytest.mark.alloc_budget
def test_keep():
    KEEP.append(bytes(100_000))

@pytest.mark.alloc_budget
def test_small():
    assert len([0] * 100) == 100

def test_regions(alloc_budget):
    with alloc_budget.measure("build"):
        KEEP.append([0] * 1_000)

def test_plain():
    pass
"""

SUMMARY_KEYS = {"measured", "passed", "failed", "missing", "unrecorded", "improved", "stale", "pruned"}
METRIC_KEYS = {"measured", "budget", "limit", "tolerance", "allowed", "change", "change_percent", "status"}

# ------------------------------------------------------------------------------------------------ JSON report

#: A small schema: a type (or tuple of types, None for null), a {key: schema} dict for an object with exactly these
#: keys, ("list", schema) for a list, ("map", schema) for an object with any keys, ("enum", values) for a value set.
INT = int
OPT_INT = (int, None)
METRIC_SCHEMA = {
    "measured": INT,
    "budget": OPT_INT,
    "limit": OPT_INT,
    "tolerance": {"percent": str, "absolute": INT},
    "allowed": OPT_INT,
    "change": OPT_INT,
    "change_percent": (float, int, None),
    "status": ("enum", {"ok", "improved", "regressed", "over-limit", "unbudgeted"}),
}
RESULT_SCHEMA = {
    "nodeid": str,
    "region": (str, None),
    "profile": str,
    "status": ("enum", {"passed", "failed", "missing", "unrecorded", "unstable"}),
    "metrics": ("map", METRIC_SCHEMA),
    "first_call": ("optional", ("map", INT)),
    "third_call": ("optional", ("map", INT)),
    "start_call": ("optional", ("map", INT)),
    "from_start": bool,
}
SUMMARY_SCHEMA: dict[str, Any] = {
    "measured": INT,
    "passed": INT,
    "failed": INT,
    "missing": INT,
    "unrecorded": INT,
    "unstable": INT,
    "improved": INT,
    "passed_on_second_call": INT,
    "judged_from_start": INT,
    "passed_from_the_start": INT,
    "stale": ("list", str),
    "pruned": ("list", str),
}
UPDATE_SUMMARY_SCHEMA = {
    **SUMMARY_SCHEMA,
    "changes": {"created": INT, "updated": INT, "unchanged": INT},
    "written": bool,
}


def report_schema(mode: str) -> dict[str, Any]:
    return {
        "schema_version": ("enum", {1}),
        "mode": ("enum", {mode}),
        "profile": str,
        "engine": ("enum", {"counter", "tracemalloc"}),
        "counts_unavailable": (str, None),
        "strict": bool,
        "full_run": bool,
        "budget_file": str,
        "results": ("list", RESULT_SCHEMA),
        "summary": UPDATE_SUMMARY_SCHEMA if mode == "update" else SUMMARY_SCHEMA,
    }


def check(value: Any, schema: Any, where: str = "$") -> None:
    """Raise AssertionError naming the path of the first value that does not fit ``schema``."""
    if isinstance(schema, dict):
        assert isinstance(value, dict), f"{where}: expected an object, got {value!r}"
        assert set(value) == set(schema), f"{where}: keys {sorted(value)} != {sorted(schema)}"
        for key, sub in schema.items():
            check(value[key], sub, f"{where}.{key}")
    elif isinstance(schema, tuple) and schema and schema[0] == "list":
        assert isinstance(value, list), f"{where}: expected a list, got {value!r}"
        for index, item in enumerate(value):
            check(item, schema[1], f"{where}[{index}]")
    elif isinstance(schema, tuple) and schema and schema[0] == "map":
        assert isinstance(value, dict), f"{where}: expected an object, got {value!r}"
        for key, item in value.items():
            assert isinstance(key, str), f"{where}: key {key!r}"
            check(item, schema[1], f"{where}.{key}")
    elif isinstance(schema, tuple) and schema and schema[0] == "optional":
        if value is not None:
            check(value, schema[1], where)
    elif isinstance(schema, tuple) and schema and schema[0] == "enum":
        assert value in schema[1] and not isinstance(value, bool), f"{where}: {value!r} not one of {schema[1]}"
    else:
        types = schema if isinstance(schema, tuple) else (schema,)
        ok = any(
            value is None if kind is None else isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
            for kind in types
        )
        assert ok, f"{where}: {value!r} is not {types}"


def test_the_schema_checker_catches_wrong_types() -> None:
    check({"a": 1, "b": None}, {"a": int, "b": (int, None)})
    for bad, schema in [
        ({"a": True}, {"a": int}),  # a bool is not a number here
        ({"a": 1.0}, {"a": int}),
        ({"a": "1"}, {"a": (int, None)}),
        ({"a": 1, "extra": 2}, {"a": int}),
        ({}, {"a": int}),
        ({"a": [1, "x"]}, {"a": ("list", int)}),
        ({"a": 3}, {"a": ("enum", {1, 2})}),
    ]:
        with pytest.raises(AssertionError):
            check(bad, schema)


def _load(path: Path) -> dict[str, Any]:
    assert path.exists()
    document = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


@pytest.mark.smoke
def test_json_report_of_an_update_and_a_check_run(
    tester: pytest.Pytester, set_budget, profile: str, recorded_metrics: tuple[str, ...]
) -> None:
    tester.makepyfile(TESTS)
    report = tester.path / "out" / "report.json"
    result = tester.runpytest("--alloc-update", "--alloc-json", "out/report.json")
    result.assert_outcomes(passed=4)
    document = _load(report)
    check(document, report_schema("update"))
    assert document["schema_version"] == 1
    assert document["mode"] == "update"
    assert document["profile"] == profile
    assert document["engine"] == ("counter" if "allocations" in recorded_metrics else "tracemalloc")
    assert document["strict"] is False
    assert document["full_run"] is True
    assert Path(document["budget_file"]) == tester.path / "allocbudget.yaml"
    name = "test_json_report_of_an_update_and_a_check_run.py"
    assert [(r["nodeid"], r["region"]) for r in document["results"]] == [
        (f"{name}::test_keep", None),
        (f"{name}::test_regions", "build"),
        (f"{name}::test_small", None),
    ]
    for entry in document["results"]:
        assert sorted(entry["metrics"]) == sorted(recorded_metrics)
        assert entry["profile"] == profile
    assert document["summary"]["changes"] == {"created": 3, "updated": 0, "unchanged": 0}
    assert document["summary"]["written"] is True
    assert document["summary"]["measured"] == 3

    # A check run, with one regression; the report is replaced.
    set_budget(f"{name}::test_keep", retained=50_000)
    result = tester.runpytest("--alloc-json", "out/report.json", "--alloc-explain=off")
    result.assert_outcomes(passed=3, failed=1)
    document = _load(report)
    check(document, report_schema("check"))
    assert document["mode"] == "check"
    results = {(r["nodeid"], r["region"]): r for r in document["results"]}
    failed = results[(f"{name}::test_keep", None)]
    assert failed["status"] == "failed"
    retained = failed["metrics"]["retained"]
    assert retained["status"] == "regressed"
    assert retained["budget"] == 50_000
    assert retained["measured"] >= 100_000
    assert retained["change"] == retained["measured"] - 50_000
    assert retained["allowed"] == 50_000 + 4096  # 2% of 50,000 is below 4 KiB
    assert retained["tolerance"] == {"percent": "2", "absolute": 4096}
    assert retained["limit"] is None
    assert retained["change_percent"] == pytest.approx((retained["measured"] - 50_000) * 100 / 50_000, abs=0.001)
    assert failed["metrics"]["peak"]["status"] == "ok"
    assert results[(f"{name}::test_small", None)]["status"] == "passed"
    assert document["summary"] == {
        "measured": 3,
        "passed": 2,
        "failed": 1,
        "missing": 0,
        "unrecorded": 0,
        "unstable": 0,
        "improved": 0,
        "passed_on_second_call": 0,
        "judged_from_start": 0,
        "passed_from_the_start": 0,
        "stale": [],
        "pruned": [],
    }


def test_json_report_of_a_strict_partial_run_with_a_missing_entry_and_stale_ones(
    tester: pytest.Pytester, add_entry
) -> None:
    tester.makepyfile(TESTS)
    tester.runpytest("--alloc-update", "-k", "not test_small").assert_outcomes(passed=3, deselected=1)
    name = "test_json_report_of_a_strict_partial_run_with_a_missing_entry_and_stale_ones.py"
    add_entry(f"{name}::test_gone")

    result = tester.runpytest("--alloc-strict", "--alloc-json", "report.json")
    result.assert_outcomes(passed=3, failed=1)
    document = _load(tester.path / "report.json")
    check(document, report_schema("check"))
    assert document["strict"] is True
    assert document["full_run"] is True
    results = {(r["nodeid"], r["region"]): r for r in document["results"]}
    missing = results[(f"{name}::test_small", None)]
    assert missing["status"] == "missing"
    assert all(metric["status"] == "unbudgeted" for metric in missing["metrics"].values())
    assert all(metric["budget"] is None and metric["allowed"] is None for metric in missing["metrics"].values())
    assert document["summary"]["missing"] == 1
    assert document["summary"]["stale"] == [f"{name}::test_gone"]

    result = tester.runpytest("-k", "test_keep", "--alloc-json", "report.json")
    document = _load(tester.path / "report.json")
    check(document, report_schema("check"))
    assert document["full_run"] is False
    assert document["summary"]["stale"] == []

    result = tester.runpytest("--alloc-update", "--alloc-prune", "--alloc-json", "report.json")
    document = _load(tester.path / "report.json")
    check(document, report_schema("update"))
    assert document["summary"]["pruned"] == [f"{name}::test_gone"]
    assert document["summary"]["changes"]["created"] == 1


def test_json_report_from_the_ini(tester: pytest.Pytester) -> None:
    tester.makefile(
        ".ini",
        pytest="[pytest]\naddopts = -p no:cacheprovider -p no:randomly -p no:xdist -p no:anyio -p no:asyncio\n"
        "alloc_budget_json = reports/b.json\n",
    )
    tester.makepyfile(TESTS)
    tester.runpytest("--alloc-update").assert_outcomes(passed=4)
    check(_load(tester.path / "reports" / "b.json"), report_schema("update"))
    (tester.path / "reports" / "b.json").unlink()
    tester.runpytest().assert_outcomes(passed=4)
    document = _load(tester.path / "reports" / "b.json")
    check(document, report_schema("check"))
    assert document["summary"]["passed"] == 3


def test_a_run_with_no_budgeted_test_still_writes_an_empty_report(tester: pytest.Pytester) -> None:
    # A report left at the path by an earlier run must not pass for this one.
    tester.makepyfile(TESTS)
    tester.runpytest("--alloc-update").assert_outcomes(passed=4)
    (tester.path / "report.json").write_text('{"stale": "from an earlier run"}')
    result = tester.runpytest("-k", "test_plain", "--alloc-json", "report.json")
    result.assert_outcomes(passed=1, deselected=3)
    report = json.loads((tester.path / "report.json").read_text())
    assert report["schema_version"] == 1
    assert report["results"] == []
    assert report["summary"]["measured"] == 0


# ------------------------------------------------------------------------------------------------ GitHub Actions


def _def_line(source: str, function: str) -> int:
    """The 1-based line of ``def function`` in ``source``."""
    [node] = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef) and n.name == function]
    return node.lineno


GITHUB_TESTS = """\
import pytest

KEEP = []


@pytest.mark.alloc_budget
def test_keep():
    KEEP.append(bytes(100_000))


def test_regions(alloc_budget):
    with alloc_budget.measure("build"):
        KEEP.append(bytes(50_000))


@pytest.mark.alloc_budget
def test_small():
    pass
"""


@pytest.fixture
def github(tester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """GitHub Actions, and its step summary file."""
    summary = tmp_path / "step_summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    return summary


def _record_and_regress(tester: pytest.Pytester, set_budget, test: str, region: str | None) -> str:
    """Record GITHUB_TESTS outside CI, then lower the retained budget of one entry; returns the file name."""
    name = tester.makepyfile(GITHUB_TESTS).name
    result = tester.runpytest("--alloc-update", "--alloc-update-in-ci")
    result.assert_outcomes(passed=3)
    set_budget(f"{name}::{test}", region, retained=1_000)
    return name


def test_github_step_summary_is_appended_with_the_regressions(
    tester: pytest.Pytester, github: Path, set_budget, profile: str
) -> None:
    name = _record_and_regress(tester, set_budget, "test_regions", "build")
    github.write_text("## An earlier step\n\nits text\n", encoding="utf-8")
    result = tester.runpytest()
    result.assert_outcomes(passed=2, failed=1)
    text = github.read_text(encoding="utf-8")
    assert text.startswith("## An earlier step\n\nits text\n## Allocation budgets")  # appended, not overwritten
    lines = text.splitlines()
    assert f"## Allocation budgets ({profile})" in lines
    assert "3 measured (2 tests, 1 region): 1 regression, 0 improvements, 0 missing budgets." in lines
    regressions = lines.index("### Regressions")
    assert lines[regressions + 2 : regressions + 4] == ["| test | metric | budget → measured |", "|---|---|---|"]
    row = lines[regressions + 4]
    assert row.startswith(f"| `{name}::test_regions [region 'build']` | retained | 1000 B → ")
    assert "### Improvements" not in lines

    # A second run appends a second section.
    tester.runpytest().assert_outcomes(passed=2, failed=1)
    text = github.read_text(encoding="utf-8")
    assert text.startswith("## An earlier step\n")
    assert text.count("## Allocation budgets") == 2


def test_github_annotation_points_at_a_region_tests_def_line(tester: pytest.Pytester, github: Path, set_budget) -> None:
    name = _record_and_regress(tester, set_budget, "test_regions", "build")
    result = tester.runpytest()
    result.assert_outcomes(passed=2, failed=1)
    line = _def_line(GITHUB_TESTS, "test_regions")
    annotations = [text for text in result.stdout.lines if text.startswith("::error ")]
    assert len(annotations) == 1, annotations
    [annotation] = annotations
    assert annotation.startswith(f"::error file={name},line={line},title=allocation budget::"), annotation
    assert f"::allocation budget exceeded: {name}::test_regions [region 'build']" in annotation
    assert "%0A  retained: measured " in annotation
    assert "\n" not in annotation


def test_github_annotation_points_at_a_decorated_tests_def_line(
    tester: pytest.Pytester, github: Path, set_budget
) -> None:
    name = _record_and_regress(tester, set_budget, "test_keep", None)
    result = tester.runpytest("--alloc-explain=off")
    result.assert_outcomes(passed=2, failed=1)
    line = _def_line(GITHUB_TESTS, "test_keep")
    result.stdout.fnmatch_lines([f"::error file={name},line={line},title=allocation budget::*test_keep*"])


def test_no_github_output_outside_github_actions(tester: pytest.Pytester, set_budget, tmp_path: Path) -> None:
    summary = tmp_path / "step_summary.md"
    tester.makepyfile(GITHUB_TESTS)
    tester.runpytest("--alloc-update").assert_outcomes(passed=3)
    set_budget("test_no_github_output_outside_github_actions.py::test_regions", "build", retained=1_000)
    # GITHUB_STEP_SUMMARY alone, without GITHUB_ACTIONS=true, is not GitHub Actions.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GITHUB_STEP_SUMMARY", str(summary))
        result = tester.runpytest()
    result.assert_outcomes(passed=2, failed=1)
    assert not summary.exists()
    assert "::error" not in result.stdout.str()


# ------------------------------------------------------------------------------------------------ --junitxml


def _properties(xml: Path) -> dict[str, dict[str, str]]:
    """testcase name -> {property name: value}."""
    tree = ET.parse(xml)
    found = {}
    for case in tree.iter("testcase"):
        found[case.get("name")] = {prop.get("name"): prop.get("value") for prop in case.iter("property")}
    return found


def test_junitxml_has_the_numbers_as_properties(tester: pytest.Pytester, recorded_metrics: tuple[str, ...]) -> None:
    tester.makepyfile(TESTS)
    tester.runpytest("--alloc-update").assert_outcomes(passed=4)
    result = tester.runpytest("--junitxml=junit.xml")
    result.assert_outcomes(passed=4)
    properties = _properties(tester.path / "junit.xml")
    assert set(properties) == {"test_keep", "test_small", "test_regions", "test_plain"}
    assert properties["test_plain"] == {}
    for test in ("test_keep", "test_small"):
        assert set(properties[test]) == {f"alloc_budget.{metric}" for metric in recorded_metrics}, test
    assert set(properties["test_regions"]) == {f"alloc_budget[build].{metric}" for metric in recorded_metrics}
    assert {"alloc_budget.peak", "alloc_budget.retained"} <= set(properties["test_keep"])
    for values in properties.values():
        for value in values.values():
            assert value.isdigit()
    assert int(properties["test_keep"]["alloc_budget.retained"]) >= 100_000
    assert int(properties["test_regions"]["alloc_budget[build].peak"]) >= 8_000
