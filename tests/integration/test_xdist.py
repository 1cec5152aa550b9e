"""Under pytest-xdist: the workers measure and judge, the controller merges their results and writes the file once.

The same tests are run without xdist (``-p no:xdist``), with ``-n 0`` and with ``-n 2``; the inner sessions here use
an ini that does not disable xdist.  ``-n 2`` runs start two worker processes each (about a second).
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest

from pytest_allocbudget.budgets import store
from pytest_allocbudget.judging.metrics import METRICS

XDIST_INI = """\
[pytest]
addopts = -p no:cacheprovider -p no:randomly -p no:anyio -p no:asyncio
"""

ONE = """
import pytest

KEEP = []

@pytest.mark.alloc_budget
def test_a():
    KEEP.append(bytes(100_000))

@pytest.mark.alloc_budget
def test_b():
    KEEP.append(bytes(200_000))

@pytest.mark.alloc_budget
def test_c():
    KEEP.append([0] * 10_000)

def test_not_budgeted():
    KEEP.append(bytes(1_000))
"""

TWO = """
import pytest

KEEP = []

def test_regions(alloc_budget):
    with alloc_budget.measure("first"):
        KEEP.append(bytes(50_000))
    with alloc_budget.measure("second"):
        KEEP.append(bytes(60_000))

@pytest.mark.alloc_budget
def test_d():
    KEEP.append({i: str(i) for i in range(1_000)})

@pytest.mark.alloc_budget
def test_e():
    assert sum(range(1_000)) > 0
"""

#: Seven entries: test_a, test_b, test_c, test_d, test_e and the two regions of test_regions.
ENTRIES = 7
TESTS = 7  # six budgeted tests and one without a budget

#: A conftest that logs every write of the budget file (by whom) to saves.log, and undoes its patch at the end, since
#: in-process inner sessions share the plugin's modules with the outer one.
WRITE_LOG = """
import os

import pytest_allocbudget.budgets.store as store

_save = store.save
_LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "saves.log")
_role = "controller"


def pytest_configure(config):
    # From the config, not PYTEST_XDIST_WORKER: an in-process session run by an xdist worker inherits its variable.
    global _role
    _role = config.workerinput["workerid"] if hasattr(config, "workerinput") else "controller"


def _logged_save(path, budgets):
    with open(_LOG, "a") as log:
        log.write(_role + "\\n")
    _save(path, budgets)


store.save = _logged_save


def pytest_unconfigure(config):
    store.save = _save
"""

SECTION = re.compile(r"^-+ allocation budgets -+$", re.MULTILINE)


@pytest.fixture
def xtester(tester: pytest.Pytester) -> pytest.Pytester:
    """The tester, with an ini that leaves pytest-xdist enabled, and the two test files."""
    tester.makefile(".ini", pytest=XDIST_INI)
    tester.makepyfile(test_one=ONE, test_two=TWO)
    return tester


def _entries(path: Path, profile: str) -> dict[store.EntryKey, dict[str, int]]:
    return {key: dict(values) for key, values in store.load(path).profile(profile).items()}


def _failed(result: pytest.RunResult) -> set[str]:
    """The node ids of the short test summary's FAILED lines."""
    return {line.split()[1] for line in result.stdout.lines if line.startswith("FAILED ")}


def _summary(result: pytest.RunResult) -> str:
    """The first line of the 'allocation budgets' section, which must appear exactly once."""
    output = result.stdout.str()
    assert len(SECTION.findall(output)) == 1, output
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if SECTION.match(line))
    return lines[start + 1]


@pytest.mark.smoke
def test_n2_update_records_what_a_serial_update_records_and_writes_once(xtester: pytest.Pytester, profile: str) -> None:
    xtester.makeconftest(WRITE_LOG)
    log = xtester.path / "saves.log"
    serial = xtester.runpytest("-p", "no:xdist", "--alloc-update", "--alloc-file", "serial.yaml")
    serial.assert_outcomes(passed=TESTS)
    assert log.read_text().split() == ["controller"]
    log.unlink()

    result = xtester.runpytest("-n", "2", "--alloc-update")
    result.assert_outcomes(passed=TESTS)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["created: 2/2 workers"])
    assert _summary(result) == f"{ENTRIES} measured (5 tests, 2 regions; profile {profile})"
    result.stdout.fnmatch_lines([f"wrote allocbudget.yaml: {ENTRIES} created, 0 updated, 0 unchanged"])
    assert log.read_text().split() == ["controller"]  # once, by the controller; no worker wrote

    expected = _entries(xtester.path / "serial.yaml", profile)
    recorded = _entries(xtester.path / "allocbudget.yaml", profile)
    assert set(recorded) == set(expected)
    assert len(recorded) == ENTRIES
    for key, values in expected.items():
        assert set(recorded[key]) == set(values), key
        for metric, value in values.items():
            tolerance = METRICS[metric].default_tolerance
            assert not tolerance.moved(value, recorded[key][metric]), (key, metric, value, recorded[key][metric])


