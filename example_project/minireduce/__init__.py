"""minireduce: a small MapReduce engine whose hot paths are held to allocation budgets.

Records go in, a job's ``map`` turns each input split into (key, value) pairs, the shuffle hash-partitions them by
key and groups their values, the job's ``reduce`` turns each key's values into a result, and the results come out
as a dict sorted by key. Tasks run one after another, or in a thread or process pool, as :class:`JobConfig` says.

Several hot paths exist twice, as ``*_naive`` and ``*_optimized``: the same output, from code that allocates a
lot less. The engine and the jobs use the optimised ones; the naive ones are kept next to them, tested against
them, and budgeted, so that the saving is measured rather than claimed (see the project's README).
"""

from __future__ import annotations

from .config import Executor, JobConfig
from .engine import Job, run_job
from .frames import encode_frames
from .jobs import KeyStats, SalesStats, SensorStats, WordCount
from .records import SALE_FIELDS, Sale, Stats
from .shuffle import partition_of

__all__ = [
    "SALE_FIELDS",
    "Executor",
    "Job",
    "JobConfig",
    "KeyStats",
    "Sale",
    "SalesStats",
    "SensorStats",
    "Stats",
    "WordCount",
    "encode_frames",
    "partition_of",
    "run_job",
]
