"""The zygote, a real process kept from a point of the session: asked for one key, or given a plan to work through
ahead of the session.  No pytest session in here: a plain job stands in for the call from the start."""

from __future__ import annotations

import os
import time

import pytest

from pytest_allocbudget.measuring import zygote

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the zygote is a forked process")

STATE = {"before": 1}


def _job(key: str) -> dict[str, int] | str:
    """What a child of the zygote sees: the state at the zygote's fork, never what the session did after it."""
    if key == "broken":
        return "it could not be set up and called: RuntimeError: no"
    STATE[key] = 1  # in the child only: the next child starts from the zygote's state again
    return {"seen": len(STATE), "pid": os.getpid()}


def test_asked_keys_are_answered_from_the_zygotes_state() -> None:
    kept = zygote.start(_job, timeout=30.0)
    assert kept is not None
    try:
        STATE["after"] = 1  # the session goes on: the zygote does not see it
        first, second = kept.ask("a", timeout=30.0), kept.ask("b", timeout=30.0)
        assert isinstance(first, dict) and isinstance(second, dict)
        assert first["seen"] == second["seen"] == 2  # "before" and its own key: nothing of the session's or "a"'s
        assert first["pid"] != second["pid"] != os.getpid()  # each in a child of its own
        assert kept.ask("broken", timeout=30.0) == "it could not be set up and called: RuntimeError: no"
    finally:
        STATE.pop("after", None)
        kept.close()


def test_a_plan_is_worked_through_ahead_and_taken_in_any_order() -> None:
    kept = zygote.start(_job, timeout=30.0)
    assert kept is not None
    try:
        keys = [f"k{i}" for i in range(2000)]  # far more than a pipe holds at once, as a large suite's plan is
        kept.plan(keys)
        assert kept.take("not planned", timeout=30.0) is None
        last = kept.take("k1999", timeout=30.0)  # the answers before it are kept for their own take
        assert isinstance(last, dict) and last["seen"] == 2
        assert isinstance(kept.take("k0", timeout=30.0), dict)
        assert kept.take("k0", timeout=30.0) is None  # taken once: asked again, the caller asks instead
        assert all(isinstance(kept.take(key, timeout=30.0), dict) for key in keys[1:1999])
    finally:
        kept.close()


def test_closing_a_zygote_in_the_middle_of_a_plan_does_not_wait_for_it() -> None:
    kept = zygote.start(_job, timeout=30.0)
    assert kept is not None
    kept.plan([f"k{i}" for i in range(100_000)])
    started = time.monotonic()
    kept.close()
    assert not kept.alive
    assert time.monotonic() - started < 30.0  # without the kill it would work through all 100,000 first
    assert kept.take("k5", timeout=1.0) == "the process kept from the start of the session has ended"


def test_a_second_zygote_does_not_keep_the_first_ones_pipe_open() -> None:
    first = zygote.start(_job, timeout=30.0)
    second = zygote.start(_job, timeout=30.0)
    assert first is not None and second is not None
    first.close()  # it would hang here if the second zygote held the first one's request pipe open
    assert isinstance(second.ask("a", timeout=30.0), dict)
    second.close()
