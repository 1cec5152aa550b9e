"""Tests of :mod:`pytest_allocbudget.cli`, the ``allocbudget`` command: every command, format and exit status.

Commands are run in-process through ``main([...])``, which returns the exit status, with the output read from
capsys; one test runs the installed console script, to prove the ``[project.scripts]`` entry works.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_allocbudget import cli
from pytest_allocbudget.budgets.store import BudgetFile, EntryKey, dump, save
from pytest_allocbudget.cli import compare, diff_text, main
from pytest_allocbudget.judging.metrics import METRICS

PY = "cpython-3.11"
PYPY = "pypy-3.10"
NAIVE = "tests/test_wordfreq.py::test_naive"
FAST = "tests/test_wordfreq.py::test_fast"
BOTH = "tests/test_wordfreq.py::test_both"

Profiles = dict[str, dict[EntryKey, dict[str, int]]]

OLD: Profiles = {
    PY: {
        (NAIVE, None): {"peak": 505_624, "retained": 0, "allocations": 8_472, "allocated": 1_026_520},
        (FAST, None): {"peak": 280_424, "retained": 2_795, "allocations": 4_527, "allocated": 557_075},
        (BOTH, "naive"): {"peak": 505_560, "retained": 811},
        (BOTH, "fast"): {"peak": 280_360, "retained": 811},
    },
    PYPY: {
        (NAIVE, None): {"peak": 400_000, "retained": 100},
    },
}


def new_profiles() -> Profiles:
    """OLD with: NAIVE's peak +20% and allocations +1%, BOTH/fast's retained -50%, FAST removed, a test added."""
    profiles = {name: {key: dict(values) for key, values in entries.items()} for name, entries in OLD.items()}
    py = profiles[PY]
    py[(NAIVE, None)].update(peak=606_748, allocations=8_556)
    py[(BOTH, "fast")]["retained"] = 405
    del py[(FAST, None)]
    py[("tests/test_wordfreq.py::test_new", None)] = {"peak": 2_048, "retained": 0}
    return profiles


def write(path: Path, profiles: Profiles) -> Path:
    save(path, BudgetFile(profiles))
    return path


@pytest.fixture
def old(tmp_path: Path) -> Path:
    return write(tmp_path / "old.yaml", OLD)


@pytest.fixture
def new(tmp_path: Path) -> Path:
    return write(tmp_path / "new.yaml", new_profiles())


@pytest.fixture
def corrupt(tmp_path: Path) -> Path:
    path = tmp_path / "corrupt.yaml"
    path.write_text(f"version: 1\nprofiles:\n  {PY}:\n    {NAIVE}:\n      peak: lots\n", encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def table_rows(out: str, after: str) -> list[list[str]]:
    """The cells (split on spaces) of the text-table rows that follow the line ``after``, up to a blank or less
    indented line; header and dashes included."""
    lines = out.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith(after)) + 1
    indent = len(lines[start]) - len(lines[start].lstrip())
    rows = []
    for line in lines[start:]:
        if not line.strip() or len(line) - len(line.lstrip()) < indent:
            break
        rows.append(line.split())
    return rows


def markdown_rows(out: str) -> list[list[str]]:
    """The cells of every Markdown table row, split on unescaped pipes."""
    rows = []
    for line in out.splitlines():
        if line.startswith("|"):
            assert line.endswith("|"), line
            cells = line.replace("\\|", "\0")[1:-1].split("|")
            rows.append([cell.strip().replace("\0", "|") for cell in cells])
    return rows


# ------------------------------------------------------------------------------------------------ show


@pytest.mark.smoke
def test_show_reads_the_default_file_as_one_table_per_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / "allocbudget.yaml", OLD)
    monkeypatch.chdir(tmp_path)
    status, out, err = run(capsys, "show")
    assert (status, err) == (0, "")
    assert out.splitlines()[0] == "allocbudget.yaml: 5 entries in 2 profiles"
    # profiles sorted; columns are the metrics of each profile, in METRICS order
    assert out.index(f"{PY} (4 entries)") < out.index(f"{PYPY} (1 entry)")
    rows = table_rows(out, f"{PY} (")
    assert rows[0] == ["test", *METRICS]
    assert set("".join(rows[1])) == {"-"}
    body = [" ".join(row) for row in rows[2:]]
    assert body == [
        f"{BOTH} [region 'fast'] 273.8 KiB 811 B - -",
        f"{BOTH} [region 'naive'] 493.7 KiB 811 B - -",
        f"{FAST} 273.9 KiB 2.7 KiB 4,527 544.0 KiB",
        f"{NAIVE} 493.8 KiB 0 B 8,472 1.0 MiB",
    ]
    assert table_rows(out, f"{PYPY} (")[0] == ["test", "peak", "retained"]  # no empty allocation columns


def test_show_exact_writes_every_digit(old: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "show", str(old), "--exact", "--profile", PY)
    assert status == 0
    rows = {row[0]: row[1:] for row in table_rows(out, f"{PY} (")[2:]}
    assert rows[NAIVE] == ["505,624", "B", "0", "B", "8,472", "1,026,520", "B"]


def test_show_numbers_are_right_aligned(old: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "show", str(old), "--profile", PY)
    lines = [line for line in out.splitlines() if line.startswith("  ")]
    assert len({len(line) for line in lines}) == 1  # every row ends at the last column's right edge


def test_show_one_profile(old: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "show", str(old), "--profile", PYPY)
    assert status == 0
    assert out.splitlines()[0] == f"{old}: 1 entry in 1 profile"
    assert PYPY in out
    assert PY not in out


def test_show_unknown_profile_names_the_profiles_there_are(old: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "show", str(old), "--profile", "cpython-3.99")
    assert (status, out) == (1, "")
    assert err == f"error: {old} has no profile 'cpython-3.99' (its profiles: {PY}, {PYPY})\n"


def test_show_markdown_table_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    odd = "tests/test_a.py::test_a[x|y`z]"
    path = write(tmp_path / "b.yaml", {PY: {**OLD[PY], (odd, None): {"peak": 10, "retained": 0}}})
    status, out, _ = run(capsys, "show", str(path), "--format", "markdown")
    assert status == 0
    assert out.splitlines()[0] == f"`{path}`: 5 entries in 1 profile"
    assert f"### `{PY}`" in out.splitlines()
    rows = markdown_rows(out)
    assert rows[0] == ["test", *METRICS]
    assert rows[1] == [":--", "--:", "--:", "--:", "--:"]
    assert len(rows) == 2 + 5
    assert all(len(row) == 1 + len(METRICS) for row in rows)
    # a pipe in a node id is escaped so that it does not split the cell; a backtick gets a longer fence
    assert rows[2] == [f"``{odd}``", "10 B", "0 B", "-", "-"]
    assert rows[3] == [f"`{BOTH} [region 'fast']`", "273.8 KiB", "811 B", "-", "-"]


def test_show_json_is_plain_data(old: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "show", str(old), "--format", "json")
    assert status == 0
    document = json.loads(out)
    assert list(document["profiles"]) == [PY, PYPY]
    entries = document["profiles"][PY]
    assert [(entry["test"], entry["region"]) for entry in entries] == [
        (BOTH, "fast"),
        (BOTH, "naive"),
        (FAST, None),
        (NAIVE, None),
    ]
    assert entries[3]["metrics"] == OLD[PY][(NAIVE, None)]
    assert list(entries[3]["metrics"]) == list(METRICS)
    status, out, _ = run(capsys, "show", str(old), "--format", "json", "--profile", PYPY)
    pypy = {"test": NAIVE, "region": None, "metrics": OLD[PYPY][(NAIVE, None)]}
    assert json.loads(out) == {"profiles": {PYPY: [pypy]}}


def test_show_is_deterministic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    forward = write(tmp_path / "a.yaml", OLD)
    backward = write(tmp_path / "b.yaml", {name: dict(reversed(OLD[name].items())) for name in reversed(OLD)})
    for format_ in cli.SHOW_FORMATS:
        _, first, _ = run(capsys, "show", str(forward), "--format", format_)
        _, second, _ = run(capsys, "show", str(backward), "--format", format_)
        assert first.replace("a.yaml", "b.yaml") == second


def test_show_empty_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("version: 1\n", encoding="utf-8")
    status, out, _ = run(capsys, "show", str(path))
    assert status == 0
    assert out.splitlines() == [
        f"{path}: 0 entries in 0 profiles",
        "no budgets recorded yet; `pytest --alloc-update` records them",
    ]


def test_show_escapes_control_characters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "b.yaml", {PY: {("tests/t.py::test[a\nb]", "r\tx"): {"peak": 1}}})
    _, out, _ = run(capsys, "show", str(path))
    assert "tests/t.py::test[a\\nb] [region 'r\\tx']" in out
    assert len(table_rows(out, f"{PY} (")) == 3


def test_show_missing_file_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    status, out, err = run(capsys, "show")
    assert (status, out, err) == (1, "", "error: allocbudget.yaml: no such file\n")


def test_show_unreadable_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"version: 1\n# caf\xe9\n")
    status, _, err = run(capsys, "show", str(latin))
    assert status == 1
    assert err.startswith(f"error: {latin}: not UTF-8 text") and err.count("\n") == 1
    status, _, err = run(capsys, "show", str(tmp_path))
    assert (status, err) == (1, f"error: {tmp_path}: is a directory, not a budget file\n")


def test_show_corrupt_file(corrupt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "show", str(corrupt))
    assert (status, out) == (1, "")
    assert err.startswith(f"error: {corrupt}:5 at profiles.{PY}.{NAIVE}.peak: ")
    assert err.count("\n") == 1


def test_show_from_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(dump(BudgetFile(OLD))))
    status, out, _ = run(capsys, "show", "-", "--profile", PYPY)
    assert status == 0
    assert out.splitlines()[0] == "<stdin>: 1 entry in 1 profile"


# ------------------------------------------------------------------------------------------------ diff


@pytest.mark.smoke
def test_diff_text(old: Path, new: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "diff", str(old), str(new))
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"{old} -> {new}: 1 budget increased, 1 decreased, 1 added, 1 removed; 2 unchanged"
    assert lines[2] == f"{PY}: 1 increased, 1 decreased, 1 added, 1 removed; 1 unchanged"
    assert PYPY not in out  # a profile without changes is only counted
    assert f"{BOTH} [region 'naive']" not in out  # nor is an unchanged entry
    rows = table_rows(out, "  changed:")
    assert rows[0] == ["test", "metric", "old", "new", "change", "%"]
    assert [" ".join(row) for row in rows[2:]] == [
        f"{NAIVE} peak 493.8 KiB 592.5 KiB +98.8 KiB +20.0%",
        f"{NAIVE} allocations 8,472 8,556 +84 +1.0%",
        f"{BOTH} [region 'fast'] retained 811 B 405 B -406 B -50.1%",
    ]
    assert lines[-4:] == [
        "  added:",
        "    tests/test_wordfreq.py::test_new: peak 2.0 KiB, retained 0 B",
        "  removed:",
        f"    {FAST}: peak 273.9 KiB, retained 2.7 KiB, allocations 4,527, allocated 544.0 KiB",
    ]


def test_diff_exact(old: Path, new: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "diff", str(old), str(new), "--exact")
    rows = table_rows(out, "  changed:")
    assert " ".join(rows[2]) == f"{NAIVE} peak 505,624 B 606,748 B +101,124 B +20.0%"
    assert " ".join(rows[3]) == f"{NAIVE} allocations 8,472 8,556 +84 +1.0%"


def test_diff_sorts_the_biggest_relative_increase_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before: dict[EntryKey, dict[str, int]] = {
        ("t::a", None): {"peak": 1_000_000, "retained": 100},  # +1% of a big number: a big absolute change
        ("t::b", None): {"peak": 100, "retained": 0},  # +50%; retained from 0: no percentage, sorts first
        ("t::c", None): {"peak": 1_000, "retained": 10},  # -10%, and retained -90%
        ("t::d", None): {"peak": 10},  # allocations appears
        ("t::e", None): {"peak": 10, "allocations": 5},  # allocations vanishes
        ("t::f", None): {"peak": 200},  # +50%, ties with t::b: by node id
    }
    after: dict[EntryKey, dict[str, int]] = {
        ("t::a", None): {"peak": 1_010_000, "retained": 100},
        ("t::b", None): {"peak": 150, "retained": 5},
        ("t::c", None): {"peak": 900, "retained": 1},
        ("t::d", None): {"peak": 10, "allocations": 7},
        ("t::e", None): {"peak": 10},
        ("t::f", None): {"peak": 300},
    }
    status, out, _ = run(
        capsys, "diff", str(write(tmp_path / "a.yaml", {PY: before})), str(write(tmp_path / "b.yaml", {PY: after}))
    )
    assert status == 0
    # a metric that appears or vanishes has no change to compute: its row ends at the new value
    order = [(row[0], row[1], row[-1]) for row in table_rows(out, "  changed:")[2:]]
    assert order == [
        ("t::b", "retained", "n/a"),
        ("t::b", "peak", "+50.0%"),
        ("t::f", "peak", "+50.0%"),
        ("t::a", "peak", "+1.0%"),
        ("t::c", "peak", "-10.0%"),
        ("t::c", "retained", "-90.0%"),
        ("t::d", "allocations", "7"),
        ("t::e", "allocations", "-"),
    ]
    # three entries went up (one also went down), one only down; d and e only gained or lost a metric
    assert (
        out.splitlines()[2]
        == f"{PY}: 3 increased, 1 decreased, 0 added, 0 removed, 2 with metrics added or removed; 0 unchanged"
    )


def test_diff_markdown(old: Path, new: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "diff", str(old), str(new), "--format", "markdown")
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "**1 budget increased, 1 decreased, 1 added, 1 removed; 2 unchanged**"
    assert lines[2] == f"### `{PY}`: 1 increased, 1 decreased, 1 added, 1 removed; 1 unchanged"
    rows = markdown_rows(out)
    assert rows[0] == ["", "test", "metric", "old", "new", "change", "%"]
    assert rows[1] == [":--", ":--", ":--", "--:", "--:", "--:", "--:"]
    assert rows[2:] == [
        ["increased", f"`{NAIVE}`", "peak", "493.8 KiB", "592.5 KiB", "+98.8 KiB", "+20.0%"],
        ["increased", f"`{NAIVE}`", "allocations", "8,472", "8,556", "+84", "+1.0%"],
        ["decreased", f"`{BOTH} [region 'fast']`", "retained", "811 B", "405 B", "-406 B", "-50.1%"],
    ]
    assert lines[-7:] == [
        "Added:",
        "",
        "- `tests/test_wordfreq.py::test_new`: peak 2.0 KiB, retained 0 B",
        "",
        "Removed:",
        "",
        f"- `{FAST}`: peak 273.9 KiB, retained 2.7 KiB, allocations 4,527, allocated 544.0 KiB",
    ]


def test_diff_of_identical_files(old: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for format_ in cli.DIFF_FORMATS:
        status, out, _ = run(capsys, "diff", str(old), str(old), "--format", format_, "--fail-on-increase")
        assert status == 0
        assert out.count("\n") == 1
        assert "0 budgets increased, 0 decreased, 0 added, 0 removed; 5 unchanged" in out


def test_fail_on_increase(tmp_path: Path, old: Path, new: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "diff", str(old), str(new), "--fail-on-increase")[0] == 1
    assert run(capsys, "diff", str(new), str(old), "--fail-on-increase")[0] == 1  # BOTH/fast's retained goes back up
    assert run(capsys, "diff", str(old), str(new))[0] == 0  # without the flag a diff is only a report
    # decreases, removed and added entries, and a metric that appears are not increases
    shrunk: Profiles = {
        PY: {(NAIVE, None): {"peak": 1, "allocations": 1}, ("t::x", None): {"peak": 5}},
        "pypy-3.11": {},
    }
    status, out, _ = run(capsys, "diff", str(old), str(write(tmp_path / "shrunk.yaml", shrunk)), "--fail-on-increase")
    assert status == 0
    assert out.splitlines()[0].endswith(": 0 budgets increased, 1 decreased, 1 added, 4 removed; 0 unchanged")


def test_diff_one_profile(old: Path, new: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "diff", str(old), str(new), "--profile", PYPY, "--fail-on-increase")
    assert status == 0
    assert out == f"{old} -> {new}: 0 budgets increased, 0 decreased, 0 added, 0 removed; 1 unchanged\n"
    status, _, err = run(capsys, "diff", str(old), str(new), "--profile", "nope")
    assert (status, err) == (1, f"error: neither {old} nor {new} has a profile 'nope'\n")


def test_diff_a_profile_in_one_file_only(tmp_path: Path, old: Path, capsys: pytest.CaptureFixture[str]) -> None:
    only_py = write(tmp_path / "py.yaml", {PY: OLD[PY]})
    _, out, _ = run(capsys, "diff", str(old), str(only_py), "--profile", PYPY)
    assert out.splitlines()[0].endswith("0 budgets increased, 0 decreased, 0 added, 1 removed; 0 unchanged")


@pytest.mark.parametrize("side", ["old", "new"])
def test_diff_reads_stdin_on_either_side(
    side: str, old: Path, new: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, expected, _ = run(capsys, "diff", str(old), str(new))
    piped = old if side == "old" else new
    # a real stdin has a binary buffer, decoded as UTF-8 whatever the locale
    stdin = io.TextIOWrapper(io.BytesIO(piped.read_bytes()), encoding="ascii")
    monkeypatch.setattr(sys, "stdin", stdin)
    argv = ["diff", "-", str(new)] if side == "old" else ["diff", str(old), "-"]
    status, out, _ = run(capsys, *argv)
    assert status == 0
    assert out == expected.replace(str(piped), "<stdin>", 1)


def test_diff_stdin_twice_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "diff", "-", "-")
    assert (status, out) == (2, "")
    assert "OLD and NEW cannot both be '-'" in err


def test_diff_bad_stdin(monkeypatch: pytest.MonkeyPatch, old: Path, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\xff\xfeversion")))
    status, _, err = run(capsys, "diff", "-", str(old))
    assert (status, err) == (1, "error: <stdin>: not UTF-8 text (invalid start byte at byte 0)\n")


def test_diff_corrupt_or_missing_file(old: Path, corrupt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "diff", str(old), str(corrupt), "--fail-on-increase")
    assert (status, out) == (1, "")
    assert err.startswith(f"error: {corrupt}:5 at profiles.{PY}.{NAIVE}.peak: expected a whole number")
    assert "Traceback" not in err and err.count("\n") == 1
    status, out, err = run(capsys, "diff", str(old.with_name("gone.yaml")), str(old))
    assert (status, out, err) == (1, "", f"error: {old.with_name('gone.yaml')}: no such file\n")


def test_diff_counts_an_entry_that_went_up_and_down_as_increased() -> None:
    old = BudgetFile({PY: {(NAIVE, None): {"peak": 100, "retained": 100}}})
    new = BudgetFile({PY: {(NAIVE, None): {"peak": 50, "retained": 150}}})
    diff = compare(old, new)
    assert (diff.count(cli.INCREASED), diff.count(cli.DECREASED), diff.increased) == (1, 0, True)
    assert [change.kind for change in diff.profiles[0].changes] == [cli.INCREASED, cli.DECREASED]


# ------------------------------------------------------------------------------------------------ check


def test_check(tmp_path: Path, old: Path, new: Path, corrupt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "check", str(old), str(new))
    assert (status, err) == (0, "")
    assert out.splitlines() == [f"{old}: ok (5 entries in 2 profiles)", f"{new}: ok (5 entries in 2 profiles)"]
    missing = tmp_path / "missing.yaml"
    status, out, err = run(capsys, "check", str(corrupt), str(old), str(missing))
    assert status == 1
    assert out == f"{old}: ok (5 entries in 2 profiles)\n"  # a bad file does not stop the others being checked
    first, second = err.splitlines()
    assert first.startswith(f"{corrupt}:5 at profiles.{PY}.{NAIVE}.peak: expected a whole number >= 0, got 'lots'")
    assert second == f"{missing}: no such file"


def test_check_finds_what_a_merge_conflict_leaves(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = dump(BudgetFile(OLD)).replace(f"  {PYPY}:", f"<<<<<<< HEAD\n  {PYPY}:", 1)
    path = tmp_path / "conflict.yaml"
    path.write_text(text, encoding="utf-8")
    status, _, err = run(capsys, "check", str(path))
    assert status == 1
    assert err.startswith(f"{path}:")


def test_check_empty_file_and_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", io.StringIO(dump(BudgetFile({PY: {(NAIVE, None): {"peak": 1}}}))))
    status, out, _ = run(capsys, "check", str(empty), "-")
    assert status == 0
    assert out.splitlines() == [f"{empty}: ok (0 entries in 0 profiles)", "<stdin>: ok (1 entry in 1 profile)"]


ENTRY = f"version: 1\nprofiles:\n  {PY}:\n    {NAIVE}:\n"
NESTED_ALIASES = f"""\
version: 1
profiles:
  {PY}:
    {NAIVE}:
      regions: &r
        a: &v {{peak: 1}}
        b: *v
        c: *v
    {FAST}: {{regions: *r}}
  {PYPY}: &p
    t0: {{regions: *r}}
    t1: {{regions: *r}}
  other: *p
