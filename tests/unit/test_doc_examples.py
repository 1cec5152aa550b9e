"""The examples in README.md and docs/*.md work, and the outputs they show are current.

- Every ``python`` block runs. A block that is a test module (it defines ``test_`` functions or uses
  ``pytest.mark.alloc_budget``) is written into an inner pytest session, recorded with ``--alloc-update`` and then
  checked, and both runs must pass. Any other block is compiled and executed in a fresh namespace. A block that
  cannot run alone (a quote of the example project, a sketch with undefined names) carries ``<!-- fragment -->`` on
  the line before its fence, and is only compiled.
- The blocks that docs/examples/generate.py writes between ``<!-- begin: NAME -->`` and ``<!-- end -->`` are
  current: each matches the file or the quoted code it is made from, and on Python 3.11, the version the outputs
  were made on, the regression run is made again and compared with docs/examples/regression.txt.
- ``sh`` and ``console`` blocks are not run, but every ``--alloc-...`` option that a pytest command in them uses is
  one the plugin registers; so is every option of the commands shown after a ``$ `` prompt in ``text`` blocks.
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from pytest_allocbudget.measuring.counter import unavailable_reason

# The documented examples must hold on every supported Python, so they run in the smoke set too.
pytestmark = pytest.mark.smoke

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
PAGES = (ROOT / "README.md", *sorted(DOCS.glob("*.md")))
GENERATOR = EXAMPLES / "generate.py"

FRAGMENT = "<!-- fragment -->"
OPENING_FENCE = re.compile(r"^```(?P<language>[\w-]*)$")
TEST_MODULE = re.compile(r"^\s*def test_|pytest\.mark\.alloc_budget", re.MULTILINE)
SHELL_LANGUAGES = ("sh", "console")
PROMPTED_LANGUAGES = ("console", "text")  # blocks whose commands are the lines that start with "$ "
SHELL_OPERATORS = {"&&", "||", "|", ";"}
ALLOC_OPTION = re.compile(r"--alloc-[a-z-]+")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int  # of the opening fence, counted from 1
    language: str
    source: str
    fragment: bool  # marked <!-- fragment --> on the line before the fence

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT).as_posix()}:{self.line}"


def code_blocks(page: Path) -> list[Block]:
    """The fenced code blocks of ``page``, in order."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks = []
    index = 0
    while index < len(lines):
        match = OPENING_FENCE.match(lines[index])
        if match is None:
            index += 1
            continue
        end = index + 1
        while end < len(lines) and lines[end] != "```":
            end += 1
        assert end < len(lines), f"{page.name}:{index + 1}: the code block is not closed"
        fragment = index > 0 and lines[index - 1].strip() == FRAGMENT
        source = "".join(line + "\n" for line in lines[index + 1 : end])
        blocks.append(Block(page, index + 1, match.group("language"), source, fragment))
        index = end + 1
    return blocks


BLOCKS = [block for page in PAGES for block in code_blocks(page)]
PYTHON = [block for block in BLOCKS if block.language == "python"]
FRAGMENTS = [block for block in PYTHON if block.fragment]
TEST_MODULES = [block for block in PYTHON if not block.fragment and TEST_MODULE.search(block.source)]
SCRIPTS = [block for block in PYTHON if not block.fragment and not TEST_MODULE.search(block.source)]
SHELL = [block for block in BLOCKS if block.language in SHELL_LANGUAGES]
PROMPTED = [block for block in BLOCKS if block.language == "text" and "\n$ " in "\n" + block.source]


def _ids(blocks: list[Block]) -> list[str]:
    return [block.name for block in blocks]


# ------------------------------------------------------------------------------------------------ python blocks


def test_every_kind_of_python_block_is_found() -> None:
    assert {block.page.name for block in PYTHON} >= {"README.md", "usage.md", "optimising.md", "walkthrough.md"}
    assert FRAGMENTS and TEST_MODULES and SCRIPTS


def test_fragment_markers_stand_right_before_a_python_block() -> None:
    marked = {(block.page, block.line - 1) for block in FRAGMENTS}
    misplaced = [
        f"{page.relative_to(ROOT).as_posix()}:{number}"
        for page in PAGES
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1)
        if line.strip() == FRAGMENT and (page, number) not in marked
    ]
    assert not misplaced, f"{FRAGMENT} not on the line right before a python block: {misplaced}"


@pytest.mark.parametrize("block", FRAGMENTS, ids=_ids(FRAGMENTS))
def test_fragments_compile(block: Block) -> None:
    compile(block.source, block.name, "exec")


@pytest.mark.parametrize("block", SCRIPTS, ids=_ids(SCRIPTS))
def test_python_blocks_run(block: Block) -> None:
    exec(compile(block.source, block.name, "exec"), {"__name__": "doc_block"})


@pytest.mark.parametrize("block", TEST_MODULES, ids=_ids(TEST_MODULES))
def test_test_modules_record_then_pass_a_check(block: Block, tester: pytest.Pytester) -> None:
    tester.makepyfile(test_doc_block=block.source)
    recorded = tester.runpytest("--alloc-update")
    assert recorded.ret == pytest.ExitCode.OK, f"{block.name}: the update run failed:\n{recorded.stdout.str()}"
    checked = tester.runpytest()
    assert checked.ret == pytest.ExitCode.OK, f"{block.name}: the check run failed:\n{checked.stdout.str()}"
    outcomes = checked.parseoutcomes()
    assert outcomes.get("passed", 0) > 0 and not outcomes.get("failed") and not outcomes.get("errors"), outcomes
    checked.stdout.fnmatch_lines(["* measured (*): * passed, 0 failed, 0 missing (profile *"])


# ------------------------------------------------------------------------------------------------ generated blocks


def test_the_pages_have_generated_blocks(generate: ModuleType) -> None:
    names = {name for page in PAGES for name in generate.blocks(page.read_text(encoding="utf-8"))}
    shown = {name[len("examples/") :] for name in names if name.startswith("examples/")}
    made = {path.name for path in EXAMPLES.iterdir() if path.is_file() and path.name != GENERATOR.name}
    assert "regression.txt" in shown
    assert made == shown, "every file under docs/examples is shown on a page, and every block shown has its file"


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_generated_blocks_match_their_files_and_the_code(generate: ModuleType, page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert generate.rewrite(text) == text, f"{page.name} is out of date: run python {GENERATOR.relative_to(ROOT)}"


def test_the_savings_table_matches_the_budget_file(generate: ModuleType) -> None:
    assert generate.savings_table() == (EXAMPLES / "savings.md").read_text(encoding="utf-8")


@pytest.mark.skipif(
    sys.version_info[:2] != (3, 11),
    reason="the example outputs were made on Python 3.11; other versions measure other numbers",
)
@pytest.mark.skipif(unavailable_reason() is not None, reason="the outputs were made with the allocation counter")
def test_the_regression_output_is_current(generate: ModuleType, tmp_path: Path) -> None:
    assert generate.regression(tmp_path) == (EXAMPLES / "regression.txt").read_text(encoding="utf-8"), (
        f"docs/examples/regression.txt is out of date: run python {GENERATOR.relative_to(ROOT)}"
    )


#: The closing line of the regression run as pytest lays it out at 120 columns, for three run times: the width of
#: the duration moves the padding, by one ``=`` at 10 s and by more from a minute on, where a clock time follows.
CLOSING_LINES = {
    "9.5 s": "=" * 45 + " 1 failed, 54 passed in 9.52s " + "=" * 45,
    "10.5 s": "=" * 44 + " 1 failed, 54 passed in 10.52s " + "=" * 45,
    "75 s": "=" * 39 + " 1 failed, 54 passed in 75.03s (0:01:15) " + "=" * 40,
}


@pytest.mark.parametrize("duration", CLOSING_LINES)
def test_the_closing_line_normalises_the_same_whatever_the_run_took(generate: ModuleType, duration: str) -> None:
    line = CLOSING_LINES[duration]
    assert len(line) == 120, "each line is as wide as pytest makes it at COLUMNS=120"
    committed = (EXAMPLES / "regression.txt").read_text(encoding="utf-8").splitlines()[-1] + "\n"
    assert generate.normalise(line + "\n", ROOT) == committed


# ------------------------------------------------------------------------------------------------ shell blocks


def _commands(block: Block) -> list[list[str]]:
    """The commands of a block, each as its words; in a console or text block, the lines that start with ``$ ``."""
    commands = []
    for line in block.source.splitlines():
        if block.language in PROMPTED_LANGUAGES:
            if not line.startswith("$ "):
                continue
            line = line[2:]
        command: list[str] = []
        for word in [*shlex.split(line, comments=True), ";"]:
            if word in SHELL_OPERATORS:
                if command:
                    commands.append(command)
                command = []
            else:
                command.append(word)
    return commands


def _pytest_options(command: list[str]) -> set[str]:
    """The ``--alloc-...`` options of a pytest command (``pytest ...``, ``python -m pytest ...``); none otherwise."""
    for index, word in enumerate(command):
        if word == "pytest" or word.endswith("/pytest"):
            matches = (ALLOC_OPTION.match(argument) for argument in command[index + 1 :])
            return {match.group() for match in matches if match}
    return set()


def test_shell_commands_parse() -> None:
    assert [block.name for block in SHELL if block.page.name == "README.md"], "README.md has no shell block"
    for block in SHELL:
        assert _commands(block), f"{block.name}: no command found"


def test_pytest_commands_use_only_options_that_exist(tester: pytest.Pytester) -> None:
    config = tester.parseconfig()
    parser = config._parser
    groups = [*parser._groups, parser._anonymous]
    registered = {name for group in groups for option in group.options for name in option.names()}
    assert "--alloc-update" in registered, "the plugin's options were not registered"
    used = {
        (block.name, option)
        for block in [*SHELL, *PROMPTED]
        for command in _commands(block)
        for option in _pytest_options(command)
    }
    unknown = sorted(f"{name}: {option}" for name, option in used if option not in registered)
    assert not unknown, f"shell blocks use options the plugin does not register: {unknown}"
    assert {option for _, option in used} >= {"--alloc-update", "--alloc-tolerance"}, "the parsing found too little"


def test_ci_runs_the_suite_as_the_readme_says() -> None:
    """The README's command for this project's own suite is the one .ci/run runs on Python 3.11."""
    readme = next(block for block in SHELL if block.page.name == "README.md")
    suite = [command[3:] for command in _commands(readme) if command[1:3] == ["-m", "pytest"]]
    suite = [arguments for arguments in suite if "example_project" not in arguments]
    assert len(suite) == 1, f"the README's first shell block runs the suite once: {suite}"
    ci = [shlex.split(line, comments=True) for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    runs = [words[3:] for words in ci if words[:3] == ["$env311/bin/python", "-m", "pytest"]]
    assert suite[0] in runs, f".ci/run does not run {suite[0]}; its pytest runs on 3.11: {runs}"
