"""Repeatability: deterministic code measures the same, to the byte, in separate processes with different hash seeds.

These run the inner sessions in subprocesses (slower), since a fresh interpreter is the point.
"""

from __future__ import annotations

import pytest

DETERMINISTIC = """
import pytest

KEEP = []


class Point:
    def __init__(self, x, y):
        self.x = x
        self.y = y


@pytest.mark.alloc_budget
def test_list_building():
    KEEP.append([i * 2 for i in range(10_000)])


@pytest.mark.alloc_budget
def test_dict_building():
    KEEP.append({f"key-{i}": i for i in range(2_000)})


@pytest.mark.alloc_budget
def test_string_joins():
    parts = [str(i) for i in range(5_000)]
    KEEP.append(",".join(parts))
    KEEP.append("-".join(reversed(parts)))


@pytest.mark.alloc_budget
def test_class_instances():
    KEEP.append([Point(i, -i) for i in range(1_000)])


@pytest.mark.alloc_budget
def test_temporary_only():
    assert sum(len(str(i)) for i in range(10_000)) > 0


def test_regions(alloc_budget):
    with alloc_budget.measure("tuples"):
        KEEP.append([(i, str(i)) for i in range(1_000)])
    with alloc_budget.measure("set"):
        KEEP.append({i * 7 for i in range(3_000)})
"""


@pytest.mark.smoke
def test_budgets_are_byte_identical_across_processes_and_hash_seeds(
    tester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, read_budgets
) -> None:
    tester.makepyfile(DETERMINISTIC)
    path = tester.path / "allocbudget.yaml"

    monkeypatch.setenv("PYTHONHASHSEED", "1")
    result = tester.runpytest_subprocess("--alloc-update")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*wrote allocbudget.yaml: 7 created, 0 updated, 0 unchanged*"])
    first = path.read_bytes()
    entries = read_budgets()
    name = "test_budgets_are_byte_identical_across_processes_and_hash_seeds.py"
    assert entries[f"{name}::test_list_building"]["retained"] > 10_000 * 8
    assert sorted(entries[f"{name}::test_regions"]["regions"]) == ["set", "tuples"]
    path.unlink()

    monkeypatch.setenv("PYTHONHASHSEED", "4242")
    result = tester.runpytest_subprocess("--alloc-update")
    result.assert_outcomes(passed=6)
    assert path.read_bytes().decode() == first.decode()

    monkeypatch.setenv("PYTHONHASHSEED", "987654")
    result = tester.runpytest_subprocess("--alloc-tolerance", "0")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*7 measured (*): 7 passed, 0 failed, 0 missing*"])
    result.stdout.no_fnmatch_line("*could be tightened*")
    assert path.read_bytes() == first


WARM = """
@pytest.mark.alloc_budget
def test_0_warm():
    pass
"""

PEAK_OVER_LIMIT = """
@pytest.mark.alloc_budget(peak="1 KiB")
def test_2_peak_over_its_limit():
    assert len(bytes(100_000)) == 100_000
"""


def _identical_pair(tester: pytest.Pytester, read_budgets, first: str, between: str) -> tuple[object, object]:
    """Record two identical empty tests in one session, with ``first`` before and ``between`` between them."""
    tester.makepyfile(
        "import pytest\n"
        + first
        + "\n@pytest.mark.alloc_budget\ndef test_1_before():\n    pass\n"
        + between
        + "\n@pytest.mark.alloc_budget\ndef test_3_after():\n    pass\n"
    )
    result = tester.runpytest_subprocess("--alloc-update")
    assert result.parseoutcomes()["passed"] >= 2, result.stdout.str()
    entries = {key.split("::")[1]: values for key, values in read_budgets().items()}
    return entries["test_1_before"], entries["test_3_after"]


def test_first_test_of_a_session_measures_like_the_others(tester: pytest.Pytester, read_budgets) -> None:
    # On Python 3.9 and 3.10 the plugin's own measuring code allocates frames on its first call; its warm-up before
    # the first test keeps them out of that test's numbers.
    before, after = _identical_pair(tester, read_budgets, "", "")
    assert before == after


def test_a_failing_peak_does_not_change_later_measurements(tester: pytest.Pytester, read_budgets) -> None:
    # test_0_warm runs the plugin's own code once first, so that on every Python both empty tests start equal.
    before, after = _identical_pair(tester, read_budgets, WARM, PEAK_OVER_LIMIT)
    assert before == after
