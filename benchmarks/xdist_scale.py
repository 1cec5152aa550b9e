"""A large budgeted suite under pytest-xdist: recording and checking with ``-n 2``, next to serial runs.

Run by hand (not part of the test suite):

    python benchmarks/xdist_scale.py [--tests 5000] [--rounds 3] [--per-file 100] [--workers 2] [--json FILE]

It writes a suite of ``--tests`` budgeted tests into a temporary directory (files of ``--per-file`` parametrized
tests, each marked ``@pytest.mark.alloc_budget`` and building a small list, dict and string from its parameter),
with a ``pytest.ini`` of its own so that no outer configuration leaks in.  The CI variables, ``PYTEST_ADDOPTS`` and
``PYTEST_PLUGINS`` are removed from the runs' environment, so that strict mode and outer options stay out.

1. One recording run, ``pytest -n 2 --alloc-update``, timed.  The budget file must then hold one profile with one
   entry per test; its size and entry count are printed.
2. ``--rounds`` rounds of four runs, in alternating order (forward in even rounds, backward in odd ones, so that a
   drift of the machine's speed hits every setting alike): serial (``-p no:xdist``) and ``-n 2``, each with the
   plugin disabled (``-p no:allocbudget``, unmeasured) and as a plain check run against the recorded budgets.

Every run must exit with 0 and report all tests passed; a check run must also report every test measured and
passed against its budget, with no budget failure and nothing missing; no run may change the budget file (its
bytes and modification time are compared after each run).  Any failure is listed after the table, and the script
then exits with status 1.

The table gives, per setting, the median, minimum and maximum wall time of a whole ``pytest`` process, and the
ratio of the median to the median of the same mode (serial or ``-n 2``) with the plugin disabled.  ``--json FILE``
also writes the raw times.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from runenv import clean_environment

from pytest_allocbudget.budgets.store import load

# The marker is declared here too, so that the runs with the plugin disabled do not warn about an unknown mark.
PYTEST_INI = """[pytest]
addopts = -p no:cacheprovider -p no:randomly
markers =
    alloc_budget: declared for the runs with the plugin disabled
"""

TEST_FILE = """import pytest


@pytest.mark.alloc_budget
@pytest.mark.parametrize("n", range({start}, {stop}))
def test_build_{index}(n):
    items = [str(n * 7 + i) for i in range(10 + n % 20)]
    table = {{item: len(item) for item in items}}
    text = "-".join(items)
    assert len(table) == len(items) and text
"""

# pytest's closing line, "==== 5000 passed, 3 warnings in 12.34s ====", and the plugin's summary of a check run.
_OUTCOMES = re.compile(r"^=* ?((?:\d+ \w+(?:, )?)+) in [\d.]+s", re.MULTILINE)
_COUNT = re.compile(r"(\d+) (\w+)")
# "5000 measured (5000 tests): 5000 passed, 0 failed, 0 missing"; the part in brackets says what was measured.
_BUDGETS = re.compile(r"(\d+) measured \([^)]*\): (\d+) passed, (\d+) failed, (\d+) missing")


@dataclass
class Run:
    """What one pytest process did."""

    label: str
    elapsed: float
    returncode: int
    outcomes: dict[str, int]
    budgets: dict[str, int] | None
    output: str

    def count(self, outcome: str) -> int:
        return self.outcomes.get(outcome, 0)


@dataclass
class Setting:
    label: str
    mode: str  # "serial" or "-n 2": the ratio is to the same mode with the plugin disabled
    options: list[str]
    measured: bool
    times: list[float] = field(default_factory=list)


def settings(workers: int) -> list[Setting]:
    parallel = f"-n {workers}"
    xdist = ["-n", str(workers)]
    return [
        Setting("serial, plugin disabled", "serial", ["-p", "no:xdist", "-p", "no:allocbudget"], measured=False),
        Setting("serial, check", "serial", ["-p", "no:xdist"], measured=True),
        Setting(f"{parallel}, plugin disabled", parallel, [*xdist, "-p", "no:allocbudget"], measured=False),
        Setting(f"{parallel}, check", parallel, xdist, measured=True),
    ]


def write_suite(directory: Path, tests: int, per_file: int) -> None:
    """``tests`` budgeted tests, ``per_file`` parameters of one test function to a file."""
    for index, start in enumerate(range(0, tests, per_file)):
        stop = min(start + per_file, tests)
        (directory / f"test_scale_{index:03d}.py").write_text(TEST_FILE.format(start=start, stop=stop, index=index))
    (directory / "pytest.ini").write_text(PYTEST_INI)


def parse_outcomes(output: str) -> dict[str, int]:
    """The counts of pytest's closing line, by outcome ("passed", "failed", "error", ...); empty if none."""
    lines = _OUTCOMES.findall(output)
    if not lines:
        return {}
    counts = {}
    for number, outcome in _COUNT.findall(lines[-1]):
        counts[outcome.rstrip("s") if outcome in ("errors", "warnings") else outcome] = int(number)
    return counts


def parse_budgets(output: str) -> dict[str, int] | None:
    """The plugin's summary of a check run (measured, passed, failed, missing), or None if it printed none."""
    found = _BUDGETS.findall(output)
    if not found:
        return None
    measured, passed, failed, missing = (int(number) for number in found[-1])
    return {"measured": measured, "passed": passed, "failed": failed, "missing": missing}


