"""Two update runs writing one budget file at once: neither loses the other's entries.

The runs are real processes (``python -m pytest --alloc-update`` in the same directory).  They are made to overlap
by a handshake, never by sleeping: either this test holds the writers' lock itself while both runs reach it (each
prints that it is waiting), or a conftest stops each run at the start of its session finish (after it has read the
file and measured, before it writes) until this test creates the run's go-ahead file, which fixes who writes first.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest

from pytest_allocbudget.budgets import filelock, store

#: Stops a run before it writes, when ALLOCBUDGET_TEST_BARRIER names a file: says so on stdout, then waits until the
#: file exists.  The wait ends on a condition the test controls, so it does not depend on how fast anything runs.
BARRIER = """
import os
import time
from pathlib import Path

import pytest


@pytest.hookimpl(tryfirst=True)  # before the plugin's own session finish, which writes the budget file
def pytest_sessionfinish(session):
    go = os.environ.get("ALLOCBUDGET_TEST_BARRIER")
    if not go:
        return
    print("barrier reached", flush=True)
    while not Path(go).exists():
        time.sleep(0.01)
"""

#: A test per file; each keeps the number of bytes its environment variable says, so a run's values are its own.
SIZED = """
import os

import pytest

KEEP = []

@pytest.mark.alloc_budget
def test_it():
    KEEP.append(bytes(int(os.environ.get("{variable}", "1000"))))
"""

FILES = ("shared", "a", "b", "c")


class Run:
    """One ``python -m pytest`` process in the project directory, its output read line by line."""

    def __init__(self, cwd: Path, args: tuple[str, ...], env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pytest", *args],
            cwd=cwd,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_for(self, text: str) -> None:
        """Read the output until a line contains ``text``; fail if the run ends without printing it."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if text in line:
                return
        pytest.fail(f"the run ended (exit code {self.finish()}) without printing {text!r}:\n{self.output}")

    def finish(self) -> int:
        rest, _ = self.process.communicate()
        self.lines.append(rest)
        return self.process.returncode

    @property
    def output(self) -> str:
        return "".join(self.lines)


StartRun = Callable[..., Run]


@pytest.fixture
def start_run(tester: pytest.Pytester) -> Iterator[StartRun]:
    """``start_run(*args, **env)`` starts ``python -m pytest *args`` in the project; a run still going when the
    test ends (because it failed) is killed."""
    runs: list[Run] = []

    def start(*args: str, **env: str) -> Run:
        run = Run(tester.path, args, env)
        runs.append(run)
        return run

    yield start
    for run in runs:
        if run.process.returncode is None:  # not finished by the test
            run.process.kill()
            run.finish()


@pytest.fixture
def project(tester: pytest.Pytester) -> pytest.Pytester:
    """Four test files, test_<name>.py with one test each, keeping ``<NAME>_SIZE`` bytes (default 1000)."""
    tester.makeconftest(BARRIER)
    for name in FILES:
        tester.makepyfile(**{f"test_{name}": SIZED.replace("{variable}", f"{name.upper()}_SIZE")})
    return tester


def _retained(path: Path, profile: str) -> dict[str, int]:
    """test file name -> recorded ``retained`` of its test in ``profile``."""
    entries = store.load(path).profile(profile)
    return {
        nodeid.split("::")[0][len("test_") : -len(".py")]: values["retained"] for (nodeid, _), values in entries.items()
    }


def _about(size: int) -> Callable[[int], bool]:
    return lambda retained: size <= retained < size + 8192


