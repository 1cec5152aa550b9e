"""Regenerate the outputs, the tables and the code quotes that the documentation shows, from real runs and code.

Run it by hand, from anywhere, on Python 3.11 with the allocation counter built, after a change to the plugin's
output or to the example project:

    python docs/examples/generate.py

It copies ``example_project`` into a temporary directory and runs pytest and the ``allocbudget`` command there, as
committed and with the regression applied (``EDIT_OLD`` replaced by ``EDIT_NEW`` in ``EDIT_FILE``: a needless copy
of the input in ``split_optimized``). Each output goes into a file next to this script:

* show.txt: ``allocbudget show`` of the committed budgets;
* passing.txt: the example's tests as committed;
* regression.diff and regression.txt: the edit, and the tests failing with it;
* fixed.txt: the tests passing again once the edit is reverted;
* rerecord.txt: the edit accepted with ``--alloc-update``, and the change reviewed with ``allocbudget diff``;
* tighten.txt: the edit reverted under the re-recorded budget, which the summary says could be tightened;
* savings.md: the table of every pair's naive and optimised budgets, from ``example_project/allocbudget.yaml``;
* cli-*.txt: the ``allocbudget`` command of docs/cli.md (``show`` in its other formats, ``diff`` and ``check``), on the
  committed budget file and on files made from it in a copy: re-recorded with the edit, recorded first with
  tracemalloc then with the allocation counter, and left with the markers of a merge conflict.

Then it rewrites every generated block in README.md and docs/*.md, the text between

    <!-- begin: NAME -->
    <!-- end -->

where NAME is one of:

* ``examples/FILE.txt`` or ``examples/FILE.diff``: that file, in a ``text`` or ``diff`` fence;
* ``examples/FILE.md``: that file as it is (the savings table, made from ``example_project/allocbudget.yaml``);
* ``quote PATH:NAME,NAME ...``: the top-level functions, classes and assignments of that name in the example
  project's file PATH (relative to ``example_project``), in a ``python`` fence marked ``<!-- fragment -->``, their
  docstrings left out.
* ``options`` and ``ini keys``: the tables of command-line options and ini keys of docs/reference.md, made from
  what ``pytest_allocbudget/wiring/options.py`` registers: each row is an option's help text, the default its help ends
  with (``(default: ...)``), and what ``options.REFERENCE`` says of it beyond that. After a change there,

      python docs/examples/generate.py --blocks

  rewrites the blocks alone, without running the examples.

Every pytest run gets the same environment: a minimal set of variables (no CI variable, no ``PYTEST_ADDOPTS`` of
the caller), ``COLUMNS=120``, ``PYTHONHASHSEED=0``, and ``PYTEST_ADDOPTS`` set to ``ADDOPTS``, so that a command
shows in the documentation as a reader types it. The outputs are normalised: durations read ``in N.NNs`` (and a
separator line around one is centred again, so that its width does not depend on how long the run took), the
temporary directory reads ``example_project``. tests/unit/test_doc_examples.py re-runs the regression example on
Python 3.11 and compares it with regression.txt, and checks that every generated block is current.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from pytest_allocbudget.budgets.store import load
from pytest_allocbudget.judging.units import format_bytes
from pytest_allocbudget.measuring.counter import unavailable_reason
from pytest_allocbudget.wiring import options

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent
ROOT = DOCS.parent
EXAMPLE = ROOT / "example_project"
PAGES = (ROOT / "README.md", *sorted(DOCS.glob("*.md")))

#: The Python version the outputs are made on, and the budget profile the savings table is read from.
VERSION = (3, 11)
PROFILE = "cpython-3.11"

#: The terminal width of every run (``COLUMNS``), which pytest pads its separator lines to.
WIDTH = 120

#: Options for every pytest run, through ``PYTEST_ADDOPTS``: no random test order, the default explanation of a
#: failure, no session header (it names the versions of pytest and its plugins), and none of the async test
#: plugins the project's test extra installs (the example has no async test; a loaded plugin moves its numbers).
ADDOPTS = "-p no:randomly --alloc-explain=rerun --no-header -p no:anyio -p no:asyncio"

#: The regression: ``split_optimized`` copies its input before slicing it, a defensive copy it does not need.
EDIT_FILE = "minireduce/engine.py"
EDIT_OLD = "    if isinstance(records, list):\n"
EDIT_NEW = "    records = list(records)  # a copy of our own, in case the caller changes the list later\n" + EDIT_OLD

#: The pairs of the savings table, in the order of the example's README.
PAIRS = ("split", "map_key_values", "map_sales", "shuffle", "reduce_partition", "summarize", "parse_frames")
METRICS = ("peak", "retained", "allocations", "allocated")

PYTEST = "python -m pytest"
TARGET = "tests/test_split.py::test_split_optimized"
#: The tests that cli-diff-counter.txt records, first with tracemalloc, then with the allocation counter.
COUNTER_TESTS = "tests/test_split.py"

_BLOCK = re.compile(r"(<!-- begin: (?P<name>[^>]+?) -->\n)(?P<body>.*?)(<!-- end -->)", re.DOTALL)
_DURATION = re.compile(r"\bin \d+\.\d+s(?: \(\d+:\d\d:\d\d\))?")
#: A separator line with a title, as pytest writes it: ``=== 1 failed, 54 passed in 9.52s ===``.
_TITLED_SEPARATOR = re.compile(r"^(?P<fill>([=_-])\2*) (?P<title>.+?) (?P=fill)\2?$")
_ADDRESS = re.compile(r"\b0x[0-9a-f]{6,}\b")


# ------------------------------------------------------------------------------------------------ running


def environment() -> dict[str, str]:
    """The environment of every run: only what a run needs, so the caller's settings and CI cannot leak in."""
    env = {name: os.environ[name] for name in ("PATH", "HOME", "TMPDIR") if name in os.environ}
    env.update(
        COLUMNS=str(WIDTH),
        LINES="40",
        PYTHONHASHSEED="0",
        PYTHONUTF8="1",
        PYTHONDONTWRITEBYTECODE="1",
        PYTEST_ADDOPTS=ADDOPTS,
    )
    return env


