"""Fixtures for the cluster-state tests: batches as a producer would send them, and logs in memory or on disk."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kafka.record.default_records import DefaultRecordBatchBuilder

from kstub.cluster.config import TOPIC_CONFIGS
from kstub.cluster.log import Log
from kstub.cluster.storage import DiskLogStorage
from kstub.protocol.records import ProducedBatch, read_produce_data


class Clock:
    """Milliseconds that a test moves by hand."""

    def __init__(self, now: int = 1_700_000_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def build_batch(
    count: int = 1,
    *,
    timestamp: int = 1_700_000_000_000,
    value_size: int = 100,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
) -> ProducedBatch:
    """One v2 batch of `count` records, validated as the produce path does."""
    b = DefaultRecordBatchBuilder(2, 0, False, producer_id, producer_epoch, base_sequence, 1 << 24)
    for i in range(count):
        assert b.append(i, timestamp + i, f"k{i}".encode(), b"v" * value_size, []) is not None
    return read_produce_data(bytes(b.build()), 9)[0]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "disk"])
def make_log(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Iterator[Callable[..., Log]]:
    """make_log(**topic_configs) -> an empty Log kept in memory or in files (both variants run)."""
    made: list[Log] = []

    def make(**configs: str) -> Log:
        settings = {k.replace("_", "."): str(v) for k, v in configs.items()}

        def config(name: str) -> str:
            return settings.get(name, TOPIC_CONFIGS[name].default_string or "")

        storage = None
        if request.param == "disk":
            directory = tmp_path / f"log-{len(made)}"
            directory.mkdir()
            storage = DiskLogStorage(directory, fsync_checkpoints=False)
        lg = Log(config=config, clock=clock, storage=storage)
        made.append(lg)
        return lg

    yield make
    for lg in made:
        lg.close()
