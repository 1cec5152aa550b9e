"""The freezer's bookkeeping of a heap the project froze itself, on the real collector of this process."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from pytest_allocbudget.measuring.freezing import Freezer


@pytest.fixture
def thawed() -> Iterator[None]:
    """Each test starts and ends with nothing frozen, whatever the interpreter or the test froze."""
    gc.unfreeze()
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("thawed")
def test_a_heap_the_project_froze_is_frozen_again_by_restore() -> None:
    freezer = Freezer()
    gc.freeze()  # the project's own, after the plugin started and before its first freeze
    freezer.freeze()
    freezer.release()
    assert gc.get_freeze_count() == 0  # unfrozen for the end-of-session hooks
    freezer.restore()
    assert gc.get_freeze_count() > 0


@pytest.mark.usefixtures("thawed")
def test_restore_freezes_nothing_when_only_the_plugin_froze() -> None:
    freezer = Freezer()
    freezer.freeze()
    freezer.release()
    freezer.restore()
    assert gc.get_freeze_count() == 0


@pytest.mark.usefixtures("thawed")
def test_what_was_frozen_before_the_plugin_started_is_not_the_project_freezing() -> None:
    gc.freeze()  # as CPython 3.12 starts, with objects frozen already
    freezer = Freezer()
    freezer.freeze()
    freezer.release()
    freezer.restore()
    assert gc.get_freeze_count() == 0


@pytest.mark.usefixtures("thawed")
def test_restore_before_release_leaves_the_measuring_freeze_alone() -> None:
    freezer = Freezer()
    gc.freeze()
    freezer.freeze()
    freezer.restore()  # still measuring: release has not run, so restore must not take its turn now
    assert freezer.frozen
    freezer.release()
    freezer.restore()
    assert gc.get_freeze_count() > 0
