"""What an xdist worker sends the controller survives the trip: verdicts, second calls included."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from pytest_allocbudget.judging.metrics import METRICS
from pytest_allocbudget.judging.tolerance import Tolerance
from pytest_allocbudget.judging.verdict import judge
from pytest_allocbudget.wiring.transport import WorkerResults

values = st.dictionaries(st.sampled_from(sorted(METRICS)), st.integers(0, 2**64 - 1), min_size=1)


@given(
    measured=values,
    budget=st.none() | values,
    first_call=st.none() | values,
    third_call=st.none() | values,
    region=st.none() | st.text(min_size=1),
    from_start=st.booleans(),
)
def test_a_verdict_comes_back_from_a_worker_as_it_was_sent(
    measured: dict[str, int],
    budget: dict[str, int] | None,
    first_call: dict[str, int] | None,
    third_call: dict[str, int] | None,
    region: str | None,
    from_start: bool,
) -> None:
    tolerances = {metric: Tolerance(Fraction(5, 2), 16) for metric in METRICS}
    verdict = judge(("t.py::test_x", region), "cpython-3.11", measured, budget, {}, tolerances, True)
    verdict = replace(verdict, first_call=first_call, third_call=third_call, from_start=from_start)
    sent = WorkerResults(verdicts=[verdict])
    assert WorkerResults.decode(sent.encode()).verdicts == [verdict]
