"""What the spacing of the frozen heap's sweeps costs a check run, one spacing against another, side by side.

Run by hand (not part of the test suite), from the directory of a project whose budgets are recorded, with the
Python of the venv that has the plugin and the project installed:

    python /path/to/benchmarks/sweeps.py [--growth 0.25 --growth 1.0 ...] [--rounds 5] -- [PYTEST ARGS ...]

Each round runs pytest once without the plugin (``-p no:allocbudget``) and once per ``--growth`` value as a
check run with the PYTEST ARGS (``--alloc-all`` for a suite budgeted that way), in an order that rotates from
round to round so that a drift of the machine's speed hits all alike.  The value is set by a small plugin module
(``-p``) that writes it over ``freezing.SWEEP_GROWTH`` before any test runs.  It prints, as a Markdown table, each
run kind's median CPU time (user and system, of the pytest process, from ``resource.getrusage``) and its ratio to
the median plain run.  CPU time rather than wall time: these machines are shared, and a process that waits for a
core does not use CPU meanwhile.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SETTER = """
import os
from pytest_allocbudget.measuring import freezing

freezing.SWEEP_GROWTH = float(os.environ["ALLOCBUDGET_SWEEP_GROWTH"])
"""


def cpu_of(command: list[str], env: dict[str, str]) -> float:
    """CPU seconds (user and system) that ``command`` used, run to the end as a child of this process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--growth", type=float, action="append", help="a SWEEP_GROWTH to time (repeatable)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args()
    growths = args.growth or [0.25, 1.0]
    with tempfile.TemporaryDirectory() as temp:
        Path(temp, "allocbudget_sweep_setter.py").write_text(SETTER, encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([temp, os.environ.get("PYTHONPATH", "")])}
        base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        kinds: list[tuple[str, list[str], dict[str, str]]] = [("plain", [*base, "-p", "no:allocbudget"], env)]
        for growth in growths:
            command = [*base, "-p", "allocbudget_sweep_setter", *args.pytest_args]
            kinds.append((f"check, growth {growth:g}", command, {**env, "ALLOCBUDGET_SWEEP_GROWTH": str(growth)}))
        times: dict[str, list[float]] = {name: [] for name, _, _ in kinds}
        for round_ in range(args.rounds):
            shift = round_ % len(kinds)
            for name, command, run_env in kinds[shift:] + kinds[:shift]:
                times[name].append(cpu_of(command, run_env))
        plain = statistics.median(times["plain"])
        print(f"| run ({args.rounds} rounds) | median CPU s | against plain |\n|---|--:|--:|")
        for name, values in times.items():
            median = statistics.median(values)
            print(f"| {name} | {median:.2f} | {median / plain:.2f}x |")


if __name__ == "__main__":
    main()
