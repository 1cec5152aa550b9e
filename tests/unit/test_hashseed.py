"""Unit tests of :mod:`pytest_allocbudget.measuring.hashseed`: which seed a run needs, and how pytest starts again."""

from __future__ import annotations

import types

import pytest

from pytest_allocbudget.measuring import hashseed


@pytest.mark.parametrize("text", ["keep", "0", "4294967295", " 12 "])
def test_parse_takes_keep_and_seeds(text: str) -> None:
    assert hashseed.parse(text, "--alloc-hash-seed") == text.strip()


@pytest.mark.parametrize("text", ["random", "-1", "4294967296", "0x10", "1.5", "", "١٢"])
def test_parse_names_the_source_of_a_bad_value(text: str) -> None:
    with pytest.raises(ValueError) as info:
        hashseed.parse(text, "ini option alloc_budget_hash_seed in tox.ini")
    assert str(info.value) == (
        "ini option alloc_budget_hash_seed in tox.ini: expected 'keep' or a hash seed from 0 to 4294967295, "
        f"got {text!r}"
    )


@pytest.mark.parametrize(
    ("setting", "file_seed", "expected"),
    [("", None, 0), ("", 9, 9), ("3", 9, 3), ("keep", 9, None), ("keep", None, None)],
)
def test_wanted_is_the_setting_then_the_file_then_0(setting: str, file_seed: int | None, expected: int | None) -> None:
    assert hashseed.wanted(setting, file_seed) == expected


@pytest.mark.parametrize(
    ("environ", "randomized", "expected"),
    [
        ({}, 0, 0),  # python -R off, or PYTHONHASHSEED=0
        ({"PYTHONHASHSEED": "0"}, 0, 0),
        ({}, 1, None),
        ({"PYTHONHASHSEED": "random"}, 1, None),
        ({"PYTHONHASHSEED": "123"}, 1, 123),
    ],
)
def test_process_seed(environ: dict[str, str], randomized: int, expected: int | None) -> None:
    assert hashseed.process_seed(environ, randomized) == expected


def _main(name: str | None) -> types.ModuleType:
    module = types.ModuleType("__main__")
    module.__spec__ = None if name is None else types.SimpleNamespace(name=name)  # type: ignore[assignment]
    return module


def test_restart_command_repeats_python_m_pytest_with_the_interpreters_options() -> None:
    command = hashseed.restart_command(
        ["-q", "tests"],
        argv=["/venv/lib/site-packages/pytest/__main__.py", "-q", "tests"],
        orig_argv=["python3", "-X", "dev", "-m", "pytest", "-q", "tests"],
        main=_main("pytest.__main__"),
        executable="/venv/bin/python3",
    )
    assert command == ["/venv/bin/python3", "-X", "dev", "-m", "pytest", "-q", "tests"]


@pytest.mark.parametrize(
    "script", ["/venv/bin/pytest", "/venv/bin/py.test", "/venv/Scripts/pytest.exe", "/venv/Scripts/pytest-script.py"]
)
def test_restart_command_repeats_the_pytest_script(script: str) -> None:
    command = hashseed.restart_command(
        ["-x"], argv=[script, "-x"], orig_argv=["/venv/bin/python", script, "-x"], main=_main(None), executable="/py"
    )
    assert command == ["/py", script, "-x"]


def test_restart_command_without_orig_argv_rebuilds_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    # Python 3.9 has no sys.orig_argv: the interpreter's options come from its flags.
    monkeypatch.setattr(hashseed, "_interpreter_options", lambda: ["-O"])
    module = hashseed.restart_command(
        ["-x"], argv=["/x/pytest/__main__.py", "-x"], orig_argv=[], main=_main("pytest.__main__"), executable="/py"
    )
    assert module == ["/py", "-O", "-m", "pytest", "-x"]
    script = hashseed.restart_command(
        ["-x"], argv=["/venv/bin/pytest", "-x"], orig_argv=[], main=_main(None), executable="/py"
    )
    assert script == ["/py", "-O", "/venv/bin/pytest", "-x"]


@pytest.mark.parametrize(
    ("args", "argv", "main", "executable"),
    [
        (["-q"], ["/venv/bin/pytest", "-x"], None, "/py"),  # pytest.main(["-q"]) called by a program started so
        (["-q"], ["/usr/bin/tox", "-q"], None, "/py"),  # another program that calls pytest.main()
        (["-q"], ["-c", "-q"], None, "/py"),  # python -c "..."
        (["-q"], ["/x/pytest/__main__.py", "-q"], "runpy_other", "/py"),
        (["-q"], ["/venv/bin/pytest", "-q"], None, ""),  # an embedded interpreter: no executable to start
        ([], [], None, "/py"),
    ],
)
def test_restart_command_is_none_when_pytest_was_not_started_as_a_command(
    args: list[str], argv: list[str], main: str | None, executable: str
) -> None:
    assert hashseed.restart_command(args, argv=argv, orig_argv=[], main=_main(main), executable=executable) is None


@pytest.mark.parametrize(
    ("seed", "want", "environ", "expected"),
    [
        (0, 0, {}, None),
        (5, None, {}, None),
        (None, None, {}, "hash seed random (--alloc-hash-seed=keep)"),
        (
            0,
            0,
            {hashseed.RESTARTED_FROM: "random"},
            "hash seed 0 (pytest started again with it: it had random)",
        ),
        (
            None,
            3,
            {},
            "hash seed random, but the budgets were measured under 3: numbers that depend on hashing can differ "
            "(run pytest as a command, or set PYTHONHASHSEED=3)",
        ),
    ],
)
def test_header(seed: int | None, want: int | None, environ: dict[str, str], expected: str | None) -> None:
    assert hashseed.header(seed, want, environ) == expected
