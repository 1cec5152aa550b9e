"""The budget file: YAML in, YAML out, nothing else.

The file is reviewed like code, so it is written deterministically (sorted keys, block style, one value a line) and
atomically (a temporary file in the same directory, then ``os.replace``): the same budgets always give the same bytes,
two changes to different tests merge cleanly, and an interrupted write never leaves half a file.

Reading walks PyYAML's node tree rather than the loaded data so that every error can name the line of the bad key,
and so that a duplicated key (which plain loading silently resolves to the last one) is caught.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import yaml

from .metrics import METRICS

__all__ = [
    "FORMAT_VERSION",
    "HEADER",
    "BudgetFile",
    "BudgetFileError",
    "EntryKey",
    "dump",
    "load",
    "loads",
    "save",
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
    """All budgets of one file: profile name -> entry key -> metric -> value."""

    profiles: dict[str, dict[EntryKey, Values]] = field(default_factory=dict)

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

    ``version`` comes first, then profiles, node ids, regions and metrics, each sorted, so that the order never
    depends on the order tests ran in.
    """
    profiles: dict[str, object] = {}
    for profile in sorted(budgets.profiles):
        tests: dict[str, dict[str, object]] = {}
        for (nodeid, region), values in sorted(budgets.profiles[profile].items(), key=lambda item: _sort_key(item[0])):
            test = tests.setdefault(nodeid, {})
            if region is None:
                test.update(_ordered_values(values))
            else:
                regions = test.setdefault("regions", {})
                assert isinstance(regions, dict)
                regions[region] = _ordered_values(values)
        profiles[profile] = {nodeid: _metrics_first(test) for nodeid, test in tests.items()}
    document: dict[str, object] = {"version": FORMAT_VERSION, "profiles": profiles}
    body = yaml.dump(
        document,
        Dumper=_Dumper,
        default_flow_style=False,
        sort_keys=False,  # sorted above; PyYAML's sort would put "profiles" before "version"
        allow_unicode=False,  # escapes keep odd node ids byte-stable and readable everywhere
        width=10_000,  # never fold a long node id over two lines
        indent=2,
    )
    return HEADER + body


class _Dumper(yaml.SafeDumper):
    """Writes long node ids as plain keys: PyYAML switches keys of 128 characters or more to the explicit
    ``? key`` form, which reads badly in a reviewed file; YAML allows implicit keys up to 1024 characters."""

    def check_simple_key(self) -> bool:
        event = self.event
        # Printable ASCII needs no escapes, so the written key is at most a few characters (quotes) longer.
        value = event.value if isinstance(event, yaml.ScalarEvent) else None
        if value is not None and len(value) < 1000 and value.isascii() and value.isprintable():
            if self.analysis is None:
                self.analysis = self.analyze_scalar(value)
            if not self.analysis.multiline:
                return True
        return bool(super().check_simple_key())


def _metrics_first(test: dict[str, object]) -> dict[str, object]:
    """A whole-test entry's metrics (sorted), then its regions."""
    ordered = {name: test[name] for name in sorted(test) if name != "regions"}
    if "regions" in test:
        ordered["regions"] = test["regions"]
    return ordered


def _ordered_values(values: Mapping[str, int]) -> dict[str, int]:
    return {name: int(values[name]) for name in sorted(values)}