def test_the_later_writer_merges_onto_what_the_earlier_one_wrote(
    project: pytest.Pytester, start_run: StartRun, profile: str
) -> None:
    # Both runs read the same file, both update test_shared and one other entry each; the first one's changes
    # must survive the second one's write, and on the entry both measured the second one's values win.
    project.runpytest_subprocess("--alloc-update").assert_outcomes(passed=4)
    path = project.path / "allocbudget.yaml"
    assert set(_retained(path, profile)) == set(FILES)
    go_first, go_second = project.path / "go-first", project.path / "go-second"
    first = start_run(
        "--alloc-update",
        "test_shared.py",
        "test_a.py",
        ALLOCBUDGET_TEST_BARRIER=str(go_first),
        SHARED_SIZE="100000",
        A_SIZE="200000",
    )
    second = start_run(
        "--alloc-update",
        "test_shared.py",
        "test_b.py",
        ALLOCBUDGET_TEST_BARRIER=str(go_second),
        SHARED_SIZE="300000",
        B_SIZE="400000",
    )
    first.wait_for("barrier reached")
    second.wait_for("barrier reached")  # both have read the file as the seeding run left it, and measured
    go_first.touch()
    assert first.finish() == 0, first.output
    assert "wrote allocbudget.yaml: 0 created, 2 updated, 0 unchanged" in first.output
    go_second.touch()
    assert second.finish() == 0, second.output
    # Its counts describe what it changed in the file as it found it: test_shared moved again, beyond tolerance.
    assert "wrote allocbudget.yaml: 0 created, 2 updated, 0 unchanged" in second.output
    retained = _retained(path, profile)
    assert set(retained) == set(FILES)
    assert _about(300_000)(retained["shared"])  # the later writer's value
    assert _about(200_000)(retained["a"])  # the earlier writer's update, not the later one's stale copy
    assert _about(400_000)(retained["b"])
    assert _about(1000)(retained["c"])  # measured by neither


# ------------------------------------------------------------------------------------------------ the lock


def _lock(project: pytest.Pytester, timeout: float = 0) -> contextlib.AbstractContextManager[None]:
    """The writers' lock of the project's budget file, held by this process (as another writer would hold it)."""
    return filelock.exclusive(filelock.lock_path(project.path / "allocbudget.yaml"), timeout)


WAITING = "waiting up to"


def test_two_runs_that_wait_for_the_lock_both_keep_their_entries(
    project: pytest.Pytester, start_run: StartRun, add_entry, profile: str
) -> None:
    add_entry("test_gone.py::test_it")  # recorded before, measured by neither run
    with _lock(project):
        first = start_run("--alloc-update", "test_a.py", A_SIZE="200000")
        second = start_run("--alloc-update", "test_b.py", B_SIZE="400000")
        first.wait_for(WAITING)  # both have measured, read the file and are stopped at the lock
        second.wait_for(WAITING)
        path = project.path / "allocbudget.yaml"
        assert set(_retained(path, profile)) == {"gone"}
    for run in (first, second):
        assert run.finish() == 0, run.output
        assert "wrote allocbudget.yaml: 1 created, 0 updated, 0 unchanged" in run.output
        assert "waited for another run writing allocbudget.yaml" in run.output  # in the summary too
    retained = _retained(path, profile)
    assert set(retained) == {"gone", "a", "b"}
    assert _about(200_000)(retained["a"])
    assert _about(400_000)(retained["b"])


def test_a_writer_that_waits_too_long_gives_up_and_leaves_the_file_alone(project: pytest.Pytester) -> None:
    project.runpytest_subprocess("--alloc-update", "test_a.py").assert_outcomes(passed=1)
    path = project.path / "allocbudget.yaml"
    before = path.read_bytes()
    lock = project.path / ".allocbudget.yaml.lock"
    with _lock(project):
        # The lock is held for the whole run, so how long the wait takes cannot change the outcome.
        result = project.runpytest_subprocess("--alloc-update", "--alloc-lock-timeout=0.2", "test_a.py", "test_b.py")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(
        [
            f"*{WAITING} 0.2 s for another run writing allocbudget.yaml (it holds {lock})",
            f"error: cannot write the budget file {path}: another process is writing it (it holds the lock "
            f"{lock}), and still was after 0.2 s, so this run's changes were not "
            "written. Record again when it has finished, or wait longer with --alloc-lock-timeout.",
        ]
    )
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert path.read_bytes() == before


