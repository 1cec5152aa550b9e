"""Overhead of measuring: an allocation-heavy budgeted suite, unmeasured, with the counter, and with tracemalloc.

Run by hand (not part of the test suite):

    python benchmarks/overhead.py [--rounds 5] [--tests 100] [--repeat 10]
                                  [--unbudgeted 2000] [--unbudgeted-rounds N] [--no-memray] [--only-unbudgeted]
                                  [--only-counter]

It writes a suite of budgeted tests into a temporary directory, records their budgets once, then runs the suite
with the three settings in turn, round after round (so that machine noise hits all three alike), and prints the
median wall time of each and its ratio to the unmeasured run, as a Markdown table.

pytest-memray, for comparison: when it is installed, two more settings join the rounds.  They run a second copy of
the same suite, with ``@pytest.mark.limit_memory("1 GB")`` in place of ``@pytest.mark.alloc_budget``, as
``pytest -p no:allocbudget --memray``, and again with ``--trace-python-allocators`` added (without it, memray does
not see the small blocks of Python's own allocator, most of these workloads' allocations; with it, it records every
block, as the counter does).  pytest-memray is a benchmark-only dependency, not one of the project's;
install it into the environment that has the plugin with

    python -m pip install pytest-memray

(Linux and macOS only), and uninstall it afterwards if that environment must stay as CI has it.  Without it the
settings are skipped with a message; ``--no-memray`` skips them even when it is installed.

No budgeted test: the plugin's cost on a suite in which no test is budgeted.  A generated suite of
``--unbudgeted`` trivial tests (parametrized asserts, default 2,000; 0 skips this part) is run as plain pytest with
the plugin disabled (``-p no:allocbudget``) and with the plugin installed and active, in alternating order
(ABBA, so that a drift of the machine's speed hits both alike), ``--unbudgeted-rounds`` pairs of runs (default: as
many as ``--rounds``).  The project's target is a ratio of at most 1.02x.  ``--only-unbudgeted`` runs this part
alone.

The whole-suite ratio is what a user sees, but it mixes two effects: the engine's cost on every allocation, and
the collector, which the plugin switches off inside a measured window (an unmeasured run pays for collections
while large dicts and lists are built).  A second table isolates the first effect: each workload timed in one
process, with the collector off in all three settings.  ``--only-counter`` runs this table alone, without the
tracemalloc column: the quick check of a change to the counter's hot path (run it with each build in turn, several
times, and compare the medians).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKLOADS = """
import json
import re
from dataclasses import dataclass

import pytest


@dataclass
class Point:
    x: int
    y: int


def strings(n):
    return [str(i) * 3 for i in range(n)]


def mapping(n):
    return {f"key{i}": [i, i + 1] for i in range(n)}


def roundtrip(n):
    return json.loads(json.dumps({"items": [{"id": i, "name": f"n{i}"} for i in range(n)]}))


def objects(n):
    return sorted((Point(i % 97, i) for i in range(n)), key=lambda p: (p.x, p.y))


def text(n):
    words = " ".join(f"word{i % 50}" for i in range(n))
    return re.findall(r"word(\\d+)", words)


WORKLOADS = [strings, mapping, roundtrip, objects, text]
"""

TEST = """

@pytest.mark.alloc_budget
@pytest.mark.parametrize("size", [{sizes}])
@pytest.mark.parametrize("work", WORKLOADS, ids=lambda f: f.__name__)
def test_work_{index}(work, size):
    for _ in range({repeat}):
        assert work(size)
"""

SETTINGS = {
    "unmeasured": ["-p", "no:allocbudget"],
    "counter": ["--alloc-engine=counter"],
    "tracemalloc": ["--alloc-engine=tracemalloc"],
}

# pytest-memray on a copy of the suite marked with its own limit in place of ours; run in its own directory.
MEMRAY_MARKER = '@pytest.mark.limit_memory("1 GB")'
MEMRAY_OPTIONS = ["-p", "no:allocbudget", "--memray"]
# By default pytest-memray does not see pymalloc's small blocks (most of these workloads' allocations), only the
# arenas pymalloc takes from the system and the large blocks; this setting records every block, as our engines do.
MEMRAY_PYTHON_OPTIONS = [*MEMRAY_OPTIONS, "--trace-python-allocators"]

UNBUDGETED = """
import pytest


@pytest.mark.parametrize("value", range({count}))
def test_trivial_{index}(value):
    assert value + 1 > value
