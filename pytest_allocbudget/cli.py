"""The ``allocbudget`` command: read, compare and validate budget files without running any test.

The budget file is committed and reviewed like code, but its raw YAML diff answers the reviewer's questions badly:
byte counts are unreadable, a region's name is three lines above its numbers, and nothing says by how much a value
moved.  This command answers them directly: ``show`` lists the budgets as a table, ``diff`` lists what changed
between two versions of the file (biggest relative increases first, as a pull-request comment if wanted, and as an
exit code for CI), and ``check`` validates files, for example after resolving a merge conflict by hand.

It uses argparse and never imports pytest: it reads files and runs no test, so it starts quickly and behaves the
same inside and outside a test environment.  Output is sorted throughout, so the same files always give the same
text, which a CI job can post or compare.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, Union

from . import __version__
from .budgets.store import BudgetFile, BudgetFileError, EntryKey, loads
from .judging.metrics import METRICS
from .judging.report import describe_key
from .judging.units import format_quantity
from .wiring.settings import DEFAULT_FILE

__all__ = ["BudgetDiff", "CliError", "ProfileDiff", "ValueChange", "compare", "main"]

STDIN = "-"
SHOW_FORMATS = ("text", "markdown", "json")
DIFF_FORMATS = ("text", "markdown")

#: Change kinds of one value, and of one entry.
INCREASED = "increased"
DECREASED = "decreased"
ADDED = "added"
REMOVED = "removed"
RESHAPED = "reshaped"  # an entry whose values did not move, but which gained or lost a metric

Values = Mapping[str, int]
#: A relative change: exact while finite, so that the sort order never depends on float rounding; ``inf`` from 0.
Relative = Union[Fraction, float]


class CliError(Exception):
    """A problem with the command's input that the user can fix; printed as one line, exit status 1."""


# --------------------------------------------------------------------------------------------------- reading


def _source(name: str) -> str:
    """How a file is named in output and errors."""
    return "<stdin>" if name == STDIN else name


def read_budgets(name: str) -> BudgetFile:
    """Read and validate one budget file, ``-`` meaning standard input.

    Unlike :func:`store.load`, a missing file is an error: the plugin treats it as "nothing recorded yet", but for a
    command a mistyped name that silently shows nothing (or diffs as "everything removed") would be worse than
    useless.
    """
    source = _source(name)
    if name == STDIN:
        buffer = getattr(sys.stdin, "buffer", None)
        try:
            # Bytes, decoded here: the file is UTF-8 whatever the locale says standard input is.
            text = buffer.read().decode("utf-8") if buffer is not None else sys.stdin.read()
        except UnicodeDecodeError as error:
            raise CliError(f"{source}: not UTF-8 text ({error.reason} at byte {error.start})") from None
        except OSError as error:
            raise CliError(f"{source}: cannot read: {error.strerror or error}") from None
    else:
        try:
            with open(name, encoding="utf-8") as stream:
                text = stream.read()
        except FileNotFoundError:
            raise CliError(f"{name}: no such file") from None
        except IsADirectoryError:
            raise CliError(f"{name}: is a directory, not a budget file") from None
        except UnicodeDecodeError as error:
            raise CliError(f"{name}: not UTF-8 text ({error.reason} at byte {error.start})") from None
        except OSError as error:
            raise CliError(f"{name}: cannot read: {error.strerror or error}") from None
    return loads(text, source=source)


# --------------------------------------------------------------------------------------------------- words


def _plural(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else (plural or singular + 's')}"


