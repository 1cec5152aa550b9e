"""Unit tests of :mod:`pytest_allocbudget.filelock`: the writers' lock of a budget file.

Two holders in one process are enough to see the lock work: ``flock`` (and ``msvcrt.locking``) locks belong to the
open file, not to the process, so a second ``open`` of the same file waits for the first.  Other processes are in
tests/integration/test_writers.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_allocbudget.filelock import LockTimeout, exclusive, lock_path


def test_lock_path_is_a_hidden_file_beside_the_budget_file(tmp_path: Path) -> None:
    assert lock_path(tmp_path / "budgets" / "alloc.yaml") == tmp_path / "budgets" / ".alloc.yaml.lock"


def test_a_second_holder_times_out_naming_the_lock(tmp_path: Path) -> None:
    path = tmp_path / ".allocbudget.yaml.lock"
    waits: list[None] = []
    with exclusive(path, 0), pytest.raises(LockTimeout) as info, exclusive(path, 0.05, lambda: waits.append(None)):
        pytest.fail("the lock was taken twice")
    assert info.value.path == path
    assert info.value.timeout == 0.05
    assert str(info.value) == f"{path} is still locked by another process after 0.05 s"
    assert waits == [None]  # told once that it waits, however many attempts it made


def test_no_wait_with_a_timeout_of_zero(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    waits: list[None] = []
    with exclusive(path, 0), pytest.raises(LockTimeout), exclusive(path, 0, lambda: waits.append(None)):
        pytest.fail("the lock was taken twice")
    assert waits == []


def test_the_lock_is_free_again_after_the_block_even_when_it_raised(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    with exclusive(path, 0):
        pass
    with pytest.raises(KeyError), exclusive(path, 0):
        raise KeyError("x")
    waits: list[None] = []
    with exclusive(path, 0, lambda: waits.append(None)):
        pass
    assert waits == []


def test_the_lock_file_is_created_empty_and_left_in_place(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    with exclusive(path, 0):
        assert path.exists()
    assert path.read_bytes() == b""


def test_a_lock_file_that_cannot_be_created_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(OSError), exclusive(tmp_path / "missing" / "lock", 0):
        pytest.fail("locked a file in a directory that does not exist")