"""

UNBUDGETED_SETTINGS = {
    "plugin disabled": ["-p", "no:allocbudget"],
    "plugin active, no test budgeted": [],
}

PYTEST_INI = "[pytest]\naddopts = -p no:cacheprovider -q\n"


def write_suite(directory: Path, tests: int, repeat: int, marker: str = "@pytest.mark.alloc_budget") -> None:
    per_function = 5 * 4  # workloads x sizes
    functions = max(1, tests // per_function)
    sizes = "1000, 3000, 10000, 30000"
    body = WORKLOADS + "".join(TEST.format(index=i, sizes=sizes, repeat=repeat) for i in range(functions))
    body = body.replace("@pytest.mark.alloc_budget", marker)
    directory.mkdir(exist_ok=True)
    (directory / "test_heavy.py").write_text(body)
    (directory / "pytest.ini").write_text(PYTEST_INI)


def write_unbudgeted(directory: Path, tests: int) -> None:
    """``tests`` trivial tests without the marker or the fixture, 100 parameters to a function."""
    directory.mkdir(exist_ok=True)
    counts = [100] * (tests // 100) + ([tests % 100] if tests % 100 else [])
    body = "".join(UNBUDGETED.format(count=count, index=i) for i, count in enumerate(counts))
    (directory / "test_trivial.py").write_text(body)
    (directory / "pytest.ini").write_text(PYTEST_INI)


def memray_version() -> str | None:
    """The installed version of pytest-memray, or None."""
    from importlib import metadata

    try:
        return metadata.version("pytest-memray")
    except metadata.PackageNotFoundError:
        return None


def run(directory: Path, options: list[str], expect: str | None = None) -> float:
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *options], cwd=directory, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"pytest {' '.join(options)} failed:\n{result.stdout[-3000:]}")
    if expect is not None and expect not in result.stdout:
        raise SystemExit(f"pytest {' '.join(options)}: {expect!r} not in its output:\n{result.stdout[-3000:]}")
    return elapsed


def plugin_loaded(directory: Path, options: list[str]) -> bool:
    """Whether pytest, run with ``options`` in ``directory``, registers the plugin (checked, not assumed)."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--trace-config", "--co", *options],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
    )
    return "pytest_allocbudget" in result.stdout


def unbudgeted(directory: Path, tests: int, rounds: int) -> dict[str, list[float]]:
    """Plain pytest against the plugin active with nothing budgeted, in ABBA order: the wall times of each."""
    write_unbudgeted(directory, tests)
    (plain, plain_options), (active, active_options) = UNBUDGETED_SETTINGS.items()
    if plugin_loaded(directory, plain_options) or not plugin_loaded(directory, active_options):
        raise SystemExit("the plugin is not (only) loaded where expected; is it installed in this environment?")
    run(directory, [])  # warm the file system cache and the bytecode
    times: dict[str, list[float]] = {plain: [], active: []}
    for index in range(rounds):
        order = (plain, active) if index % 2 == 0 else (active, plain)
        for label in order:
            times[label].append(run(directory, UNBUDGETED_SETTINGS[label], expect=f"{tests} passed"))
    return times


def print_unbudgeted(times: dict[str, list[float]], tests: int, rounds: int) -> None:
    plain, active = UNBUDGETED_SETTINGS
    base = statistics.median(times[plain])
    print(f"No budgeted test: {tests} trivial unbudgeted tests, {rounds} runs of each (ABBA order), median wall time:")
    print()
    print("| setting | median (s) | min (s) | max (s) | ratio to plugin disabled |")
    print("|---|---|---|---|---|")
    for label, values in times.items():
        median = statistics.median(values)
        print(f"| {label} | {median:.3f} | {min(values):.3f} | {max(values):.3f} | {median / base:.3f}x |")
    ratio = statistics.median(times[active]) / base
    verdict = "within" if ratio <= 1.02 else "above"
    print()
    print(f"Ratio of the medians {ratio:.3f}x, {verdict} the target of at most 1.02x.")


