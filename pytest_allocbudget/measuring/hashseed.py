"""The hash seed of a measured run: one fixed seed, the budget file's, so that numbers which depend on hashing repeat.

Python salts the hash of every ``str`` and ``bytes`` with a seed chosen at random when the interpreter starts,
unless ``PYTHONHASHSEED`` fixes it.  Code that keys dicts and sets by strings then allocates differently from one
run to the next: probe sequences and so resize points move, sets of strings grow at other moments, iteration order
changes what gets built.  On real suites this is the main source of run-to-run differences in ``allocated`` and
``allocations`` (docs/performance.md), so budgets are recorded and checked under one seed, written in the budget
file (``hash_seed:``), 0 until a run records another.

The seed is fixed when the interpreter starts and cannot change afterwards.  So a pytest started as a command, whose
seed is not the wanted one, is started again at once (``pytest_cmdline_main``, before any test has run or any file
has been written) with the same command and ``PYTHONHASHSEED`` set; pytest-xdist's workers and the plugin's own
children inherit it.  Where pytest was not started as a command (``pytest.main()`` inside another program) nothing is
restarted, and the run says that its numbers may differ.

Nothing here imports more than the standard library: it is imported by every pytest start-up.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any, Optional

__all__ = [
    "DEFAULT_SEED",
    "KEEP",
    "MAX_SEED",
    "RESTARTED_FROM",
    "describe",
    "header",
    "parse",
    "process_seed",
    "restart",
    "restart_command",
    "wanted",
]

#: The seed of a budget file that names none.
DEFAULT_SEED = 0
#: The largest seed Python accepts in ``PYTHONHASHSEED``.
MAX_SEED = 4294967295
#: The setting that leaves the process's seed as it is.
KEEP = "keep"
#: Set in the environment of a restarted pytest: the seed the first process had (a number, or "random").  It also
#: keeps a restarted process from restarting again, whatever happens to its seed.
RESTARTED_FROM = "PYTEST_ALLOCBUDGET_RESTARTED_FROM"

#: A seed: a number, or ``None`` for a random one.
Seed = Optional[int]


def describe(seed: Seed) -> str:
    return "random" if seed is None else str(seed)


def parse(text: str, source: str) -> str:
    """``--alloc-hash-seed`` or its ini key: ``keep``, or a seed from 0 to 4294967295 (returned as given, stripped).

    Raises ValueError naming ``source``.
    """
    value = text.strip()
    if value == KEEP or (value.isdigit() and value.isascii() and int(value) <= MAX_SEED):
        return value
    raise ValueError(f"{source}: expected 'keep' or a hash seed from 0 to {MAX_SEED}, got {text!r}")


def wanted(setting: str, file_seed: int | None) -> int | None:
    """The seed this run's measurements need, or ``None`` to keep the process's: the setting's number, else the
    budget file's seed, else :data:`DEFAULT_SEED`.  ``setting`` is ``""`` (not set), ``keep`` or a number."""
    if setting == KEEP:
        return None
    if setting:
        return int(setting)
    return DEFAULT_SEED if file_seed is None else file_seed


def process_seed(environ: Mapping[str, str] = os.environ, hash_randomization: int | None = None) -> Seed:
    """The seed this process hashes with, ``None`` when it is random.

    Python does not expose the seed; ``sys.flags.hash_randomization`` says only whether it is 0.  Any other fixed
    seed is read back from ``PYTHONHASHSEED``, which is what the interpreter read at start-up unless the program has
    changed it since (nothing in a pytest start-up does).
    """
    if hash_randomization is None:
        hash_randomization = sys.flags.hash_randomization
    if not hash_randomization:
        return 0
    text = environ.get("PYTHONHASHSEED", "")
    return int(text) if text.isdigit() and text.isascii() else None


def restart_command(
    args: Sequence[str],
    argv: Sequence[str] | None = None,
    orig_argv: Sequence[str] | None = None,
    main: ModuleType | None = None,
    executable: str | None = None,
) -> list[str] | None:
    """The command that started this pytest, to start it again; ``None`` when pytest was not started as a command.

    ``args`` are pytest's invocation arguments: pytest was started as a command when they are this process's own
    arguments and its main program is pytest (``python -m pytest`` or the ``pytest`` script).  Anything else
    (``pytest.main()`` called by a program, an interactive session) must not be replaced.  The interpreter's own
    options (``-X``, ``-W``, ``-O`` ...) are kept.
    """
    argv = list(sys.argv if argv is None else argv)
    if orig_argv is None:
        orig_argv = getattr(sys, "orig_argv", None)  # Python 3.10 and later
    main = sys.modules.get("__main__") if main is None else main
    executable = sys.executable if executable is None else executable
    if not executable or not argv or list(args) != argv[1:]:
        return None
    spec = getattr(main, "__spec__", None)
    as_module = spec is not None and spec.name in ("pytest", "pytest.__main__")
    script = os.path.basename(argv[0]).lower()
    for suffix in (".exe", "-script.py"):  # the launchers of Windows
        script = script.removesuffix(suffix)
    if not as_module and script not in ("pytest", "py.test"):
        return None
    if orig_argv:
        # Everything after the interpreter's own name, exactly as it was given: its options, then -m pytest or the
        # script, then pytest's arguments.
        return [executable, *orig_argv[1:]]
    program = ["-m", "pytest"] if as_module else [argv[0]]
    return [executable, *_interpreter_options(), *program, *argv[1:]]


def _interpreter_options() -> list[str]:
    """The interpreter's options of this process, on Python 3.9 (which has no ``sys.orig_argv``)."""
    options: Any = getattr(subprocess, "_args_from_interpreter_flags", None)  # what multiprocessing uses too
    return list(options()) if callable(options) else []


def restart(command: Sequence[str], seed: int, original: Seed) -> int:
    """Run ``command`` again under ``seed``; on POSIX this process becomes it and the call does not return.

    Elsewhere (Windows, where replacing a process hands the console back to the shell at once) the command runs as
    a child and its exit status is returned, to be this process's.
    """
    environ = dict(os.environ, PYTHONHASHSEED=str(seed))
    environ[RESTARTED_FROM] = describe(original)
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix":
        os.execve(command[0], list(command), environ)
    return subprocess.call(list(command), env=environ)


def header(seed: Seed, want: int | None, environ: Mapping[str, str] = os.environ) -> str | None:
    """What the run says of its hash seed, in pytest's header: when pytest was started again with the budgets'
    seed, when it could not be, or when it keeps a random one; ``None`` when there is nothing to say."""
    original = environ.get(RESTARTED_FROM)
    if want is None:
        return None if seed is not None else "hash seed random (--alloc-hash-seed=keep)"
    if seed != want:
        return (
            f"hash seed {describe(seed)}, but the budgets were measured under {want}: numbers that depend on hashing "
            f"can differ (run pytest as a command, or set PYTHONHASHSEED={want})"
        )
    if original is not None:
        return f"hash seed {want} (pytest started again with it: it had {original})"
    return None
