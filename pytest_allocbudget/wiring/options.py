"""Every command-line option and ini key of the plugin, registered in one place.

Each option that sets a lasting preference has an ini key of the same meaning; one-shot actions (recording,
pruning, recording in CI) are options only.

This module is also where docs/reference.md gets its tables of options and ini keys: docs/examples/generate.py
makes each row from the help text registered here (the ``(default: ...)`` at its end is the row's default) and from
:data:`REFERENCE`, what the reference says beyond what fits in ``--help``.  So a help text is written once, and
the reference cannot say other than ``--help``; a test fails until the tables are made again after a change.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from .settings import DEFAULT_FILE, DEFAULT_LOCK_TIMEOUT, DEFAULT_TOLERANCE, ENGINES, EXPLAIN_MODES

__all__ = ["ISOLATED_CHILD_OPTION", "REFERENCE", "Reference", "pytest_addoption"]

#: Internal: given to the fresh process that runs one isolated test, with the file its results go to.
ISOLATED_CHILD_OPTION = "--alloc-isolated-child"


@dataclass(frozen=True)
class Reference:
    """What docs/reference.md says of an option or ini key beyond its help text (Markdown)."""

    value: str = ""  # the kind of value it takes; a flag or a bool ini key needs none
    more: str = ""  # sentences that follow the help text in the table's Meaning column


def _one_of(choices: Sequence[str]) -> str:
    quoted = [f"`{choice}`" for choice in choices]
    return f"{', '.join(quoted[:-1])} or {quoted[-1]}"


_TOLERANCE = "tolerance (see [Tolerance syntax](#tolerance-syntax))"
_OFF_FOR_ONE_RUN = "Either one turns it on; `-o {key}=false` turns off a `true` in the ini file for one run."

#: The reference's words for each option and ini key, by name.  An option or key without an entry still gets its
#: row, from its help text alone.
REFERENCE: dict[str, Reference] = {
    "--alloc-update": Reference(
        more="This is update mode: at the end of the run the budget file is written if an entry was created or a "
        "value moved beyond its tolerance. Regressions and missing entries do not fail in this mode; explicit "
        "limits still do."
    ),
    "--alloc-file": Reference("path", "A relative path is relative to the directory pytest was started from."),
    "--alloc-lock-timeout": Reference(
        "seconds (a number >= 0)",
        "It applies while another update run writes the same file (see [Two runs at once](#two-runs-at-once)); "
        "the file is then left as it is. `0` tries once and does not wait. A "
        "check run never waits.",
    ),
    "--alloc-from-start": Reference(
        more="It applies to every test measured as a whole, by the marker or by `--alloc-all`; regions of the "
        "`alloc_budget` fixture are measured where they run. A test for which no such call can be made (async, "
        "a platform without `fork`) is measured in the session, and the summary says why. "
        "See [measuring.md](measuring.md#every-call-from-the-sessions-start---alloc-from-start)."
    ),
    "--alloc-hash-seed": Reference(
        "`keep`, or a whole number from 0 to 4294967295",
        "Python salts string hashes with a random seed per process, and code that keys dicts and sets by strings "
        "allocates differently under each seed. The restart happens before any test runs, with the same command "
        "and arguments; it is said in pytest's header. Where pytest is not started as a command "
        "(`pytest.main()`), it cannot restart, and the header and the summary say so. "
        "See [measuring.md](measuring.md#one-hash-seed).",
    ),
    "--alloc-tolerance": Reference(_TOLERANCE, "It replaces the ini setting and the default as a whole."),
    "--alloc-explain": Reference(
        _one_of(EXPLAIN_MODES),
        "With `rerun`, the test is called once more in a forked child process, with the counter sampling the lines "
        "that allocate (without the counter: under tracemalloc and a trace hook). `trace` costs about what "
        "tracemalloc costs, on every measured test. "
        "See [measuring.md](measuring.md#how-a-failure-is-explained).",
    ),
    "--alloc-engine": Reference(
        _one_of(ENGINES),
        "`counter` is a usage error where the counter is not available. With `tracemalloc`, recorded `allocations` "
        "and `allocated` values are not checked (but fail their test in [strict mode](#strict-mode-and-ci)), and "
        "an update run keeps them as they are. `auto` falls back to tracemalloc where the counter is not "
        "available, with one line in the summary saying why. "
        "See [measuring.md](measuring.md#the-two-engines-the-allocation-counter-and-tracemalloc).",
    ),
    "--alloc-all-threads": Reference(
        more="It applies to all four metrics. tracemalloc always counts every thread, so it makes no difference there."
    ),
    "--alloc-strict": Reference(
        more="Missing entries fail in any mode; strict mode also fails a budgeted test whose profile has no "
        "entries at all, and one whose entry has `allocations` or `allocated` values that this run cannot measure "
        "(the allocation counter is not available, or the run chose `--alloc-engine=tracemalloc`); and a "
        "[full run](#stale-entries) that finds stale entries exits with code 1. It changes nothing in an update "
        "run. The flag can only turn strict mode on; `-o alloc_budget_strict=false` turns it off for one run, in "
        "CI too. See [ci.md](ci.md#strict-mode)."
    ),
    "--alloc-update-in-ci": Reference(
        more="Without it, `--alloc-update` there is a usage error, so that budgets are not recorded by a job whose "
        "result nobody reviews. See [ci.md](ci.md#ci-detection)."
    ),
    "--alloc-prune": Reference(
        more="Only a full run can tell which entries are [stale](#stale-entries), so on any other run it removes "
        "nothing, and the summary says so. Without `--alloc-update` it is a usage error."
    ),
    "--alloc-json": Reference(
        "path",
        "The [JSON report](#json-report) is written at the end of the run, replacing the file; missing directories "
        "are created. A relative path is relative to the directory pytest was started from.",
    ),
    "--alloc-all": Reference(
        more="Each pytest test function is budgeted as if it had a bare `@pytest.mark.alloc_budget`, and a test's "
        "own marker still applies. `unittest.TestCase` tests and other items that are not test functions are left "
        "unmeasured, without a warning. A test that uses the `alloc_budget` fixture keeps its regions, and is not "
        "measured as a whole. See [usage.md](usage.md#budget-every-test---alloc-all)."
    ),
    "--alloc-warmup": Reference(
        more="The test function runs twice, with the same fixture values, as with the marker's `warmup=True`. It "
        "applies to the tests `--alloc-all` budgets too; regions of the `alloc_budget` fixture are not warmed up. "
        "See [usage.md](usage.md#numbers-that-depend-on-what-ran-before)."
    ),
    "--alloc-isolate": Reference(
        more="It applies to every budgeted test: by the marker, by `--alloc-all` or by regions of the fixture. "
        "See [Isolated tests](#isolated-tests)."
    ),
    "--alloc-first-call-only": Reference(
        more="Without it, a test measured as a whole whose first call is over its budget or a limit is called once "
        "more, in a forked child process, and judged on that call; regions are always judged on their one run. "
        "See [measuring.md](measuring.md#a-failure-is-confirmed-by-a-second-call)."
    ),
    "alloc_budget_file": Reference("path", "Used when `--alloc-file` is not given."),
    "alloc_budget_lock_timeout": Reference("seconds (a number >= 0)", "Used when `--alloc-lock-timeout` is not given."),
    "alloc_budget_tolerance": Reference(_TOLERANCE, "Used when `--alloc-tolerance` is not given."),
    "alloc_budget_engine": Reference(_one_of(ENGINES), "Used when `--alloc-engine` is not given."),
    "alloc_budget_explain": Reference(_one_of(EXPLAIN_MODES), "Used when `--alloc-explain` is not given."),
    "alloc_budget_all_threads": Reference(more=_OFF_FOR_ONE_RUN.format(key="alloc_budget_all_threads")),
    "alloc_budget_strict": Reference(
        _one_of(("true", "false", "auto")),
        "`auto` is on where a CI environment is detected ([ci.md](ci.md#ci-detection)), off elsewhere. `false` "
        "keeps it off in CI too, but `--alloc-strict` still turns it on. `1`, `yes`, `on` and `0`, `no`, `off` "
        "are accepted too; any other value is a usage error.",
    ),
    "alloc_budget_json": Reference("path", "Used when `--alloc-json` is not given."),
    "alloc_budget_warmup": Reference(more=_OFF_FOR_ONE_RUN.format(key="alloc_budget_warmup")),
    "alloc_budget_isolate": Reference(more=_OFF_FOR_ONE_RUN.format(key="alloc_budget_isolate")),
    "alloc_budget_first_call_only": Reference(more=_OFF_FOR_ONE_RUN.format(key="alloc_budget_first_call_only")),
    "alloc_budget_from_start": Reference(more=_OFF_FOR_ONE_RUN.format(key="alloc_budget_from_start")),
    "alloc_budget_all": Reference(
        more=_OFF_FOR_ONE_RUN.format(key="alloc_budget_all") + " Set it here rather than on the command line: a run "
        "without it checks none of the entries of the tests it no longer budgets, and finds them stale."
    ),
}


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
        help="how a failure finds its source lines: 'rerun' runs a failing marker-budgeted test again with the "
        "counter sampling lines; 'trace' also runs tracemalloc in every measured window, for the lines alive "
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
        help="with the counter, count the allocations of every thread, not only those of the thread running the "
        "test (default: ini alloc_budget_all_threads, else off).",
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
        help="with --alloc-update on a full run: remove the stale entries, those of tests and regions that no "
        "longer exist or are no longer measured.",
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
        "--alloc-first-call-only",
        action="store_true",
        default=None,
        help="judge every test on its first call alone: a test whose first call exceeds its budget is not called a "
        "second time, in a child process, to tell work paid once per process from a regression "
        "(default: ini alloc_budget_first_call_only, else off).",
    )
    group.addoption(
        "--alloc-from-start",
        action="store_true",
        default=None,
        help="judge every test measured as a whole on a call from the session's start: in a child of a process "
        "kept from before the first test, after one unmeasured call, so that its numbers do not depend on the "
        "tests before it; the default tolerance of allocations is then 0.01%%, 1; from_start=False on a marker "
        "opts a test out (default: ini alloc_budget_from_start, else off).",
    )
    group.addoption(
        "--alloc-hash-seed",
        metavar="SEED",
        default=None,
        help="the hash seed (PYTHONHASHSEED) budgets are measured under: a number from 0 to 4294967295, recorded "
        "in the budget file by an update run, or 'keep' for the seed pytest was started with; a pytest started with "
        "another seed starts again with this one (default: ini alloc_budget_hash_seed, else the budget file's, "
        "else 0).",
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
        "alloc_budget_first_call_only",
        type="bool",
        help="judge every test on its first call alone, as for --alloc-first-call-only (default: false).",
        default=False,
    )
    parser.addini(
        "alloc_budget_from_start",
        type="bool",
        help="judge every test measured as a whole on a call from the session's start, as for --alloc-from-start "
        "(default: false).",
        default=False,
    )
    parser.addini(
        "alloc_budget_hash_seed",
        help="the hash seed budgets are measured under, as for --alloc-hash-seed (default: the budget file's, else 0).",
        default="",
    )
    parser.addini(
        "alloc_budget_strict",
        help="strict mode, as for --alloc-strict: true, false, or auto (on in CI) (default: auto).",
        default="auto",
    )
    parser.addini(
        "alloc_budget_json",
        help="write the JSON report to this path, relative to the ini file's directory (the rootdir without one), "
        "as for --alloc-json (default: none).",
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
        help=f"budget file, relative to the ini file's directory (the rootdir without one), as for --alloc-file "
        f"(default: {DEFAULT_FILE} at the rootdir).",
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
        help="tolerance above a budget, as for --alloc-tolerance "
        f"(default: '{DEFAULT_TOLERANCE}' for the byte metrics and '2%, 16' for allocations).",
        default="",
    )