def micro(rounds: int, tracemalloc_too: bool = True) -> None:
    """In-process cost of each engine on each workload, the collector off in all three (as in a measured window)."""
    import gc
    import tracemalloc

    from pytest_allocbudget.measuring import _counter

    namespace: dict[str, object] = {}
    exec(WORKLOADS, namespace)
    print("| workload | unmeasured (ms) | counter |" + (" tracemalloc |" if tracemalloc_too else ""))
    print("|---|---|---|" + ("---|" if tracemalloc_too else ""))
    ratios: dict[str, list[float]] = {"counter": [], "tracemalloc": []} if tracemalloc_too else {"counter": []}
    gc.collect()
    gc.disable()
    try:
        for work in namespace["WORKLOADS"]:  # type: ignore[attr-defined]

            def timed(work: object = work) -> float:
                start = time.perf_counter()
                for _ in range(5):
                    work(30_000)  # type: ignore[operator]
                return time.perf_counter() - start

            base = statistics.median(timed() for _ in range(rounds))
            _counter.start()
            counter = statistics.median(timed() for _ in range(rounds))
            _counter.stop()
            ratios["counter"].append(counter / base)
            row = f"| {work.__name__} | {base * 1000:.1f} | {counter / base:.3f}x |"
            if tracemalloc_too:
                tracemalloc.start(1)
                traced = statistics.median(timed() for _ in range(rounds))
                tracemalloc.stop()
                ratios["tracemalloc"].append(traced / base)
                row += f" {traced / base:.2f}x |"
            print(row)
    finally:
        gc.enable()
    geo = {name: statistics.geometric_mean(values) for name, values in ratios.items()}
    print("| geometric mean | | " + " | ".join(f"{value:.3f}x" for value in geo.values()) + " |")


def pytest_version() -> str:
    from importlib import metadata

    return metadata.version("pytest")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tests", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=10, help="calls of the workload in each test")
    parser.add_argument(
        "--unbudgeted", type=int, default=2000, help="trivial unbudgeted tests for the no-budget comparison; 0 skips it"
    )
    parser.add_argument(
        "--unbudgeted-rounds", type=int, default=None, help="runs of each no-budget setting (default: --rounds)"
    )
    parser.add_argument("--no-memray", action="store_true", help="leave pytest-memray out even when it is installed")
    parser.add_argument("--only-unbudgeted", action="store_true", help="run only the no-budget comparison")
    parser.add_argument(
        "--only-counter", action="store_true", help="run only the in-process table, unmeasured against the counter"
    )
    args = parser.parse_args()
    if args.only_counter:
        print(f"Python {sys.version.split()[0]}; each workload alone, 5 calls at size 30,000, median of {args.rounds}:")
        print()
        micro(args.rounds, tracemalloc_too=False)
        return
    if args.only_unbudgeted:
        rounds = args.unbudgeted_rounds or args.rounds
        with tempfile.TemporaryDirectory() as name:
            only = unbudgeted(Path(name), args.unbudgeted, rounds)
        print(f"Python {sys.version.split()[0]}, pytest {pytest_version()}")
        print()
        print_unbudgeted(only, args.unbudgeted, rounds)
        return
    version = memray_version()
    settings = {label: (Path("heavy"), options) for label, options in SETTINGS.items()}
    if args.no_memray:
        print("pytest-memray: left out (--no-memray).")
    elif version is None:
        print(
            "pytest-memray is not installed: the two memray settings are skipped. "
            "Install it with `python -m pip install pytest-memray` to include it."
        )
    else:
        settings["memray"] = (Path("memray"), MEMRAY_OPTIONS)
        settings["memray --trace-python-allocators"] = (Path("memray"), MEMRAY_PYTHON_OPTIONS)
    with tempfile.TemporaryDirectory() as name:
        root = Path(name)
        write_suite(root / "heavy", args.tests, args.repeat)
        run(root / "heavy", ["--alloc-update", "--alloc-engine=counter"])
        if "memray" in settings:
            write_suite(root / "memray", args.tests, args.repeat, marker=MEMRAY_MARKER)
            run(root / "memray", MEMRAY_OPTIONS, expect="MEMRAY REPORT")  # it is active, and the marker is known
        times: dict[str, list[float]] = {label: [] for label in settings}
        for _ in range(args.rounds):
            for label, (directory, options) in settings.items():
                times[label].append(run(root / directory, options))
        unbudgeted_rounds = args.unbudgeted_rounds or args.rounds
        if args.unbudgeted:
            unbudgeted_times = unbudgeted(root / "unbudgeted", args.unbudgeted, unbudgeted_rounds)
    base = statistics.median(times["unmeasured"])
    memray = f", pytest-memray {version}" if "memray" in settings else ""
    print(
        f"Python {sys.version.split()[0]}, pytest {pytest_version()}{memray}, {args.tests} tests of {args.repeat} "
        f"workload calls each, {args.rounds} rounds, median wall time per run"
    )
    print()
    print("| setting | median (s) | ratio to unmeasured |")
    print("|---|---|---|")
    for label, values in times.items():
        median = statistics.median(values)
        print(f"| {label} | {median:.2f} | {median / base:.2f}x |")
    print()
    print("Each workload alone, 5 calls at size 30,000, median of the rounds, the collector off throughout:")
    print()
    micro(args.rounds)
    if args.unbudgeted:
        print()
        print_unbudgeted(unbudgeted_times, args.unbudgeted, unbudgeted_rounds)


if __name__ == "__main__":
    main()
