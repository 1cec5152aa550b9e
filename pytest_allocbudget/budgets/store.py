"""The budget file: YAML in, YAML out, nothing else.

The file is reviewed like code, so it is written deterministically (sorted keys, block style, one value a line) and
atomically (a temporary file in the same directory, then ``os.replace``): the same budgets always give the same bytes,
two changes to different tests merge cleanly, and an interrupted write never leaves half a file.

Writers take turns: an update run changes the file as it is when the run ends, not as it was when the run started
(see :func:`update`), under a lock that another run writing the same file waits for (see filelock.py), so that two
runs at once never drop each other's entries.

Reading walks PyYAML's node tree rather than the loaded data so that every error can name the line of the bad key,
and so that a duplicated key (which plain loading silently resolves to the last one) is caught.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from ..judging.metrics import METRICS
from . import filelock

__all__ = [
    "FORMAT_VERSION",
    "HEADER",
    "MAX_SEED",
    "MAX_VALUE",
    "BudgetFile",
    "BudgetFileError",
    "EntryKey",
    "dump",
    "load",
    "loads",
    "peek_hash_seed",
    "save",
    "update",
    "write_atomically",
]

FORMAT_VERSION = 1

HEADER = """\
# Allocation budgets for pytest-allocbudget.
# Recorded with `pytest --alloc-update`; checked by every plain `pytest` run.
# Values are what was measured; the tolerance is added when checking, not stored.
# Review changes to this file like code: a larger number is a regression accepted.
"""

#: ``(node id, region name)``; the region is ``None`` for a test measured as a whole by the marker.
EntryKey = tuple[str, Optional[str]]
Values = dict[str, int]


class BudgetFileError(Exception):
    """The budget file cannot be used as it is; the message names the file, the line and the key."""


@dataclass
class BudgetFile:
    """All budgets of one file: profile name -> entry key -> metric -> value, and the hash seed they were measured
    under (``None``: the file names none; see hashseed.py)."""

    profiles: dict[str, dict[EntryKey, Values]] = field(default_factory=dict)
    hash_seed: int | None = None

    def profile(self, name: str) -> Mapping[EntryKey, Values]:
        """The entries of one profile (empty if the profile has none)."""
        return self.profiles.get(name, {})

    def get(self, profile: str, key: EntryKey) -> Values | None:
        """The recorded values of one entry, or ``None``."""
        return self.profiles.get(profile, {}).get(key)

    def entries(self) -> Iterator[tuple[str, EntryKey, Values]]:
        """Every entry of every profile, in file order."""
        for profile in sorted(self.profiles):
            for key in sorted(self.profiles[profile], key=_sort_key):
                yield profile, key, self.profiles[profile][key]

    def __len__(self) -> int:
        return sum(len(entries) for entries in self.profiles.values())


def _sort_key(key: EntryKey) -> tuple[str, str]:
    return key[0], key[1] or ""


# --------------------------------------------------------------------------------------------------- writing


def dump(budgets: BudgetFile) -> str:
    """Serialise deterministically: the same budgets always give the same text.

    ``version`` comes first, then ``hash_seed`` (when known), then profiles, node ids, regions and metrics, each
    sorted, so that the order never depends on the order tests ran in.  The layout is fixed and simple, so it is
    written directly rather than through PyYAML's emitter, which is slow (almost a second for 10,000 entries) and
    switches keys of 128 characters or more to the explicit ``? key`` form; every key is a plain scalar where that
    reads back as the same string, and a JSON-quoted one otherwise (JSON strings are valid YAML).
    """
    out = [HEADER, f"version: {FORMAT_VERSION}\n"]
    if budgets.hash_seed is not None:
        out.append(f"hash_seed: {int(budgets.hash_seed)}\n")
    if not budgets.profiles:
        out.append("profiles: {}\n")
        return "".join(out)
    out.append("profiles:\n")
    for profile in sorted(budgets.profiles):
        entries = budgets.profiles[profile]
        if not entries:
            out.append(f"  {_key(profile)}: {{}}\n")
            continue
        out.append(_key_line(2, profile))
        tests: dict[str, dict[str | None, Values]] = {}
        for (nodeid, region), values in entries.items():
            tests.setdefault(nodeid, {})[region] = values
        for nodeid in sorted(tests):
            measured = tests[nodeid]
            out.append(_key_line(4, nodeid))
            whole = measured.get(None)
            if whole is not None:
                out.extend(f"      {name}: {int(whole[name])}\n" for name in sorted(whole))
            regions = sorted(region for region in measured if region is not None)
            if regions:
                out.append("      regions:\n")
                for region in regions:
                    values = measured[region]
                    out.append(_key_line(8, region))
                    out.extend(f"          {name}: {int(values[name])}\n" for name in sorted(values))
    return "".join(out)


#: Plain scalars that YAML would read back as something other than the same string are quoted.
_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./:\[\]()=+,@-]*")
_SPECIAL = {"null", "true", "false", "yes", "no", "on", "off", "y", "n"}


def _key_line(indent: int, text: str) -> str:
    """``key:`` for a key whose value is a mapping on the following lines.  YAML limits an implicit key to 1024
    characters, so a longer one (a node id with long parameters) is written as an explicit ``? key``."""
    key = _key(text)
    pad = " " * indent
    if len(key) < 1000:
        return f"{pad}{key}:\n"
    return f"{pad}? {key}\n{pad}:\n"


def _key(text: str) -> str:
    if _PLAIN.fullmatch(text) and not text.endswith(":") and text.lower() not in _SPECIAL:
        return text
    return _quote(text)


def _quote(text: str) -> str:
    """A YAML double-quoted scalar in printable ASCII: quotes and backslashes escaped, everything else that is
    not printable ASCII as \\uXXXX or \\UXXXXXXXX, so the file's bytes are the same everywhere."""
    out = ['"']
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif " " <= char <= "~":
            out.append(char)
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    out.append('"')
    return "".join(out)


