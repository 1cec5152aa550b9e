"""Every command-line option and ini key of the plugin, registered in one place.

Each option that sets a lasting preference has an ini key of the same meaning; one-shot actions (recording,
pruning, recording in CI) are options only.  docs/reference.md lists the same set, and a test keeps them equal.
"""

from __future__ import annotations

import argparse

import pytest

from .settings import DEFAULT_FILE, DEFAULT_LOCK_TIMEOUT, DEFAULT_TOLERANCE

__all__ = ["ISOLATED_CHILD_OPTION", "pytest_addoption"]

#: Internal: given to the fresh process that runs one isolated test, with the file its results go to.
ISOLATED_CHILD_OPTION = "--alloc-isolated-child"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("allocbudget", "allocation budgets (pytest-allocbudget)")
    group.addoption(
        "--alloc-update",
        action="store_true",
        default=False,
        help="record the allocation budgets of the budgeted tests that run and pass; other entries are kept.",
    )
    group.addoption(
        "--alloc-file",
        metavar="PATH",
        default=None,
        help=f"budget file to read and write (default: ini alloc_budget_file, else {DEFAULT_FILE} at the rootdir).",
    )
    group.addoption(
        "--alloc-lock-timeout",
        metavar="SECONDS",
        default=None,
        help="how long an update run waits for another one that is writing the same budget file before it gives up, "
        f"with an error (default: ini alloc_budget_lock_timeout, else {DEFAULT_LOCK_TIMEOUT:g}).",
    )
    group.addoption(
        "--alloc-tolerance",
        metavar="SPEC",
        default=None,
        help="tolerance above a budget before a test fails: '5%%', '4 KiB', '2%%, 4 KiB' or "
        "'peak: 5%%; allocations: 2%%, 16' (default: ini alloc_budget_tolerance, else '2%%, 4 KiB' for the byte "
        "metrics and '2%%, 16' for allocations).",
    )
    group.addoption(
        "--alloc-explain",
        metavar="MODE",
        default=None,
        help="how a failure finds its source lines: 'rerun' runs a failing marker-budgeted test again under "
        "tracemalloc and the counter; 'trace' also runs tracemalloc in every measured window, for the lines alive "
        "at its end (slower); 'off' lists none (default: ini alloc_budget_explain, else 'rerun').",
    )
    group.addoption(
        "--alloc-engine",
        metavar="ENGINE",
        default=None,
        help="what measures: 'counter' (the allocation counter: all four metrics), 'tracemalloc' (peak and "
        "retained only), 'auto' (the counter where available) (default: ini alloc_budget_engine, else 'auto').",
    )
    group.addoption(
        "--alloc-all-threads",
        action="store_true",
        default=False,
        help="count the allocations of every thread, not only the thread running the test (counter only).",
    )
    group.addoption(
        "--alloc-strict",
        action="store_true",
        default=None,
        help="fail on anything that is not a checked budget: missing entries and profiles, metrics that cannot be "
        "measured here, stale entries (default: ini alloc_budget_strict, else on in CI, off elsewhere).",
    )
    group.addoption(
        "--alloc-update-in-ci",
        action="store_true",
        default=False,
        help="allow --alloc-update where a CI environment is detected (it is refused there otherwise).",
    )
    group.addoption(
        "--alloc-prune",
        action="store_true",
        default=False,
        help="with --alloc-update on a full run: remove the stale entries of tests that no longer exist.",
    )
    group.addoption(
        "--alloc-json",
        metavar="PATH",
        default=None,
        help="write every measurement, its budget and verdict, and the summary, as JSON to PATH "
        "(default: ini alloc_budget_json, else none).",
    )
    group.addoption(
        "--alloc-all",
        action="store_true",
        default=None,
        help="budget every test function, marked or not; @pytest.mark.alloc_budget(False) opts one out "
        "(default: ini alloc_budget_all, else off).",
    )
    group.addoption(
        "--alloc-warmup",
        action="store_true",
        default=None,
        help="call every marker-budgeted test once unmeasured before its measured call, so that first-call costs "
        "(lazy imports, caches) stay out of its numbers; warmup=False on a marker opts a test out "
        "(default: ini alloc_budget_warmup, else off).",
    )
    group.addoption(
        "--alloc-isolate",
        action="store_true",
        default=None,
        help="run every budgeted test in a fresh Python process, so that its numbers do not depend on the tests "
        "that ran before it in this one (about a pytest start-up per test); isolate=False on a marker opts a test "
        "out (default: ini alloc_budget_isolate, else off).",
    )
    group.addoption(
        ISOLATED_CHILD_OPTION,
        metavar="PATH",
        default=None,
        help=argparse.SUPPRESS,  # internal: this run is the fresh process of an isolated test; results go to PATH
    )
    parser.addini(
        "alloc_budget_warmup",
        type="bool",
        help="call every marker-budgeted test once unmeasured first, as for --alloc-warmup (default: false).",
        default=False,
    )
    parser.addini(
        "alloc_budget_isolate",
        type="bool",
        help="run every budgeted test in a fresh Python process, as for --alloc-isolate (default: false).",
        default=False,
    )
    parser.addini(
        "alloc_budget_strict",
        help="strict mode, as for --alloc-strict: true, false, or auto (on in CI) (default: auto).",
        default="auto",
    )
    parser.addini(
        "alloc_budget_json",
        help="write the JSON report to this path, relative to the rootdir, as for --alloc-json (default: none).",
        default="",
    )
    parser.addini(
        "alloc_budget_all",
        type="bool",
        help="budget every test function, as for --alloc-all (default: false).",
        default=False,
    )
    parser.addini(
        "alloc_budget_explain",
        help="how a failure finds its source lines, as for --alloc-explain (default: 'rerun').",
        default="",
    )
    parser.addini(
        "alloc_budget_engine",
        help="what measures, as for --alloc-engine (default: 'auto').",
        default="",
    )
    parser.addini(
        "alloc_budget_all_threads",
        type="bool",
        help="count the allocations of every thread, as for --alloc-all-threads (default: false).",
        default=False,
    )
    parser.addini(
        "alloc_budget_file",
        help=f"budget file, relative to the ini file's directory (default: {DEFAULT_FILE} at the rootdir).",
        default="",
    )
    parser.addini(
        "alloc_budget_lock_timeout",
        help="seconds an update run waits for another one writing the budget file, as for --alloc-lock-timeout "
        f"(default: {DEFAULT_LOCK_TIMEOUT:g}).",
        default="",
    )
    parser.addini(
        "alloc_budget_tolerance",
        help=f"default tolerance above a budget, as for --alloc-tolerance (default: '{DEFAULT_TOLERANCE}').",
        default="",
    )
