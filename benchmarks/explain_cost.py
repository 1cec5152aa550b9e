"""What explaining a failure costs: run by hand (not part of the test suite), with the venv's Python to measure:

    python benchmarks/explain_cost.py PYTHON [RUNS] [W]

PYTHON is the interpreter of a venv with the plugin installed (its version is the one measured).  In a temporary
directory, a test that builds 40,000 small dicts and strings and then runs an arithmetic loop of W iterations
(default 6,000,000; one int allocated per step) is recorded with ``--alloc-update``; then, RUNS times (default 5),
with 44,000 dicts, so that its ``peak`` fails:

* in a fresh process, the test is called once, then timed alone, then ``explain()`` is timed on it, given the
  values the counter measured (where ``explain()`` takes them);
* whole check runs of the one test are timed with ``--alloc-explain=rerun`` and ``--alloc-explain=off``.

It prints every run's seconds, the medians, and the last explanation's heading and lines.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

TEST = textwrap.dedent(
    """
    import os

    import pytest

    EXTRA = int(os.environ.get("REGRESS", "0"))


    def build():
        keep = []
        for i in range(40_000 + EXTRA):
            keep.append({"k": i, "v": str(i) * 3})  # the big allocation line
            _ = [j for j in range(8)]
        return keep


    def work():
        total = 0
        for i in range(int(os.environ.get("WORK", "6000000"))):
            total += i * i % 7
        return total


    @pytest.mark.alloc_budget
    def test_slow():
        data = build()
        work()
        assert len(data) >= 40_000
    """
)

STEP = """
import inspect, json, os, sys, time
sys.path.insert(0, os.getcwd())
import test_synth
from pytest_allocbudget.measuring import explain as ex
from pytest_allocbudget.measuring.counter import native
counter = native()
test_synth.test_slow()
counter.start(); test_synth.test_slow(); counter.pause(); a, b, live, peak, _ = counter.stop()
values = {"allocations": a, "allocated": b, "peak": peak, "retained": live}
t = time.perf_counter(); test_synth.test_slow(); alone = time.perf_counter() - t
kw = {"values": values} if "values" in inspect.signature(ex.explain).parameters else {}
t = time.perf_counter(); e = ex.explain(test_synth.test_slow, **kw); took = time.perf_counter() - t
print(json.dumps({"alone": alone, "explain": took, "error": e.error}))
"""


def main() -> None:
    python = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    work = sys.argv[3] if len(sys.argv) > 3 else "6000000"
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "GITHUB_ACTIONS")}
    env["WORK"] = work
    with tempfile.TemporaryDirectory() as directory:
        project = Path(directory)
        (project / "test_synth.py").write_text(TEST)
        (project / "pytest.ini").write_text("[pytest]\naddopts = -p no:randomly -p no:cacheprovider\n")
        pytest = [python, "-m", "pytest", "-q"]
        subprocess.run([*pytest, "--alloc-update"], cwd=project, env=dict(env, REGRESS="0"), check=True)
        regressed = dict(env, REGRESS="4000")
        times: dict[str, list[float]] = {"alone": [], "explain": [], "rerun": [], "off": []}
        report = ""
        for _ in range(runs):
            step = subprocess.run(
                [python, "-c", STEP], cwd=project, env=regressed, capture_output=True, text=True, check=True
            )
            result = json.loads(step.stdout)
            times["alone"].append(result["alone"])
            times["explain"].append(result["explain"])
            error = result["error"]
            for mode in ("rerun", "off"):
                start = time.perf_counter()
                check = subprocess.run(
                    [*pytest, f"--alloc-explain={mode}"], cwd=project, env=regressed, capture_output=True, text=True
                )
                times[mode].append(time.perf_counter() - start)
                if mode == "rerun":
                    report = check.stdout
        for name, values in times.items():
            print(f"{name:8s} median {statistics.median(values):7.2f} s  runs {[round(v, 2) for v in values]}")
        print(f"explain() error in the last run: {error}")
        print("\n".join(line for line in report.splitlines() if "source lines" in line or line.startswith("  test_")))


if __name__ == "__main__":
    main()
