"""Unit tests of :mod:`pytest_allocbudget.measuring.searches`: a budgeted ``@given`` test searches alike each run."""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st

from pytest_allocbudget.measuring.searches import fix_search, is_search, release_constants


@pytest.fixture(autouse=True)
def _released() -> Iterator[None]:
    # fix_search holds the project's constants until the plugin's teardown releases them: here, after each test
    release_constants()
    yield
    release_constants()


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


def test_a_derandomized_test_is_seeded_too() -> None:
    # derandomize comes from a profile more often than from the test: seeding it makes one search in every profile
    test = settings(derandomize=True)(_search())
    assert fix_search(test, "t.py::test")
    assert test._hypothesis_internal_use_seed == zlib.crc32(b"t.py::test")  # type: ignore[attr-defined]


def test_the_search_is_the_same_under_hypothesis_ci_profile() -> None:
    # Hypothesis loads its derandomized "ci" profile whenever a CI variable is set; a budget recorded without it
    # must measure the same search as the check in CI
    seeds = []
    previous = settings._current_profile
    for profile in ("default", "ci"):
        settings.load_profile(profile)
        try:
            test = _search()
            assert fix_search(test, "t.py::test")
            seeds.append(test._hypothesis_internal_use_seed)  # type: ignore[attr-defined]
            assert test._hypothesis_internal_use_settings.database is None  # type: ignore[attr-defined]
            test()
        finally:
            settings.load_profile(previous or "default")
    assert seeds == [zlib.crc32(b"t.py::test")] * 2


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


def test_held_searches_draw_no_constants_of_the_project_and_released_ones_do() -> None:
    from hypothesis.internal.conjecture import providers

    from pytest_allocbudget.measuring.searches import hold_constants

    scanned = len(providers._get_local_constants())
    hold_constants()
    try:
        assert len(providers._get_local_constants()) == 0
        assert len(providers.CONSTANTS_CACHE.cache) == 0  # nothing drawn before is drawn from while held
        hold_constants()  # holding twice is holding
        assert len(providers._get_local_constants()) == 0
    finally:
        release_constants()
    assert len(providers._get_local_constants()) == scanned  # Hypothesis's own scan again, for tests not budgeted
    release_constants()  # releasing twice is harmless


def test_a_search_with_its_own_seed_is_held_from_the_project_constants_too() -> None:
    from hypothesis.internal.conjecture import providers

    assert not fix_search(seed(7)(_search()), "t.py::test")
    assert len(providers._get_local_constants()) == 0
