"""Arguments are bound before the window opens, so a test that takes fixtures pays nothing for the call itself;
a coroutine test function is measured from its coroutine's first step to its last."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Sequence
from typing import Any, Callable

import pytest

from pytest_allocbudget.measuring.calling import Rerun, as_positional, measured_call
from pytest_allocbudget.measuring.measure import LineStat, Region


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


class RecordingProbe:
    """A probe that measures nothing and notes when the window opens and closes."""

    def __init__(self, events: list[str]) -> None:
        self.events = events

    def start(self) -> None:
        self.events.append("open")

    def pause(self) -> None:
        self.events.append("close")

    def finish(self) -> dict[str, int]:
        return {}

    def explain(self) -> Sequence[LineStat]:
        return ()

    def stop(self) -> None:
        pass


def _async_test(events: list[str]) -> Callable[..., Any]:
    async def test_steps(value: int) -> int:
        events.append("first step")
        await asyncio.sleep(0)
        events.append("last step")
        return value

    return test_steps


@pytest.mark.parametrize("warmup", [False, True])
def test_a_coroutine_function_gets_a_coroutine_function_whose_run_is_the_window(warmup: bool) -> None:
    events: list[str] = []
    reruns: list[Rerun] = []
    function = _async_test(events)
    measured = measured_call(function, Region([RecordingProbe(events)]), warmup, reruns.append)
    # What anyio and pytest-asyncio look at to decide to run a test on their event loop.
    assert inspect.iscoroutinefunction(measured)
    assert measured.__name__ == "test_steps"
    coroutine = measured(value=7)  # as pytest passes fixtures: by keyword
    assert events == []  # creating the coroutine runs nothing, measured or not
    assert asyncio.run(coroutine) == 7
    body = ["first step", "last step"]
    assert events == [*(body if warmup else []), "open", *body, "close"]
    [rerun] = reruns
    assert rerun.coroutine and rerun.impossible is None  # it ran on asyncio: it can run again on a fresh loop
    events.clear()
    again = rerun.call()
    assert inspect.iscoroutine(again)
    assert asyncio.run(again) == 7
    assert events == body


def test_a_coroutine_run_by_another_event_loop_says_it_cannot_be_run_again() -> None:
    events: list[str] = []
    reruns: list[Rerun] = []

    async def test_nothing() -> None:
        events.append("step")

    measured = measured_call(test_nothing, Region([RecordingProbe(events)]), False, reruns.append)
    with pytest.raises(StopIteration):
        measured().send(None)  # driven by hand, as a loop other than asyncio's would
    assert events == ["open", "step", "close"]
    [rerun] = reruns
    assert rerun.impossible is not None and "an event loop other than asyncio" in rerun.impossible


def test_a_plain_function_is_run_again_with_the_same_arguments() -> None:
    calls: list[tuple[int, int]] = []

    def test_plain(a: int, b: int) -> None:
        calls.append((a, b))

    reruns: list[Rerun] = []
    measured = measured_call(test_plain, Region([RecordingProbe([])]), False, reruns.append)
    assert not inspect.iscoroutinefunction(measured)
    measured(b=2, a=1)
    [rerun] = reruns
    assert not rerun.coroutine and rerun.impossible is None
    rerun.call()
    assert calls == [(1, 2), (1, 2)]