def centred(title: str, fill: str) -> str:
    """A separator line of ``WIDTH`` columns around ``title``, laid out as pytest lays out its own."""
    half = fill * max((WIDTH - len(title) - 2) // 2, 1)
    line = f"{half} {title} {half}"
    return line + fill if len(line) < WIDTH else line


def _duration(line: str) -> str:
    """``line`` with its duration replaced, and centred again if it is a separator line.

    pytest pads the closing line to the terminal width around the real duration, so ``in 10.52s`` gets one ``=``
    less than ``in 9.52s``: the padding must be made again for ``N.NNs``, or the output would depend on how long
    the run took.
    """
    replaced = _DURATION.sub("in N.NNs", line)
    if replaced == line:
        return line
    match = _TITLED_SEPARATOR.match(line)
    if match is None:
        return replaced
    return centred(_DURATION.sub("in N.NNs", match.group("title")), match.group(2))


def normalise(text: str, project: Path) -> str:
    """Make an output independent of the run: durations, the temporary directory, the interpreter's paths."""
    for path in sorted({str(project), os.path.realpath(project)}, key=len, reverse=True):
        text = text.replace(path, "example_project")
    paths = sysconfig.get_paths()
    for key, label in (("purelib", "<site-packages>"), ("stdlib", "<stdlib>")):
        text = text.replace(paths[key], label)
    text = _ADDRESS.sub("0x...", text)
    return "".join(_duration(line).rstrip() + "\n" for line in text.splitlines())


def run(project: Path, command: str, *args: str, stdin: str | None = None, status: bool = False) -> str:
    """``$ command`` and its output (standard output, then standard error), run in ``project``.

    ``command`` is what the documentation shows; ``args`` what is run, with this interpreter. With ``status``, the
    output ends with ``exit status N``, as ``; echo "exit status $?"`` at the end of ``command`` would print it.
    """
    result = subprocess.run(
        [sys.executable, *args],
        cwd=project,
        env=environment(),
        input=stdin,
        capture_output=True,
        text=True,
    )
    shown = f"$ {command}\n" + normalise(result.stdout + result.stderr, project)
    return (shown + f"exit status {result.returncode}\n") if status else shown


def pytest_run(project: Path, *args: str) -> str:
    return run(project, " ".join((PYTEST, *args)), "-m", "pytest", *args)


def summary_only(output: str) -> str:
    """The command, then ``...`` for the progress lines, then the summary section to the end."""
    lines = output.splitlines(keepends=True)
    start = next(index for index, line in enumerate(lines) if " allocation budgets " in line)
    return lines[0] + "...\n" + "".join(lines[start:])


def copy_example(workdir: Path) -> Path:
    """A copy of the example project in ``workdir``, without caches."""
    project = workdir / "example_project"
    shutil.copytree(
        EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", ".hypothesis", "*.pyc")
    )
    return project


def apply_edit(project: Path) -> str:
    """Replace ``EDIT_OLD`` by ``EDIT_NEW`` in the copy's ``EDIT_FILE``; returns the unified diff."""
    path = project / EDIT_FILE
    before = path.read_text(encoding="utf-8")
    if before.count(EDIT_OLD) != 1:
        raise SystemExit(f"{EDIT_FILE}: expected {EDIT_OLD!r} exactly once; update EDIT_OLD in {__file__}")
    after = before.replace(EDIT_OLD, EDIT_NEW)
    path.write_text(after, encoding="utf-8")
    diff = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), f"a/{EDIT_FILE}", f"b/{EDIT_FILE}"
    )
    return "".join(line.rstrip() + "\n" for line in diff)


