"""One hash seed for measured runs: a pytest started with another starts again under the budget file's.

These run pytest as a command (``runpytest_subprocess``), since only a command can be started again; the inner
test writes down the seed it ran under.  Each restart costs a second interpreter start-up.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_allocbudget.measuring import hashseed

SEEN = """
import json, os, sys
import pytest

@pytest.mark.alloc_budget
def test_seed():
    seen = {"env": os.environ.get("PYTHONHASHSEED"), "randomized": sys.flags.hash_randomization,
            "worker": os.environ.get("PYTEST_XDIST_WORKER")}
    with open(os.path.join(os.environ["SEEN_DIR"], "seen.json"), "w") as stream:
        json.dump(seen, stream)
"""


@pytest.fixture
def seen(tester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test module above in the inner project; the process starts with a random seed unless a test sets one."""
    tester.makepyfile(test_seen=SEEN)
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    monkeypatch.delenv(hashseed.RESTARTED_FROM, raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # the outer run's, when it runs under xdist
    monkeypatch.setenv("SEEN_DIR", str(tester.path))
    return tester.path / "seen.json"


def _seen(path: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _record(tester: pytest.Pytester, *args: str) -> None:
    result = tester.runpytest_subprocess("--alloc-update", *args)
    assert result.ret == 0, result.stdout.str()


def test_recording_and_checking_run_under_seed_0_whatever_seed_pytest_was_started_with(
    tester: pytest.Pytester, seen: Path
) -> None:
    _record(tester)
    assert _seen(seen) == {"env": "0", "randomized": 0, "worker": None}
    assert "hash_seed: 0\n" in (tester.path / "allocbudget.yaml").read_text(encoding="utf-8")
    seen.unlink()
    result = tester.runpytest_subprocess()
    assert result.ret == 0
    result.stdout.fnmatch_lines(["allocbudget: hash seed 0 (pytest started again with it: it had random)"])
    assert _seen(seen)["env"] == "0"


def test_an_explicit_other_seed_is_replaced_too(
    tester: pytest.Pytester, seen: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _record(tester)
    monkeypatch.setenv("PYTHONHASHSEED", "1234")
    result = tester.runpytest_subprocess()
    assert result.ret == 0
    result.stdout.fnmatch_lines(["allocbudget: hash seed 0 (pytest started again with it: it had 1234)"])
    assert _seen(seen)["env"] == "0"


def test_the_seed_an_update_run_chose_is_recorded_and_used_by_later_runs(tester: pytest.Pytester, seen: Path) -> None:
    _record(tester, "--alloc-hash-seed=4242")
    assert _seen(seen)["env"] == "4242"
    assert "hash_seed: 4242\n" in (tester.path / "allocbudget.yaml").read_text(encoding="utf-8")
    seen.unlink()
    result = tester.runpytest_subprocess()
    assert result.ret == 0
    result.stdout.fnmatch_lines(["allocbudget: hash seed 4242 (pytest started again with it: it had random)"])
    assert _seen(seen)["env"] == "4242"


def test_the_ini_key_sets_the_seed(tester: pytest.Pytester, seen: Path) -> None:
    tester.makefile(
        ".ini",
        pytest="[pytest]\naddopts = -p no:cacheprovider -p no:randomly -p no:xdist\nalloc_budget_hash_seed = 8\n",
    )
    _record(tester)
    assert _seen(seen)["env"] == "8"


def test_keep_leaves_the_seed_and_says_it_is_random(tester: pytest.Pytester, seen: Path) -> None:
    _record(tester)
    # The test's numbers depend on hashing (it writes a dict): under a random seed they move, so a loose tolerance.
    result = tester.runpytest_subprocess("--alloc-hash-seed=keep", "--alloc-tolerance=100%")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["allocbudget: hash seed random (--alloc-hash-seed=keep)"])
    assert _seen(seen) == {"env": None, "randomized": 1, "worker": None}


def test_a_process_already_under_the_seed_is_not_started_again(
    tester: pytest.Pytester, seen: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _record(tester)
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    result = tester.runpytest_subprocess()
    assert result.ret == 0
    assert "allocbudget: hash seed" not in result.stdout.str()


def test_a_run_with_nothing_recorded_or_to_record_is_left_alone(tester: pytest.Pytester, seen: Path) -> None:
    result = tester.runpytest_subprocess()  # no budget file: the budgeted test is missing, nothing is measured against
    assert result.ret == 0
    assert _seen(seen)["env"] is None
    assert "allocbudget: hash seed" not in result.stdout.str()


def test_the_restarted_run_keeps_the_exit_status_and_the_output(tester: pytest.Pytester, seen: Path) -> None:
    _record(tester)
    tester.makepyfile(test_fails="def test_fails():\n    assert 1 == 2\n")
    result = tester.runpytest_subprocess("-rA")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*FAILED test_fails.py::test_fails*", "*1 failed, 1 passed*"])
    assert result.stdout.str().count("test session starts") == 1  # the first process printed nothing


def test_collect_only_is_not_started_again(tester: pytest.Pytester, seen: Path) -> None:
    _record(tester)
    result = tester.runpytest_subprocess("--collect-only", "-q")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["test_seen.py::test_seed"])


def test_xdist_workers_inherit_the_seed(tester: pytest.Pytester, seen: Path) -> None:
    tester.makefile(".ini", pytest="[pytest]\naddopts = -p no:cacheprovider -p no:randomly -p no:anyio -p no:asyncio\n")
    _record(tester, "-n", "2")
    data = _seen(seen)
    assert data["env"] == "0" and data["randomized"] == 0
    assert str(data["worker"]).startswith("gw")


def test_pytest_main_in_a_program_is_not_replaced_and_says_its_numbers_may_differ(
    tester: pytest.Pytester, seen: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _record(tester)
    # An in-process run: this process's seed is whatever the outer run has; pretend it is random.
    monkeypatch.setattr(hashseed, "process_seed", lambda: None)
    # Numbers that depend on hashing may move here, and this process has run other tests before (a budget of 0 B
    # retained once measured 67 B here): the test is about the note, so no budget can fail it.
    tolerance = "peak: 1 MiB; retained: 1 MiB; allocated: 1 MiB; allocations: 100%, 10000"
    result = tester.runpytest(f"--alloc-tolerance={tolerance}")
    assert result.ret == 0
    note = "hash seed random, but the budgets were measured under 0: numbers that depend on hashing can differ*"
    result.stdout.fnmatch_lines([f"allocbudget: {note}", "*allocation budgets*", note])


@pytest.mark.parametrize(
    ("args", "ini", "message"),
    [
        (
            ["--alloc-hash-seed=random"],
            "",
            "--alloc-hash-seed: expected 'keep' or a hash seed from 0 to 4294967295, got 'random'",
        ),
        (
            [],
            "alloc_budget_hash_seed = -3\n",
            "ini option alloc_budget_hash_seed in *tox.ini: expected 'keep' or a hash seed*",
        ),
    ],
)
def test_a_bad_seed_is_a_usage_error_naming_its_source(
    tester: pytest.Pytester, seen: Path, args: list[str], ini: str, message: str
) -> None:
    tester.makefile(".ini", tox=f"[pytest]\naddopts = -p no:cacheprovider -p no:randomly -p no:xdist\n{ini}")
    (tester.path / "pytest.ini").unlink()
    result = tester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