def _printable(text: str) -> str:
    """Escape control characters, so that an odd node id or region name cannot break a row over two lines."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else char.encode("unicode_escape").decode("ascii") for char in text)


def _entry(key: EntryKey) -> str:
    return _printable(describe_key(key))


def _unit(metric: str) -> str:
    known = METRICS.get(metric)
    return known.unit if known is not None else "count"


def _metric_order(metric: str) -> tuple[int, str]:
    """METRICS order; a name the table does not know (it cannot be read today) goes last, by name."""
    names = list(METRICS)
    return (names.index(metric), "") if metric in METRICS else (len(names), metric)


def _quantity(value: int, metric: str, exact: bool) -> str:
    """Human-readable by default; ``exact`` writes every digit, as the plugin's failure messages do, so that the
    two can be compared number for number."""
    unit = _unit(metric)
    if not exact:
        return format_quantity(value, unit)
    return f"{value:,} B" if unit == "bytes" else f"{value:,}"


def _signed(delta: int, metric: str, exact: bool) -> str:
    text = _quantity(delta, metric, exact)
    return f"+{text}" if delta > 0 else text


def _percent(relative: Relative | None) -> str:
    if relative is None:
        return ""
    if relative == float("inf"):
        return "n/a"  # from 0: no percentage means anything
    return f"{float(relative) * 100:+.1f}%"


def _text_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Iterable[int] = ()) -> list[str]:
    """Columns padded to their widest cell; numbers (the ``right`` columns) right-aligned so digits line up."""
    aligned = set(right)
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]

    def line(cells: Sequence[str]) -> str:
        padded = (
            cell.rjust(width) if index in aligned else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(cells, widths))
        )
        return "  ".join(padded).rstrip()

    return [line(header), line(["-" * width for width in widths]), *(line(row) for row in rows)]


def _md_code(text: str) -> str:
    """A Markdown code span that survives any node id: a fence longer than any run of backticks inside, and ``|``
    escaped, which GitHub requires even inside code spans in a table."""
    text = _printable(text)
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    padding = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{padding}{text}{padding}{fence}".replace("|", "\\|")


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Iterable[int] = ()) -> list[str]:
    aligned = set(right)
    separator = ["--:" if index in aligned else ":--" for index in range(len(header))]
    return [f"| {' | '.join(cells)} |" for cells in (header, separator, *rows)]


# --------------------------------------------------------------------------------------------------- show


def _select(budgets: BudgetFile, source: str, profile: str | None) -> list[str]:
    """The profiles to show or compare: all of them, sorted as in the file, or the one asked for."""
    names = sorted(budgets.profiles)
    if profile is None:
        return names
    if profile not in budgets.profiles:
        known = ", ".join(names) if names else "none"
        raise CliError(f"{source} has no profile {profile!r} (its profiles: {known})")
    return [profile]


def _entries(budgets: BudgetFile, profile: str) -> list[tuple[EntryKey, Values]]:
    return sorted(budgets.profile(profile).items(), key=lambda item: (item[0][0], item[0][1] or ""))


def _metrics(entries: Iterable[tuple[EntryKey, Values]]) -> list[str]:
    return sorted({metric for _, values in entries for metric in values}, key=_metric_order)


def _totals(budgets: BudgetFile, profiles: Sequence[str]) -> str:
    count = sum(len(budgets.profile(profile)) for profile in profiles)
    return f"{_plural(count, 'entry', 'entries')} in {_plural(len(profiles), 'profile')}"


def show_text(budgets: BudgetFile, source: str, profile: str | None = None, exact: bool = False) -> str:
    """A table per profile. Columns are the metrics recorded in that profile, since profiles differ: one where the
    allocation counter could not be built has no ``allocations`` column rather than a column of dashes."""
    profiles = _select(budgets, source, profile)
    out = [f"{_printable(source)}: {_totals(budgets, profiles)}"]
    if not budgets.profiles:
        out.append("no budgets recorded yet; `pytest --alloc-update` records them")
    for name in profiles:
        entries = _entries(budgets, name)
        metrics = _metrics(entries)
        rows = [
            [_entry(key), *(_quantity(values[m], m, exact) if m in values else "-" for m in metrics)]
            for key, values in entries
        ]
        out.append("")
        out.append(f"{_printable(name)} ({_plural(len(entries), 'entry', 'entries')})")
        if rows:
            table = _text_table(["test", *metrics], rows, right=range(1, len(metrics) + 1))
            out.extend(f"  {line}" for line in table)
    return "\n".join(out)


def show_markdown(budgets: BudgetFile, source: str, profile: str | None = None, exact: bool = False) -> str:
    """As :func:`show_text`, as Markdown tables for a pull request, an issue or a wiki page."""
    profiles = _select(budgets, source, profile)
    out = [f"{_md_code(source)}: {_totals(budgets, profiles)}"]
    for name in profiles:
        entries = _entries(budgets, name)
        metrics = _metrics(entries)
        rows = [
            [_md_code(describe_key(key)), *(_quantity(values[m], m, exact) if m in values else "-" for m in metrics)]
            for key, values in entries
        ]
        out.append("")
        out.append(f"### {_md_code(name)}")
        if rows:
            out.append("")
            out.extend(_md_table(["test", *metrics], rows, right=range(1, len(metrics) + 1)))
    return "\n".join(out)


def show_json(budgets: BudgetFile, source: str, profile: str | None = None) -> str:
    """The entries as plain data for scripts: the test and the region as separate fields (no need to parse
    ``describe_key`` back), values always exact integers (bytes, or a count)."""
    document: dict[str, object] = {
        "profiles": {
            name: [
                {
                    "test": nodeid,
                    "region": region,
                    "metrics": {metric: values[metric] for metric in sorted(values, key=_metric_order)},
                }
                for (nodeid, region), values in _entries(budgets, name)
            ]
            for name in _select(budgets, source, profile)
        }
    }
    return json.dumps(document, indent=2)


# --------------------------------------------------------------------------------------------------- diff


@dataclass(frozen=True)
class ValueChange:
    """One metric of one entry that differs between the two files; ``None`` where the metric is not recorded."""

    key: EntryKey
    metric: str
    old: int | None
    new: int | None

    @property
    def kind(self) -> str:
        if self.old is None:
            return ADDED
        if self.new is None:
            return REMOVED
        return INCREASED if self.new > self.old else DECREASED

    @property
    def relative(self) -> Relative | None:
        """(new - old) / old; ``inf`` for an increase from 0; ``None`` when either side is missing."""
        if self.old is None or self.new is None:
            return None
        if self.old == 0:
            return float("inf")
        return Fraction(self.new - self.old, self.old)

    def sort_key(self) -> tuple[int, Relative, str, str, tuple[int, str]]:
        """Moved values first, the biggest relative increase on top (a decrease sorts below every increase, the
        biggest decrease last), then metrics that appeared, then metrics that vanished; ties by entry and metric."""
        relative = self.relative
        group = 0 if relative is not None else (1 if self.kind == ADDED else 2)
        return (
            group,
            -(relative if relative is not None else 0),
            self.key[0],
            self.key[1] or "",
            _metric_order(self.metric),
        )


@dataclass
class ProfileDiff:
    """What changed in one profile.  ``entries`` says how each changed entry counts in the summary."""

    name: str
    added: list[tuple[EntryKey, Values]] = field(default_factory=list)
    removed: list[tuple[EntryKey, Values]] = field(default_factory=list)
    changes: list[ValueChange] = field(default_factory=list)
    entries: dict[EntryKey, str] = field(default_factory=dict)
    unchanged: int = 0

    def count(self, kind: str) -> int:
        """Entries of one kind: added, removed, increased (a value went up), decreased (values only went down) or
        reshaped (no value moved, but a metric appeared or vanished)."""
        if kind == ADDED:
            return len(self.added)
        if kind == REMOVED:
            return len(self.removed)
        return sum(1 for value in self.entries.values() if value == kind)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.changes)


@dataclass
class BudgetDiff:
    """What changed between two budget files, profile by profile (profiles with no change included)."""

    profiles: list[ProfileDiff] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(profile.count(kind) for profile in self.profiles)

    @property
    def unchanged(self) -> int:
        return sum(profile.unchanged for profile in self.profiles)

    @property
    def increased(self) -> bool:
        """Whether any recorded value went up: what ``--fail-on-increase`` gates on."""
        return any(change.kind == INCREASED for profile in self.profiles for change in profile.changes)


def _entry_kind(changes: Sequence[ValueChange]) -> str:
    kinds = {change.kind for change in changes}
    if INCREASED in kinds:
        return INCREASED  # an entry with one value up and another down is still a regression to review
    if DECREASED in kinds:
        return DECREASED
    return RESHAPED


def compare(old: BudgetFile, new: BudgetFile, profiles: Iterable[str] | None = None) -> BudgetDiff:
    """Compare two budget files entry by entry and metric by metric.  Pure, and symmetric by construction: what
    ``compare(a, b)`` lists as added, ``compare(b, a)`` lists as removed."""
    names = sorted(set(old.profiles) | set(new.profiles)) if profiles is None else list(profiles)
    result = BudgetDiff()
    for name in names:
        before, after = old.profile(name), new.profile(name)
        diff = ProfileDiff(name)
        for key in sorted(set(before) | set(after), key=lambda key: (key[0], key[1] or "")):
            if key not in before:
                diff.added.append((key, after[key]))
            elif key not in after:
                diff.removed.append((key, before[key]))
            else:
                changes = [
                    ValueChange(key, metric, before[key].get(metric), after[key].get(metric))
                    for metric in sorted(set(before[key]) | set(after[key]), key=_metric_order)
                    if before[key].get(metric) != after[key].get(metric)
                ]
                if changes:
                    diff.changes.extend(changes)
                    diff.entries[key] = _entry_kind(changes)
                else:
                    diff.unchanged += 1
        diff.changes.sort(key=ValueChange.sort_key)
        result.profiles.append(diff)
    return result


def _counts(diff: BudgetDiff | ProfileDiff, noun: bool) -> str:
    increased = diff.count(INCREASED)
    parts = [
        _plural(increased, "budget") + " increased" if noun else f"{increased} increased",
        f"{diff.count(DECREASED)} decreased",
        f"{diff.count(ADDED)} added",
        f"{diff.count(REMOVED)} removed",
    ]
    reshaped = diff.count(RESHAPED)
    if reshaped:
        parts.append(f"{reshaped} with metrics added or removed")
    return f"{', '.join(parts)}; {diff.unchanged} unchanged"


def _change_cells(change: ValueChange, exact: bool) -> list[str]:
    """old, new, change in the metric's unit, change in %."""
    old = "-" if change.old is None else _quantity(change.old, change.metric, exact)
    new = "-" if change.new is None else _quantity(change.new, change.metric, exact)
    if change.old is None or change.new is None:
        return [old, new, "", ""]
    return [old, new, _signed(change.new - change.old, change.metric, exact), _percent(change.relative)]


