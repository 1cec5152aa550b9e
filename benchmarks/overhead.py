"""Overhead of measuring: an allocation-heavy budgeted suite, unmeasured, with the counter, and with tracemalloc.

Run by hand (not part of the test suite):

    python benchmarks/overhead.py [--rounds 5] [--tests 100] [--repeat 10]

It writes a suite of budgeted tests into a temporary directory, records their budgets once, then runs the suite
with the three settings in turn, round after round (so that machine noise hits all three alike), and prints the
median wall time of each and its ratio to the unmeasured run, as a Markdown table.

The whole-suite ratio is what a user sees, but it mixes two effects: the engine's cost on every allocation, and
the collector, which the plugin switches off inside a measured window (an unmeasured run pays for collections
while large dicts and lists are built).  A second table isolates the first effect: each workload timed in one
process, with the collector off in all three settings.
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


def write_suite(directory: Path, tests: int, repeat: int) -> None:
    per_function = 5 * 4  # workloads x sizes
    functions = max(1, tests // per_function)
    sizes = "1000, 3000, 10000, 30000"
    body = WORKLOADS + "".join(TEST.format(index=i, sizes=sizes, repeat=repeat) for i in range(functions))
    (directory / "test_heavy.py").write_text(body)
    (directory / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider -q\n")


def run(directory: Path, options: list[str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *options], cwd=directory, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"pytest {' '.join(options)} failed:\n{result.stdout[-3000:]}")
    return elapsed


def micro(rounds: int) -> None:
    """In-process cost of each engine on each workload, the collector off in all three (as in a measured window)."""
    import gc
    import tracemalloc

    from pytest_allocbudget import _counter

    namespace: dict[str, object] = {}
    exec(WORKLOADS, namespace)
    print("| workload | unmeasured (ms) | counter | tracemalloc |")
    print("|---|---|---|---|")
    ratios: dict[str, list[float]] = {"counter": [], "tracemalloc": []}
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
            tracemalloc.start(1)
            traced = statistics.median(timed() for _ in range(rounds))
            tracemalloc.stop()
            ratios["counter"].append(counter / base)
            ratios["tracemalloc"].append(traced / base)
            print(f"| {work.__name__} | {base * 1000:.1f} | {counter / base:.2f}x | {traced / base:.2f}x |")
    finally:
        gc.enable()
    geo = {name: statistics.geometric_mean(values) for name, values in ratios.items()}
    print(f"| geometric mean | | {geo['counter']:.2f}x | {geo['tracemalloc']:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tests", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=10, help="calls of the workload in each test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        write_suite(directory, args.tests, args.repeat)
        run(directory, ["--alloc-update", "--alloc-engine=counter"])
        times: dict[str, list[float]] = {label: [] for label in SETTINGS}
        for _ in range(args.rounds):
            for label, options in SETTINGS.items():
                times[label].append(run(directory, options))
    base = statistics.median(times["unmeasured"])
    print(
        f"Python {sys.version.split()[0]}, {args.tests} tests of {args.repeat} workload calls each, "
        f"{args.rounds} rounds, median wall time per run"
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


if __name__ == "__main__":
    main()
