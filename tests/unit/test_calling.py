"""Arguments are bound before the window opens, so a test that takes fixtures pays nothing for the call itself."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_allocbudget.calling import as_positional


def takes(a: int, b: int) -> None:
    pass


def keyword_only(a: int, *, b: int) -> None:
    pass


def anything(**kwargs: Any) -> None:
    pass


class Holder:
    def method(self, a: int, b: int) -> None:
        pass


@pytest.mark.parametrize(
    ("function", "args", "kwargs", "expected"),
    [
        (takes, (), {"b": 2, "a": 1}, (1, 2)),  # in the order of the parameters, not of the dict
        (takes, (1,), {"b": 2}, (1, 2)),
        (Holder().method, (), {"a": 1, "b": 2}, (1, 2)),  # self is already bound
        (takes, (), {"a": 1}, None),  # a parameter left to its default or missing: keep the keyword call
        (takes, (), {"a": 1, "b": 2, "c": 3}, None),
        (keyword_only, (), {"a": 1, "b": 2}, None),
        (anything, (), {"a": 1}, None),
        (len, (), {}, None),  # not a Python function
    ],
)
def test_as_positional(function: Any, args: tuple[Any, ...], kwargs: dict[str, Any], expected: Any) -> None:
    assert as_positional(function, args, kwargs) == expected