def _values_text(values: Values, exact: bool) -> str:
    return ", ".join(
        f"{metric} {_quantity(values[metric], metric, exact)}" for metric in sorted(values, key=_metric_order)
    )


def diff_text(diff: BudgetDiff, old: str, new: str, exact: bool = False) -> str:
    """A summary line, then for each profile with a change: the moved values as a table, the added and the removed
    entries with their values.  Unchanged entries are only counted."""
    out = [f"{_printable(old)} -> {_printable(new)}: {_counts(diff, noun=True)}"]
    for profile in diff.profiles:
        if not profile.changed:
            continue
        out.append("")
        out.append(f"{_printable(profile.name)}: {_counts(profile, noun=False)}")
        if profile.changes:
            out.append("  changed:")
            rows = [[_entry(c.key), c.metric, *_change_cells(c, exact)] for c in profile.changes]
            table = _text_table(["test", "metric", "old", "new", "change", "%"], rows, right=range(2, 6))
            out.extend(f"    {line}" for line in table)
        for title, entries in (("added", profile.added), ("removed", profile.removed)):
            if entries:
                out.append(f"  {title}:")
                out.extend(f"    {_entry(key)}: {_values_text(values, exact)}" for key, values in entries)
    return "\n".join(out)


def diff_markdown(diff: BudgetDiff, exact: bool = False) -> str:
    """A bold summary line, then per profile with a change: a table of the moved values, biggest relative increase
    on top, and lists of the added and removed entries.  Ready to paste (or post from CI) as a pull-request
    comment."""
    out = [f"**{_counts(diff, noun=True)}**"]
    for profile in diff.profiles:
        if not profile.changed:
            continue
        out.append("")
        out.append(f"### {_md_code(profile.name)}: {_counts(profile, noun=False)}")
        if profile.changes:
            rows = [
                [c.kind, _md_code(describe_key(c.key)), c.metric, *_change_cells(c, exact)] for c in profile.changes
            ]
            out.append("")
            out.extend(_md_table(["", "test", "metric", "old", "new", "change", "%"], rows, right=range(3, 7)))
        for title, entries in (("Added", profile.added), ("Removed", profile.removed)):
            if entries:
                out.append("")
                out.append(f"{title}:")
                out.append("")
                out.extend(f"- {_md_code(describe_key(key))}: {_values_text(values, exact)}" for key, values in entries)
    return "\n".join(out)


