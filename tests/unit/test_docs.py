"""docs/reference.md documents exactly what the plugin accepts: options, ini keys, marker and measure() arguments.

The registered options and ini keys are read from a real pytest parser after the plugin's ``pytest_addoption`` has
run on it, so a new option fails this test until it is documented, and a documented option that was removed fails
it too. The tables of options and ini keys are made by docs/examples/generate.py from the help texts in
pytest_allocbudget/wiring/options.py (test_doc_examples.py checks that they are current); here, that the help texts it
reads are those ``pytest --help`` prints.
"""

from __future__ import annotations

import argparse
import inspect
import re
from pathlib import Path
from types import ModuleType

import pytest

from pytest_allocbudget.judging.metrics import METRICS
from pytest_allocbudget.judging.units import UNIT_FACTORS
from pytest_allocbudget.wiring import plugin, settings
from pytest_allocbudget.wiring.options import REFERENCE as WORDS
from pytest_allocbudget.wiring.regions import AllocBudget

DOCS = Path(__file__).resolve().parents[2] / "docs"
REFERENCE = DOCS / "reference.md"

OPTION_RE = re.compile(r"--alloc-[a-z]+(?:-[a-z]+)*")
INI_RE = re.compile(r"\balloc_budget_[a-z]+(?:_[a-z]+)*")
CODE_RE = re.compile(r"`([^`]+)`")


# ------------------------------------------------------------------------------------------------ helpers


def _option_names(parser: pytest.Parser) -> set[str]:
    """Every option name, but those whose help is suppressed (internal ones, not for users)."""
    groups = [*parser._groups, parser._anonymous]
    return {
        name
        for group in groups
        for option in group.options
        if option.attrs().get("help") != argparse.SUPPRESS
        for name in option.names()
    }


@pytest.fixture
def registered(tester: pytest.Pytester) -> tuple[set[str], set[str]]:
    """The long options and ini keys that the plugin's ``pytest_addoption`` adds to a real parser."""
    config = tester.parseconfig("-p", "no:allocbudget")
    parser = config._parser
    options_before, ini_before = _option_names(parser), set(parser._inidict)
    plugin.pytest_addoption(parser)
    options = {name for name in _option_names(parser) - options_before if name.startswith("--")}
    ini_keys = set(parser._inidict) - ini_before
    assert options, "the plugin registered no command-line option"
    assert ini_keys, "the plugin registered no ini key"
    return options, ini_keys


def _section(text: str, heading: str) -> str:
    """The body of the section whose heading line is exactly ``heading``, up to the next heading of its level or
    above."""
    lines = text.splitlines()
    assert heading in lines, f"reference.md has no heading {heading!r}"
    start = lines.index(heading) + 1
    level = len(heading) - len(heading.lstrip("#"))
    body = []
    for line in lines[start:]:
        if line.startswith("#") and len(line) - len(line.lstrip("#")) <= level:
            break
        body.append(line)
    return "\n".join(body)


def _table(text: str, heading: str) -> list[list[str]]:
    """The rows (cells, stripped) of the first table in a section, header and separator left out."""
    rows = []
    for line in _section(text, heading).splitlines():
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif rows:
            break
    assert len(rows) > 2, f"no table under {heading!r}"
    assert set(rows[1][0]) <= set("-: "), f"the table under {heading!r} has no header separator"
    return rows[2:]


def _code(cell: str) -> str:
    """The first code span in a table cell."""
    match = CODE_RE.search(cell)
    assert match is not None, f"no code span in {cell!r}"
    return match.group(1)


def _first_column(text: str, heading: str) -> list[str]:
    """The name in the first column of each row; the cell must be that name alone, as one code span."""
    names = []
    for row in _table(text, heading):
        name = _code(row[0])
        assert row[0] == f"`{name}`", f"{heading}: the first column must be one code span: {row[0]!r}"
        names.append(name)
    assert len(names) == len(set(names)), f"{heading}: a name is listed twice: {names}"
    return names


@pytest.fixture
def reference() -> str:
    return REFERENCE.read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------------ tests


def test_every_option_is_documented_and_no_other(registered: tuple[set[str], set[str]], reference: str) -> None:
    options, _ = registered
    assert all(name.startswith("--alloc-") for name in options), options
    assert set(_first_column(reference, "## Command-line options")) == options


def test_the_tables_say_what_help_says_and_nothing_of_their_own(
    generate: ModuleType, registered: tuple[set[str], set[str]], reference: str, tester: pytest.Pytester
) -> None:
    """The rows of the tables are made from what the generator reads in options.py; this holds it to ``--help``."""
    assert {"options", "ini keys"} <= set(generate.blocks(reference)), "reference.md has tables it does not make"
    options, ini_keys = registered
    found, ini = generate.registered()
    assert (set(found), set(ini)) == (options, ini_keys), "the generator reads every option and ini key"
    result = tester.runpytest("--help")
    shown = "".join(result.stdout.str().split())  # the help is wrapped where the terminal ends, hyphens or not
    for name, attrs in (*found.items(), *ini.items()):
        assert "".join(attrs["help"].split()) in shown, f"{name}: the help the table is made from is not --help's"
    unknown = set(WORDS) - options - ini_keys
    assert not unknown, f"options.REFERENCE describes what is not registered: {unknown}"


def test_every_ini_key_is_documented_and_no_other(registered: tuple[set[str], set[str]], reference: str) -> None:
    _, ini_keys = registered
    assert all(name.startswith("alloc_budget_") for name in ini_keys), ini_keys
    assert set(_first_column(reference, "## Ini keys")) == ini_keys


@pytest.mark.parametrize("page", sorted(path.name for path in DOCS.glob("*.md")))
def test_docs_name_no_option_or_ini_key_that_does_not_exist(registered: tuple[set[str], set[str]], page: str) -> None:
    options, ini_keys = registered
    text = (DOCS / page).read_text(encoding="utf-8")
    assert set(OPTION_RE.findall(text)) <= options
    assert set(INI_RE.findall(text)) <= ini_keys


def test_every_marker_argument_is_documented_and_no_other(reference: str) -> None:
    documented = _first_column(reference, "### Marker arguments")
    assert set(documented) == {"enabled", *settings._MARKER_KEYWORDS}
    assert documented[0] == "enabled"  # the positional argument comes first


def test_marker_signature_matches_the_registered_marker_help(reference: str) -> None:
    signature = settings.MARKER_HELP.split("): ", 1)[0] + ")"
    assert f"@pytest.mark.{signature}" in reference


def test_every_measure_argument_is_documented_and_no_other(reference: str) -> None:
    parameters = inspect.signature(AllocBudget.measure).parameters.values()
    named = {p.name for p in parameters if p.name != "self" and p.kind is not inspect.Parameter.VAR_KEYWORD}
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters), "limits are passed as **kwargs"
    assert set(_first_column(reference, "### measure() arguments")) == named | set(METRICS)


def test_every_metric_is_documented_with_its_unit(reference: str) -> None:
    rows = {_code(row[0]): row for row in _table(reference, "## Metrics")}
    assert set(rows) == set(METRICS)
    for name, row in rows.items():
        assert row[1] == METRICS[name].unit, row


def test_every_size_unit_is_documented_with_its_factor(reference: str) -> None:
    rows = _table(reference, "## Sizes")
    documented = {_code(row[0]): int(row[1].replace(",", "")) for row in rows}
    assert documented == UNIT_FACTORS
