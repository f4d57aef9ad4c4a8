"""The Java client and franz-go open fetch sessions against kstub and go on with incremental fetches (KIP-227).

A consumer reads two partitions: what is there, then one more record
produced once its session is open (it waits for it in incremental fetches).
Its first fetch is full and opens a session, the next ones are incremental;
the broker counts both.
"""

from __future__ import annotations

import threading
import time

import pytest

from kstub.compat.clients import CLIENTS
from kstub.compat.model import Msg
from kstub.embedded import EmbeddedCluster

from support.external import require_programs, unavailable

PROGRAMS = {"java": ("java", "mvn"), "franz-go": ("go",)}
VALUE = 100_000
COUNT = 30


@pytest.mark.kstub(config={"message.max.bytes": str(2 * VALUE)})
@pytest.mark.parametrize("name", ["java", "franz-go"])
def test_consumer_fetches_incrementally(name: str, kstub_cluster: EmbeddedCluster) -> None:
    require_programs(*PROGRAMS[name])
    cls = CLIENTS[name]
    reason = cls.unavailable()
    if reason:
        unavailable(reason)
    client = cls(kstub_cluster.bootstrap_servers, timeout=60.0)
    kstub_cluster.create_topic("sessions", partitions=2)
    client.produce("sessions", [Msg(b"k%d" % i, bytes([i]) * VALUE, partition=0) for i in range(COUNT)])
    (broker,) = kstub_cluster.state.brokers.values()
    sessions = broker.fetch_sessions
    created, incremental = sessions.created, sessions.incremental_fetches
    result: list = []
    reader = threading.Thread(target=lambda: result.append(client.consume("sessions", {0: 0, 1: 0}, COUNT + 1)))
    reader.start()
    deadline = time.monotonic() + 60
    while sessions.created == created and reader.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)  # until the consumer's first fetch opened its session
    client.produce("sessions", [Msg(b"last", b"x", partition=1)])
    reader.join(90)
    assert result, "the consumer did not finish"
    got = result[0]
    assert sorted((r.partition, r.offset) for r in got) == [(0, i) for i in range(COUNT)] + [(1, 0)]
    assert sessions.created > created, "no fetch session was opened"
    assert sessions.incremental_fetches > incremental, "every fetch was a full one"
