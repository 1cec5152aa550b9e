"""The shuffle: route every (key, value) pair to the partition of its key, and group the values by key.

Partitioning must give the same answer in every worker process, so it cannot use :func:`hash`: string hashes are
salted per interpreter (``PYTHONHASHSEED``), and a worker started with ``spawn`` or ``forkserver`` would put a key
in another partition than its parent did. :func:`partition_of` uses CRC-32 of the key's bytes instead.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import TypeVar, Union

__all__ = ["Key", "partition_of", "shuffle_naive", "shuffle_optimized"]

#: What can be partitioned: keys with a hash that is the same in every process.
Key = Union[str, bytes, int]

K = TypeVar("K", str, bytes, int)
V = TypeVar("V")


def partition_of(key: Key, partitions: int) -> int:
    """The partition (0 to ``partitions - 1``) of ``key``, the same in every process and on every run."""
    if isinstance(key, str):
        return zlib.crc32(key.encode("utf-8")) % partitions
    if isinstance(key, bytes):
        return zlib.crc32(key) % partitions
    if isinstance(key, int):
        return key % partitions
    raise TypeError(f"cannot partition a key of type {type(key).__name__}: keys must be str, bytes or int")


def shuffle_naive(pairs: Iterable[tuple[K, V]], partitions: int) -> list[dict[K, list[V]]]:
    """Partition in one pass, then sort and group each partition in a second: the textbook sort-based shuffle.

    Every pair pays for its partition (``key.encode()`` and the CRC's int are new objects each time) and is
    re-packed into a new tuple that lives until its bucket is grouped; sorting a bucket builds its list of sort
    keys; then each bucket is walked again to group it.
    """
    buckets: list[list[tuple[K, V]]] = []
    for _ in range(partitions):
        buckets.append([])
    for key, value in pairs:
        buckets[partition_of(key, partitions)].append((key, value))
    shuffled: list[dict[K, list[V]]] = []
    for bucket in buckets:
        bucket.sort(key=_pair_key)  # stable: the values of a key keep their input order
        groups: dict[K, list[V]] = {}
        for key, value in bucket:
            if key not in groups:
                groups[key] = []
            groups[key].append(value)
        shuffled.append(groups)
    return shuffled


def _pair_key(pair: tuple[K, V]) -> K:
    return pair[0]


def shuffle_optimized(pairs: Iterable[tuple[K, V]], partitions: int) -> list[dict[K, list[V]]]:
    """Group straight into the partitions' dicts, in one pass, working out each key's partition once.

    ``lists`` maps a key to its value list, wherever that list lives, so a pair whose key was seen before costs
    one dict lookup and one append: nothing is allocated for it but the list's occasional growth. Only the first
    pair of a key pays for its partition. The pairs are unpacked, never stored, so a generator's tuples are freed
    (and reused) one by one.
    """
    shuffled: list[dict[K, list[V]]] = [{} for _ in range(partitions)]
    lists: dict[K, list[V]] = {}
    for key, value in pairs:
        values = lists.get(key)
        if values is None:
            values = lists[key] = shuffled[partition_of(key, partitions)][key] = []
        values.append(value)
    return shuffled
