"""The slow path of reading a budget file: PyYAML, for a file edited into another YAML layout or holding a problem.

Kept apart from :mod:`store` so that PyYAML is imported only when a file needs it: a file in the layout the plugin
writes is read by :mod:`store`'s line parser, and a run with no budgeted test reads no file at all.

Both readers must read every text the same, so this one is stricter than YAML where YAML readers disagree among
themselves or with the line parser: a value is plain decimal digits (YAML 1.1 reads ``010`` as 8, YAML 1.2 as 10),
and anchors, aliases and merge keys, which the plugin never writes, are refused before anything is built from them
(a few kilobytes of nested aliases otherwise expand to millions of entries).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import yaml

from ..judging.metrics import METRICS
from .store import FORMAT_VERSION, MAX_SEED, MAX_VALUE, BudgetFile, BudgetFileError, EntryKey, Values

__all__ = ["read_yaml"]


def read_yaml(text: str, source: str) -> BudgetFile:
    """Parse ``text`` with PyYAML and validate it, naming the line and key path of the first problem."""
    try:
        if "&" in text or "*" in text or "<<" in text:  # the only way to write an anchor, an alias or a merge key
            _refuse_references(text, source)
        loader = _Loader(text)  # PyYAML's own loader checks the characters here, libyaml's as it parses
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as error:
        line = f":{error.problem_mark.line + 1}" if error.problem_mark is not None else ""
        raise BudgetFileError(f"{source}{line}: not valid YAML: {error.problem}") from error
    except yaml.reader.ReaderError as error:  # a character YAML refuses, by its position in the text
        number = text.count("\n", 0, error.position) + 1
        problem = f"unacceptable character #x{error.character:04x}: {error.reason}"
        raise BudgetFileError(f"{source}:{number}: not valid YAML: {problem}") from error
    except yaml.YAMLError as error:
        raise BudgetFileError(f"{source}: not valid YAML: {error}") from error
    if root is None or _is_null(root):
        return BudgetFile()  # an empty file, or one holding only "---"
    return _Reader(loader, source).document(root)


#: libyaml's parser where PyYAML was built with it: several times faster on a large file.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_INT = "tag:yaml.org,2002:int"
#: The one form of a number every YAML reader reads alike, and the one the plugin writes.
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_NEGATIVE = re.compile(r"-[1-9][0-9]*")


def _numeric(node: yaml.Node) -> bool:
    """A number to YAML 1.1, or plain digits, which YAML 1.2 reads as a number even where 1.1 does not (``09``)."""
    if not isinstance(node, yaml.ScalarNode):
        return False
    plain = not node.style  # None from PyYAML's own parser, "" from libyaml
    return node.tag == _INT or (plain and node.value.isascii() and node.value.isdigit())


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _shown(number: str) -> str:
    """A number as written, unless it is too long to be worth printing."""
    return number if len(number) <= 30 else f"a number of {len(number)} digits"


def _error(source: str, mark: yaml.Mark, path: str, message: str) -> BudgetFileError:
    where = f" at {path}" if path else ""
    return BudgetFileError(f"{source}:{mark.line + 1}{where}: {message}")


@dataclass
class _Open:
    """A collection open in :func:`_refuse_references`: its key path, and for a mapping where it is."""

    path: str
    mapping: bool
    at_key: bool = True  # the next node is a key (mappings alternate key, value)
    key: str | None = None  # the key whose value comes next; None after a key that is not a scalar


def _refuse_references(text: str, source: str) -> None:
    """Refuse the first anchor, alias or merge key, from the parser's events: before any node is composed, so that
    nothing is expanded however deeply aliases nest.  The key path is followed as the events come."""
    loader = _Loader(text)
    stack: list[_Open] = []
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.CollectionEndEvent):
                stack.pop()
            elif isinstance(event, yaml.NodeEvent):  # a scalar, an alias, or the start of a collection
                path = _path_of(stack, event)
                if isinstance(event, yaml.AliasEvent):
                    problem = f"YAML aliases (*{event.anchor})"
                elif event.anchor is not None:
                    problem = f"YAML anchors (&{event.anchor})"
                elif isinstance(event, yaml.ScalarEvent) and event.value == "<<" and event.implicit[0]:
                    problem = "YAML merge keys ('<<')"  # plain and untagged: what YAML 1.1 resolves to a merge
                else:
                    if isinstance(event, yaml.CollectionStartEvent):
                        stack.append(_Open(path, isinstance(event, yaml.MappingStartEvent)))
                    continue
                raise _error(
                    source, event.start_mark, path, f"{problem} are not allowed in a budget file; write each value out"
                )
    finally:
        loader.dispose()


def _path_of(stack: list[_Open], event: yaml.NodeEvent) -> str:
    """The key path of the node ``event`` starts, as :class:`_Reader` names it (a key is named by its mapping)."""
    if not stack:
        return ""
    parent = stack[-1]
    if not parent.mapping:
        return parent.path
    if parent.at_key:
        parent.at_key = False
        parent.key = event.value if isinstance(event, yaml.ScalarEvent) else None
        return parent.path
    parent.at_key = True
    if parent.key is None:
        return parent.path
    return f"{parent.path}.{parent.key}" if parent.path else parent.key


class _Reader:
    """Validates the node tree, naming the line and the key path of the first problem."""

    def __init__(self, loader: yaml.SafeLoader | yaml.CSafeLoader, source: str) -> None:
        self.loader = loader
        self.source = source

    def fail(self, node: yaml.Node, path: str, message: str) -> BudgetFileError:
        return _error(self.source, node.start_mark, path, message)

    def scalar(self, node: yaml.Node, path: str) -> object:
        """Construct a single value.  Numbers (the ``int`` tag) never get here: each caller reads them from their
        text, so that a number of thousands of digits never reaches ``int()``."""
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, path, "expected a single value, not a list or a mapping")
        try:
            return self.loader.construct_object(node, deep=True)
        except Exception as error:
            # PyYAML's constructors fail with whatever their parsing raises: ConstructorError for an unknown tag, but
            # IndexError for '!!float ""', KeyError for '!!bool maybe', AttributeError for '!!timestamp soon'.  Each
            # is a value that cannot be read.
            raise self.fail(node, path, f"cannot read this value: {error}") from None

    def mapping(self, node: yaml.Node, path: str) -> Iterator[tuple[str, yaml.Node, str]]:
        """The string keys of a mapping node, with their value nodes and key paths; rejects duplicates."""
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, path, "expected a mapping of names to values")
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag == _INT:
                raise self.fail(key_node, path, f"expected a text key, got {_shown(key_node.value)}")
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
            if key not in ("version", "hash_seed", "profiles"):
                raise self.fail(node, path, "unknown key; expected 'version', 'hash_seed' and 'profiles'")
        if "version" not in fields:
            raise self.fail(root, "", f"missing 'version: {FORMAT_VERSION}'")
        version_node, version_path = fields["version"]
        if not (isinstance(version_node, yaml.ScalarNode) and version_node.tag == _INT):
            shown = repr(self.scalar(version_node, version_path))  # '1', None, True, 1.0
        elif version_node.value != str(FORMAT_VERSION):
            shown = _shown(version_node.value)  # as written: "01" is not version 1 to every YAML reader
        else:
            shown = ""
        if shown:
            raise self.fail(
                version_node,
                version_path,
                f"unsupported version {shown}; this pytest-allocbudget reads version {FORMAT_VERSION}",
            )
        budgets = BudgetFile()
        if "hash_seed" in fields:
            budgets.hash_seed = self.number(*fields["hash_seed"], MAX_SEED, "a hash seed")
        if "profiles" not in fields:
            return budgets
        profiles_node, profiles_path = fields["profiles"]
        if _is_null(profiles_node):
            return budgets
        for profile, tests_node, profile_path in self.mapping(profiles_node, profiles_path):
            budgets.profiles[profile] = self.profile(tests_node, profile_path)
        return budgets

    def profile(self, node: yaml.Node, path: str) -> dict[EntryKey, Values]:
        entries: dict[EntryKey, Values] = {}
        if _is_null(node):
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
        return self.number(node, path, MAX_VALUE, "a value")

    def number(self, node: yaml.Node, path: str, largest: int, what: str) -> int:
        """A whole number from 0 to ``largest``, in plain decimal digits: every reader reads those alike."""
        if not _numeric(node):
            raise self.fail(node, path, f"expected a whole number >= 0, got {self.scalar(node, path)!r}")
        text = node.value
        if _NEGATIVE.fullmatch(text):
            raise self.fail(node, path, f"expected a whole number >= 0, got {text}")
        if not _DECIMAL.fullmatch(text):
            raise self.fail(node, path, f"expected a whole number >= 0 in plain decimal digits, got {text!r}")
        if len(text) > len(str(largest)) or int(text) > largest:
            shown = "2**64 - 1" if largest == MAX_VALUE else "2**32 - 1"
            raise self.fail(node, path, f"{_shown(text)} is too large; {what} is at most {largest} ({shown})")
        return int(text)