@pytest.mark.parametrize("where", ["option", "ini"])
def test_the_wait_can_be_set_in_the_ini_file_too(project: pytest.Pytester, where: str) -> None:
    args = ["--alloc-update", "test_a.py"]
    if where == "option":
        args.append("--alloc-lock-timeout=0")
    else:
        ini = project.path / "pytest.ini"
        ini.write_text(ini.read_text().rstrip("\n") + "\nalloc_budget_lock_timeout = 0\n")
    with _lock(project):
        result = project.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["error: cannot write the budget file *: another process is writing it *after 0 s*"])
    assert WAITING not in result.stdout.str()  # a wait of 0 tries once and does not wait
    assert not (project.path / "allocbudget.yaml").exists()


HOLDER = """
import sys
from pathlib import Path

from pytest_allocbudget.budgets import filelock

with filelock.exclusive(filelock.lock_path(Path("allocbudget.yaml")), 0):
    print("holding", flush=True)
    sys.stdin.read()  # until killed
"""


def test_a_lock_held_by_a_killed_process_does_not_block_the_next_writer(project: pytest.Pytester) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER],
        cwd=project.path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "holding\n"
        # While it lives, its lock is real: a writer that does not wait gives up.
        blocked = project.runpytest_subprocess("--alloc-update", "--alloc-lock-timeout=0", "test_a.py")
        assert blocked.ret == pytest.ExitCode.USAGE_ERROR
    finally:
        holder.kill()  # SIGKILL on POSIX: no clean-up code of the holder runs
        holder.communicate()
    assert (project.path / ".allocbudget.yaml.lock").exists()  # the lock file is left behind, but not the lock
    result = project.runpytest_subprocess("--alloc-update", "--alloc-lock-timeout=0", "test_a.py")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["wrote allocbudget.yaml: 1 created, 0 updated, 0 unchanged"])


def test_a_check_run_neither_locks_nor_waits(project: pytest.Pytester) -> None:
    project.runpytest_subprocess("--alloc-update", "test_a.py").assert_outcomes(passed=1)
    assert not (project.path / ".allocbudget.yaml.lock").exists()  # an update run leaves no lock file behind
    result = project.runpytest_subprocess("--alloc-lock-timeout=0", "test_a.py")
    assert result.ret == pytest.ExitCode.OK
    assert not (project.path / ".allocbudget.yaml.lock").exists()
    with _lock(project):  # another run writing meanwhile does not hold a check run up
        result = project.runpytest_subprocess("--alloc-lock-timeout=0", "test_a.py")
    assert result.ret == pytest.ExitCode.OK
    assert WAITING not in result.stdout.str()


