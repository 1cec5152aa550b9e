"""What one budgeted ``@given`` search measures in a fresh checkout and a warm one, before and after a test that
imports a module of the project, and under Hypothesis's ``ci`` profile.

Run by hand (not part of the test suite), in an environment with the package and Hypothesis installed:

    python benchmarks/hypothesis_search.py [--runs 2]

It writes a small project into a temporary directory (a search of lists of integers, a test that imports a
module of 300 integer constants, and that module), and runs pytest on it as a command, each run a process of its
own: the search first, then after the import; the first run of each order without a ``.hypothesis`` directory
(a fresh checkout), the others with it; then once more with ``CI=true``.  It prints the search's measured
``allocations`` for each run as a Markdown table.  ``--unheld`` runs with the project's constants given to the
search, as Hypothesis gives them, for a figure of what holding them changes (it sets a variable this script's
own conftest.py reads; the plugin has no such switch).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TESTS = """
import pytest
from hypothesis import given, strategies as st

@pytest.mark.alloc_budget
@given(st.lists(st.integers(), max_size=20))
def test_search(xs):
    sorted(xs)

def test_imports():
    import lazy_mod  # a module of the project's own, imported by a test as a lazy import is
"""

# Without holding: put Hypothesis's own function back in place of the plugin's, once the plugin has held it.
UNHELD = """
import os
import pytest

if os.environ.get("UNHELD"):
    @pytest.fixture(autouse=True)
    def _unheld():
        from pytest_allocbudget.measuring import searches
        searches.release_constants()
        yield
"""

ORDERS = {
    "search first": ["test_h.py::test_search", "test_h.py::test_imports"],
    "after the import": ["test_h.py::test_imports", "test_h.py::test_search"],
}


def run(project: Path, order: list[str], env: dict[str, str]) -> int:
    report = project / "report.json"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:randomly",
        "-p",
        "no:cacheprovider",
        "--alloc-all",
        "-o",
        "alloc_budget_strict=false",
    ]
    subprocess.run(
        [*command, f"--alloc-json={report}", *order], cwd=project, env=env, check=True, stdout=subprocess.DEVNULL
    )
    results = json.loads(report.read_text(encoding="utf-8"))["results"]
    return next(r["metrics"]["allocations"]["measured"] for r in results if r["nodeid"].endswith("test_search"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2, help="runs of each order (the first in a fresh checkout)")
    parser.add_argument("--unheld", action="store_true", help="give the search the project's constants")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env["PYTHONWARNINGS"] = "ignore"
    if args.unheld:
        env["UNHELD"] = "1"
    with tempfile.TemporaryDirectory() as temp:
        project = Path(temp)
        (project / "test_h.py").write_text(TESTS, encoding="utf-8")
        (project / "conftest.py").write_text(UNHELD, encoding="utf-8")
        (project / "lazy_mod.py").write_text(
            "TABLE = [" + ", ".join(str(i * 7919) for i in range(300)) + "]\n", encoding="utf-8"
        )
        print("| order | checkout | allocations |\n|---|---|--:|")
        for name, order in ORDERS.items():
            shutil.rmtree(project / ".hypothesis", ignore_errors=True)
            for i in range(args.runs):
                print(f"| {name} | {'fresh' if i == 0 else 'warm'} | {run(project, order, env):,} |")
        print(f"| search first, CI=true | warm | {run(project, ORDERS['search first'], {**env, 'CI': 'true'}):,} |")


if __name__ == "__main__":
    main()