def save(path: Path, budgets: BudgetFile) -> None:
    """Write atomically: a temporary file beside ``path``, flushed to disk, then renamed over it."""
    text = dump(budgets)
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as error:
        raise BudgetFileError(f"cannot write the budget file {path}: {error.strerror or error}") from error
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        if path.exists():
            os.chmod(temp_name, path.stat().st_mode & 0o777)
        else:
            os.chmod(temp_name, 0o666 & ~_umask())
        os.replace(temp_name, path)
    except OSError as error:
        _remove_quietly(temp_name)
        raise BudgetFileError(f"cannot write the budget file {path}: {error.strerror or error}") from error
    except BaseException:
        _remove_quietly(temp_name)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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
    """Parse and validate budget-file text; ``source`` names it in errors."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as error:
        line = f":{error.problem_mark.line + 1}" if error.problem_mark is not None else ""
        raise BudgetFileError(f"{source}{line}: not valid YAML: {error.problem}") from error
    except yaml.YAMLError as error:
        raise BudgetFileError(f"{source}: not valid YAML: {error}") from error
    finally:
        loader.dispose()
    if root is None or (isinstance(root, yaml.ScalarNode) and root.tag == "tag:yaml.org,2002:null"):
        return BudgetFile()  # an empty file, or one holding only "---"
    return _Reader(loader, source).document(root)


class _Reader:
    """Validates the node tree, naming the line and the key path of the first problem."""

    def __init__(self, loader: yaml.SafeLoader, source: str) -> None:
        self.loader = loader
        self.source = source

    def fail(self, node: yaml.Node, path: str, message: str) -> BudgetFileError:
        where = f" at {path}" if path else ""
        return BudgetFileError(f"{self.source}:{node.start_mark.line + 1}{where}: {message}")

    def scalar(self, node: yaml.Node, path: str) -> object:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, path, "expected a single value, not a list or a mapping")
        try:
            return self.loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError) as error:  # unknown tags, "!!int abc"
            raise self.fail(node, path, f"cannot read this value: {error}") from None

    def mapping(self, node: yaml.Node, path: str) -> Iterator[tuple[str, yaml.Node, str]]:
        """The string keys of a mapping node, with their value nodes and key paths; rejects duplicates."""
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, path, "expected a mapping of names to values")
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = self.scalar(key_node, path)
            if not isinstance(key, str):
                raise self.fail(key_node, path, f"expected a text key, got {key!r}")
            key_path = f"{path}.{key}" if path else key
            if key in seen:
                raise self.fail(key_node, key_path, f"duplicate key {key!r}")
            seen.add(key)
            yield key, value_node, key_path

    def document(self, root: yaml.Node) -> BudgetFile:
        fields = {key: (node, path) for key, node, path in self.mapping(root, "")}
        for key, (node, path) in fields.items():
            if key not in ("version", "profiles"):
                raise self.fail(node, path, "unknown key; expected 'version' and 'profiles'")
        if "version" not in fields:
            raise self.fail(root, "", f"missing 'version: {FORMAT_VERSION}'")
        version_node, version_path = fields["version"]
        version = self.scalar(version_node, version_path)
        if isinstance(version, bool) or not isinstance(version, int) or version != FORMAT_VERSION:
            raise self.fail(
                version_node,
                version_path,
                f"unsupported version {version!r}; this pytest-allocbudget reads version {FORMAT_VERSION}",
            )
        budgets = BudgetFile()
        if "profiles" not in fields:
            return budgets
        profiles_node, profiles_path = fields["profiles"]
        if isinstance(profiles_node, yaml.ScalarNode) and self.scalar(profiles_node, profiles_path) is None:
            return budgets
        for profile, tests_node, profile_path in self.mapping(profiles_node, profiles_path):
            budgets.profiles[profile] = self.profile(tests_node, profile_path)
        return budgets

    def profile(self, node: yaml.Node, path: str) -> dict[EntryKey, Values]:
        entries: dict[EntryKey, Values] = {}
        if isinstance(node, yaml.ScalarNode) and self.scalar(node, path) is None:
            return entries
        for nodeid, test_node, test_path in self.mapping(node, path):
            values: Values = {}
            regions = 0
            for name, value_node, value_path in self.mapping(test_node, test_path):
                if name == "regions":
                    for region, region_node, region_path in self.mapping(value_node, value_path):
                        entries[(nodeid, region)] = self.values(region_node, region_path)
                        regions += 1
                else:
                    values[name] = self.value(name, value_node, value_path)
            if values:
                entries[(nodeid, None)] = values
            elif not regions:
                raise self.fail(test_node, test_path, "an entry needs at least one metric or region")
        return entries

    def values(self, node: yaml.Node, path: str) -> Values:
        values = {name: self.value(name, child, child_path) for name, child, child_path in self.mapping(node, path)}
        if not values:
            raise self.fail(node, path, "an entry needs at least one metric")
        return values

    def value(self, name: str, node: yaml.Node, path: str) -> int:
        if name not in METRICS:
            known = ", ".join(METRICS)
            raise self.fail(node, path, f"unknown metric {name!r}; known metrics: {known}")
        value = self.scalar(node, path)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(node, path, f"expected a whole number >= 0, got {value!r}")
        return value
