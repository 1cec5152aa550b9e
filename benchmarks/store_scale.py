"""Load, check and save times of large budget files.  Run by hand:

    python benchmarks/store_scale.py [--entries 10000 100000] [--rounds 5]

For each size it builds a budget file with that many entries (node ids shaped like real parametrized tests, a
third of them regions, all four metrics), then times ``dump`` + atomic ``save``, ``load``, and judging every entry
against a measurement (what a check run does per test), and prints the medians as a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from pytest_allocbudget.budgets.store import BudgetFile, load, save
from pytest_allocbudget.judging.metrics import METRICS
from pytest_allocbudget.judging.verdict import judge


def budgets(size: int) -> BudgetFile:
    entries = {}
    for i in range(size):
        nodeid = f"tests/unit/test_module_{i // 40}.py::TestCase{i % 5}::test_case_{i}[param-{i % 7}-{i % 3}]"
        region = f"phase {i % 4}" if i % 3 == 0 else None
        entries[(nodeid, region)] = {"peak": 1000 + i * 13, "retained": i, "allocations": i * 3, "allocated": i * 29}
    return BudgetFile({"cpython-3.11": entries})


def median_time(action: object, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    tolerances = {name: metric.default_tolerance for name, metric in METRICS.items()}
    print("| entries | file size | save | load | judge every entry |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "allocbudget.yaml"
        for size in args.entries:
            data = budgets(size)
            save_time = median_time(lambda data=data: save(path, data), args.rounds)
            load_time = median_time(lambda: load(path), args.rounds)
            loaded = load(path)
            assert loaded == data
            entries = loaded.profile("cpython-3.11")

            def check(entries: dict = entries) -> None:  # type: ignore[type-arg]
                for key, values in entries.items():
                    judge(key, "cpython-3.11", values, values, {}, tolerances, True)

            judge_time = median_time(check, args.rounds)
            size_mb = path.stat().st_size / 1e6
            print(f"| {size:,} | {size_mb:.1f} MB | {save_time:.3f} s | {load_time:.3f} s | {judge_time:.3f} s |")


if __name__ == "__main__":
    main()
