"""Running one budgeted test in a fresh Python process (``--alloc-isolate``, ``isolate=True``).

Much of what a test allocates the first time it does something is paid once per process: a lazy import, a codec,
a regular expression cache, a ``functools.lru_cache``.  In a long run, which test pays depends on which tests ran
before it: the order, ``-k``, pytest-randomly, and on which pytest-xdist worker.  A test run in a fresh process pays
the same costs in every run, whatever else the suite does.

The test is still part of this run: pytest sets up its fixtures here, and its call is replaced by one that starts
``python -m pytest <nodeid>`` with this run's rootdir, ini file, plugins and allocation settings, waits, and takes
back what the fresh process measured and how the test ended there.  The budgets are judged and recorded here, as
for any other test, so the budget file, the JSON report and the summary see no difference.  The fresh process
writes nothing but its result file (its cache and temporary directories are private), and never recurses.
"""

from __future__ import annotations

import importlib.util
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .options import ISOLATED_CHILD_OPTION
from .session import Recorded

__all__ = ["ChildOutcome", "IsolationError", "child_command", "run_isolated", "write_outcomes"]


class IsolationError(RuntimeError):
    """The fresh process did not run the test: it crashed, or did not collect it."""


@dataclass
class ChildOutcome:
    """How one test ended in the fresh process, before any budget was judged, and what it measured."""

    outcome: str = "passed"  # passed, failed, skipped, xfailed, xpassed
    phase: str = "call"  # where it stopped being passed: setup, call, teardown
    text: str = ""  # the failure's report, or the skip's reason
    wasxfail: str | None = None  # xfailed: the reason the failure was expected
    recorded: list[Recorded] = field(default_factory=list)

    def take(self, report: pytest.TestReport, raised: bool) -> None:
        """Note one phase's report (setup, call, teardown); the first phase that did not pass says how the test
        ended.  ``raised``: the phase raised, as opposed to a report made failed afterwards by an xfail marker."""
        if self.outcome != "passed":
            return
        wasxfail = getattr(report, "wasxfail", None)
        if wasxfail is not None and report.skipped:
            self.outcome, self.wasxfail = "xfailed", wasxfail  # replayed as an xfail
        elif wasxfail is not None or (report.when == "call" and report.failed and not raised):
            # The call passed; an xfail marker called it an unexpected pass (a strict one made that a failure).
            # The calling process's own marker judges the pass again.
            self.outcome = "xpassed"
        elif report.skipped:
            longrepr = report.longrepr
            reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
            self.outcome, self.text = "skipped", reason.removeprefix("Skipped: ")
        elif report.failed:
            # With what the test printed or logged there: the fresh process's output is not shown otherwise.
            sections = [f"{'-' * 10} {title} {'-' * 10}\n{content.rstrip()}" for title, content in report.sections]
            self.outcome, self.text = "failed", "\n\n".join([report.longreprtext, *sections])
        self.phase = report.when

    def replay(self) -> None:
        """End this process's call of the test as the fresh process's ended; returns when it passed.

        An unexpected pass returns too: this process's own xfail marker then reports it, strict or not, as pytest
        would have.
        """
        if self.outcome == "xfailed":
            pytest.xfail(self.wasxfail or "")
        if self.outcome == "skipped":
            pytest.skip(self.text)
        if self.outcome == "failed":
            where = "" if self.phase == "call" else f" (in its {self.phase})"
            pytest.fail(f"the test failed in its fresh process{where}:\n\n{self.text}", pytrace=False)


def write_outcomes(path: Path, outcomes: dict[str, ChildOutcome]) -> None:
    """The fresh process's side: hand the results back, by node id."""
    with open(path, "wb") as stream:
        pickle.dump(outcomes, stream)


def run_isolated(config: pytest.Config, nodeid: str, budget_file: Path) -> ChildOutcome:
    """Run the test ``nodeid`` alone in a fresh ``python -m pytest`` that reads ``budget_file``, and return how it
    went there."""
    with tempfile.TemporaryDirectory(prefix="allocbudget-isolate-") as name:
        work = Path(name)
        result_path = work / "result.pickle"
        command = child_command(config, nodeid, budget_file, result_path, work)
        completed = subprocess.run(
            command,
            cwd=config.invocation_params.dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            check=False,
        )
        output = completed.stdout.decode("utf-8", "replace")
        try:
            with open(result_path, "rb") as stream:
                outcomes: dict[str, ChildOutcome] = pickle.load(stream)
        except FileNotFoundError:
            raise IsolationError(_no_result(nodeid, completed.returncode, output)) from None
    outcome = outcomes.get(nodeid)
    if outcome is None:
        raise IsolationError(_no_result(nodeid, completed.returncode, output, ran=sorted(outcomes)))
    return outcome


