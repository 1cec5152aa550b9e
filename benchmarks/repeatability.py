"""Do the budgets hold on real projects' own test suites?  Run by hand (not part of the test suite):

    python benchmarks/repeatability.py [--project SPEC ...] [--serial 3] [--random 3] [--xdist 2] [--fresh 1]
                                       [--hashseed-runs 1] [--timing-rounds 3] [--hashseed SEED]
                                       [--other-hashseed SEED] [--warmup] [--isolate] [--mark NODEID=ARGUMENTS ...]
                                       [--sdists DIR] [--work DIR] [--top 15] [--out FILE] [--json FILE] [--keep DIR]

``--project`` (repeatable) is ``NAME==VERSION[:TESTPATH][+EXTRA_DEPS]``: a pinned requirement whose sdist has its
tests, the pytest arguments that select them (comma-separated, such as ``tests,--ignore=tests/test_x.py``; default
``--tests``), and the extra packages its tests need (comma-separated).  A bare name, or a name and version with
neither part, from the table of known suites (``SUITES`` below: boltons, attrs, python-dateutil, packaging) takes
its test arguments and extra packages from there.  Without ``--project``, the four known suites are measured.

For each project it creates a venv with the Python it runs under, and installs this plugin from the repository
(``pip install -e``), pytest-xdist, pytest-randomly and the extra packages.  It takes the project's sdist from
``--sdists`` when a file of that name and version is there, else fetches it with
``pip download --no-deps --no-binary :all:``, unpacks it twice (``a/`` and ``b/``, paths of the same length, so that
no path string differs in size between the copies) and installs the first copy into the venv with its
dependencies.  Then, with every plugin run given ``--alloc-all``, a JSON report (``--alloc-json``), a JUnit XML
report and one budget file outside the trees (node ids are relative to the rootdir, so it applies to either copy):

1. ``plain 1``: the suite without the plugin (``-p no:allocbudget``), serial, in copy ``a``.  Its outcomes are what
   the plugin runs are compared with, and it leaves in the tree what a user's earlier runs would have left
   (bytecode, pytest's cache, ``.hypothesis/``), before the budgets are recorded;
2. ``record``: ``--alloc-update --alloc-update-in-ci -p no:randomly``, serial;
3. ``--serial`` check runs with ``-p no:randomly``;
4. ``--random`` check runs in random order: ``-p randomly --randomly-seed=1``, ``=2``, ...;
5. ``--xdist`` check runs with ``-n 2 -p no:randomly``;
6. ``--hashseed-runs`` serial check runs with ``PYTHONHASHSEED`` set to ``--other-hashseed`` (then +1, ...), a
   seed other than the recording's: the recording and every other run keep ``--hashseed`` (default: unset, so
   random in each run, as users have it);
7. ``--fresh`` serial check runs, each in a copy of the sdist unpacked anew (``b``, then ``c``, ...) in which
   nothing has run: no bytecode, no pytest cache, no Hypothesis database, as in a fresh CI checkout;
8. ``--timing-rounds`` rounds of three runs in copy ``a``, as a user types them (no report options): the suite
   without the plugin, a check run, and a recording run into a budget file of its own that does not exist yet.
   The order alternates (plain, check, record; then record, check, plain), so that a drift of the machine's speed
   hits all three alike.  The ratios are the median check run and the median recording run over the median plain
   run;
9. a ``plain`` twin of every check run in which a test failed, not by its budget, that passed in the plain runs:
   the same options (seed, ``-n 2``, hash seed, a fresh copy) without the plugin.  A test that fails there too
   fails under those conditions, not because of the plugin; one that passes there is broken by the plugin.

A test's outcome is read from the JUnit XML report.  A budget failure is a failed test too, so the JSON report's
results with the status ``failed`` or ``missing`` are told apart from the tests that failed on their own (the JSON
report lists only tests that passed on their own).

``--warmup`` and ``--isolate`` add ``--alloc-warmup`` or ``--alloc-isolate`` to every plugin run, recording included;
``--option`` adds any other pytest option the same way (``--option=--alloc-first-call-only`` measures the judging of
the first call alone, beside the default's second call).
``--mark NODEID=ARGUMENTS`` gives the tests whose node id ends with NODEID a marker ``alloc_budget(ARGUMENTS)``, such
as ``--mark "test_x=tolerance='allocated: 25%'"`` or ``--mark test_y=isolate=True``, from a small plugin module
outside the project (``-p``), as a user would put the marker on the test: the per-test remedies.

``--explain`` passes ``--alloc-explain`` to every plugin run, ``off`` unless told.  The plugin's default, ``rerun``,
calls each test that fails its budget once more, in a forked child process under tracemalloc, after its verdict: it
changes no measurement, but costs up to the child's time limit (120 s) per failing test on slow tests.  attrs'
failing Hypothesis tests hit that limit, and one check run took 810 s instead of 32; with the failures the protocol
is about, that would make it unaffordable, and the time ratios would measure the explanations.  ``--explain default``
keeps the plugin's own setting.

``--pristine`` keeps the trees as they were unpacked instead: no bytecode (``PYTHONDONTWRITEBYTECODE=1``), no
pytest cache (``-p no:cacheprovider``).  Some tests list the files of their project (boltons'
``test_iter_find_files``): what the runs leave in the tree is then part of what they measure, as it is for a user.

From the reports, per project: the tests collected (JUnit XML of ``plain 1``) and measured (the recording's JSON);
per metric, the share of tests whose numbers are identical in every check run and the recording (whose numbers are
the budgets); the same share within each kind of run; per run, how many tests differ from their budget and the
results by status; the budget failures per run; the tests broken by the plugin, and those that fail without it
too; the time ratios; the tests that failed their budget, worst first, with each metric over budget and its change;
the widest spreads.  A summary table has one row per project.  Markdown goes to stdout and ``--out``, every figure
as JSON to ``--json``.

The CI variables are removed from the runs' environment and ``-o alloc_budget_strict=false`` is passed to the
plugin runs, so that strict mode cannot change the results.

Known suites, and why these: their tests are mostly plain pytest functions (``--alloc-all`` leaves
``unittest.TestCase`` tests unmeasured; pyparsing's and more-itertools' suites are mostly TestCase methods), of
different kinds, and each runs in well under a minute without the plugin on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runenv import clean_environment

REPO = Path(__file__).resolve().parents[1]
METRICS = ("peak", "retained", "allocations", "allocated")
STATUSES = ("passed", "failed", "missing", "unrecorded")
BUDGET_FAILURES = ("failed", "missing")  # the JSON statuses that fail a check run
Key = tuple[str, "str | None"]
Results = dict[Key, dict[str, Any]]


@dataclass(frozen=True)
class Suite:
    requirement: str
    tests: tuple[str, ...]
    extras: tuple[str, ...] = ()
    note: str = ""

    @property
    def name(self) -> str:
        return self.requirement.split("==")[0]


SUITES = {
    suite.name: suite
    for suite in (
        Suite("boltons==26.2.0", ("tests",), (), "utilities of every kind, pure Python, needs nothing but pytest"),
        Suite(
            "attrs==26.1.0",
            ("tests",),
            ("hypothesis", "cloudpickle", "pympler"),
            "class generation, many Hypothesis tests; its `tests` dependency group (less pytest-xdist's psutil)",
        ),
        Suite(
            "python-dateutil==4.0.0",
            ("tests", "--ignore=tests/test_tzpath_data.py", "--ignore=tests/property"),
            ("attrs", "freezegun", "hypothesis", "pytest-cov"),
            "dates and time zones (tz files, freezegun); without tests/test_tzpath_data.py (10 tests, 20 s, "
            "compares with the system's tzdata) and tests/property (Hypothesis, 11 s); pytest-cov registers the "
            "`no_cover` marker its conftest adds",
        ),
        Suite(
            "packaging==26.4",
            ("tests", "--ignore=tests/test_version.py", "--ignore=tests/test_requirements.py"),
            ("hypothesis", "pretend", "tomli_w"),
            "parsers (specifiers, markers, tags, metadata), thousands of tiny parametrized tests; without "
            "tests/test_version.py (51,524 cases) and tests/test_requirements.py (5,417), for time",
        ),
    )
}


def parse_project(spec: str, default_tests: str) -> Suite:
    """A ``--project`` value: ``NAME==VERSION[:TESTPATH][+EXTRA_DEPS]``, or a known suite's name."""
    requirement, plus, extras = spec.partition("+")
    requirement, colon, tests = requirement.partition(":")
    known = SUITES.get(requirement.split("==")[0])
    if known is not None and not colon and not plus:
        return known if "==" not in requirement else Suite(requirement, known.tests, known.extras, known.note)
    if "==" not in requirement:
        raise SystemExit(f"--project {spec!r}: give NAME==VERSION, or one of the known suites: {', '.join(SUITES)}")
    return Suite(
        requirement,
        tuple(tests.split(",")) if tests else (default_tests,),
        tuple(e for e in extras.split(",") if e) if plus else (),
    )