def test_a_check_fails_the_same_tests_without_xdist_with_n0_and_with_n2(xtester: pytest.Pytester, set_budget) -> None:
    xtester.runpytest("-p", "no:xdist", "--alloc-update").assert_outcomes(passed=TESTS)
    set_budget("test_one.py::test_b", peak=1_000)
    set_budget("test_two.py::test_regions", "second", retained=1_000)
    regressed = {"test_one.py::test_b", "test_two.py::test_regions"}
    summary = (
        f"{ENTRIES} measured (5 tests, 2 regions): {ENTRIES - 2} passed, 2 failed, 0 missing "
        "(profile *, allocbudget.yaml)"
    )

    # A failing whole test is run again to explain it, which can change what later tests allocate in the same
    # process on Python 3.12+ (see test_repeatability.py): serial runs get a process of their own.
    runs = {
        "no xdist": xtester.runpytest_subprocess("-p", "no:xdist"),
        "-n 0": xtester.runpytest_subprocess("-n", "0"),
        "-n 2": xtester.runpytest("-n", "2"),
    }
    for name, result in runs.items():
        result.assert_outcomes(passed=TESTS - 2, failed=2)
        assert result.ret == pytest.ExitCode.TESTS_FAILED, name
        assert _failed(result) == regressed, name
        assert fnmatch.fnmatch(_summary(result), summary), (name, _summary(result))
        result.stdout.fnmatch_lines(["*allocation budget exceeded: test_one.py::test_b (profile *)"])
        result.stdout.fnmatch_lines(["*allocation budget exceeded: test_two.py::test_regions [[]region 'second'[]]*"])
    assert "created: 2/2 workers" in runs["-n 2"].stdout.str()
    assert "workers" not in runs["-n 0"].stdout.str()


CRASHY = """
import os

import pytest

@pytest.mark.alloc_budget
def test_crash():
    if os.environ.get("ALLOCBUDGET_TEST_CRASH") == "1":
        os._exit(1)
"""

NEW = """

@pytest.mark.alloc_budget
def test_new():
    KEEP.append(bytes(30_000))
"""


def test_a_crashed_worker_loses_nothing_on_disk_and_disables_pruning(
    xtester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, add_entry, profile: str
) -> None:
    xtester.makepyfile(test_crashy=CRASHY)
    monkeypatch.setenv("ALLOCBUDGET_TEST_CRASH", "0")
    xtester.runpytest("-p", "no:xdist", "--alloc-update").assert_outcomes(passed=TESTS + 1)
    add_entry("test_one.py::test_gone")  # the entry of a test that no longer exists
    before = _entries(xtester.path / "allocbudget.yaml", profile)
    assert len(before) == ENTRIES + 2
    xtester.makepyfile(test_one=ONE + NEW)  # a new test, so that the crashed run has something to write

    # test_crashy.py::test_crash is collected first, so the first worker gets it first (xdist sends each worker a
    # batch of consecutive tests) and crashes before it finished any other test: no result but its own is lost.
    monkeypatch.setenv("ALLOCBUDGET_TEST_CRASH", "1")
    result = xtester.runpytest("-n", "2", "--alloc-update", "--alloc-prune")
    result.assert_outcomes(passed=TESTS + 1, failed=1)
    result.stdout.fnmatch_lines(["*worker 'gw*' crashed while running 'test_crashy.py::test_crash'*"])
    result.stdout.fnmatch_lines(["wrote allocbudget.yaml: 1 created, 0 updated, * unchanged"])
    assert "pruned 1" not in result.stdout.str()
    after = _entries(xtester.path / "allocbudget.yaml", profile)
    assert set(after) == {*before, ("test_one.py::test_new", None)}
    assert {key: after[key] for key in before} == before  # the crashed test's entry and the stale one included

    # The same run without the crash prunes the stale entry.
    monkeypatch.setenv("ALLOCBUDGET_TEST_CRASH", "0")
    result = xtester.runpytest("-n", "2", "--alloc-update", "--alloc-prune")
    result.assert_outcomes(passed=TESTS + 2)
    result.stdout.fnmatch_lines(["pruned 1 stale entry:", "  test_one.py::test_gone"])
    after = _entries(xtester.path / "allocbudget.yaml", profile)
    assert set(after) == set(before) - {("test_one.py::test_gone", None)} | {("test_one.py::test_new", None)}