def _no_result(nodeid: str, code: int, output: str, ran: Sequence[str] = ()) -> str:
    what = f"ran {', '.join(ran)} instead" if ran else f"exited with code {code} without running it"
    tail = "\n".join(output.rstrip().splitlines()[-30:])
    return f"{nodeid}: --alloc-isolate: the fresh pytest process {what}. Its output ended with:\n{tail}"


def child_command(config: pytest.Config, nodeid: str, budget_file: Path, result_path: Path, work: Path) -> list[str]:
    """``python -m pytest`` for ``nodeid`` alone, configured as this run is.

    The ini file (and so its addopts and markers) and the rootdir are this run's; the plugins named with ``-p``,
    ``-o`` overrides, ``-W`` filters, the import mode and the capture mode are passed on.  The allocation settings
    that change what is measured are passed as they were given.  pytest-xdist and pytest-randomly are loaded and
    idle whatever this run does (see ``_RUN_SHAPE``); the cache and the base temporary directory are the fresh
    process's own, so it can neither read this run's last-failed list nor clean up this run's temporary
    directories.
    """
    rootdir = config.rootpath
    # Only the file part is a path: a parameter id may hold anything, "//" included, which a Path would collapse.
    path, separator, rest = nodeid.partition("::")
    command = [sys.executable, "-m", "pytest", f"{rootdir / path}{separator}{rest}", f"--rootdir={rootdir}"]
    if config.inipath is not None:
        command += ["-c", str(config.inipath)]
    command += _passed_on(config)
    if config.pluginmanager.hasplugin("cacheprovider"):  # else cache_dir is an unknown ini key there
        command += ["-o", f"cache_dir={work / 'cache'}"]
    command += [
        f"--basetemp={work / 'tmp'}",
        f"--import-mode={config.getoption('importmode')}",
        f"--capture={config.getoption('capture')}",
        "-q",
        "--color=no",
    ]
    command += _run_shape_plugins()
    option = config.getoption
    for flag in ("--alloc-engine", "--alloc-explain", "--alloc-tolerance"):
        if option(flag):
            command.append(f"{flag}={option(flag)}")
    for flag in ("--alloc-all-threads", "--alloc-all", "--alloc-warmup", "--alloc-update", "--runxfail"):
        if option(flag):
            command.append(flag)
    command += [f"--alloc-file={budget_file}", f"{ISOLATED_CHILD_OPTION}={result_path}"]
    return command


#: Plugins that change how a suite is run (in parallel, in random order), not what a test does.  Whether this run
#: has them must not change what the fresh process measures: a loaded plugin's modules make ``sys.modules`` and
#: other global dicts bigger, which moves the moments they grow (tens of KiB) from one test to another.
_RUN_SHAPE = {"xdist", "xdist.plugin", "randomly", "pytest_randomly"}


def _run_shape_plugins() -> list[str]:
    """The fresh process loads the run-shape plugins that are installed, whatever this run did, and keeps them
    idle: no workers, no reordering (of one test), no reseeding of ``random``."""
    options: list[str] = []
    if importlib.util.find_spec("xdist") is not None:
        options += ["-p", "xdist", "-n", "0"]
    if importlib.util.find_spec("pytest_randomly") is not None:
        options += ["-p", "randomly", "--randomly-dont-reset-seed", "--randomly-dont-reorganize"]
    return options


def _passed_on(config: pytest.Config) -> list[str]:
    """The command-line options of this run that shape how the test runs: ``-p`` (but the run-shape plugins),
    ``-o``, ``-W``."""
    passed: list[str] = []
    args = list(config.invocation_params.args)
    for index, arg in enumerate(args):
        for flag in ("-p", "-o", "--override-ini", "-W", "--pythonwarnings"):
            if arg == flag and index + 1 < len(args):
                value, given = args[index + 1], [flag, args[index + 1]]
            elif arg.startswith(f"{flag}=") or (len(flag) == 2 and arg.startswith(flag) and len(arg) > 2):
                value, given = arg[len(flag) :].lstrip("="), [arg]
            else:
                continue
            if flag == "-p" and value.removeprefix("no:") in _RUN_SHAPE:
                continue
            passed += given
    return passed  # PYTEST_ADDOPTS is in the environment, which the fresh process inherits