# --------------------------------------------------------------------------------------------------- commands


def _write(text: str) -> None:
    sys.stdout.write(text + "\n")


def _error(text: str) -> None:
    sys.stdout.flush()  # keep stdout and stderr in order when both go to one log
    sys.stderr.write(text + "\n")


def run_show(args: argparse.Namespace) -> int:
    budgets = read_budgets(args.file)
    source = _source(args.file)
    if args.format == "json":
        _write(show_json(budgets, source, args.profile))
    elif args.format == "markdown":
        _write(show_markdown(budgets, source, args.profile, args.exact))
    else:
        _write(show_text(budgets, source, args.profile, args.exact))
    return 0


def run_diff(args: argparse.Namespace) -> int:
    old, new = read_budgets(args.old), read_budgets(args.new)
    profiles = None
    if args.profile is not None:
        if args.profile not in old.profiles and args.profile not in new.profiles:
            raise CliError(f"neither {_source(args.old)} nor {_source(args.new)} has a profile {args.profile!r}")
        profiles = [args.profile]
    diff = compare(old, new, profiles)
    if args.format == "markdown":
        _write(diff_markdown(diff, args.exact))
    else:
        _write(diff_text(diff, _source(args.old), _source(args.new), args.exact))
    return 1 if args.fail_on_increase and diff.increased else 0


