"""How repeatable are the budgets on a real project's own test suite?  Run by hand (not part of the test suite):

    python benchmarks/repeatability.py [--project boltons==26.2.0] [--tests tests] [--serial 3] [--random 3]
                                       [--xdist 2] [--warmup] [--isolate] [--mark NODEID=ARGUMENTS ...]
                                       [--out repeatability.md] [--keep DIR]

It creates a fresh venv in a temporary directory, with the Python it runs under, and installs this plugin from the
repository (``pip install -e``), pytest-xdist and pytest-randomly. It fetches the project's sdist with
``pip download --no-deps --no-binary :all:``, unpacks it and installs it into the venv. Then, in the unpacked
directory, with every ``--alloc-*`` run also given ``--alloc-all``:

1. one recording run: ``--alloc-update --alloc-update-in-ci -p no:randomly``, serial;
2. ``--serial`` check runs with ``-p no:randomly``;
3. ``--random`` check runs in random order: ``-p randomly --randomly-seed=1``, ``=2``, ...;
4. ``--xdist`` check runs with ``-n 2 -p no:randomly``.

``--warmup`` and ``--isolate`` add ``--alloc-warmup`` or ``--alloc-isolate`` to every run, recording included.
``--mark NODEID=ARGUMENTS`` gives the tests whose node id ends with NODEID a marker ``alloc_budget(ARGUMENTS)``, such
as ``--mark "test_x=tolerance='allocated: 25%'"`` or ``--mark test_y=isolate=True``, from a small plugin module
outside the project (``-p``), as a user would put the marker on the test: the per-test remedies.

The runs leave the project's tree as they found it, since some tests list the files there: bytecode is not written
(``PYTHONDONTWRITEBYTECODE=1``), pytest's cache is off (``-p no:cacheprovider``), and the budget file and the
reports live outside it.

Every run writes a JSON report (``--alloc-json``), so every test's numbers are captured. From the reports it
computes, per metric, the share of tests whose numbers are identical in every run (the recording run's numbers,
which are the budgets, included); per run, how many tests differ from their budget and how many fail it under the
default tolerance; and the tests that failed in any run, with the metric and the change. The tables are printed as
Markdown and written to ``--out``.

The CI variables are removed from the runs' environment and ``-o alloc_budget_strict=false`` is passed, so that
strict mode cannot change the results. ``PYTHONHASHSEED`` is left as it is (random in each run, unless set), as in a
real suite; pass ``--hashseed 0`` to fix it in every run.

The default project, boltons, was chosen because its suite is mostly plain pytest functions (``--alloc-all``
leaves ``unittest.TestCase`` tests unmeasured, and more-itertools' suite is almost all TestCase methods), pure
Python, needs nothing but pytest, and runs in a few seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from runenv import clean_environment

REPO = Path(__file__).resolve().parents[1]
METRICS = ("peak", "retained", "allocations", "allocated")
STATUSES = ("passed", "failed", "missing", "unrecorded")


def environment(hashseed: str | None) -> dict[str, str]:
    env = clean_environment()
    if hashseed is not None:
        env["PYTHONHASHSEED"] = hashseed
    return env


REMEDIES = """
import pytest

MARKS = {marks!r}


def pytest_collection_modifyitems(items):
    for item in items:
        for suffix, arguments in MARKS.items():
            if item.nodeid.endswith(suffix):
                item.add_marker(eval(f"pytest.mark.alloc_budget({{arguments}})"))
"""


def remedies(work: Path, marks: list[str], env: dict[str, str]) -> list[str]:
    """``-p`` options for a plugin module that marks the ``--mark`` tests; adds its directory to the path."""
    if not marks:
        return []
    pairs = dict(item.split("=", 1) for item in marks)
    directory = work / "plugins"
    directory.mkdir()
    (directory / "allocbudget_remedies.py").write_text(REMEDIES.format(marks=pairs))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(directory), env.get("PYTHONPATH")]))
    return ["-p", "allocbudget_remedies"]


def check(command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


def prepare(work: Path, project: str, env: dict[str, str]) -> tuple[Path, Path]:
    """The venv's python and the unpacked project directory."""
    venv = work / "venv"
    check([sys.executable, "-m", "venv", str(venv)], env=env)
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "-q"]
    check([*pip, "install", "-e", str(REPO), "pytest-xdist", "pytest-randomly"], env=env)
    downloads = work / "sdist"
    check([*pip, "download", "--no-deps", "--no-binary", ":all:", project, "-d", str(downloads)], env=env)
    (archive,) = downloads.iterdir()
    with tarfile.open(archive) as tar:
        # A pinned sdist from the package index; the "data" filter where this Python has it.
        tar.extractall(work / "src", **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    (source,) = (work / "src").iterdir()
    check([*pip, "install", "--no-deps", str(source)], env=env)
    return python, source


def run(
    python: Path, source: Path, tests: str, options: list[str], report: Path, budgets: Path, env: dict[str, str]
) -> float:
    command = [str(python), "-m", "pytest", tests, "-q", "--alloc-all", f"--alloc-json={report}"]
    command += [f"--alloc-file={budgets}", "-p", "no:cacheprovider", "-o", "alloc_budget_strict=false", *options]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=source, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    # Exit code 1 is expected when a test fails its budget; anything else is a broken run.
    if result.returncode not in (0, 1) or not report.exists():
        raise SystemExit(f"{' '.join(command)} exited {result.returncode}:\n{result.stdout[-3000:]}")
    return elapsed


def load(report: Path) -> dict[tuple[str, str | None], dict]:
    data = json.loads(report.read_text())
    return {(item["nodeid"], item["region"]): item for item in data["results"]}


def name(key: tuple[str, str | None]) -> str:
    nodeid, region = key
    return nodeid if region is None else f"{nodeid} [{region}]"


def spread_text(values: list[int]) -> str:
    low, high = min(values), max(values)
    relative = f", {100 * (high - low) / low:.1f}%" if low else ""
    return f"{low:,} .. {high:,} (+{high - low:,}{relative})"


def analyse(reports: dict[str, dict[tuple[str, str | None], dict]], record: str, top: int) -> list[str]:
    lines: list[str] = []
    keys = set.intersection(*(set(results) for results in reports.values()))
    partial = set.union(*(set(results) for results in reports.values())) - keys
    metrics = [m for m in METRICS if all(m in reports[record][key]["metrics"] for key in keys)]
    runs = list(reports)

    def values(key: tuple[str, str | None], metric: str) -> list[int]:
        return [reports[label][key]["metrics"][metric]["measured"] for label in runs]

    lines.append(
        f"{len(keys)} tests measured in all {len(runs)} runs"
        + (f" ({len(partial)} more measured in some runs only, left out)" if partial else "")
        + "."
    )
    lines.append("")
    lines.append("| metric | identical in every run | varying | largest spread (min .. max) |")
    lines.append("|---|---|---|---|")
    varying: dict[str, list[tuple[str, str | None]]] = {}
    for metric in metrics:
        varying[metric] = sorted(key for key in keys if len(set(values(key, metric))) > 1)
        same = len(keys) - len(varying[metric])
        widest = max(varying[metric], key=lambda k: max(values(k, metric)) - min(values(k, metric)), default=None)
        spread = f"{spread_text(values(widest, metric))}, {name(widest)}" if widest else "-"
        lines.append(
            f"| {metric} | {same} / {len(keys)} ({100 * same / len(keys):.1f}%) | {len(varying[metric])} | {spread} |"
        )
    any_varying = set().union(*varying.values())
    lines.append(
        f"| any metric | {len(keys) - len(any_varying)} / {len(keys)} "
        f"({100 * (len(keys) - len(any_varying)) / len(keys):.1f}%) | {len(any_varying)} | |"
    )
    lines.append("")

    # The same share within each kind of run, the recording run with it, to tell order and xdist from noise.
    kinds = sorted({label.split()[0] for label in runs if label != record}, key=lambda k: runs.index(f"{k} 1"))
    lines.append("Identical share within each kind of run, the recording run included:")
    lines.append("")
    lines.append(f"| runs | {' | '.join(metrics)} | any metric |")
    lines.append(f"|---|{'---|' * len(metrics)}---|")
    for kind in kinds:
        group = [record, *(label for label in runs if label.split()[0] == kind)]

        def same(key: tuple[str, str | None], metric: str, group: list[str] = group) -> bool:
            return len({reports[label][key]["metrics"][metric]["measured"] for label in group}) == 1

        cells = [f"{100 * sum(same(key, m) for key in keys) / len(keys):.1f}%" for m in metrics]
        every = sum(all(same(key, m) for m in metrics) for key in keys)
        lines.append(f"| {', '.join(group)} | {' | '.join(cells)} | {100 * every / len(keys):.1f}% |")
    lines.append("")

    lines.append("Per run: tests whose numbers differ from the budget (any metric, per metric), and results by status.")
    lines.append("")
    lines.append(f"| run | wall (s) | differ | {' | '.join(metrics)} | passed | failed | missing | unrecorded |")
    lines.append(f"|---|---|---|{'---|' * len(metrics)}---|---|---|---|")
    for label in runs:
        results = reports[label]

        def differs(key: tuple[str, str | None], metric: str, results: dict = results) -> bool:
            return results[key]["metrics"][metric]["measured"] != reports[record][key]["metrics"][metric]["measured"]

        per_metric = [sum(differs(key, m) for key in keys) for m in metrics]
        differ = sum(any(differs(key, m) for m in metrics) for key in keys)
        status = {s: sum(item["status"] == s for item in results.values()) for s in STATUSES}
        lines.append(
            f"| {label} | {WALL[label]:.1f} | {differ} | {' | '.join(map(str, per_metric))} | "
            + " | ".join(str(status[s]) for s in STATUSES)
            + " |"
        )
    lines.append("")

    # One row per test that failed in any run: the runs, and each metric over budget with its largest change.
    failures: dict[tuple[str, str | None], dict] = {}
    for label in runs:
        for key, item in reports[label].items():
            if item["status"] != "failed":
                continue
            found = failures.setdefault(key, {"runs": [], "metrics": {}})
            found["runs"].append(label)
            for metric, result in item["metrics"].items():
                worst = found["metrics"].get(metric)
                if result["status"] in ("regressed", "over-limit") and (
                    worst is None or result["change"] > worst["change"]
                ):
                    found["metrics"][metric] = result
    failed_runs = ", ".join(
        f"{label} {sum(i['status'] == 'failed' for i in reports[label].values())}" for label in runs
    )
    lines.append(
        f"Tests that failed their budget (default tolerance) in any run: {len(failures)}; per run: {failed_runs}."
    )
    lines.append("")
    if failures:
        lines.append("| test | failed in | metrics over budget: largest change (budget) |")
        lines.append("|---|---|---|")
        for key, found in sorted(failures.items()):
            changes = []
            for metric in METRICS:
                if metric in found["metrics"]:
                    result = found["metrics"][metric]
                    percent = f", {result['change_percent']:+.0f}%" if result["change_percent"] is not None else ""
                    changes.append(f"{metric} +{result['change']:,}{percent} ({result['budget']:,})")
            lines.append(f"| {name(key)} | {', '.join(found['runs'])} | {'; '.join(changes)} |")
        lines.append("")

    lines.append(
        f"The {top} widest relative spreads (max - min over min, any metric; values in run order: {', '.join(runs)}):"
    )
    lines.append("")
    lines.append("| test | metric | values |")
    lines.append("|---|---|---|")
    spreads = []
    for metric in metrics:
        for key in varying[metric]:
            vals = values(key, metric)
            low, high = min(vals), max(vals)
            spreads.append(((high - low) / max(low, 1), high - low, key, metric, vals))
    for _, _, key, metric, vals in sorted(spreads, key=lambda s: (s[0], s[1]), reverse=True)[:top]:
        lines.append(f"| {name(key)} | {metric} | {' / '.join(f'{v:,}' for v in vals)} |")
    lines.append("")
    if spreads:
        absolute = [high for _, high, _, _, _ in spreads]
        lines.append(
            f"Over all {len(spreads)} varying (test, metric) pairs: median spread {statistics.median(absolute):,.0f}, "
            f"largest {max(absolute):,} (bytes, or calls for allocations)."
        )
    return lines


WALL: dict[str, float] = {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", default="boltons==26.2.0", help="a pinned requirement whose sdist has tests")
    parser.add_argument("--tests", default="tests", help="the test path inside the unpacked sdist")
    parser.add_argument("--serial", type=int, default=3, help="serial check runs, -p no:randomly")
    parser.add_argument("--random", type=int, default=3, help="check runs in random order, seeds 1, 2, ...")
    parser.add_argument("--xdist", type=int, default=2, help="check runs with -n 2 -p no:randomly")
    parser.add_argument("--hashseed", default=None, help="PYTHONHASHSEED for every run (default: left as it is)")
    parser.add_argument("--warmup", action="store_true", help="every run with --alloc-warmup")
    parser.add_argument("--isolate", action="store_true", help="every run with --alloc-isolate")
    parser.add_argument(
        "--mark",
        action="append",
        default=[],
        metavar="NODEID=ARGUMENTS",
        help="mark the tests whose node id ends with NODEID alloc_budget(ARGUMENTS); repeatable",
    )
    parser.add_argument("--top", type=int, default=15, help="rows in the table of widest spreads")
    parser.add_argument("--out", type=Path, default=Path("repeatability.md"), help="Markdown file for the tables")
    parser.add_argument("--keep", type=Path, default=None, help="copy the JSON reports into this directory")
    args = parser.parse_args()

    env = environment(args.hashseed)
    remedy = [*(["--alloc-warmup"] if args.warmup else []), *(["--alloc-isolate"] if args.isolate else [])]
    plan: list[tuple[str, list[str]]] = [
        ("record", ["--alloc-update", "--alloc-update-in-ci", "-p", "no:randomly"]),
        *((f"serial {i}", ["-p", "no:randomly"]) for i in range(1, args.serial + 1)),
        *((f"random {i}", ["-p", "randomly", f"--randomly-seed={i}"]) for i in range(1, args.random + 1)),
        *((f"xdist {i}", ["-n", "2", "-p", "no:randomly"]) for i in range(1, args.xdist + 1)),
    ]
    reports: dict[str, dict[tuple[str, str | None], dict]] = {}
    with tempfile.TemporaryDirectory(prefix="allocbudget-repeat-") as name_:
        work = Path(name_)
        print(f"preparing a venv with {args.project} in {work} ...", file=sys.stderr)
        python, source = prepare(work, args.project, env)
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # installed as usual; then the project's tree must not change
        remedy += remedies(work, args.mark, env)
        for label, options in plan:
            report = work / "reports" / f"{label.replace(' ', '-')}.json"
            WALL[label] = run(python, source, args.tests, [*options, *remedy], report, work / "budgets.yaml", env)
            reports[label] = load(report)
            print(f"{label}: {len(reports[label])} results, {WALL[label]:.1f} s", file=sys.stderr)
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                (args.keep / report.name).write_text(report.read_text())
        versions = subprocess.run(
            [str(python), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True, check=True, env=env
        ).stdout.split()

    # The budgets a check run compares against are the recording run's measurements; make sure of it.
    for label, results in reports.items():
        for key, item in results.items():
            if label != "record" and key in reports["record"]:
                for metric, result in item["metrics"].items():
                    recorded = reports["record"][key]["metrics"][metric]["measured"]
                    assert result["budget"] == recorded, (label, key, metric, result["budget"], recorded)

    wanted = ("pytest", "pytest-xdist", "pytest-randomly", args.project.split("==")[0])
    header = [
        f"Project {args.project}, `{args.tests}`; Python {sys.version.split()[0]} on {sys.platform}, "
        f"{os.cpu_count()} CPUs; PYTHONHASHSEED {args.hashseed or env.get('PYTHONHASHSEED', 'random per run')}; "
        + ", ".join(v for v in versions if v.split("==")[0].lower() in wanted)
        + ".",
        f"Runs: {', '.join(label for label, _ in plan)}; in every run: {' '.join(remedy) or 'no remedy'}"
        + (f" ({', '.join(args.mark)})" if args.mark else "")
        + ".",
        "",
    ]
    text = "\n".join([*header, *analyse(reports, "record", args.top)]) + "\n"
    print(text)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