def environment(hashseed: str | None) -> dict[str, str]:
    env = clean_environment()
    if hashseed is not None:
        env["PYTHONHASHSEED"] = hashseed
    else:
        env.pop("PYTHONHASHSEED", None)
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
    directory.mkdir(exist_ok=True)
    (directory / "allocbudget_remedies.py").write_text(REMEDIES.format(marks=pairs))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(directory), env.get("PYTHONPATH")]))
    return ["-p", "allocbudget_remedies"]


def check(command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def sdist(work: Path, requirement: str, sdists: Path | None, pip: list[str], env: dict[str, str]) -> Path:
    """The project's sdist: from ``--sdists`` when it has the file, else downloaded into ``work``."""
    wanted = normalized(requirement.replace("==", "-"))
    if sdists is not None:
        for archive in sorted(sdists.glob("*.tar.gz")):
            if normalized(archive.name[: -len(".tar.gz")]) == wanted:
                return archive
    downloads = work / "sdist"
    check([*pip, "download", "--no-deps", "--no-binary", ":all:", requirement, "-d", str(downloads)], env=env)
    (archive,) = downloads.iterdir()
    return archive


def unpack(archive: Path, directory: Path) -> Path:
    """The unpacked project, ``directory/<name-version>``; a copy in which nothing has run."""
    with tarfile.open(archive) as tar:
        # A pinned sdist from the package index; the "data" filter where this Python has it.
        if hasattr(tarfile, "data_filter"):
            tar.extractall(directory, filter="data")
        else:
            tar.extractall(directory)
    (source,) = directory.iterdir()
    return source


def prepare(work: Path, suite: Suite, sdists: Path | None, env: dict[str, str]) -> tuple[Path, Path, Path]:
    """The venv's python, the first unpacked copy of the project, and the sdist (for more copies)."""
    venv = work / "venv"
    check([sys.executable, "-m", "venv", str(venv)], env=env)
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "-q"]
    check([*pip, "install", "-e", str(REPO), "pytest-xdist", "pytest-randomly", *suite.extras], env=env)
    archive = sdist(work, suite.requirement, sdists, pip, env)
    source = unpack(archive, work / "a")
    # Installed with its dependencies (python-dateutil needs tzdata); the copy stays as unpacked, but for the
    # build directory that setuptools may leave, which is removed.
    check([*pip, "install", str(source)], env=env)
    shutil.rmtree(source / "build", ignore_errors=True)
    return python, source, archive


