"""The engine: split the input, map each split, shuffle, reduce each partition, collect the results.

Every executor runs the same task functions in the same order of splits and partitions, so the sequential, thread
and process executors give equal results (the same values in the same order reach every reducer, so even float
sums agree to the bit). The task functions are module-level so that a process pool can pickle them.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
from collections.abc import Iterable, Mapping, Sequence
from itertools import islice, repeat
from typing import Any, Callable, Protocol, TypeVar

from .config import Executor, JobConfig
from .shuffle import shuffle_optimized

__all__ = [
    "DEFAULT_CONFIG",
    "Job",
    "reduce_partition_naive",
    "reduce_partition_optimized",
    "run_job",
    "split_naive",
    "split_optimized",
]

R = TypeVar("R")
R_contra = TypeVar("R_contra", contravariant=True)
K = TypeVar("K", str, bytes, int)
V = TypeVar("V")
Out = TypeVar("Out")
Out_co = TypeVar("Out_co", covariant=True)

Partition = dict[K, list[V]]


class Job(Protocol[R_contra, K, V, Out_co]):
    """What the engine needs from a job. A job may also define ``combine(key, values) -> value``."""

    def map(self, records: Sequence[R_contra]) -> Iterable[tuple[K, V]]: ...

    def reduce(self, key: K, values: list[V]) -> Out_co: ...


# ------------------------------------------------------------------------------------------- input splits


def split_naive(records: Iterable[R], size: int) -> list[list[R]]:
    """Cut the input into splits with ``list(islice(...))``, the usual chunking idiom.

    A list built from an iterator cannot know its final size (``islice`` gives no length hint), so it starts small
    and grows as records are appended: reallocated by about an eighth each time, 27 times over for a split of a
    thousand records, each time requesting the whole new size.
    """
    iterator = iter(records)
    splits: list[list[R]] = []
    while True:
        split = list(islice(iterator, size))
        if not split:
            return splits
        splits.append(split)


def split_optimized(records: Sequence[R], size: int) -> list[list[R]]:
    """Cut the input into splits by slicing: a slice knows its length, so each split is allocated once, full size."""
    if isinstance(records, list):
        return [records[start : start + size] for start in range(0, len(records), size)]
    return [list(records[start : start + size]) for start in range(0, len(records), size)]


# ------------------------------------------------------------------------------------------------- reduce side


def reduce_partition_naive(job: Job[Any, K, V, Out], groups: Mapping[K, list[V]]) -> dict[K, Out]:
    """Reduce every key of a partition, copying defensively.

    It iterates over a snapshot of the items (a list, and a tuple per key that lives as long as the list), in case
    the mapping changes meanwhile, and hands the reducer a copy of each value list, in case the reducer changes
    it. Neither can happen: the partition is the engine's own, built for this call and dropped after it.
    """
    results: dict[K, Out] = {}
    for key, values in list(groups.items()):
        results[key] = job.reduce(key, list(values))
    return results


def reduce_partition_optimized(job: Job[Any, K, V, Out], groups: Mapping[K, list[V]]) -> dict[K, Out]:
    """Reduce every key of a partition, lending the engine's own lists to the reducer.

    The partition is private to this call, so it can be iterated directly (the items iterator reuses its tuple
    when the loop unpacks it) and its lists handed over as they are: a reducer may read them, or even consume
    them, since the engine never looks at them again.
    """
    reduce = job.reduce
    return {key: reduce(key, values) for key, values in groups.items()}


# ------------------------------------------------------------------------------------------------------ tasks


def _map_task(job: Job[R, K, V, Any], split: Sequence[R], partitions: int) -> list[Partition[K, V]]:
    """Map one split and partition its output (the map side of the shuffle), combining if the job can."""
    shuffled = shuffle_optimized(job.map(split), partitions)
    combine: Callable[[K, list[V]], V] | None = getattr(job, "combine", None)
    if combine is None:
        return shuffled
    return [{key: [combine(key, values)] for key, values in groups.items()} for groups in shuffled]


def _merge(mapped: Sequence[Sequence[Partition[K, V]]], partitions: int) -> list[Partition[K, V]]:
    """Gather each partition's groups from every map task, split by split, so values keep their input order."""
    merged: list[Partition[K, V]] = [{} for _ in range(partitions)]
    for task_output in mapped:
        for target, groups in zip(merged, task_output):
            for key, values in groups.items():
                existing = target.get(key)
                if existing is None:
                    target[key] = values  # the map task's list is ours now: adopt it rather than copy it
                else:
                    existing.extend(values)
    return merged


def _reduce_task(job: Job[Any, K, V, Out], groups: Partition[K, V]) -> dict[K, Out]:
    return reduce_partition_optimized(job, groups)


#: The configuration of a job run without one. A frozen value, so one instance can be the default of every call.
DEFAULT_CONFIG = JobConfig()


def run_job(job: Job[R, K, V, Out], records: Iterable[R], config: JobConfig = DEFAULT_CONFIG) -> dict[K, Out]:
    """Run ``job`` over ``records`` and return ``{key: result}``, sorted by key.

    With ``Executor.PROCESS`` the job, the records and the results travel between processes by pickle, so they
    must be picklable (the jobs in :mod:`minireduce.jobs` are).
    """
    data = records if isinstance(records, Sequence) else list(records)
    splits = split_optimized(data, config.split_size)
    if config.executor is Executor.SEQUENTIAL:
        mapped = [_map_task(job, split, config.partitions) for split in splits]
        reduced = [_reduce_task(job, groups) for groups in _merge(mapped, config.partitions)]
    else:
        with _pool(config) as pool:
            mapped = list(pool.map(_map_task, repeat(job), splits, repeat(config.partitions)))
            reduced = list(pool.map(_reduce_task, repeat(job), _merge(mapped, config.partitions)))
    results: dict[K, Out] = {}
    for partition_results in reduced:
        results.update(partition_results)
    return {key: results[key] for key in sorted(results)}


def _pool(config: JobConfig) -> concurrent.futures.Executor:
    if config.executor is Executor.THREAD:
        return concurrent.futures.ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="minireduce")
    # Not fork: forking a process that runs other threads can deadlock the child (Python 3.12 warns about it),
    # and a caller's threads are none of the engine's business. forkserver is Python 3.14's default on Linux.
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    return concurrent.futures.ProcessPoolExecutor(config.workers, mp_context=multiprocessing.get_context(method))
