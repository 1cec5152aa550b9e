"""One project's check run under several checkouts of this plugin, side by side: wall time, CPU time, peak RSS.

Run by hand (not part of the test suite), from the directory of a project whose budgets are recorded, with the
Python of a venv that has the plugin and the project installed:

    python /path/to/benchmarks/checkouts.py --checkout NAME=DIR [--checkout NAME=DIR ...] [--rounds 5] \\
        [--plugin-option=OPTION ...] -- [PYTEST ARGS ...]

Each checkout is a directory holding the package (a ``git worktree`` of another commit, its C extension built in
place, for example by copying ``_counter*.so`` from a checkout whose C is the same). It goes first on
``PYTHONPATH``, so ``import pytest_allocbudget`` and the pytest entry point load that copy rather than the one the
venv installed; the script checks which copy each run imported. Each round runs pytest once without the plugin (``-p
no:allocbudget``) and once per checkout, every run with the PYTEST ARGS (the test paths and what the plain run needs
as well), the checkouts' runs also with each ``--plugin-option`` (``--plugin-option=--alloc-all
--plugin-option=--alloc-file=...`` for a suite budgeted that way: the plain run would reject them), in an order that
rotates from round to round, so that a drift of the machine's speed hits all alike. It prints, as a Markdown table,
each kind's medians (wall seconds, CPU seconds of the pytest process, user and system, and its peak RSS, from
``os.wait4``) and the time ratios to the median plain run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: A plugin module loaded with ``-p`` that writes where ``pytest_allocbudget`` was imported from.
WHERE = """
import os
import pytest_allocbudget

with open(os.environ["ALLOCBUDGET_WHERE"], "w") as stream:
    stream.write(os.path.dirname(os.path.dirname(os.path.abspath(pytest_allocbudget.__file__))))
"""


def measure(command: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MB) of ``command``, run to its end."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(process.pid, 0)
    process.returncode = 0  # reaped by wait4: Popen must not wait for it again
    wall = time.perf_counter() - start
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkout", action="append", required=True, help="NAME=DIR, a checkout to run (repeatable)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--plugin-option", action="append", default=[], help="an option for the checkouts' runs only (repeatable)"
    )
    parser.add_argument("pytest_args", nargs="*", help="arguments of every run, the plain one included")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        Path(temp, "allocbudget_where.py").write_text(WHERE, encoding="utf-8")
        where = Path(temp, "where.txt")
        base = [sys.executable, "-m", "pytest", "-q"]
        kinds: list[tuple[str, list[str], dict[str, str], Path | None]] = [
            ("plain", [*base, "-p", "no:allocbudget", *args.pytest_args], dict(os.environ), None)
        ]
        for spec in args.checkout:
            name, _, directory = spec.partition("=")
            checkout = Path(directory).resolve()
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(checkout), temp]), "ALLOCBUDGET_WHERE": str(where)}
            kinds.append(
                (name, [*base, "-p", "allocbudget_where", *args.pytest_args, *args.plugin_option], env, checkout)
            )
        runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name, _, _, _ in kinds}
        for round_ in range(args.rounds):
            shift = round_ % len(kinds)
            for name, command, env, imported in kinds[shift:] + kinds[:shift]:
                where.unlink(missing_ok=True)
                runs[name].append(measure(command, env))
                if imported is not None and Path(where.read_text()) != imported:
                    raise SystemExit(f"{name}: imported pytest_allocbudget from {where.read_text()}, not {imported}")
        plain_wall = statistics.median(run[0] for run in runs["plain"])
        plain_cpu = statistics.median(run[1] for run in runs["plain"])
        print(f"| run ({args.rounds} rounds, medians) | wall s | CPU s | peak RSS MB | wall / plain | CPU / plain |")
        print("|---|--:|--:|--:|--:|--:|")
        for name, values in runs.items():
            wall, cpu, rss = (statistics.median(run[i] for run in values) for i in range(3))
            ratios = f"{wall / plain_wall:.2f}x | {cpu / plain_cpu:.2f}x"
            print(f"| {name} | {wall:.2f} | {cpu:.2f} | {rss:.0f} | {ratios} |")


if __name__ == "__main__":
    main()
