"""A larger run of the whole engine, with a budget on how much memory it holds at its peak.

The data (several MB) is generated deterministically in module-scoped fixtures, outside the measured window; the
sequential executor keeps the measurement to this thread and free of pool start-up. ``warmup=True`` runs the job
once unmeasured first, so that what the first run of the engine in a process keeps for good (the frame parser's
``Struct`` per frame size, and on Python 3.9 and 3.10 the first frame of every function) is not charged to this
test when it happens to run first, as with ``pytest -k load``. Besides the recorded budget, each test has a hard
``peak`` limit with generous headroom: a ceiling that holds on every Python version.
"""

from __future__ import annotations

import pytest

from minireduce import JobConfig, SensorStats, WordCount, run_job, samples

SENSOR_FRAMES = 60_000
TEXT_LINES = 45_000


@pytest.fixture(scope="module")
def blocks() -> list[bytes]:
    blocks = samples.sensor_blocks(SENSOR_FRAMES, frames_per_block=2000, seed=20)
    assert 4_000_000 < sum(map(len, blocks)) < 5_000_000
    return blocks


@pytest.fixture(scope="module")
def lines() -> list[str]:
    lines = samples.text_lines(TEXT_LINES, seed=21)
    assert 2_000_000 < sum(map(len, lines)) < 3_000_000
    return lines


@pytest.mark.alloc_budget(warmup=True, peak="40 MiB")
def test_sensor_stats_over_4_mb_of_frames(blocks: list[bytes]) -> None:
    results = run_job(SensorStats(), blocks, JobConfig(partitions=8, split_size=4))
    assert sorted(results) == list(range(1, 25))
    assert sum(stats.count for stats in results.values()) > SENSOR_FRAMES


@pytest.mark.alloc_budget(warmup=True, peak="8 MiB")
def test_word_count_over_2_mb_of_text(lines: list[str]) -> None:
    results = run_job(WordCount(), lines, JobConfig(partitions=8, split_size=2000))
    assert results["the"] > results["of"] > results["and"]