@dataclass
class Run:
    """One pytest run of the plan: where, with which options, with the plugin or without."""

    label: str
    options: list[str]
    copy: str = "a"
    plugin: bool = True
    hashseed: str | None = None  # None: the environment's (--hashseed)
    elapsed: float = 0.0
    outcomes: dict[str, str] = field(default_factory=dict)  # JUnit key -> passed, failed, skipped


def pytest_command(python: Path, tests: tuple[str, ...], options: list[str], plugin: bool, pristine: bool) -> list[str]:
    command = [str(python), "-m", "pytest", *tests, "-q", *options]
    if pristine:
        command += ["-p", "no:cacheprovider"]
    if plugin:
        command += ["--alloc-all", "-o", "alloc_budget_strict=false"]
    else:
        command += ["-p", "no:allocbudget"]
    return command


def run(command: list[str], cwd: Path, env: dict[str, str], report: Path | None = None) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    # Exit code 1 is expected when a test fails (its budget or on its own); anything else is a broken run.
    if result.returncode not in (0, 1) or (report is not None and not report.exists()):
        raise SystemExit(f"{' '.join(command)} exited {result.returncode}:\n{result.stdout[-3000:]}")
    return elapsed


def load(report: Path) -> Results:
    data = json.loads(report.read_text())
    return {(item["nodeid"], item["region"]): item for item in data["results"]}


def junit_key(nodeid: str) -> str:
    """The name pytest's JUnit XML report gives a node id: ``classname::name``, the path dotted, ``.py`` dropped."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    names[-1] += bracket + params
    return f"{'.'.join(names[:-1])}::{names[-1]}"


def junit_outcomes(report: Path) -> dict[str, str]:
    """Each test case's outcome: ``failed`` (a failure or an error in any phase), ``skipped`` or ``passed``."""
    outcomes: dict[str, str] = {}
    for case in ElementTree.parse(report).iter("testcase"):
        key = f"{case.get('classname')}::{case.get('name')}"
        tags = {child.tag for child in case}
        outcome = "failed" if tags & {"failure", "error"} else "skipped" if "skipped" in tags else "passed"
        if outcomes.get(key) != "failed":  # a teardown error reported as a second case of the same test
            outcomes[key] = outcome
    return outcomes


def name(key: Key) -> str:
    nodeid, region = key
    return nodeid if region is None else f"{nodeid} [{region}]"


def spread_text(values: list[int]) -> str:
    low, high = min(values), max(values)
    relative = f", {100 * (high - low) / low:.1f}%" if low else ""
    return f"{low:,} .. {high:,} (+{high - low:,}{relative})"


def percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def analyse(reports: dict[str, Results], record: str, top: int) -> dict[str, Any]:
    """The repeatability figures of one project's plugin runs, from their JSON reports."""
    keys = set.intersection(*(set(results) for results in reports.values()))
    partial = set.union(*(set(results) for results in reports.values())) - keys
    metrics = [m for m in METRICS if all(m in reports[record][key]["metrics"] for key in keys)]
    runs = list(reports)

    def values(key: Key, metric: str) -> list[int]:
        return [reports[label][key]["metrics"][metric]["measured"] for label in runs]

    identical: dict[str, Any] = {}
    varying: dict[str, list[Key]] = {}
    for metric in metrics:
        varying[metric] = sorted(key for key in keys if len(set(values(key, metric))) > 1)
        widest = max(varying[metric], key=lambda k: max(values(k, metric)) - min(values(k, metric)), default=None)
        identical[metric] = {
            "identical": len(keys) - len(varying[metric]),
            "varying": len(varying[metric]),
            "percent": percent(len(keys) - len(varying[metric]), len(keys)),
            "widest": None if widest is None else {"test": name(widest), "values": values(widest, metric)},
        }
    any_varying = set().union(*varying.values())
    identical["all"] = {
        "identical": len(keys) - len(any_varying),
        "varying": len(any_varying),
        "percent": percent(len(keys) - len(any_varying), len(keys)),
    }

    # The same share within each kind of run, the recording run with it, to tell order and xdist from noise.
    kinds: dict[str, dict[str, Any]] = {}
    for kind in dict.fromkeys(label.split()[0] for label in runs if label != record):
        group = [record, *(label for label in runs if label.split()[0] == kind)]

        def same(key: Key, metric: str, group: list[str] = group) -> bool:
            return len({reports[label][key]["metrics"][metric]["measured"] for label in group}) == 1

        shares: dict[str, float | None] = {m: percent(sum(same(key, m) for key in keys), len(keys)) for m in metrics}
        shares["all"] = percent(sum(all(same(key, m) for m in metrics) for key in keys), len(keys))
        kinds[kind] = {"runs": group, "percent": shares}

    per_run: dict[str, dict[str, Any]] = {}
    for label in runs:
        results = reports[label]

        def differs(key: Key, metric: str, results: Results = results) -> bool:
            return bool(
                results[key]["metrics"][metric]["measured"] != reports[record][key]["metrics"][metric]["measured"]
            )

        per_run[label] = {
            "results": len(results),
            "differ": sum(any(differs(key, m) for m in metrics) for key in keys),
            "differ_per_metric": {m: sum(differs(key, m) for key in keys) for m in metrics},
            "status": {s: sum(item["status"] == s for item in results.values()) for s in STATUSES},
        }

    # One entry per test that failed in any check run: the runs, and each metric over budget with its largest change.
    failures: dict[Key, dict[str, Any]] = {}
    for label in runs:
        if label == record:  # an update run's statuses say what it changes, and fail nothing
            continue
        for key, item in reports[label].items():
            if item["status"] not in BUDGET_FAILURES:
                continue
            found = failures.setdefault(key, {"test": name(key), "runs": [], "metrics": {}})
            found["runs"].append(label)
            if item["status"] == "missing":
                found["metrics"].setdefault("missing", {"change": 0, "change_percent": None, "budget": None})
            for metric, result in item["metrics"].items():
                worst = found["metrics"].get(metric)
                if result["status"] in ("regressed", "over-limit") and (
                    worst is None or result["change"] > worst["change"]
                ):
                    found["metrics"][metric] = {
                        k: result[k] for k in ("measured", "budget", "change", "change_percent", "status")
                    }

    def severity(found: dict[str, Any]) -> tuple[int, float]:
        changes = [m["change_percent"] or 0.0 for m in found["metrics"].values()]
        return len(found["runs"]), max(changes, default=0.0)

    spreads = []
    for metric in metrics:
        for key in varying[metric]:
            vals = values(key, metric)
            low, high = min(vals), max(vals)
            spreads.append(((high - low) / max(low, 1), high - low, key, metric, vals))
    spreads.sort(key=lambda s: (s[0], s[1]), reverse=True)
    absolute = [high for _, high, _, _, _ in spreads]
    return {
        "runs": runs,
        "metrics": metrics,
        "measured_in_all_runs": len(keys),
        "measured_in_some_runs_only": len(partial),
        "identical": identical,
        "kinds": kinds,
        "per_run": per_run,
        "failures": sorted(failures.values(), key=severity, reverse=True),
        "spreads": [{"test": name(key), "metric": metric, "values": vals} for _, _, key, metric, vals in spreads[:top]],
        "varying_pairs": len(spreads),
        "median_spread": statistics.median(absolute) if absolute else None,
        "largest_spread": max(absolute, default=None),
    }


def cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def render(figures: dict[str, Any], wall: dict[str, float], top: int) -> list[str]:
    """The repeatability tables of one project, as Markdown lines."""
    runs, metrics = figures["runs"], figures["metrics"]
    total = figures["measured_in_all_runs"]
    partial = figures["measured_in_some_runs_only"]
    lines = [
        f"{total} tests measured in all {len(runs)} plugin runs"
        + (f" ({partial} more measured in some runs only, left out)" if partial else "")
        + ".",
        "",
        "| metric | identical in every run | varying | largest spread (min .. max) |",
        "|---|---|---|---|",
    ]
    for metric in metrics:
        row = figures["identical"][metric]
        widest = row["widest"]
        spread = f"{spread_text(widest['values'])}, {widest['test']}" if widest else "-"
        lines.append(
            f"| {metric} | {row['identical']} / {total} ({cell(row['percent'])}) | {row['varying']} | {spread} |"
        )
    row = figures["identical"]["all"]
    lines += [f"| all four | {row['identical']} / {total} ({cell(row['percent'])}) | {row['varying']} | |", ""]

    lines += [
        "Identical share within each kind of run, the recording run included:",
        "",
        f"| runs | {' | '.join(metrics)} | all four |",
        f"|---|{'---|' * len(metrics)}---|",
    ]
    for kind in figures["kinds"].values():
        shares = kind["percent"]
        lines.append(f"| {', '.join(kind['runs'])} | {' | '.join(cell(shares[m]) for m in [*metrics, 'all'])} |")
    lines += [
        "",
        "Per run: tests whose numbers differ from the budget (any metric, per metric), and results by status.",
        "",
        f"| run | wall (s) | differ | {' | '.join(metrics)} | passed | failed | missing | unrecorded |",
        f"|---|---|---|{'---|' * len(metrics)}---|---|---|---|",
    ]
    for label in runs:
        row = figures["per_run"][label]
        lines.append(
            f"| {label} | {wall[label]:.1f} | {row['differ']} | "
            + " | ".join(str(row["differ_per_metric"][m]) for m in metrics)
            + " | "
            + " | ".join(str(row["status"][s]) for s in STATUSES)
            + " |"
        )
    lines.append("")

    failures = figures["failures"]
    lines += [
        f"Tests that failed their budget (default tolerance) in any check run: {len(failures)}"
        + (f"; the {min(top, len(failures))} worst (most runs, then largest change):" if failures else "."),
        "",
    ]
    if failures:
        lines += ["| test | failed in | metrics over budget: largest change (budget) |", "|---|---|---|"]
        for found in failures[:top]:
            changes = []
            for metric, result in found["metrics"].items():
                if metric == "missing":
                    changes.append("missing from the budget file")
                    continue
                relative = f", {result['change_percent']:+.0f}%" if result["change_percent"] is not None else ""
                changes.append(f"{metric} +{result['change']:,}{relative} ({result['budget']:,})")
            lines.append(f"| {found['test']} | {', '.join(found['runs'])} | {'; '.join(changes)} |")
        lines.append("")

    lines += [
        f"The {top} widest relative spreads (max - min over min, any metric; values in run order: {', '.join(runs)}):",
        "",
        "| test | metric | values |",
        "|---|---|---|",
    ]
    for spread in figures["spreads"]:
        lines.append(f"| {spread['test']} | {spread['metric']} | {' / '.join(f'{v:,}' for v in spread['values'])} |")
    lines.append("")
    if figures["varying_pairs"]:
        lines.append(
            f"Over all {figures['varying_pairs']} varying (test, metric) pairs: median spread "
            f"{figures['median_spread']:,.0f}, largest {figures['largest_spread']:,} (bytes, or calls for allocations)."
        )
        lines.append("")
    return lines


def plan(args: argparse.Namespace) -> list[Run]:
    """The runs of one project, in order (the twins and the timing rounds come later)."""
    serial = ["-p", "no:randomly"]
    other = [str(int(args.other_hashseed) + i) for i in range(args.hashseed_runs)]
    if args.hashseed is not None:  # a seed other than the recording's, whatever --other-hashseed says
        other = [str(int(seed) + 1) if seed == args.hashseed else seed for seed in other]
    return [
        Run("plain 1", serial, plugin=False),
        Run("record", ["--alloc-update", "--alloc-update-in-ci", *serial]),
        *(Run(f"serial {i}", serial) for i in range(1, args.serial + 1)),
        *(Run(f"random {i}", ["-p", "randomly", f"--randomly-seed={i}"]) for i in range(1, args.random + 1)),
        *(Run(f"xdist {i}", ["-n", "2", *serial]) for i in range(1, args.xdist + 1)),
        *(Run(f"hashseed {i}", serial, hashseed=seed) for i, seed in enumerate(other, 1)),
        *(Run(f"fresh {i}", serial, copy=chr(ord("b") + i - 1)) for i in range(1, args.fresh + 1)),
    ]


