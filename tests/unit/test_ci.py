"""Unit tests of :mod:`pytest_allocbudget.wiring.ci` (noticing CI) and :mod:`pytest_allocbudget.judging.github`
(annotation and summary formats)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from pytest_allocbudget.judging.github import github_annotation, github_summary
from pytest_allocbudget.judging.tolerance import Tolerance
from pytest_allocbudget.judging.verdict import Status, Verdict, judge
from pytest_allocbudget.wiring.ci import CI_VARIABLES, detect_ci

PROFILE = "cpython-3.11"
DEFAULT = {"peak": Tolerance(Fraction(2), 4096), "retained": Tolerance(Fraction(2), 4096)}

# ------------------------------------------------------------------------------------------------ detect_ci


def test_no_variable_is_not_ci() -> None:
    assert detect_ci({}) is None
    assert detect_ci({"HOME": "/root", "PATH": "/usr/bin"}) is None


@pytest.mark.parametrize("name", ["CI", "GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "JENKINS_URL", "TF_BUILD"])
def test_each_service_is_named_by_its_variable(name: str) -> None:
    assert name in CI_VARIABLES
    assert detect_ci({name: "true"}) == name


@pytest.mark.parametrize("value", ["true", "True", "1", "yes", "on", "anything", "http://jenkins:8080/"])
def test_any_value_but_a_false_one_is_ci(value: str) -> None:
    assert detect_ci({"CI": value}) == "CI"


@pytest.mark.parametrize("value", ["", "0", "false", "False", "FALSE", "no", "off", " false ", "0\n"])
def test_a_false_value_is_not_ci(value: str) -> None:
    assert detect_ci({"CI": value}) is None


def test_the_first_variable_set_names_the_service() -> None:
    assert detect_ci({"GITHUB_ACTIONS": "true", "CI": "true"}) == "CI"
    assert detect_ci({"BUILDKITE": "true", "GITLAB_CI": "true"}) == "GITLAB_CI"


def test_a_false_ci_does_not_hide_a_service_variable() -> None:
    assert detect_ci({"CI": "false", "GITHUB_ACTIONS": "true"}) == "GITHUB_ACTIONS"
    assert detect_ci({"CI": "0", "GITLAB_CI": "false"}) is None


def test_every_variable_is_checked() -> None:
    for name in CI_VARIABLES:
        assert detect_ci({name: "1"}) == name


# ------------------------------------------------------------------------------------------------ annotations


def test_annotation_layout() -> None:
    assert (
        github_annotation("tests/test_a.py", 12, "allocation budget", "peak went up")
        == "::error file=tests/test_a.py,line=12,title=allocation budget::peak went up"
    )


def test_annotation_message_escapes_percent_and_newlines_only() -> None:
    line = github_annotation("t.py", 1, "t", "100% of it\r\nnext: a, b")
    assert line.endswith("::100%25 of it%0D%0Anext: a, b")
    assert "\n" not in line
    assert "\r" not in line


def test_annotation_properties_escape_colons_and_commas_too() -> None:
    line = github_annotation("dir,1/te:st%.py", 3, "a: b, c%", "m")
    assert line == "::error file=dir%2C1/te%3Ast%25.py,line=3,title=a%3A b%2C c%25::m"


def test_annotation_percent_is_escaped_first() -> None:
    # An escape sequence already in the text must survive as text, not turn into the character it names.
    assert github_annotation("f.py", 1, "t", "%0A").endswith("::%250A")


# ------------------------------------------------------------------------------------------------ step summary


def verdicts() -> list[Verdict]:
    regressed = judge(
        ("tests/test_a.py::test_up", None),
        PROFILE,
        {"peak": 20_000, "retained": 0},
        {"peak": 10_000, "retained": 0},
        {},
        DEFAULT,
        True,
    )
    improved = judge(
        ("tests/test_a.py::test_down", "step"),
        PROFILE,
        {"peak": 10_000, "retained": 0},
        {"peak": 20_000, "retained": 0},
        {},
        DEFAULT,
        True,
    )
    missing = judge(("tests/test_a.py::test_new", None), PROFILE, {"peak": 1, "retained": 0}, None, {}, DEFAULT, True)
    passed = judge(
        ("tests/test_a.py::test_same", None),
        PROFILE,
        {"peak": 100, "retained": 0},
        {"peak": 100, "retained": 0},
        {},
        DEFAULT,
        True,
    )
    over = judge(
        ("tests/test_a.py::test_limit", None),
        PROFILE,
        {"peak": 3_000, "retained": 0},
        None,
        {"peak": 2_048},
        DEFAULT,
        True,
    )
    return [regressed, improved, missing, passed, over]


def test_summary_sections_and_rows() -> None:
    text = github_summary(verdicts(), PROFILE, stale=["tests/test_b.py::test_gone"])
    lines = text.splitlines()
    assert lines[0] == f"## Allocation budgets ({PROFILE})"
    assert "5 measured (4 tests, 1 region): 2 regressions, 1 improvement, 1 missing budget, 1 stale." in lines
    assert "### Regressions" in lines
    assert "| `tests/test_a.py::test_up` | peak | 9.8 KiB → 19.5 KiB (+100.0%) |" in lines
    assert "| `tests/test_a.py::test_limit` | peak (limit) | 2.0 KiB → 2.9 KiB (+46.5%) |" in lines
    assert "### Improvements" in lines
    assert "| `tests/test_a.py::test_down [region 'step']` | peak | 19.5 KiB → 9.8 KiB (-50.0%) |" in lines
    assert "### Missing budgets" in lines
    assert f"| `tests/test_a.py::test_new` | all | no budget under {PROFILE} |" in lines
    assert "### Stale entries" in lines
    assert "- `tests/test_b.py::test_gone`" in lines
    assert "test_same" not in text  # a passing test with nothing to say has no row
    assert text.endswith("\n")
    # Each table has its header.
    assert lines.count("| test | metric | budget → measured |") == 3


def test_summary_sections_come_in_a_fixed_order() -> None:
    text = github_summary(verdicts(), PROFILE, stale=["b", "a"])
    positions = [text.index(title) for title in ("### Regressions", "### Improvements", "### Missing", "### Stale")]
    assert positions == sorted(positions)
    assert text.index("- `a`") < text.index("- `b`")  # stale entries sorted


def test_summary_of_a_clean_run_has_only_the_counts() -> None:
    clean = [verdict for verdict in verdicts() if verdict.status is Status.PASSED and not verdict.improvements]
    text = github_summary(clean, PROFILE)
    assert text == (
        f"## Allocation budgets ({PROFILE})\n\n1 measured (1 test): 0 regressions, 0 improvements, 0 missing budgets.\n"
    )


def test_summary_escapes_pipes_in_names() -> None:
    verdict = judge(("t.py::test[a|b]", None), PROFILE, {"peak": 1}, None, {}, DEFAULT, True)
    text = github_summary([verdict], PROFILE)
    assert "| `t.py::test[a\\|b]` | all |" in text


def test_summary_names_an_unrecorded_profile_as_missing() -> None:
    verdict = judge(("t.py::test_x", None), PROFILE, {"peak": 1}, None, {}, DEFAULT, False)
    assert verdict.status is Status.UNRECORDED
    text = github_summary([verdict], PROFILE)
    assert f"| `t.py::test_x` | all | no budget under {PROFILE} |" in text
