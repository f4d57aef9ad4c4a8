"""Fixtures for the cluster-state tests: a hand-moved clock, and logs in memory or on disk."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from logtools import Clock

from kstub.cluster.config import TOPIC_CONFIGS
from kstub.cluster.log import Log
from kstub.cluster.log_files import DiskLogStorage
from kstub.cluster.spill import MemoryBudget, SpillingLogStorage


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "disk", "spill"])
def make_log(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Iterator[Callable[..., Log]]:
    """make_log(**topic_configs) -> an empty Log kept in memory, in files, or in memory under a budget
    of 200 bytes (older batches spilled to files); every variant runs."""
    made: list[Log] = []
    budget = MemoryBudget(200, tmp_path / "spill")

    def make(**configs: str) -> Log:
        settings = {k.replace("_", "."): str(v) for k, v in configs.items()}

        def config(name: str) -> str:
            return settings.get(name, TOPIC_CONFIGS[name].default_string or "")

        storage = None
        if request.param == "disk":
            directory = tmp_path / f"log-{len(made)}"
            directory.mkdir()
            storage = DiskLogStorage(directory, fsync_checkpoints=False)
        elif request.param == "spill":
            storage = SpillingLogStorage(budget, f"log-{len(made)}")
        lg = Log(config=config, clock=clock, storage=storage)
        made.append(lg)
        return lg

    yield make
    for lg in made:
        lg.close()
    budget.close()