def revert_edit(project: Path) -> None:
    shutil.copyfile(EXAMPLE / EDIT_FILE, project / EDIT_FILE)


def regression(workdir: Path) -> str:
    """The output of the example's tests with the edit applied, in a copy made in ``workdir``: regression.txt."""
    project = copy_example(workdir)
    apply_edit(project)
    return pytest_run(project)


def examples(workdir: Path) -> dict[str, str]:
    """Every generated output file, by name, from one copy of the example project."""
    project = copy_example(workdir)
    committed = (project / "allocbudget.yaml").read_text(encoding="utf-8")
    files = {}
    files["show.txt"] = run(
        project,
        f"allocbudget show --profile {PROFILE}",
        *("-m", "pytest_allocbudget", "show", "--profile", PROFILE),
    )
    files["passing.txt"] = pytest_run(project)
    files["regression.diff"] = apply_edit(project)
    files["regression.txt"] = pytest_run(project)
    revert_edit(project)
    files["fixed.txt"] = summary_only(pytest_run(project))
    # The increase accepted: re-record the one test, and review the change as a reviewer would. The copy is not a
    # git repository, so the committed file that `git show` would print is passed in directly.
    apply_edit(project)
    files["rerecord.txt"] = pytest_run(project, "--alloc-update", TARGET) + run(
        project,
        "git show HEAD:./allocbudget.yaml | allocbudget diff - allocbudget.yaml",
        *("-m", "pytest_allocbudget", "diff", "-", "allocbudget.yaml"),
        stdin=committed,
    )
    # Then the copy taken out again, under the re-recorded budget.
    revert_edit(project)
    files["tighten.txt"] = summary_only(pytest_run(project))
    return files


# ------------------------------------------------------------------------------------------------ the command

#: The merge conflict of cli-check.txt: the label of the other side.
CONFLICT_BRANCH = "main"


def allocbudget(project: Path, *args: str, stdin: str | None = None, status: bool = False) -> str:
    """``$ allocbudget ARGS`` and its output, run as ``python -m pytest_allocbudget ARGS``."""
    command = " ".join(("allocbudget", *args)) + ('; echo "exit status $?"' if status else "")
    return run(project, command, "-m", "pytest_allocbudget", *args, stdin=stdin, status=status)


def json_head(output: str) -> str:
    """A JSON ``show`` up to the end of its first entry of a region, then ``...``."""
    lines = output.splitlines(keepends=True)
    start = next(index for index, line in enumerate(lines) if line.strip().startswith('"region": "'))
    end = next(index for index in range(start, len(lines)) if lines[index].rstrip() == "      },")
    return "".join(lines[: end + 1]) + "      ...\n"


def conflicted(ours: str, theirs: str) -> str:
    """``ours`` with every line that ``theirs`` changed left as a merge conflict, markers and both sides."""
    mine, other = ours.splitlines(keepends=True), theirs.splitlines(keepends=True)
    merged = []
    for tag, start, end, other_start, other_end in difflib.SequenceMatcher(None, mine, other).get_opcodes():
        if tag == "equal":
            merged += mine[start:end]
        else:
            merged += ["<<<<<<< HEAD\n", *mine[start:end], "=======\n", *other[other_start:other_end]]
            merged.append(f">>>>>>> {CONFLICT_BRANCH}\n")
    return "".join(merged)


def record(project: Path, *args: str) -> None:
    """``pytest --alloc-update ARGS`` in ``project``, which must write the budget file."""
    output = pytest_run(project, "--alloc-update", *args)
    if "wrote allocbudget.yaml" not in output:
        raise SystemExit(f"recording {' '.join(args)} wrote no budget file:\n{output}")


