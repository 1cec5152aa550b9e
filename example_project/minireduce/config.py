"""Job configuration as small immutable value types.

A configuration is created once per job and then read by every task, possibly in another thread or process. Making
it a frozen dataclass means no task can change it under another's feet, so it can be shared instead of copied;
``__slots__`` makes each instance one small object without a ``__dict__``, and it pickles by value for process
workers.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, TypeVar

__all__ = ["Executor", "JobConfig", "slotted"]

T = TypeVar("T")


def slotted(cls: type[T]) -> type[T]:
    """Rebuild a frozen dataclass with ``__slots__``, as ``dataclass(slots=True)`` does.

    ``slots=True`` only exists from Python 3.10, and this project runs on 3.9 too, so it is done by hand, the same
    way: a new class with the same namespace, the fields as slots and their defaults removed from the class body
    (``__init__`` holds them). Frozen instances cannot be restored by pickle's default ``setattr``, so the class also
    gets ``__getstate__``/``__setstate__`` that go through ``object.__setattr__``. Apply it on top of
    ``@dataclass(frozen=True)``, so that type checkers still see an ordinary dataclass; do not use zero-argument
    ``super()`` in such a class (its ``__class__`` cell would name the class before the rebuild).
    """
    names = tuple(field.name for field in dataclasses.fields(cls))  # type: ignore[arg-type]
    namespace = dict(cls.__dict__)
    for name in (*names, "__dict__", "__weakref__"):
        namespace.pop(name, None)
    namespace["__slots__"] = names
    namespace["__getstate__"] = _getstate
    namespace["__setstate__"] = _setstate
    metaclass: Any = type(cls)
    rebuilt: type[T] = metaclass(cls.__name__, cls.__bases__, namespace)
    rebuilt.__qualname__ = cls.__qualname__
    return rebuilt


def _getstate(self: Any) -> tuple[Any, ...]:
    return tuple(getattr(self, name) for name in self.__slots__)


def _setstate(self: Any, state: tuple[Any, ...]) -> None:
    for name, value in zip(self.__slots__, state):
        object.__setattr__(self, name, value)


class Executor(str, enum.Enum):
    """Where the map and reduce tasks run."""

    SEQUENTIAL = "sequential"  # in the calling thread, one task after another
    THREAD = "thread"  # concurrent.futures.ThreadPoolExecutor
    PROCESS = "process"  # concurrent.futures.ProcessPoolExecutor: jobs, records and results must pickle


@slotted
@dataclasses.dataclass(frozen=True)
class JobConfig:
    """How a job is cut up and where its tasks run.

    ``partitions`` is the number of reduce tasks (keys are hash-partitioned into them), ``split_size`` the number of
    input records per map task, ``workers`` the pool size for the thread and process executors (ignored by the
    sequential one).
    """

    partitions: int = 4
    workers: int = 2
    executor: Executor = Executor.SEQUENTIAL
    split_size: int = 4096

    def __post_init__(self) -> None:
        # The messages are built only when a value is wrong: validation runs for every job, errors almost never.
        for name in ("partitions", "workers", "split_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"JobConfig.{name} must be a positive int, got {value!r}")
        if not isinstance(self.executor, Executor):
            choices = ", ".join(repr(member.value) for member in Executor)
            raise ValueError(f"JobConfig.executor must be an Executor ({choices}), got {self.executor!r}")
