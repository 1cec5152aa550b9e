"""A test over its budget on three calls is called once more from the session's start, in a child of a process kept
from before the first test (zygote.py): a cost that grows with what earlier tests did is not its own."""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

import pytest

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="the call from the start runs in a forked child")

#: Every test adds to REGISTRY, and test_walks walks it: its cost grows with the tests before it.  Recorded with
#: test_walks first, checked with it last.
GROWING = """
import os
import pytest

REGISTRY = []

def register():
    REGISTRY.append(object())

@pytest.mark.alloc_budget
def test_walks():
    register()
    names = [str(id(entry)) for entry in REGISTRY]
    print("walked", len(names))
    if os.environ.get("REGRESSED"):
        copies = [bytes(100) for _ in range(300)]  # a regression: 300 allocations more on every call
        del copies

@pytest.mark.parametrize("n", range(60))
def test_adds(n):
    register()
"""


def _run(tester: pytest.Pytester, tmp_path: Path, *args: str) -> tuple[pytest.RunResult, dict]:
    tester.makepyfile(test_growing=GROWING)
    tester.runpytest("--alloc-update", "test_growing.py::test_walks").assert_outcomes(passed=1)
    report = tmp_path / "report.json"
    # test_adds first, then test_walks: 60 more entries to walk than when it was recorded.
    result = tester.runpytest(
        "test_growing.py::test_adds", "test_growing.py::test_walks", f"--alloc-json={report}", "-s", *args
    )
    entry = next(r for r in json.loads(report.read_text())["results"] if r["nodeid"].endswith("test_walks"))
    return result, {"entry": entry, "summary": json.loads(report.read_text())["summary"]}


@needs_fork
def test_a_cost_left_by_earlier_tests_passes_on_a_call_from_the_start(tester: pytest.Pytester, tmp_path) -> None:
    result, data = _run(tester, tmp_path)
    result.assert_outcomes(passed=61)
    result.stdout.fnmatch_lines(
        [
            "1 passed on a call from the start of the session: over the budget on three calls after the tests before "
            "them, within it from where the session started*",
            "  test_growing.py::test_walks: *allocations *, then * (budget *)*",
        ]
    )
    entry = data["entry"]
    assert entry["status"] == "passed"
    assert entry["start_call"] is not None and entry["first_call"] is not None
    assert entry["start_call"]["allocations"] < entry["first_call"]["allocations"]
    assert data["summary"]["passed_from_the_start"] == 1
    assert data["summary"]["passed_on_second_call"] == 0
    # The call in the zygote's child printed nothing into this session's output: "-s" shows the session's own.
    assert result.stdout.str().count("walked") == 1


