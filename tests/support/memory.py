"""The broker without sockets: a whole cluster in the test's own Trio run, reached through memory.

``async with memory_cluster(brokers=3) as mc:`` serves a cluster with
``ListenerSpec(in_memory=True)``: the brokers, their replica fetchers, the
group coordinator's and the controller's timers run as in ``kstub serve``, but
nothing listens on TCP. ``await mc.connect(node_id)`` opens an in-memory
connection that the broker serves with its ordinary connection code (framing,
decoding, dispatch, faults), and the returned `MemoryClient` speaks the Kafka
protocol over it with kstub's own codec.

Everything runs in one Trio run, so a test using pytest-trio's
``autojump_clock`` fixture is deterministic and never waits for real time:
timeouts, session expiries and replication delays pass as virtual time.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import trio

from kstub.cluster.model import ClusterState
from kstub.embedded import fixture_config
from kstub.protocol.connection import NEED_DATA, ClientConnection
from kstub.server import ClusterServer, ListenerSpec


class MemoryClient:
    """One client connection to one broker, in memory."""

    def __init__(self, stream: trio.abc.Stream, client_id: str = "memory-test") -> None:
        self.stream = stream
        self.conn = ClientConnection(client_id)

    async def send(self, api_key: int, version: int, body: Mapping[str, Any], *, expect_response: bool = True) -> None:
        await self.stream.send_all(self.conn.send_request(api_key, version, dict(body)))
        if not expect_response:
            self.conn.forget_last()

    async def receive(self) -> Any:
        while True:
            response = self.conn.next_response()
            if response is not NEED_DATA:
                return response.body
            data = await self.stream.receive_some(1 << 16)
            if not data:
                raise ConnectionError("connection closed by the broker")
            self.conn.receive_data(data)

    async def request(self, api_key: int, version: int, body: Mapping[str, Any]) -> Any:
        await self.send(api_key, version, body)
        return await self.receive()

    async def send_raw(self, data: bytes) -> None:
        """Bytes as they are (a hand-made or broken frame)."""
        await self.stream.send_all(data)

    async def closed_by_broker(self) -> bool:
        """Wait for the broker's next move: True if it closed the connection, False if it sent bytes."""
        try:
            return await self.stream.receive_some(1) == b""
        except trio.BrokenResourceError:
            return True

    async def aclose(self) -> None:
        await self.stream.aclose()

    async def __aenter__(self) -> MemoryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class MemoryCluster:
    def __init__(self, model: ClusterState, server: ClusterServer) -> None:
        #: the cluster model (topics, partitions, logs, groups), to assert on directly
        self.model = model
        #: the brokers' runtime: stop, kill and start brokers as the control plane does
        self.server = server

    @property
    def control(self) -> Any:
        return self.model.control

    def connect(self, node_id: int = 0, client_id: str = "memory-test") -> MemoryClient:
        return MemoryClient(self.server.connect(node_id), client_id)


@asynccontextmanager
async def memory_cluster(
    brokers: int = 1, config: Mapping[str, Any] | None = None, *, partitions: int | None = None
) -> AsyncIterator[MemoryCluster]:
    """A cluster in this Trio run with the test fixture's settings (see `kstub.embedded.fixture_config`)."""
    model = ClusterState(fixture_config(brokers, partitions, config))
    server = ClusterServer(model, ListenerSpec(brokers=brokers, in_memory=True))
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        try:
            yield MemoryCluster(model, server)
        finally:
            nursery.cancel_scope.cancel()


async def create_topic(c: MemoryClient, name: str, partitions: int) -> uuid.UUID:
    """Creates topic `name` (replication factor 1) through `c`; its topic id."""
    from support.raw_requests import create_req

    req = create_req(name, partitions)
    answer = req.pick(await c.request(req.api_key, req.version, req.body))
    assert answer.error_code == 0
    return answer.topic_id
