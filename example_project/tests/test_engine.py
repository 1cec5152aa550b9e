"""The engine end to end: every executor gives the same results, and they are the right ones.

The thread and process pools are tested here, unbudgeted: starting a pool allocates a varying amount (threads,
pipes, pickling), which would make a budget flaky and say nothing about the engine's hot paths.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
from collections import Counter
from itertools import chain
from typing import Any

import pytest

from minireduce import (
    Executor,
    JobConfig,
    KeyStats,
    SalesStats,
    SensorStats,
    Stats,
    WordCount,
    run_job,
    samples,
)
from minireduce.config import slotted
from minireduce.frames import parse_frames_naive
from minireduce.jobs import summarize_naive

JOBS: dict[str, tuple[Any, list[Any]]] = {
    "word count": (WordCount(), samples.text_lines(1500, seed=10)),
    "key stats": (KeyStats(), samples.key_values(3000, seed=11)),
    "sales by store": (SalesStats("store"), samples.sales_rows(3000, seed=12)),
    "sensor stats": (SensorStats(), samples.sensor_blocks(2000, frames_per_block=300, seed=13)),
}


@pytest.mark.parametrize("name", JOBS)
def test_every_executor_gives_the_same_results(name: str) -> None:
    job, records = JOBS[name]
    results = {
        executor: run_job(job, records, JobConfig(partitions=3, workers=2, executor=executor, split_size=400))
        for executor in Executor
    }
    sequential = results[Executor.SEQUENTIAL]
    assert sequential, "the job produced nothing"
    assert results[Executor.THREAD] == sequential
    assert results[Executor.PROCESS] == sequential
    assert list(sequential) == sorted(sequential)


@slotted
@dataclasses.dataclass(frozen=True)
class WhereDidItRun:
    """Counts records by the id of the process that mapped them."""

    def map(self, records: list[int]) -> list[tuple[int, int]]:
        return [(os.getpid(), 1) for _ in records]

    def reduce(self, pid: int, ones: list[int]) -> int:
        return len(ones)


def test_the_process_executor_maps_in_other_processes() -> None:
    config = JobConfig(partitions=2, workers=2, executor=Executor.PROCESS, split_size=10)
    counts = run_job(WhereDidItRun(), range(100), config)
    assert os.getpid() not in counts
    assert sum(counts.values()) == 100
    assert run_job(WhereDidItRun(), range(100), dataclasses.replace(config, executor=Executor.THREAD)) == {
        os.getpid(): 100
    }


def test_word_count_is_right() -> None:
    lines = ["The cat; the hat.", "A cat!", ""]
    assert run_job(WordCount(), lines) == {"a": 1, "cat": 2, "hat": 1, "the": 2}
    job, records = JOBS["word count"]
    expected = Counter(word.strip(".,;:!?\"'()[]{}<>-") for line in records for word in line.lower().split())
    assert run_job(job, records, JobConfig(split_size=97)) == dict(sorted(expected.items()))


def test_key_stats_are_right() -> None:
    _, records = JOBS["key stats"]
    groups: dict[str, list[float]] = {}
    for key, value in records:
        if value is not None:
            groups.setdefault(key, []).append(value)
    expected = {key: summarize_naive(key, groups[key]) for key in sorted(groups)}
    for partitions in (1, 2, 7):
        assert run_job(KeyStats(), records, JobConfig(partitions=partitions, split_size=250)) == expected


def test_sales_and_sensor_stats_are_right() -> None:
    _, rows = JOBS["sales by store"]
    by_region = run_job(SalesStats(), rows)
    assert set(by_region) == {"central", "east", "islands", "north", "south", "west"}
    assert sum(stats.count for stats in by_region.values()) == sum(row[5] > 0 for row in rows)
    _, blocks = JOBS["sensor stats"]
    by_sensor = run_job(SensorStats(), blocks, JobConfig(split_size=2))
    frames = list(chain.from_iterable(parse_frames_naive(block) for block in blocks))
    assert sum(stats.count for stats in by_sensor.values()) == sum(len(readings) for _, readings in frames)
    assert by_sensor[1] == summarize_naive(1, [value for sensor, values in frames if sensor == 1 for value in values])


def test_input_can_be_any_iterable_and_empty() -> None:
    assert run_job(WordCount(), (line for line in ["b a", "a"])) == {"a": 2, "b": 1}
    assert run_job(WordCount(), []) == {}


def test_config_and_jobs_are_frozen_slotted_value_types() -> None:
    config = JobConfig(partitions=8, executor=Executor.THREAD)
    for value in (config, WordCount(), KeyStats(), SalesStats("day"), SensorStats()):
        assert not hasattr(value, "__dict__")
        assert pickle.loads(pickle.dumps(value)) == value
        assert hash(value) == hash(dataclasses.replace(value))
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.partitions = 2  # type: ignore[misc]
    assert JobConfig() is not JobConfig() and JobConfig() == JobConfig()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"partitions": 0}, r"JobConfig.partitions must be a positive int, got 0"),
        ({"workers": 2.0}, r"JobConfig.workers must be a positive int, got 2.0"),
        ({"split_size": True}, r"JobConfig.split_size must be a positive int, got True"),
        ({"executor": "thread"}, r"JobConfig.executor must be an Executor \('sequential', 'thread', 'process'\)"),
    ],
)
def test_bad_configs_are_refused(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        JobConfig(**arguments)


def test_sales_stats_groups_by_a_column() -> None:
    with pytest.raises(ValueError, match=r"SalesStats\.group_by must be one of order, day, region, store, product"):
        SalesStats("amount")
    assert Stats(2, 3.0, 1.0, 2.0).mean == 1.5
