"""Unit tests of :mod:`pytest_allocbudget.measuring.searches`: a budgeted ``@given`` test searches alike each run."""

from __future__ import annotations

import zlib

from hypothesis import given, seed, settings
from hypothesis import strategies as st

from pytest_allocbudget.measuring.searches import fix_search, is_search


def _search() -> object:
    @given(st.integers())
    def test(n: int) -> None:
        str(n)

    return test


def test_a_given_test_gets_a_seed_from_its_node_id_and_no_database() -> None:
    test = _search()
    assert is_search(test)
    assert fix_search(test, "t.py::test[a]")
    assert test._hypothesis_internal_use_seed == zlib.crc32(b"t.py::test[a]")  # type: ignore[attr-defined]
    assert test._hypothesis_internal_use_settings.database is None  # type: ignore[attr-defined]
    test()  # and it still runs as a Hypothesis test


def test_every_parametrization_of_one_function_gets_its_own_seed() -> None:
    test = _search()
    fix_search(test, "t.py::test[a]")
    assert fix_search(test, "t.py::test[b]")
    assert test._hypothesis_internal_use_seed == zlib.crc32(b"t.py::test[b]")  # type: ignore[attr-defined]


def test_a_seed_the_test_gives_is_kept() -> None:
    test = seed(7)(_search())
    assert not fix_search(test, "t.py::test")
    assert test._hypothesis_internal_use_seed == 7  # type: ignore[attr-defined]


def test_a_derandomized_test_is_left_as_it_is() -> None:
    test = settings(derandomize=True)(_search())
    assert not fix_search(test, "t.py::test")
    assert getattr(test, "_hypothesis_internal_use_seed", None) is None


def test_a_method_is_seeded_on_its_function() -> None:
    class Tests:
        @given(st.integers())
        def test(self, n: int) -> None:
            str(n)

    assert fix_search(Tests().test, "t.py::Tests::test")
    assert Tests.test._hypothesis_internal_use_seed == zlib.crc32(b"t.py::Tests::test")  # type: ignore[attr-defined]


def test_a_plain_function_is_not_a_search() -> None:
    def test() -> None:
        pass

    assert not is_search(test)
    assert not fix_search(test, "t.py::test")