def run_check(args: argparse.Namespace) -> int:
    """Every file is checked, even after a bad one, so that one run reports all of them."""
    status = 0
    for name in args.files:
        source = _source(name)
        try:
            budgets = read_budgets(name)
        except (CliError, BudgetFileError) as error:
            _error(str(error))
            status = 1
            continue
        _write(f"{source}: ok ({_totals(budgets, sorted(budgets.profiles))})")
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="allocbudget",
        description="Show, compare and check pytest-allocbudget budget files. FILE may be '-' for standard input.",
        epilog="Exit status: 0 ok, 1 an error or a bad file (or an increase with --fail-on-increase), 2 a usage error.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    show = commands.add_parser(
        "show",
        help="the budgets as a table per profile",
        description="The budgets as a table per profile: one row per test or region, one column per metric "
        "recorded in the profile.",
    )
    show.add_argument("file", nargs="?", default=DEFAULT_FILE, metavar="FILE", help=f"default: ./{DEFAULT_FILE}")
    show.add_argument("--profile", metavar="NAME", help="show this profile only")
    show.add_argument("--format", choices=SHOW_FORMATS, default="text", help="default: text")
    show.add_argument("--exact", action="store_true", help="every digit instead of KiB/MiB (json is always exact)")
    show.set_defaults(run=run_show)

    diff = commands.add_parser(
        "diff",
        help="what changed between two budget files",
        description="What changed between two budget files, e.g. OLD from `git show main:allocbudget.yaml > "
        "old.yaml` or `git show main:allocbudget.yaml | allocbudget diff - allocbudget.yaml`.",
    )
    diff.add_argument("old", metavar="OLD")
    diff.add_argument("new", metavar="NEW")
    diff.add_argument("--profile", metavar="NAME", help="compare this profile only")
    diff.add_argument("--format", choices=DIFF_FORMATS, default="text", help="default: text")
    diff.add_argument("--exact", action="store_true", help="every digit instead of KiB/MiB")
    diff.add_argument("--fail-on-increase", action="store_true", help="exit 1 if any recorded value increased")
    diff.set_defaults(run=run_diff, parser=diff)

    check = commands.add_parser(
        "check",
        help="validate budget files",
        description="Validate budget files, for example after resolving a merge conflict by hand. Every file is "
        "read, even after a bad one.",
    )
    check.add_argument("files", nargs="+", metavar="FILE")
    check.set_defaults(run=run_check)
    return parser


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status instead of exiting, so tests and other programs can call it."""
    try:
        args = build_parser().parse_args(argv)
        if args.command == "diff" and args.old == STDIN and args.new == STDIN:
            args.parser.error("OLD and NEW cannot both be '-': standard input can be read only once")
    except SystemExit as exit_:  # --help, --version, or a usage error (already printed, status 2)
        return _exit_status(exit_.code)
    if isinstance(sys.stdout, io.TextIOWrapper):
        # A node id the console cannot encode is written escaped rather than ending the output with a traceback.
        sys.stdout.reconfigure(errors="backslashreplace")
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except (CliError, BudgetFileError) as error:
        _error(f"error: {error}")
        return 1
    except BrokenPipeError:  # `allocbudget show | head`: the reader has all it wanted
        _silence_stdout()
        return 1


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at nothing, so that the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass
