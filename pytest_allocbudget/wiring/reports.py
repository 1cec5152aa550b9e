"""What a run says at its end: the terminal summary's lines, the JSON report and GitHub's step summary.

The texts themselves are made in judging/ (pure functions of the verdicts); this module gathers what they need from
the run and writes them where they go.  A report that cannot be written is an error to show, never an exception
that would hide the test results.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..budgets.store import EntryKey
from .session import BudgetSession
from .settings import RunSettings

__all__ = ["show", "summary_lines", "write_reports"]

Line = tuple[str, "str | None"]  # a text and its colour


def show(path: Path, rootdir: Path | None) -> Path:
    """``path`` relative to the rootdir where it lies inside it, as the summary names files."""
    if rootdir is not None:
        try:
            return path.relative_to(rootdir)
        except ValueError:
            pass
    return path


def summary_lines(
    session: BudgetSession,
    settings: RunSettings,
    *,
    write_error: str | None,
    counter_missing: str | None,
    interference: str | None,
    stale: Sequence[EntryKey] | None,
    ci: str | None,
    notes: Sequence[str],
    errors: Sequence[str],
) -> list[Line]:
    """Every line of the ``allocation budgets`` section, in order."""
    from ..judging import report

    lines = report.summary_lines(
        session.verdicts,
        session.profile,
        show(session.path, session.rootdir),
        session.change_counts() if session.update else None,
        session.written,
        write_error,
        strict=settings.strict,
    )
    if counter_missing is not None:
        lines.append((report.counter_missing_text(counter_missing, settings.strict), "yellow"))
    if interference is not None:
        lines.append((report.interference_text(interference), "yellow"))
    lines.extend(report.stale_lines(stale, session.pruned, session.update, settings.strict))
    if settings.strict and ci is not None:
        lines.append((f"strict mode is on: a CI environment was detected ({ci} is set)", None))
    lines.extend((note, "yellow") for note in notes)
    lines.extend((f"error: {error}", "red") for error in errors)
    return lines


def write_reports(
    session: BudgetSession,
    settings: RunSettings,
    *,
    stale: Sequence[EntryKey] | None,
    measured_any: bool,
    engine: str,
    unmeasurable: str | None,
    environ: Mapping[str, str] = os.environ,
) -> list[str]:
    """Write the JSON report (when asked for) and append to GitHub's step summary (on GitHub Actions, for a check
    run that measured something); return what could not be written."""
    from ..judging.github import github_summary
    from ..judging.jsonreport import json_report, write_json
    from ..judging.report import describe_key

    errors = []
    named = [describe_key(key) for key in stale or ()]
    if settings.json_path is not None:
        document = json_report(
            session,
            stale=named,
            full_run=stale is not None,
            strict=settings.strict,
            engine=engine,
            unmeasurable=unmeasurable,
        )
        try:
            write_json(settings.json_path, document)
        except OSError as error:
            errors.append(f"cannot write the JSON report {settings.json_path}: {error.strerror or error}")
    summary_file = environ.get("GITHUB_STEP_SUMMARY")
    if summary_file and environ.get("GITHUB_ACTIONS") == "true" and measured_any and not session.update:
        try:
            with open(summary_file, "a", encoding="utf-8") as stream:
                stream.write(github_summary(session.verdicts, session.profile, named))
        except OSError as error:
            errors.append(f"cannot append to GITHUB_STEP_SUMMARY {summary_file}: {error.strerror or error}")
    return errors