@needs_fork
def test_a_regression_fails_from_the_start_too(
    tester: pytest.Pytester, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tester.makepyfile(test_growing=GROWING)
    tester.runpytest("--alloc-update", "test_growing.py::test_walks").assert_outcomes(passed=1)
    monkeypatch.setenv("REGRESSED", "1")
    report = tmp_path / "report.json"
    result = tester.runpytest("test_growing.py::test_adds", "test_growing.py::test_walks", f"--alloc-json={report}")
    result.assert_outcomes(passed=60, failed=1)
    [entry] = [r for r in json.loads(report.read_text())["results"] if r["nodeid"].endswith("test_walks")]
    # It was called from the start as well, and was over there too: the report says so, and the JSON has the call.
    assert entry["status"] == "failed" and entry["start_call"] is not None
    assert entry["start_call"]["allocations"] > entry["metrics"]["allocations"]["allowed"]
    result.stdout.fnmatch_lines(["*a call from the session's start, before any other test ran, was over too*"])
    assert json.loads(report.read_text())["summary"]["passed_from_the_start"] == 0


@needs_fork
def test_first_call_only_keeps_no_process_from_the_start(tester: pytest.Pytester, tmp_path) -> None:
    result, data = _run(tester, tmp_path, "--alloc-first-call-only")
    result.assert_outcomes(passed=60, failed=1)
    assert data["entry"]["start_call"] is None


ZYGOTE_PID = """
def pytest_sessionfinish(session):
    plugin = session.config.pluginmanager.getplugin("allocbudget-session")
    with open("zygote.txt", "w") as stream:
        stream.write(str(plugin.zygote.pid if plugin.zygote is not None else ""))
"""


@needs_fork
def test_the_process_kept_from_the_start_ends_with_the_tests(tester: pytest.Pytester) -> None:
    tester.makeconftest(ZYGOTE_PID)
    tester.makepyfile(test_growing=GROWING)
    tester.runpytest("--alloc-update", "test_growing.py::test_walks").assert_outcomes(passed=1)
    tester.runpytest("test_growing.py::test_walks").assert_outcomes(passed=1)
    pid = int((tester.path / "zygote.txt").read_text())
    with pytest.raises((ProcessLookupError, ChildProcessError)):
        os.kill(pid, 0)  # ended and reaped before the session finished


HYPOTHESIS_GROWING = """
import os
import pytest
from hypothesis import given, strategies as st

REGISTRY = []

@pytest.mark.alloc_budget
@given(st.lists(st.integers(min_value=1000), max_size=40))
def test_search_walks(xs):
    REGISTRY.append(object())
    [str(id(entry)) for entry in REGISTRY]
    [str(x) for x in xs]
    if not xs:  # once per call: the seed this call's search runs under, from each process that calls it
        with open(os.environ["SEEDS_FILE"], "a") as stream:
            stream.write(f"{os.getpid()} {getattr(test_search_walks, '_hypothesis_internal_use_seed', None)}\\n")

@pytest.mark.parametrize("n", range(30))
def test_adds(n):
    REGISTRY.extend(object() for _ in range(100))
"""


@needs_fork
def test_a_given_test_searches_the_same_examples_from_the_start(
    tester: pytest.Pytester, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeds = tmp_path / "seeds.txt"
    monkeypatch.setenv("SEEDS_FILE", str(seeds))
    tester.makepyfile(test_h=HYPOTHESIS_GROWING)
    tester.runpytest_subprocess("--alloc-update", "test_h.py::test_search_walks").assert_outcomes(passed=1)
    report = tmp_path / "report.json"
    result = tester.runpytest_subprocess(
        "test_h.py::test_adds", "test_h.py::test_search_walks", f"--alloc-json={report}"
    )
    result.assert_outcomes(passed=31)
    [entry] = [r for r in json.loads(report.read_text())["results"] if r["nodeid"].endswith("test_search_walks")]
    assert entry["start_call"] is not None  # it was over after test_adds, and called from the start
    lines = [line.split() for line in seeds.read_text().splitlines()]
    assert len({pid for pid, _ in lines}) >= 4  # recording; the check's first, second and third calls; the start
    assert {seed for _, seed in lines} == {str(zlib.crc32(b"test_h.py::test_search_walks"))}  # one search in all


THREADED = """
import threading
import pytest

STOP = threading.Event()
threading.Thread(target=STOP.wait, daemon=True).start()  # a thread alive when the session forks

@pytest.mark.alloc_budget
def test_small():
    [0] * 10
"""


@needs_fork
def test_forking_with_a_thread_alive_warns_nothing(tester: pytest.Pytester) -> None:
    # From Python 3.12 on, os.fork() in a process with threads warns (a DeprecationWarning, an error under -W error).
    tester.makepyfile(test_threaded=THREADED)
    tester.runpytest_subprocess("--alloc-update").assert_outcomes(passed=1)
    result = tester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    assert "multi-threaded" not in result.stdout.str()
    assert "warning" not in result.parseoutcomes()


# --alloc-from-start: every call of a test, recording included, is judged from the session's start.

#: As GROWING, with a regression of EXTRA strings that costs nothing else: the variable is read once, on import.
FROM_START = """
import os
import pytest

REGISTRY = []
EXTRA = int(os.environ.get("REGRESSED", "0"))

def register():
    REGISTRY.append(object())

@pytest.mark.alloc_budget(from_start=True)
def test_walks():
    register()
    names = [str(id(entry)) for entry in REGISTRY]
    extra = [str(i) for i in range(1000, 1000 + EXTRA)]  # a regression of EXTRA strings

@pytest.mark.parametrize("n", range(60))
def test_adds(n):
    register()
"""


def _from_start_run(tester: pytest.Pytester, tmp_path: Path, *args: str) -> tuple[pytest.RunResult, dict]:
    report = tmp_path / "report.json"
    result = tester.runpytest(
        "test_growing.py::test_adds", "test_growing.py::test_walks", f"--alloc-json={report}", *args
    )
    data = json.loads(report.read_text())
    return result, {"entry": next(r for r in data["results"] if r["nodeid"].endswith("test_walks")), **data}


@needs_fork
def test_from_start_judges_every_call_on_one_from_the_sessions_start(tester: pytest.Pytester, tmp_path) -> None:
    tester.makepyfile(test_growing=FROM_START)
    record = tmp_path / "record.json"
    tester.runpytest("--alloc-update", "test_growing.py::test_walks", f"--alloc-json={record}").assert_outcomes(
        passed=1
    )
    recorded = json.loads(record.read_text())["results"][0]
    assert recorded["from_start"] is True
    # After 60 tests that each add to what test_walks walks, its numbers from the start are the recorded ones.
    result, data = _from_start_run(tester, tmp_path)
    result.assert_outcomes(passed=61)
    entry = data["entry"]
    assert entry["status"] == "passed" and entry["from_start"] is True
    assert entry["metrics"]["allocations"]["measured"] == recorded["metrics"]["allocations"]["measured"]
    assert entry["metrics"]["allocations"]["tolerance"] == {"percent": "1/100", "absolute": 1}
    assert data["summary"]["judged_from_start"] == 1
    result.stdout.fnmatch_lines(["1 judged on a call from the session's start (--alloc-from-start)*"])


@needs_fork
@pytest.mark.parametrize("strings", [1, 2])
def test_from_start_catches_a_regression_of_one_or_two_strings(
    tester: pytest.Pytester, tmp_path, monkeypatch: pytest.MonkeyPatch, strings: int
) -> None:
    tester.makepyfile(test_growing=FROM_START)
    tester.runpytest("--alloc-update", "test_growing.py::test_walks").assert_outcomes(passed=1)
    monkeypatch.setenv("REGRESSED", str(strings))
    result, data = _from_start_run(tester, tmp_path)
    result.assert_outcomes(passed=60, failed=1)
    assert data["entry"]["metrics"]["allocations"]["status"] == "regressed"
    result.stdout.fnmatch_lines(["*allocations: measured *, budget *, change +*; tolerance 0.01%, 1 = 1, so at most*"])


@needs_fork
def test_a_tolerance_given_for_the_run_applies_from_the_start_too(
    tester: pytest.Pytester, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tester.makepyfile(test_growing=FROM_START)
    tester.runpytest("--alloc-update", "test_growing.py::test_walks").assert_outcomes(passed=1)
    monkeypatch.setenv("REGRESSED", "2")
    result, data = _from_start_run(tester, tmp_path, "--alloc-tolerance=allocations: 2%, 16")
    result.assert_outcomes(passed=61)
    assert data["entry"]["metrics"]["allocations"]["tolerance"] == {"percent": "2", "absolute": 16}


@needs_fork
@pytest.mark.parametrize("how", [["--alloc-from-start"], ["-o", "alloc_budget_from_start=true"]])
def test_the_option_and_the_ini_key_apply_to_every_test_and_a_marker_opts_out(
    tester: pytest.Pytester, tmp_path, how: list[str]
) -> None:
    tester.makepyfile(
        test_some="""
        import pytest

        def test_plain():
            str(12345)

        @pytest.mark.alloc_budget(from_start=False)
        def test_opted_out():
            str(12345)
        """
    )
    report = tmp_path / "report.json"
    tester.runpytest("--alloc-all", "--alloc-update", f"--alloc-json={report}", *how).assert_outcomes(passed=2)
    judged = {r["nodeid"].split("::")[-1]: r["from_start"] for r in json.loads(report.read_text())["results"]}
    assert judged == {"test_plain": True, "test_opted_out": False}


@needs_fork
def test_a_test_that_cannot_be_called_from_the_start_is_judged_on_its_own_call_and_named(
    tester: pytest.Pytester, tmp_path
) -> None:
    tester.makepyfile(
        test_setup="""
        import os
        import pytest

        SESSION = os.getpid()

        @pytest.fixture
        def here_only():
            if os.getpid() != SESSION:
                raise RuntimeError("set up elsewhere")

        @pytest.mark.alloc_budget(from_start=True)
        def test_needs_the_session(here_only):
            str(12345)
        """
    )
    report = tmp_path / "report.json"
    result = tester.runpytest("--alloc-update", f"--alloc-json={report}")
    result.assert_outcomes(passed=1)
    [entry] = json.loads(report.read_text())["results"]
    assert entry["from_start"] is False and entry["status"] != "failed"
    result.stdout.fnmatch_lines(
        [
            "1 judged on their own call, not from the session's start (it could not be set up and called: "
            "RuntimeError: set up elsewhere): test_setup.py::test_needs_the_session"
        ]
    )


@needs_fork
def test_from_start_in_xdist_workers_asks_for_each_test_as_it_ends(tester: pytest.Pytester, tmp_path) -> None:
    tester.makepyfile(test_growing=FROM_START)
    report = tmp_path / "report.json"
    tester.runpytest_subprocess("-p", "xdist", "-n", "2", "--alloc-update").assert_outcomes(passed=61)
    result = tester.runpytest_subprocess("-p", "xdist", "-n", "2", f"--alloc-json={report}")
    result.assert_outcomes(passed=61)
    [entry] = json.loads(report.read_text())["results"]
    assert entry["from_start"] is True and entry["status"] == "passed"


@needs_fork
def test_from_start_names_a_test_whose_own_numbers_vary_unstable(
    tester: pytest.Pytester, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every call from the start begins in one state; only what a test draws from outside it (threads' timing, the
    # clock) makes two such calls differ.  Here a file outside it: the second call of the test made outside the
    # session (the measured call of the first call from the start, after its unmeasured one) makes 64 strings more.
    tester.makepyfile(
        test_varies="""
        import os
        import pytest

        SESSION = os.getpid()

        @pytest.mark.alloc_budget(from_start=True)
        def test_varies():
            path = os.environ.get("VARY_FILE")
            if path and os.getpid() != SESSION:
                with open(path, "ab") as calls:
                    calls.write(b"x")
                if os.path.getsize(path) == 2:
                    strings = [str(i) for i in range(1000, 1064)]
        """
    )
    recording = tmp_path / "recording"
    recording.write_bytes(b"xxxxxxxxxx")  # the same work on every call, and never the second: no strings more
    monkeypatch.setenv("VARY_FILE", str(recording))
    tester.runpytest("--alloc-update").assert_outcomes(passed=1)
    monkeypatch.setenv("VARY_FILE", str(tmp_path / "calls"))
    report = tmp_path / "report.json"
    result = tester.runpytest(f"--alloc-json={report}")
    result.assert_outcomes(passed=1)
    [entry] = json.loads(report.read_text())["results"]
    assert entry["status"] == "unstable" and entry["from_start"] is True
    assert entry["metrics"]["allocations"]["measured"] > entry["third_call"]["allocations"]
    result.stdout.fnmatch_lines(["1 unstable, not failed:*", "*test_varies.py::test_varies: allocations *"])