_ESCAPE = re.compile(r'\\(?:u([0-9a-f]{4})|U([0-9a-f]{8})|(["\\]))')


def _unquote(raw: str) -> str | None:
    """The inverse of :func:`_quote`, for exactly what it writes; ``None`` for anything else."""
    body = raw[1:-1]
    if "\\" not in body:
        return body if '"' not in body and body.isascii() and body.isprintable() else None
    if _ESCAPE.sub("", body).count("\\") or '"' in _ESCAPE.sub("", body):
        return None

    def replace(match: re.Match[str]) -> str:
        if match.group(3):
            return match.group(3)
        code = int(match.group(1) or match.group(2), 16)
        if 0xD800 <= code <= 0xDFFF:
            raise ValueError("surrogate")
        return chr(code)

    try:
        return _ESCAPE.sub(replace, body)
    except (ValueError, OverflowError):
        return None


def save(path: Path, budgets: BudgetFile) -> None:
    """Write the budget file atomically; an OSError becomes a BudgetFileError naming the file."""
    text = dump(budgets)
    try:
        write_atomically(path, text)
    except OSError as error:
        raise BudgetFileError(f"cannot write the budget file {path}: {error.strerror or error}") from error


def update(
    path: Path,
    change: Callable[[BudgetFile], BudgetFile | None],
    timeout: float,
    on_wait: Callable[[], None] | None = None,
) -> bool:
    """Change the budget file as it is now; return whether it was written.

    Under the writers' lock (see filelock.py), the file is read again and given to ``change``, and what ``change``
    returns is written (``None``: nothing to write).  Another update run may have written the file since this one
    read it at its start: its entries are in what ``change`` receives, and no writer can replace the file between
    this read and this write.  A file that can no longer be read (edited by hand meanwhile) is left as it is.

    ``timeout`` and ``on_wait`` are :func:`filelock.exclusive`'s.  Every failure is a :class:`BudgetFileError`
    naming the file; the file is then not changed.
    """
    lock = filelock.lock_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BudgetFileError(f"cannot write the budget file {path}: {error.strerror or error}") from error
    try:
        with filelock.exclusive(lock, timeout, on_wait):
            try:
                current = load(path)
            except BudgetFileError as error:
                raise BudgetFileError(
                    f"cannot write the budget file {path}: it changed on disk during this run and can no longer be "
                    f"read, so it was left as it is: {error}\nFix the file by hand or restore it from version "
                    "control, then record again."
                ) from None
            new = change(current)
            if new is None:
                return False
            save(path, new)
            return True
    except filelock.LockTimeout:
        raise BudgetFileError(
            f"cannot write the budget file {path}: another process is writing it (it holds the lock {lock}), and "
            f"still was after {timeout:g} s, so this run's changes were not written. Record again when it has "
            "finished, or wait longer with --alloc-lock-timeout."
        ) from None
    except OSError as error:
        raise BudgetFileError(
            f"cannot write the budget file {path}: cannot lock it with {lock}: {error.strerror or error}"
        ) from error