def measure(suite: Suite, args: argparse.Namespace, work: Path) -> tuple[dict[str, Any], list[str]]:
    """Every run of one project; its figures (for the JSON) and its Markdown section."""
    began = time.perf_counter()
    load_before = os.getloadavg()
    env = environment(args.hashseed)
    print(f"{suite.requirement}: preparing a venv in {work} ...", file=sys.stderr)
    python, source, archive = prepare(work, suite, args.sdists, env)
    copies = {"a": source}
    if args.pristine:
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # installed as usual; then the project's trees must not change
    remedy = [*(["--alloc-warmup"] if args.warmup else []), *(["--alloc-isolate"] if args.isolate else [])]
    remedy += args.option
    remedy += remedies(work, args.mark, env)
    remedy += [] if args.explain == "default" else [f"--alloc-explain={args.explain}"]
    budgets = work / "budgets.yaml"
    reports: dict[str, Results] = {}
    done: dict[str, Run] = {}

    def execute(step: Run) -> Run:
        if step.copy not in copies:  # a fresh copy, unpacked right before its run
            copies[step.copy] = unpack(archive, work / step.copy)
        slug = step.label.replace(" ", "-")
        junit = work / "reports" / f"{slug}.xml"
        options = [*step.options, f"--junitxml={junit}"]
        report = None
        if step.plugin:
            report = work / "reports" / f"{slug}.json"
            options += [f"--alloc-json={report}", f"--alloc-file={budgets}", *remedy]
        run_env = env if step.hashseed is None else {**env, "PYTHONHASHSEED": step.hashseed}
        command = pytest_command(python, suite.tests, options, step.plugin, args.pristine)
        step.elapsed = run(command, copies[step.copy], run_env, report)
        step.outcomes = junit_outcomes(junit)
        if report is not None:
            reports[step.label] = load(report)
        done[step.label] = step
        counted = f", {len(reports[step.label])} results" if report is not None else ""
        print(f"  {step.label}: {len(step.outcomes)} tests{counted}, {step.elapsed:.1f} s", file=sys.stderr)
        if args.keep:
            kept = args.keep / suite.name
            kept.mkdir(parents=True, exist_ok=True)
            for path in (junit, report):
                if path is not None:
                    shutil.copy(path, kept / path.name)
        return step

    for step in plan(args):
        execute(step)

    # Timing: the commands a user types, no report options; alternating order, medians.
    times: dict[str, list[float]] = {"plain": [], "check": [], "record": []}
    for index in range(args.timing_rounds):
        scratch = work / f"timing-budgets-{index + 1}.yaml"
        commands = {
            "plain": pytest_command(python, suite.tests, ["-p", "no:randomly"], False, args.pristine),
            "check": pytest_command(
                python, suite.tests, ["-p", "no:randomly", f"--alloc-file={budgets}", *remedy], True, args.pristine
            ),
            "record": pytest_command(
                python,
                suite.tests,
                ["-p", "no:randomly", "--alloc-update", "--alloc-update-in-ci", f"--alloc-file={scratch}", *remedy],
                True,
                args.pristine,
            ),
        }
        for kind in list(commands) if index % 2 == 0 else reversed(commands):
            times[kind].append(run(commands[kind], source, env))
        print(f"  timing {index + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items()), file=sys.stderr)

    # The budgets a check run compares against are the recording run's measurements; make sure of it.
    for label, results in reports.items():
        for entry, item in results.items():
            if label != "record" and entry in reports["record"]:
                for metric, verdict in item["metrics"].items():
                    recorded = reports["record"][entry]["metrics"][metric]["measured"]
                    assert verdict["budget"] == recorded, (label, entry, metric, verdict["budget"], recorded)

    # Tests that fail with the plugin but not by their budget, and pass in every plain run.
    plain_runs = [step for step in done.values() if not step.plugin]
    passing = set.intersection(*({k for k, o in s.outcomes.items() if o == "passed"} for s in plain_runs))
    known_failures = sorted(set.union(*({k for k, o in s.outcomes.items() if o == "failed"} for s in plain_runs)))
    suspects: dict[str, list[str]] = {}  # JUnit key -> the plugin runs it failed in, not by its budget
    for step in [s for s in done.values() if s.plugin]:
        budget_failed = {
            junit_key(nodeid) for (nodeid, _), item in reports[step.label].items() if item["status"] in BUDGET_FAILURES
        }
        for test, outcome in step.outcomes.items():
            if outcome == "failed" and test not in budget_failed and test in passing:
                suspects.setdefault(test, []).append(step.label)
    # Each run with such a test gets a plain twin: the same conditions without the plugin.
    twins: dict[str, Run] = {}
    for label in dict.fromkeys(label for labels in suspects.values() for label in labels):
        step = done[label]
        if label.startswith(("record", "serial")):
            continue  # plain 1 is their twin already
        options = [o for o in step.options if not o.startswith("--alloc-")]
        copy = step.copy if step.copy == "a" else chr(ord(max(copies)) + 1)  # a fresh run's twin: a fresh copy
        twins[label] = execute(Run(f"plain twin of {label}", options, copy, False, step.hashseed))
    broken: dict[str, dict[str, Any]] = {}
    conditional: dict[str, dict[str, Any]] = {}
    for test, labels in sorted(suspects.items()):
        also = [label for label in labels if label in twins and twins[label].outcomes.get(test) == "failed"]
        (conditional if also else broken)[test] = {"test": test, "runs": labels, "fails_without_plugin_in": also}

    figures = analyse({label: reports[label] for label in reports}, "record", args.top)
    collected = len(done["plain 1"].outcomes)
    plain_passed = sum(o == "passed" for o in done["plain 1"].outcomes.values())
    measured = sum(region is None for _, region in reports["record"])

    def median(kind: str) -> float | None:
        return statistics.median(times[kind]) if times[kind] else None

    ratios = {
        kind: round(median(kind) / median("plain"), 2)  # type: ignore[operator]
        for kind in ("check", "record")
        if times[kind] and median("plain")
    }
    failed_per_run = {
        label: sum(s in BUDGET_FAILURES for s in (i["status"] for i in r.values())) for label, r in reports.items()
    }
    failed_per_run.pop("record")
    versions = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True, check=True, env=env
    ).stdout.split()
    result: dict[str, Any] = {
        "project": suite.requirement,
        "tests": list(suite.tests),
        "extras": list(suite.extras),
        "note": suite.note,
        "versions": versions,
        "collected": collected,
        "passed_without_plugin": plain_passed,
        "measured": measured,
        "measured_percent": percent(measured, collected),
        "budget_failures": failed_per_run,
        "broken_by_plugin": list(broken.values()),
        "fail_in_some_conditions_without_plugin_too": list(conditional.values()),
        "known_failures": known_failures,
        "times": times,
        "medians": {kind: median(kind) for kind in times},
        "ratios": ratios,
        "wall": {label: round(step.elapsed, 2) for label, step in done.items()},
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "duration": round(time.perf_counter() - began, 1),
        **figures,
    }
    wanted = ("pytest", "pytest-xdist", "pytest-randomly", "hypothesis", normalized(suite.name))
    lines = [
        f"## {suite.requirement}",
        "",
        f"`pytest {' '.join(suite.tests)}`"
        + (f"; extra packages: {', '.join(suite.extras)}" if suite.extras else "")
        + (f". {suite.note}" if suite.note else "")
        + ".",
        "Versions: " + ", ".join(v for v in versions if normalized(v.split("==")[0]) in wanted) + ".",
        f"Load average {load_before[0]:.2f} before, {result['load_average']['after'][0]:.2f} after; "
        f"the project took {result['duration']:.0f} s.",
        "",
        f"Collected {collected} tests ({plain_passed} passed without the plugin); measured {measured} "
        f"({cell(result['measured_percent'])} of those collected).",
        "",
        "Failing without the plugin too (known failures): " + (", ".join(known_failures) or "none") + ".",
        "",
        "Broken by the plugin (passes in every plain run, fails with the plugin, not by its budget): "
        + ("; ".join(f"{b['test']} (in {', '.join(b['runs'])})" for b in broken.values()) if broken else "none")
        + ".",
    ]
    if conditional:
        lines.append(
            "Failing with the plugin in some runs, and without it under the same conditions: "
            + "; ".join(f"{c['test']} (in {', '.join(c['fails_without_plugin_in'])})" for c in conditional.values())
            + "."
        )
    lines.append("")
    if times["plain"]:
        lines += [
            f"Time, medians of {args.timing_rounds} alternating rounds: plain {median('plain'):.1f} s, "
            f"check {median('check'):.1f} s ({ratios.get('check', float('nan')):.2f}x), "
            f"record {median('record'):.1f} s ({ratios.get('record', float('nan')):.2f}x).",
            "",
        ]
    wall = {label: step.elapsed for label, step in done.items()}
    lines += render(figures, wall, args.top)
    return result, lines