def cli_examples(workdir: Path) -> dict[str, str]:
    """The outputs of docs/cli.md, by file name, from copies of the example project made in ``workdir``."""
    files = {}
    project = copy_example(workdir / "cli")
    committed = (project / "allocbudget.yaml").read_text(encoding="utf-8")
    files["cli-show-exact.txt"] = allocbudget(project, "show", "--profile", PROFILE, "--exact")
    files["cli-show-markdown.txt"] = allocbudget(project, "show", "--profile", PROFILE, "--format", "markdown")
    files["cli-show-json.txt"] = json_head(allocbudget(project, "show", "--profile", PROFILE, "--format", "json"))
    # The regression accepted, as in rerecord.txt, and compared with the committed file saved as old.yaml.
    (project / "old.yaml").write_text(committed, encoding="utf-8")
    apply_edit(project)
    record(project, TARGET)
    files["cli-diff.txt"] = allocbudget(project, "diff", "old.yaml", "allocbudget.yaml")
    files["cli-diff-markdown.txt"] = allocbudget(
        project, "diff", "old.yaml", "allocbudget.yaml", "--format", "markdown", "--fail-on-increase", status=True
    )
    # A merge that kept both sides of the re-recorded values, next to the committed file and a mistyped name.
    merged = conflicted(committed, (project / "allocbudget.yaml").read_text(encoding="utf-8"))
    (project / "merged.yaml").write_text(merged, encoding="utf-8")
    (project / "allocbudget.yaml").write_text(committed, encoding="utf-8")
    files["cli-check.txt"] = allocbudget(project, "check", "allocbudget.yaml", "merged.yaml", "allocbudget.yml")
    # One test file recorded into an empty budget file without the counter, then re-recorded with it.
    project = copy_example(workdir / "counter")
    (project / "allocbudget.yaml").unlink()
    record(project, "--alloc-engine=tracemalloc", COUNTER_TESTS)
    without = (project / "allocbudget.yaml").read_text(encoding="utf-8")
    record(project, COUNTER_TESTS)
    files["cli-diff-counter.txt"] = run(
        project,
        f"git show HEAD:./allocbudget.yaml | allocbudget diff - allocbudget.yaml --profile {PROFILE}",
        *("-m", "pytest_allocbudget", "diff", "-", "allocbudget.yaml", "--profile", PROFILE),
        stdin=without,
    )
    return files


# ------------------------------------------------------------------------------------------------ the table


def _format(metric: str, value: int) -> str:
    return f"{value:,}" if metric == "allocations" else format_bytes(value)


def savings_table(budget_file: Path = EXAMPLE / "allocbudget.yaml") -> str:
    """The naive and optimised budgets of every pair in ``PROFILE``, all four metrics, as a Markdown table."""
    entries = load(budget_file).profile(PROFILE)
    sides: dict[str, dict[str, dict[str, int]]] = {}
    for (node_id, region), values in entries.items():
        test = node_id.rpartition("::")[2]
        if region in ("naive", "optimized"):
            name, side = test, region
        elif region is None and test.endswith(("_naive", "_optimized")):
            name, _, side = test.rpartition("_")
        else:
            continue
        sides.setdefault(name[len("test_") :], {})[side] = dict(values)
    rows = ["| pair | metric | naive | optimised | change |", "| --- | --- | ---: | ---: | ---: |"]
    for pair in PAIRS:
        naive, optimized = sides[pair]["naive"], sides[pair]["optimized"]
        for index, metric in enumerate(METRICS):
            old, new = naive[metric], optimized[metric]
            if new == old:
                change = "same"
            elif old == 0:
                change = f"+{_format(metric, new)}"
            else:
                change = f"{(new - old) / old:+.1%}"
            label = f"`{pair}`" if index == 0 else ""
            rows.append(f"| {label} | {metric} | {_format(metric, old)} | {_format(metric, new)} | {change} |")
    return "\n".join(rows) + "\n"


# ------------------------------------------------------------------------------------------------ quotes


def _first_line(node: ast.stmt) -> int:
    """The first line of a statement, its decorators included."""
    return min([node.lineno, *(decorator.lineno for decorator in getattr(node, "decorator_list", ()))])