def write_atomically(path: Path, text: str) -> None:
    """A temporary file beside ``path``, flushed to disk, then renamed over it: a reader (or a crash) never sees
    half a file, and the old file stays whole until the new one is complete.

    The new file gets the mode a plain ``open()`` would give it: an existing file's own mode, else ``0o666`` less
    the umask.  The temporary file is created with ``0o666`` and the operating system applies the umask, as it
    does for ``open()``; the umask is never read, because reading it means setting it, for every thread at once.
    """
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    fd, temp_name = _create_temporary(directory, path.name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        try:
            mode: int | None = path.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = None  # a new file: the mode it was created with stands
        if mode is not None:
            os.chmod(temp_name, mode)
        os.replace(temp_name, path)
    except BaseException:
        _remove_quietly(temp_name)
        raise


#: Binary on Windows, where a descriptor otherwise translates newlines; the file must have the same bytes everywhere.
_TEMPORARY_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def _create_temporary(directory: Path, name: str) -> tuple[int, str]:
    """A new file ``.<name>.<random>.tmp`` in ``directory``, open for writing, created with mode ``0o666`` (less
    the umask).  ``tempfile.mkstemp`` would name it the same way, but always creates it with ``0o600``.  O_EXCL
    makes the name this call's alone; a name that exists already (vanishingly rare) is simply drawn again."""
    for _ in range(100):
        temp_name = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(temp_name, _TEMPORARY_FLAGS, 0o666), temp_name
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary file name", os.path.join(directory, f".{name}.*.tmp"))


def _remove_quietly(name: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(name)


# --------------------------------------------------------------------------------------------------- reading


def load(path: Path) -> BudgetFile:
    """Read ``path``; a missing file is an empty set of budgets (a project that has recorded nothing yet)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return BudgetFile()
    except (OSError, UnicodeDecodeError) as error:
        raise BudgetFileError(f"cannot read the budget file {path}: {error}") from error
    return loads(text, source=str(path))


def loads(text: str, source: str = "<budget file>") -> BudgetFile:
    """Parse and validate budget-file text; ``source`` names it in errors.

    A file in the exact layout :func:`dump` writes is read by a line parser (PyYAML needs over half a second for
    10,000 entries, even with libyaml); anything else, and every file with a problem, goes through PyYAML and
    the validating reader below, which names the line of the first problem.
    """
    fast = _read_canonical(text)
    if fast is not None:
        return fast
    return _read_yaml(text, source)


#: The largest value a budget file holds: the allocation counter counts in 64 bits, and a bound keeps a value of
#: thousands of digits from ever reaching ``int()``.
MAX_VALUE = 2**64 - 1
#: The largest hash seed: the largest ``PYTHONHASHSEED`` Python accepts.
MAX_SEED = 2**32 - 1


def peek_hash_seed(path: Path) -> int | None:
    """The ``hash_seed`` of the file at ``path`` as :func:`dump` writes it (a line before ``profiles``), read
    without parsing the file: it is needed before pytest starts (hashseed.py).  ``None`` for a missing or unreadable
    file, and for one that names no seed on such a line; the full read later finds a seed written anywhere else."""
    try:
        with path.open(encoding="utf-8") as stream:
            for line in stream:
                if line.startswith("profiles"):
                    break
                match = _SEED_LINE.fullmatch(line.rstrip("\n"))
                if match is not None:
                    seed = int(match.group(1))
                    return seed if seed <= MAX_SEED else None
    except (OSError, UnicodeDecodeError):
        return None
    return None


_SEED_LINE = re.compile(r"hash_seed: (0|[1-9][0-9]{0,9})")

#: A key, and a value as :func:`dump` writes it: decimal digits with no leading zero, at most twenty of them (as many
#: as ``MAX_VALUE`` has).  Any other form of a number is left to the YAML reader, which refuses it.
_LINE = re.compile(r'( *)("(?:[^"\\]|\\.)*"|[^\s"]\S*?):(?: (0|[1-9][0-9]{0,19}|\{\}))?')

#: Anything :func:`dump` never writes: it writes printable ASCII and newlines only.  YAML reads such characters in
#: ways a line parser does not: it refuses control characters even in a comment, and ``\r``, ``\x85``, ``\u2028``
#: and ``\u2029`` end a line.
_NOT_WRITTEN = re.compile(r"[^\n -~]")

#: YAML refuses a key on one line longer than 1024 characters; :func:`dump` writes ``? key`` from 1000 on.
_LONGEST_IMPLICIT_KEY = 999


def _read_canonical(text: str) -> BudgetFile | None:
    """Read a file in :func:`dump`'s layout, or return ``None`` at the first line that is not exactly that.

    ``None`` also covers every problem (a duplicate key, an unknown metric, an empty entry): the YAML path then
    reports it with its line.
    """
    if _NOT_WRITTEN.search(text):
        return None
    budgets = BudgetFile()
    state = _Canonical()
    explicit: str | None = None  # the "? key" line waiting for its ":" line
    for line in text.split("\n"):
        if not line or line.startswith("#"):
            if explicit is not None:
                return None
            continue
        if explicit is not None:
            indent = len(line) - len(line.lstrip(" "))
            if line != explicit[:indent] + ":":
                return None
            key = _read_key(explicit[indent + 2 :])
            if key is None or not state.take(budgets, indent, key, None):
                return None
            explicit = None
            continue
        if line.lstrip(" ").startswith("? "):
            explicit = line
            continue
        match = _LINE.fullmatch(line)
        if match is None or len(match.group(2)) > _LONGEST_IMPLICIT_KEY:
            return None
        key = _read_key(match.group(2))
        if key is None or not state.take(budgets, len(match.group(1)), key, match.group(3)):
            return None
    return budgets if explicit is None and state.finish() else None


class _Canonical:
    """The position of :func:`_read_canonical` in the layout; ``take`` is False for anything out of place."""

    def __init__(self) -> None:
        self.version = self.profiles = self.seed = False
        self.profiles_open = False  # False after "profiles: {}", which no profile may follow
        self.entries: dict[EntryKey, Values] | None = None  # the open profile, None when none or closed "{}"
        self.nodeid: str | None = None
        self.test_values: Values | None = None
        self.test_filled = False
        self.in_regions = False
        self.region_values: Values | None = None
        self.seen_tests: set[str] = set()
        self.seen_regions: set[str] = set()

    def take(self, budgets: BudgetFile, indent: int, key: str, value: str | None) -> bool:
        if indent == 0:
            if key == "version" and value == str(FORMAT_VERSION) and not self.version:
                self.version = True
                return True
            if key == "hash_seed" and self.version and not self.profiles and not self.seed and value and value != "{}":
                self.seed = True
                budgets.hash_seed = int(value)
                return budgets.hash_seed <= MAX_SEED
            if key == "profiles" and self.version and not self.profiles and value in (None, "{}"):
                self.profiles, self.profiles_open = True, value is None
                return True
            return False
        if indent == 2:
            if not self.profiles_open or value not in (None, "{}") or key in budgets.profiles or not self.finish():
                return False
            budgets.profiles[key] = {}
            self.entries = budgets.profiles[key] if value is None else None
            self.nodeid, self.seen_tests = None, set()
            return True
        if indent == 4:
            if self.entries is None or value is not None or key in self.seen_tests or not self.finish():
                return False
            self.seen_tests.add(key)
            self.nodeid, self.test_values, self.test_filled = key, None, False
            self.in_regions, self.region_values, self.seen_regions = False, None, set()
            return True
        if self.entries is None or self.nodeid is None:
            return False
        if indent == 6 and not self.in_regions:
            if key == "regions" and value is None:
                self.in_regions = True
                return True
            if key not in METRICS or value is None or value == "{}":
                return False
            if self.test_values is None:
                self.test_values = self.entries[(self.nodeid, None)] = {}
            if key in self.test_values:
                return False
            self.test_values[key] = number = int(value)
            self.test_filled = True
            return number <= MAX_VALUE
        if indent == 8 and self.in_regions:
            if value is not None or key in self.seen_regions or self.region_values == {}:
                return False
            self.seen_regions.add(key)
            self.region_values = self.entries[(self.nodeid, key)] = {}
            return True
        if indent == 10 and self.region_values is not None:
            if key not in METRICS or value is None or value == "{}" or key in self.region_values:
                return False
            self.region_values[key] = number = int(value)
            self.test_filled = True
            return number <= MAX_VALUE
        return False

    def finish(self) -> bool:
        """Close the open test entry; False if it (or its last region) ended empty."""
        if self.nodeid is not None and (not self.test_filled or self.region_values == {}):
            return False
        if self.in_regions and not self.seen_regions:
            return False
        return self.version


def _read_key(raw: str) -> str | None:
    if raw.startswith('"'):
        return _unquote(raw) if len(raw) >= 2 and raw.endswith('"') else None
    if _PLAIN.fullmatch(raw) and not raw.endswith(":") and raw.lower() not in _SPECIAL:
        return raw
    return None


def _read_yaml(text: str, source: str) -> BudgetFile:
    from .yamlread import read_yaml  # PyYAML is imported only for a file off the fast path

    return read_yaml(text, source)
