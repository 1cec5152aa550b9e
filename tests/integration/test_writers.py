"""Two update runs writing one budget file at once: neither loses the other's entries.

The runs are real processes (``python -m pytest --alloc-update`` in the same directory).  They are made to overlap
by a handshake, never by sleeping: either this test holds the writers' lock itself while both runs reach it (each
prints that it is waiting), or a conftest stops each run at the start of its session finish (after it has read the
file and measured, before it writes) until this test creates the run's go-ahead file, which fixes who writes first.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest

from pytest_allocbudget import store

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