def _lines_of(node: ast.stmt, lines: list[str]) -> list[str]:
    """The lines of a statement, decorators included, without the docstring of a function or class."""
    start = _first_line(node)
    assert node.end_lineno is not None
    keep = list(range(start, node.end_lineno + 1))
    body = getattr(node, "body", None)
    if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and body:
        first = body[0]
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
            assert first.end_lineno is not None
            drop = set(range(first.lineno, first.end_lineno + 1))
            after = first.end_lineno + 1
            while after <= node.end_lineno and not lines[after - 1].strip():
                drop.add(after)
                after += 1
            keep = [number for number in keep if number not in drop]
    return [lines[number - 1] for number in keep]


def _names_of(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, ast.Assign):
        return {target.id for target in node.targets if isinstance(target, ast.Name)}
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return {node.target.id}
    return set()


def quote(spec: str) -> str:
    """The code that ``quote PATH:NAME,NAME ...`` names, each file's part headed by a ``# PATH`` comment."""
    parts = []
    for item in spec.split():
        relative, _, names = item.partition(":")
        source = (EXAMPLE / relative).read_text(encoding="utf-8")
        lines = source.splitlines()
        body = ast.parse(source).body
        index = {name: position for position, node in enumerate(body) for name in _names_of(node)}
        text = ""
        previous = None
        for name in names.split(","):
            if name not in index:
                raise SystemExit(f"{relative} has no top-level {name!r}")
            node = body[index[name]]
            if previous is None:
                pass
            elif index[name] == previous + 1:  # the next statement: keep what stands between, comments included
                assert body[previous].end_lineno is not None
                text += "".join("\n" + line for line in lines[body[previous].end_lineno : _first_line(node) - 1])
            else:
                text += "\n\n"
            text += "\n" + "\n".join(_lines_of(node, lines))
            previous = index[name]
        parts.append(f"# {relative}" + text)
    return "\n\n\n".join(parts) + "\n"


# ------------------------------------------------------------------------------------------------ option tables


class _Registry:
    """Stands in for pytest's parser and its option group: keeps what ``pytest_addoption`` registers, in order."""

    def __init__(self) -> None:
        self.options: list[tuple[tuple[str, ...], dict[str, Any]]] = []
        self.ini: list[tuple[str, dict[str, Any]]] = []

    def getgroup(self, name: str, description: str = "", after: str | None = None) -> _Registry:
        return self

    def addoption(self, *names: str, **attrs: Any) -> None:
        self.options.append((names, attrs))

    def addini(self, name: str, help: str, **attrs: Any) -> None:
        self.ini.append((name, {"help": help, **attrs}))


def registered() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The options (by long name) and the ini keys that ``pytest_allocbudget.wiring.options`` registers, each with the
    arguments it was registered with; the help text of an option as ``--help`` prints it (argparse expands ``%%``),
    and options whose help is suppressed left out."""
    registry = _Registry()
    options.pytest_addoption(registry)  # type: ignore[arg-type]
    found = {}
    for names, attrs in registry.options:
        if attrs.get("help") == argparse.SUPPRESS:
            continue
        name = next(name for name in names if name.startswith("--"))
        found[name] = {**attrs, "help": attrs["help"] % attrs}
    return found, dict(registry.ini)


_DEFAULT_CLAUSE = re.compile(r"^(?P<text>.*?)\s*\(default: (?P<default>.+)\)(?P<stop>\.?)$", re.DOTALL)
#: What a help text names that the reference shows as code: quoted values, options, ini keys, the marker, keyword
#: arguments and file names.
_CODE = re.compile(
    r"(?<![\w`])'(?P<quoted>[^']+)'(?!\w)"
    r"|(?P<code>@pytest\.mark\.\w+(?:\([^)]*\))?|(?<![\w-])--[a-z][a-z-]*[a-z]|\balloc_budget_[a-z_]*[a-z]\b"
    r"|\b\w+=(?:True|False|None)\b|\b[\w-]+\.(?:yaml|json)\b)"
)


def _markdown(text: str) -> str:
    """A help text as a table cell: what it names in code spans, ``|`` escaped."""
    text = _CODE.sub(lambda match: f"`{match.group('quoted') or match.group('code')}`", text)
    return text.replace("|", "\\|")


def _row(name: str, attrs: dict[str, Any], flag: bool, ini: bool = False) -> str:
    """One row: the name, its kind of value, the default its help text ends with, then the help text and what
    ``options.REFERENCE`` adds."""
    reference = options.REFERENCE.get(name, options.Reference())
    match = _DEFAULT_CLAUSE.match(attrs["help"])
    if match is not None:
        text, default = match.group("text") + match.group("stop"), _markdown(match.group("default"))
        if ini and re.fullmatch(r"[\w.-]+", default) and default != "none":
            default = f"`{default}`"  # a value the ini file could hold, such as false or auto
    else:
        text = attrs["help"]
        default = "off" if flag else "`false`" if attrs.get("type") == "bool" else "none"
    if reference.value:
        value = reference.value
    elif flag:
        value = "flag"
    elif attrs.get("type") == "bool":
        value = "bool (`true` or `false`)"
    else:
        value = f"`{attrs['metavar']}`" if attrs.get("metavar") else "string"
    meaning = _markdown(text[:1].upper() + text[1:])
    if not meaning.endswith("."):
        meaning += "."
    if reference.more:
        meaning += " " + reference.more
    return f"| `{name}` | {value} | {default} | {meaning} |"


def option_table() -> str:
    """The table of command-line options of docs/reference.md, in the order they are registered."""
    found, ini = registered()
    unknown = sorted(set(options.REFERENCE) - set(found) - set(ini))
    if unknown:
        raise SystemExit(f"options.REFERENCE describes what pytest_addoption does not register: {unknown}")
    rows = ["| Option | Type | Default | Meaning |", "|---|---|---|---|"]
    for name, attrs in found.items():
        rows.append(_row(name, attrs, flag=attrs.get("action") in ("store_true", "store_false")))
    return "\n".join(rows) + "\n"


def ini_table() -> str:
    """The table of ini keys of docs/reference.md: each key in the place of the option of the same meaning
    (``alloc_budget_all_threads`` and ``--alloc-all-threads``), then the keys that have none."""
    found, ini = registered()
    order = {name: position for position, name in enumerate(found)}

    def place(key: str) -> int:
        return order.get("--alloc-" + key.removeprefix("alloc_budget_").replace("_", "-"), len(order))

    rows = ["| Key | Type | Default | Meaning |", "|---|---|---|---|"]
    for key in sorted(ini, key=place):  # sorted() keeps the registration order of keys in the same place
        rows.append(_row(key, ini[key], flag=False, ini=True))
    return "\n".join(rows) + "\n"


# ------------------------------------------------------------------------------------------------ pages


def render(name: str, read: dict[str, str] | None = None) -> str:
    """What goes between the markers of block ``name``; ``read`` overrides the files under docs/examples."""
    if name.startswith("quote "):
        return "<!-- fragment -->\n```python\n" + quote(name[len("quote ") :]) + "```\n"
    if name == "options":
        return option_table()
    if name == "ini keys":
        return ini_table()
    if not name.startswith("examples/"):
        raise SystemExit(f"unknown generated block {name!r}")
    filename = name[len("examples/") :]
    text = read[filename] if read and filename in read else (HERE / filename).read_text(encoding="utf-8")
    if filename.endswith(".md"):
        return text
    fence = "diff" if filename.endswith(".diff") else "text"
    return f"```{fence}\n{text}```\n"


def rewrite(text: str, read: dict[str, str] | None = None) -> str:
    """``text`` with every generated block rendered afresh."""
    return _BLOCK.sub(lambda match: match.group(1) + render(match.group("name"), read) + match.group(4), text)


def blocks(text: str) -> list[str]:
    """The names of the generated blocks in ``text``."""
    return [match.group("name") for match in _BLOCK.finditer(text)]


def rewrite_pages() -> None:
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        new = rewrite(text)
        if new != text:
            page.write_text(new, encoding="utf-8")
            print(f"rewrote {page.relative_to(ROOT)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--blocks",
        action="store_true",
        help="only rewrite the generated blocks of the pages (after a change to an option, say), from the outputs "
        "as they are: no example is run, and any Python version will do",
    )
    if parser.parse_args().blocks:
        rewrite_pages()
        return 0
    if sys.version_info[:2] != VERSION:
        print(f"run this on Python {VERSION[0]}.{VERSION[1]}: the outputs are that version's", file=sys.stderr)
        return 1
    reason = unavailable_reason()
    if reason is not None:
        print(f"the allocation counter is needed, and unavailable: {reason}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="allocbudget-docs-") as workdir:
        files = examples(Path(workdir))
        files.update(cli_examples(Path(workdir)))
    files["savings.md"] = savings_table()
    for filename, text in files.items():
        path = HERE / filename
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    rewrite_pages()
    return 0


if __name__ == "__main__":
    sys.exit(main())
