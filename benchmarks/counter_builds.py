"""The allocation counter's cost, one build of the extension against another, in one process.

Run by hand (not part of the test suite), with two or more built copies of the extension, for example the one a
checkout builds and one built from another checkout and copied aside:

    python benchmarks/counter_builds.py OLD.so NEW.so [MORE.so ...] [--rounds 30]

A change to the counter's hot path moves its cost by a nanosecond or two per allocation, which separate runs of
``overhead.py --only-counter`` cannot show on a busy machine: the speed of the machine drifts between runs by more
than that.  Here every build is loaded into this one process (each file is a module of its own, with state of its
own, and only one counts at a time), and each round times every workload unmeasured and under each build in turn,
in an order that rotates from round to round, in this thread's CPU time (``time.thread_time``, which stands still
while the thread waits for a core).  It prints, as a Markdown table, each workload's median time under each build
over its median unmeasured, the cost per hooked call of a loop that makes and frees two blocks an iteration, and
the cost of a window that holds one allocation (start, one block kept, stop): what every measured test pays once,
however little it allocates.  The workloads are ``overhead.py``'s, at size 30,000, with the collector off throughout.
"""

from __future__ import annotations

import argparse
import gc
import importlib.machinery
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from overhead import WORKLOADS

CHURN_ITERATIONS = 200_000
CALLS_PER_ITERATION = 4  # bytearray(8): the object and its buffer, each allocated and freed
WINDOWS = 200  # windows timed per build and round


def load(path: Path, index: int) -> ModuleType:
    """The extension in ``path``, as a module of its own (its init function is found by the name's last part)."""
    name = f"build{index}._counter"
    loader = importlib.machinery.ExtensionFileLoader(name, str(path))
    spec = importlib.util.spec_from_loader(name, loader)
    assert spec is not None
    return importlib.util.module_from_spec(spec)


def labels(paths: list[Path]) -> list[str]:
    """A column name for each build: its file name, or its directory's when the file names are alike."""
    names = [path.name for path in paths]
    if len(set(names)) == len(names):
        return names
    folders = [path.parent.name for path in paths]
    return folders if len(set(folders)) == len(folders) else [str(path) for path in paths]


def churn(size: int) -> None:
    for _ in range(CHURN_ITERATIONS):
        bytearray(8)


def windows(counter: ModuleType) -> float:
    """Seconds per window of one allocation under ``counter``, in this thread's CPU time."""
    kept: list[bytes] = []
    start = time.thread_time()
    for _ in range(WINDOWS):
        counter.start()
        kept.append(bytes(100))
        counter.stop()
    elapsed = time.thread_time() - start
    del kept
    return elapsed / WINDOWS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "builds", nargs="+", type=Path, help="built copies of pytest_allocbudget/measuring/_counter*.so"
    )
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    builds = {label: load(path, i) for i, (label, path) in enumerate(zip(labels(args.builds), args.builds))}
    namespace: dict[str, object] = {}
    exec(WORKLOADS, namespace)
    works: list[Callable[[int], object]] = [*namespace["WORKLOADS"], churn]  # type: ignore[misc]
    settings: list[str] = ["unmeasured", *builds]
    times: dict[str, dict[str, list[float]]] = {work.__name__: {setting: [] for setting in settings} for work in works}
    window_times: dict[str, list[float]] = {name: [] for name in builds}
    gc.collect()
    gc.disable()
    try:
        for index in range(args.rounds):
            turn = index % len(settings)
            order = settings[turn:] + settings[:turn]
            for work in works:
                for setting in order:
                    counter = builds.get(setting)
                    if counter is not None:
                        counter.start()
                    start = time.thread_time()
                    for _ in range(2):
                        work(30_000)
                    elapsed = time.thread_time() - start
                    if counter is not None:
                        counter.stop()
                    times[work.__name__][setting].append(elapsed)
            for setting in order:
                if setting in builds:
                    window_times[setting].append(windows(builds[setting]))
    finally:
        gc.enable()
    print(f"Python {sys.version.split()[0]}, {args.rounds} rounds, median thread CPU time over the unmeasured median:")
    print()
    print("| workload | unmeasured (ms) | " + " | ".join(builds) + " |")
    print("|---|---|" + "---|" * len(builds))
    ratios: dict[str, list[float]] = {name: [] for name in builds}
    for work in works:
        by = times[work.__name__]
        base = statistics.median(by["unmeasured"])
        cells = []
        for name in builds:
            ratio = statistics.median(by[name]) / base
            cells.append(f"{ratio:.3f}x")
            if work is not churn:
                ratios[name].append(ratio)
        print(f"| {work.__name__} | {base * 1000:.1f} | " + " | ".join(cells) + " |")
    calls = 2 * CHURN_ITERATIONS * CALLS_PER_ITERATION
    base = statistics.median(times["churn"]["unmeasured"])
    costs = [(statistics.median(times["churn"][name]) - base) / calls * 1e9 for name in builds]
    print("| ns per hooked call (churn) | | " + " | ".join(f"{cost:.1f}" for cost in costs) + " |")
    window = [statistics.median(window_times[name]) * 1e6 for name in builds]
    print("| us per window of one allocation | | " + " | ".join(f"{cost:.1f}" for cost in window) + " |")
    print(
        "| geometric mean, without churn | | "
        + " | ".join(f"{statistics.geometric_mean(values):.3f}x" for values in ratios.values())
        + " |"
    )


if __name__ == "__main__":
    main()
