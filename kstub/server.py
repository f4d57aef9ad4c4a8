"""The network side: one TCP listener per simulated broker.

`serve_cluster` opens a listener for each broker, registers the brokers with
the cluster model (with the ports actually bound, so port 0 works), reports
them through `task_status.started`, then serves each connection in its own
task. Cancel the surrounding scope to stop it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

import trio

from kstub.cluster.model import Broker, Cluster
from kstub.connection import serve_connection

log = logging.getLogger("kstub.server")


@dataclass
class ListenerSpec:
    host: str = "127.0.0.1"
    port: int = 9092
    brokers: int = 1
    advertised_host: str | None = None
    first_node_id: int = 0


async def _open_listener(host: str, port: int) -> trio.SocketListener:
    listeners = await trio.open_tcp_listeners(port, host=host)
    return listeners[0]


async def serve_cluster(
    cluster: Cluster, spec: ListenerSpec, *, task_status: trio.TaskStatus[list[Broker]] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve `spec.brokers` brokers of `cluster` until cancelled."""
    listeners: list[tuple[Broker, trio.SocketListener]] = []
    try:
        for i in range(spec.brokers):
            port = spec.port + i if spec.port else 0
            listener = await _open_listener(spec.host, port)
            bound_port = listener.socket.getsockname()[1]
            advertised = spec.advertised_host or (spec.host if spec.host not in ("0.0.0.0", "::", "") else "localhost")
            broker = cluster.add_broker(spec.first_node_id + i, spec.host, bound_port, advertised)
            listeners.append((broker, listener))
            log.info(
                "broker %d listening on %s:%d (advertised %s:%d)",
                broker.node_id,
                spec.host,
                bound_port,
                advertised,
                bound_port,
            )
    except BaseException:
        for _, listener in listeners:
            await listener.aclose()
        raise
    async with trio.open_nursery() as nursery:
        nursery.start_soon(cluster.groups.run)  # the group coordinator's timers
        for broker, listener in listeners:
            nursery.start_soon(partial(trio.serve_listeners, partial(_handle, cluster, broker), [listener]))
        task_status.started([b for b, _ in listeners])


async def _handle(cluster: Cluster, broker: Broker, stream: trio.SocketStream) -> None:
    await serve_connection(stream, cluster, broker)