def run(directory: Path, label: str, options: list[str]) -> Run:
    command = [sys.executable, "-m", "pytest", *options]
    start = time.perf_counter()
    result = subprocess.run(
        command, cwd=directory, env=clean_environment(), capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    output = result.stdout + result.stderr
    return Run(label, elapsed, result.returncode, parse_outcomes(output), parse_budgets(output), output)


def snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def problems_of(result: Run, tests: int, measured: bool) -> list[str]:
    """What is wrong with a run that should have passed every test (and every budget, if ``measured``)."""
    problems = []
    if result.returncode != 0:
        problems.append(f"exit code {result.returncode}")
    if result.count("passed") != tests:
        problems.append(f"{result.count('passed')} passed, not {tests}")
    for outcome in ("failed", "error"):
        if result.count(outcome):
            problems.append(f"{result.count(outcome)} {outcome}")
    if measured:
        budgets = result.budgets
        if budgets is None:
            problems.append("no allocation budget summary in the output")
        else:
            if budgets["measured"] != tests or budgets["passed"] != tests:
                problems.append(f"{budgets['measured']} measured and {budgets['passed']} within budget, not {tests}")
            if budgets["failed"] or budgets["missing"]:
                problems.append(f"{budgets['failed']} budget failure(s), {budgets['missing']} missing")
    return problems


def report_problem(result: Run, problems: list[str]) -> str:
    return f"{result.label}: {'; '.join(problems)}\n--- end of its output ---\n{result.output[-3000:]}"


def version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def cpus() -> str:
    total = os.cpu_count()
    if hasattr(os, "sched_getaffinity"):
        usable = len(os.sched_getaffinity(0))
        if usable != total:
            return f"{usable} usable of {total}"
    return str(total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tests", type=int, default=5000, help="budgeted tests in the suite")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each setting")
    parser.add_argument("--per-file", type=int, default=100, help="parametrized tests in each test file")
    parser.add_argument("--workers", type=int, default=2, help="pytest-xdist workers (-n)")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the raw times here")
    args = parser.parse_args()
    if version("pytest-xdist") == "not installed":
        raise SystemExit("pytest-xdist is not installed in this environment")
    tests: int = args.tests
    table = settings(args.workers)
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        write_suite(directory, tests, args.per_file)
        budget_file = directory / "allocbudget.yaml"

        record_label = f"-n {args.workers}, recording (--alloc-update)"
        record = run(directory, record_label, ["-n", str(args.workers), "--alloc-update"])
        wrong = problems_of(record, tests, measured=False)
        if wrong or not budget_file.exists():
            raise SystemExit(report_problem(record, wrong or ["no budget file written"]))
        budgets = load(budget_file)
        if len(budgets.profiles) != 1:
            raise SystemExit(f"the budget file has {len(budgets.profiles)} profiles, not 1: {sorted(budgets.profiles)}")
        (profile, entries), *_ = budgets.profiles.items()
        if len(entries) != tests:
            raise SystemExit(f"the budget file has {len(entries)} entries for {profile}, not {tests}")
        file_size = budget_file.stat().st_size
        recorded = snapshot(budget_file)

        for index in range(args.rounds):
            for setting in table if index % 2 == 0 else reversed(table):
                result = run(directory, setting.label, setting.options)
                setting.times.append(result.elapsed)
                wrong = problems_of(result, tests, setting.measured)
                if snapshot(budget_file) != recorded:
                    wrong.append("the budget file was modified")
                    recorded = snapshot(budget_file)
                if wrong:
                    problems.append(f"round {index + 1}, " + report_problem(result, wrong))

    print(
        f"Python {sys.version.split()[0]}, pytest {version('pytest')}, pytest-xdist {version('pytest-xdist')}, "
        f"CPUs: {cpus()}; {tests:,} budgeted tests in files of {args.per_file}, {args.rounds} rounds "
        "(alternating order), wall time of each pytest process"
    )
    print()
    print(f"Recording run, {record.label}: {record.elapsed:.2f} s")
    print(f"Budget file: {file_size:,} bytes ({file_size / 1e6:.2f} MB), {len(entries):,} entries, profile {profile}")
    print()
    print("| setting | median wall (s) | min (s) | max (s) | ratio to the same mode unmeasured |")
    print("|---|---|---|---|---|")
    base = {setting.mode: statistics.median(setting.times) for setting in table if not setting.measured}
    for setting in table:
        median = statistics.median(setting.times)
        ratio = median / base[setting.mode]
        low, high = min(setting.times), max(setting.times)
        print(f"| {setting.label} | {median:.2f} | {low:.2f} | {high:.2f} | {ratio:.2f}x |")
    print()
    if problems:
        print(f"{len(problems)} run(s) did not pass cleanly:")
        for problem in problems:
            print()
            print(problem)
    else:
        runs = args.rounds * len(table)
        print(f"All {runs} runs passed all {tests:,} tests; every check run: 0 budget failures, 0 missing.")
    if args.json is not None:
        raw = {
            "tests": tests,
            "rounds": args.rounds,
            "record": record.elapsed,
            "file_size": file_size,
            "entries": len(entries),
            "times": {setting.label: setting.times for setting in table},
            "problems": len(problems),
        }
        args.json.write_text(json.dumps(raw, indent=2) + "\n")
    if problems:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