def test_an_update_run_that_has_nothing_to_record_does_not_lock(project: pytest.Pytester) -> None:
    project.makepyfile(test_a="import pytest\n\n@pytest.mark.alloc_budget\ndef test_it():\n    assert False\n")
    with _lock(project):
        result = project.runpytest_subprocess("--alloc-update", "--alloc-lock-timeout=0", "test_a.py")
    result.assert_outcomes(failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # not a usage error: nothing tried to write
    assert not (project.path / "allocbudget.yaml").exists()


# ------------------------------------------------------------------------------------------------ the file meanwhile

#: Changes the budget file when the run's session finishes, before the plugin writes, as another writer could.
MEANWHILE = """
import os
from pathlib import Path

import pytest

from pytest_allocbudget.budgets import filelock, store


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    path = Path(str(session.config.rootpath), "allocbudget.yaml")
    what = os.environ.get("MEANWHILE")
    if what == "corrupt":
        path.write_text("version: 1\\nprofiles: [\\n")
    elif what:
        budgets = store.load(path)
        entries = budgets.profiles.setdefault({profile!r}, {{}})
        for change in what.split(","):
            sign, nodeid = change[0], change[1:]
            if sign == "-":
                del entries[(nodeid, None)]
            else:
                entries[(nodeid, None)] = {{"peak": 10**9, "retained": 10**9}}
        store.save(path, budgets)
"""


@pytest.fixture
def meanwhile(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, profile: str) -> Callable[[str], None]:
    """``meanwhile("+a::t,-b::t")`` adds and removes entries just before this run writes; ``"corrupt"`` makes the
    file unreadable.  In-process runs: what happens between the reading and the writing is all this conftest does."""
    project.makeconftest(MEANWHILE.format(profile=profile))
    return lambda what: monkeypatch.setenv("MEANWHILE", what)


def test_a_file_that_became_unreadable_is_not_overwritten(project: pytest.Pytester, meanwhile) -> None:
    project.runpytest("--alloc-update", "test_a.py").assert_outcomes(passed=1)
    meanwhile("corrupt")
    result = project.runpytest("--alloc-update", "test_b.py")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    path = project.path / "allocbudget.yaml"
    result.stdout.fnmatch_lines(
        [
            f"error: cannot write the budget file {path}: it changed on disk during this run and can no longer be "
            f"read, so it was left as it is: {path}:*: not valid YAML*",
            "Fix the file by hand or restore it from version control, then record again.",
        ]
    )
    assert path.read_text() == "version: 1\nprofiles: [\n"


def test_prune_removes_only_what_this_run_found_stale_and_still_there(
    project: pytest.Pytester, meanwhile, add_entry, profile: str
) -> None:
    project.runpytest("--alloc-update").assert_outcomes(passed=4)
    add_entry("test_gone.py::test_one")
    add_entry("test_gone.py::test_two")
    # Another writer removes one stale entry and adds a third after this run has found the first two.
    meanwhile("-test_gone.py::test_two,+test_gone.py::test_three")
    result = project.runpytest("--alloc-update", "--alloc-prune")
    result.assert_outcomes(passed=4)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["pruned 1 stale entry:", "  test_gone.py::test_one"])
    entries = store.load(project.path / "allocbudget.yaml").profile(profile)
    assert {nodeid for nodeid, _ in entries} == {
        *(f"test_{name}.py::test_it" for name in FILES),
        "test_gone.py::test_three",  # not seen by this run, so not judged stale by it
    }


def test_entries_written_meanwhile_are_kept_and_counted_against(
    project: pytest.Pytester, meanwhile, profile: str
) -> None:
    project.runpytest("--alloc-update", "test_a.py").assert_outcomes(passed=1)
    # Meanwhile another run records test_b (with values far from this run's) and a test this run does not run.
    meanwhile("+test_b.py::test_it,+test_other.py::test_it")
    result = project.runpytest("--alloc-update", "test_a.py", "test_b.py")
    result.assert_outcomes(passed=2)
    # test_b is in the file by the time this run writes, so this run did not create it: it moved, so it is updated.
    result.stdout.fnmatch_lines(["wrote allocbudget.yaml: 0 created, 1 updated, 1 unchanged"])
    retained = _retained(project.path / "allocbudget.yaml", profile)
    assert set(retained) == {"a", "b", "other"}
    assert _about(1000)(retained["b"])
    assert retained["other"] == 10**9


# ------------------------------------------------------------------------------------------------ pytest-xdist

XDIST_INI = """\
[pytest]
addopts = -p no:cacheprovider -p no:randomly
"""


def test_the_xdist_controller_waits_for_the_lock_and_merges_onto_the_file_as_it_is(
    project: pytest.Pytester, start_run: StartRun, add_entry, profile: str
) -> None:
    project.makefile(".ini", pytest=XDIST_INI)
    add_entry("test_gone.py::test_it")
    with _lock(project):
        run = start_run("-n", "2", "--alloc-update", A_SIZE="200000")
        run.wait_for(WAITING)  # the controller, the one writer of the run, is stopped at the lock
        add_entry("test_other.py::test_it")  # and this process, holding the lock, writes meanwhile
    assert run.finish() == 0, run.output
    assert "wrote allocbudget.yaml: 4 created, 0 updated, 0 unchanged" in run.output
    retained = _retained(project.path / "allocbudget.yaml", profile)
    assert set(retained) == {*FILES, "gone", "other"}
    assert _about(200_000)(retained["a"])