"""
REFUSED = {
    "past-64-bits": (
        ENTRY + f"      peak: {'1' * 5000}\n",
        f"5 at profiles.{PY}.{NAIVE}.peak: a number of 5000 digits is too large; a value is at most "
        "18446744073709551615 (2**64 - 1)",
    ),
    "leading-zero": (
        ENTRY + "      peak: 010\n",
        f"5 at profiles.{PY}.{NAIVE}.peak: expected a whole number >= 0 in plain decimal digits, got '010'",
    ),
    "leading-zero-yaml-layout": (  # the trailing space takes another reader: the same answer
        ENTRY + "      peak: 010 \n",
        f"5 at profiles.{PY}.{NAIVE}.peak: expected a whole number >= 0 in plain decimal digits, got '010'",
    ),
    "sexagesimal": (
        ENTRY + "      peak: 1:30\n",
        f"5 at profiles.{PY}.{NAIVE}.peak: expected a whole number >= 0 in plain decimal digits, got '1:30'",
    ),
    "aliases": (
        NESTED_ALIASES,
        f"5 at profiles.{PY}.{NAIVE}.regions: YAML anchors (&r) are not allowed in a budget file; write each value out",
    ),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_check_refuses_what_yaml_readers_disagree_on(
    name: str, tmp_path: Path, old: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, message = REFUSED[name]
    bad = tmp_path / "bad.yaml"
    bad.write_text(text, encoding="utf-8")
    status, out, err = run(capsys, "check", str(bad), str(old))
    assert (status, out) == (1, f"{old}: ok (5 entries in 2 profiles)\n")
    assert err == f"{bad}:{message}\n"


@pytest.mark.parametrize("name", sorted(REFUSED))
@pytest.mark.parametrize(
    "argv",
    [["show", "BAD"], ["show", "BAD", "--format", "json"], ["diff", "OLD", "BAD"], ["diff", "BAD", "OLD"]],
    ids=["show", "show-json", "diff-new", "diff-old"],
)
def test_show_and_diff_refuse_what_yaml_readers_disagree_on(
    name: str, argv: list[str], tmp_path: Path, old: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, message = REFUSED[name]
    bad = tmp_path / "bad.yaml"
    bad.write_text(text, encoding="utf-8")
    status, out, err = run(capsys, *(str(bad) if arg == "BAD" else str(old) if arg == "OLD" else arg for arg in argv))
    assert (status, out, err) == (1, "", f"error: {bad}:{message}\n")


def test_check_reads_the_largest_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "max.yaml", {PY: {(NAIVE, None): {"allocated": 2**64 - 1}}})
    assert run(capsys, "check", str(path)) == (0, f"{path}: ok (1 entry in 1 profile)\n", "")
    status, out, _ = run(capsys, "show", str(path), "--format", "json")
    assert (status, json.loads(out)["profiles"][PY][0]["metrics"]) == (0, {"allocated": 2**64 - 1})


# ------------------------------------------------------------------------------------------------ usage


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["check"],
        ["diff", "a.yaml"],
        ["show", "--format", "yaml"],
        ["diff", "a", "b", "--format", "json"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, *argv)
    assert (status, out) == (2, "")
    assert err.startswith("usage: allocbudget")


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--help")
    assert status == 0
    assert all(command in out for command in ("show", "diff", "check"))
    status, out, _ = run(capsys, "--version")
    assert (status, out.split()[0]) == (0, "allocbudget")


def test_broken_pipe_is_not_a_traceback(old: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Closed(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError

    monkeypatch.setattr(sys, "stdout", Closed())
    assert main(["show", str(old)]) == 1


def test_python_dash_m(old: Path, corrupt: Path) -> None:
    # in a child: in this process pytest's assertion-rewriting import hook owns the package, and runpy cannot use it
    result = subprocess.run(
        [sys.executable, "-m", "pytest_allocbudget", "check", str(old), str(corrupt)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout) == (1, f"{old}: ok (5 entries in 2 profiles)\n")
    assert result.stderr.startswith(f"{corrupt}:5 ")


def test_the_installed_console_script(old: Path, new: Path) -> None:
    bindir = Path(sys.executable).parent
    script = next((path for path in (bindir / "allocbudget", bindir / "allocbudget.exe") if path.exists()), None)
    if script is None:
        pytest.skip(f"no allocbudget script next to {sys.executable}; install the package to create it")
    result = subprocess.run(
        [str(script), "diff", str(old), str(new), "--fail-on-increase"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=False,
    )
    assert (result.returncode, result.stderr) == (1, "")
    assert result.stdout.startswith(f"{old} -> {new}: 1 budget increased")
    result = subprocess.run(
        [str(script), "show", str(old.with_name("gone.yaml"))], capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"error: {old.with_name('gone.yaml')}: no such file\n"


# ------------------------------------------------------------------------------------------------ properties

keys = st.tuples(st.sampled_from(["t::a", "t::b", "t::c[x|y]", "t::d"]), st.sampled_from([None, "r", "s"]))
metric_values = st.dictionaries(
    st.sampled_from(list(METRICS)), st.integers(min_value=0, max_value=2**40), min_size=1, max_size=len(METRICS)
)
budget_files = st.dictionaries(
    st.sampled_from([PY, PYPY, "cpython-3.9"]), st.dictionaries(keys, metric_values, max_size=6), max_size=3
).map(BudgetFile)


@given(budget_files)
def test_a_file_compared_with_itself_has_no_changes(budgets: BudgetFile) -> None:
    diff = compare(budgets, budgets)
    assert not any(profile.changed for profile in diff.profiles)
    assert diff.unchanged == len(budgets)
    assert not diff.increased
    text = diff_text(diff, "a", "a")
    assert text == f"a -> a: 0 budgets increased, 0 decreased, 0 added, 0 removed; {len(budgets)} unchanged"


@given(budget_files, budget_files)
def test_what_one_direction_adds_the_other_removes(a: BudgetFile, b: BudgetFile) -> None:
    forward = {profile.name: profile for profile in compare(a, b).profiles}
    backward = {profile.name: profile for profile in compare(b, a).profiles}
    assert forward.keys() == backward.keys()
    for name, profile in forward.items():
        assert profile.added == backward[name].removed
        assert profile.removed == backward[name].added
        assert profile.unchanged == backward[name].unchanged
        flipped = {(c.key, c.metric, c.new, c.old) for c in backward[name].changes}
        assert {(c.key, c.metric, c.old, c.new) for c in profile.changes} == flipped


@given(budget_files, budget_files)
def test_changes_are_sorted_by_relative_change(a: BudgetFile, b: BudgetFile) -> None:
    for profile in compare(a, b).profiles:
        relatives = [change.relative for change in profile.changes if change.relative is not None]
        assert relatives == sorted(relatives, reverse=True)
        groups = [change.relative is None for change in profile.changes]
        assert groups == sorted(groups)  # moved values before metrics that appeared or vanished