def summary(projects: list[dict[str, Any]], args: argparse.Namespace) -> list[str]:
    """One row per project: the figures the target is about."""
    kinds = [
        ("serial", args.serial),
        ("random", args.random),
        ("xdist", args.xdist),
        ("fresh", args.fresh),
        ("hashseed", args.hashseed_runs),
    ]
    columns = [kind for kind, count in kinds if count]
    lines = [
        "| project | collected | measured | identical: allocations | all four | budget failures: "
        + " | ".join(f"{kind} 1-{count}" if count > 1 else kind for kind, count in kinds if count)
        + " | broken by the plugin | check / plain | record / plain |",
        "|---|---|---|---|---|" + "---|" * len(columns) + "---|---|---|",
    ]
    for project in projects:
        failures = project["budget_failures"]
        cells = [", ".join(str(failures[label]) for label in failures if label.split()[0] == kind) for kind in columns]
        identical = project["identical"]
        ratios = project["ratios"]
        lines.append(
            f"| {project['project']} | {project['collected']} | {project['measured']} "
            f"({cell(project['measured_percent'])}) | {cell(identical.get('allocations', {}).get('percent'))} | "
            f"{cell(identical['all']['percent'])} | {' | '.join(cells)} | "
            f"{', '.join(b['test'] for b in project['broken_by_plugin']) or 0} | "
            f"{ratios.get('check', '-')} | {ratios.get('record', '-')} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--project",
        action="append",
        default=[],
        metavar="SPEC",
        help="NAME==VERSION[:TESTPATH][+EXTRA_DEPS], or a known suite's name; repeatable (default: the known suites)",
    )
    parser.add_argument("--tests", default="tests", help="the test path of a --project that gives none")
    parser.add_argument("--serial", type=int, default=3, help="serial check runs, -p no:randomly")
    parser.add_argument("--random", type=int, default=3, help="check runs in random order, seeds 1, 2, ...")
    parser.add_argument("--xdist", type=int, default=2, help="check runs with -n 2 -p no:randomly")
    parser.add_argument("--fresh", type=int, default=1, help="check runs, each in a copy in which nothing has run")
    parser.add_argument("--hashseed-runs", type=int, default=1, help="check runs under another PYTHONHASHSEED")
    parser.add_argument("--timing-rounds", type=int, default=3, help="rounds of plain, check and recording runs")
    parser.add_argument("--hashseed", default=None, help="PYTHONHASHSEED for every run (default: unset, random)")
    parser.add_argument("--other-hashseed", default="1000", help="PYTHONHASHSEED of the first hashseed run")
    parser.add_argument(
        "--explain",
        choices=("off", "rerun", "trace", "default"),
        default="off",
        help="--alloc-explain for every plugin run (default: off; 'default': the plugin's own default)",
    )
    parser.add_argument("--pristine", action="store_true", help="no bytecode and no pytest cache in the trees")
    parser.add_argument("--warmup", action="store_true", help="every plugin run with --alloc-warmup")
    parser.add_argument("--isolate", action="store_true", help="every plugin run with --alloc-isolate")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="OPTION",
        help="one more pytest option for every plugin run, such as --option=--alloc-first-call-only (repeatable)",
    )
    parser.add_argument(
        "--mark",
        action="append",
        default=[],
        metavar="NODEID=ARGUMENTS",
        help="mark the tests whose node id ends with NODEID alloc_budget(ARGUMENTS); repeatable",
    )
    parser.add_argument("--sdists", type=Path, default=None, help="a directory of sdists to use before downloading")
    parser.add_argument("--work", type=Path, default=None, help="work here, and keep it (default: a temporary one)")
    parser.add_argument("--top", type=int, default=15, help="rows in the tables of failures and widest spreads")
    parser.add_argument("--out", type=Path, default=Path("repeatability.md"), help="Markdown file for the tables")
    parser.add_argument("--json", type=Path, default=None, help="JSON file for every figure")
    parser.add_argument("--keep", type=Path, default=None, help="copy the JSON and JUnit reports into this directory")
    args = parser.parse_args()
    suites = [parse_project(spec, args.tests) for spec in args.project] or list(SUITES.values())
    if args.sdists is not None:
        args.sdists = args.sdists.resolve()

    began = time.perf_counter()
    uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    projects: list[dict[str, Any]] = []
    sections: list[str] = []
    with tempfile.TemporaryDirectory(prefix="allocbudget-repeat-") as temporary:
        root = (args.work or Path(temporary)).resolve()
        for index, suite in enumerate(suites, 1):
            work = root / normalized(suite.name)
            if work.exists():
                shutil.rmtree(work)
            work.mkdir(parents=True)
            project, lines = measure(suite, args, work)
            projects.append(project)
            sections += lines
            # Written after each project, so that a project that breaks later loses nothing measured so far.
            write(args, projects, sections, uptime, began, final=index == len(suites))


