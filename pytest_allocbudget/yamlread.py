"""The slow path of reading a budget file: PyYAML, for a file edited into another YAML layout or holding a problem.

Kept apart from :mod:`store` so that PyYAML is imported only when a file needs it: a file in the layout the plugin
writes is read by :mod:`store`'s line parser, and a run with no budgeted test reads no file at all.
"""

from __future__ import annotations

from collections.abc import Iterator

import yaml

from .metrics import METRICS
from .store import FORMAT_VERSION, BudgetFile, BudgetFileError, EntryKey, Values

__all__ = ["read_yaml"]


def read_yaml(text: str, source: str) -> BudgetFile:
    """Parse ``text`` with PyYAML and validate it, naming the line and key path of the first problem."""
    loader = _Loader(text)
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


#: libyaml's parser where PyYAML was built with it: several times faster on a large file.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Reader:
    """Validates the node tree, naming the line and the key path of the first problem."""

    def __init__(self, loader: yaml.SafeLoader | yaml.CSafeLoader, source: str) -> None:
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