def write(
    args: argparse.Namespace,
    projects: list[dict[str, Any]],
    sections: list[str],
    uptime: str,
    began: float,
    final: bool,
) -> None:
    remedy = " ".join(
        [*(["--alloc-warmup"] if args.warmup else []), *(["--alloc-isolate"] if args.isolate else []), *args.option]
    )
    duration = time.perf_counter() - began
    header = [
        f"Python {sys.version.split()[0]} on {sys.platform}, {os.cpu_count()} CPUs; PYTHONHASHSEED "
        f"{args.hashseed or 'random per run'} (hashseed runs: from {args.other_hashseed}); "
        f"`uptime` at the start: {uptime}.",
        f"Runs per project: plain 1, record, serial x{args.serial}, random x{args.random}, xdist x{args.xdist}, "
        f"hashseed x{args.hashseed_runs}, fresh x{args.fresh}, {args.timing_rounds} timing rounds; "
        f"trees {'pristine' if args.pristine else 'as runs leave them'}; in every plugin run: "
        + (remedy or "no remedy")
        + (f" ({', '.join(args.mark)})" if args.mark else "")
        + ("" if args.explain == "default" else f"; `--alloc-explain={args.explain}`")
        + f". {'The whole protocol took' if final else 'So far (not finished):'} {duration:.0f} s.",
        "",
    ]
    text = "\n".join([*header, *summary(projects, args), "", *sections]) + "\n"
    if final:
        print(text)
    args.out.write_text(text)
    if args.json:
        document = {
            "python": sys.version.split()[0],
            "uptime": uptime,
            "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "duration": round(duration, 1),
            "finished": final,
            "projects": projects,
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
