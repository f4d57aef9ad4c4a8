"""The network side: one TCP listener per simulated broker.

`serve_cluster` opens a listener for each broker, registers the brokers with
the cluster model (with the ports actually bound, so port 0 works), recovers
what the cluster's store kept from a previous run (``--data-dir``), reports
the brokers through `task_status.started`, then serves each connection in its
own task, next to the periodic retention pass and the store's flush
scheduler. Cancel the surrounding scope to stop it; the store is then closed
cleanly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

import trio

from kstub.cluster.model import Broker, Cluster
from kstub.cluster.retention import retention_loop
from kstub.connection import serve_connection

log = logging.getLogger("kstub.server")


@dataclass
class ListenerSpec:
    host: str = "127.0.0.1"
    port: int = 9092
    brokers: int = 1
    advertised_host: str | None = None
    first_node_id: int = 0


async def _open_listeners(host: str, port: int) -> list[trio.SocketListener]:
    """Listeners for one broker: every address `host` resolves to (``localhost``: IPv4 and IPv6).

    With port 0 each address family would get a different ephemeral port, and a
    broker has one port in Metadata, so then only the first address is used.
    """
    listeners = await trio.open_tcp_listeners(port, host=host)
    if port == 0:
        for extra in listeners[1:]:
            await extra.aclose()
        return listeners[:1]
    return listeners


async def serve_cluster(
    cluster: Cluster, spec: ListenerSpec, *, task_status: trio.TaskStatus[list[Broker]] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve `spec.brokers` brokers of `cluster` until cancelled."""
    listeners: list[tuple[Broker, list[trio.SocketListener]]] = []
    try:
        for i in range(spec.brokers):
            port = spec.port + i if spec.port else 0
            bound = await _open_listeners(spec.host, port)
            bound_port = bound[0].socket.getsockname()[1]
            advertised = spec.advertised_host or (spec.host if spec.host not in ("0.0.0.0", "::", "") else "localhost")
            broker = cluster.add_broker(spec.first_node_id + i, spec.host, bound_port, advertised)
            listeners.append((broker, bound))
            log.info(
                "broker %d listening on %s:%d (advertised %s:%d)",
                broker.node_id,
                spec.host,
                bound_port,
                advertised,
                bound_port,
            )
    except BaseException:
        for _, bound in listeners:
            for listener in bound:
                await listener.aclose()
        raise
    try:
        cluster.store.recover(cluster)
    except BaseException:
        for _, bound in listeners:
            for listener in bound:
                await listener.aclose()
        raise
    try:
        async with trio.open_nursery() as nursery:
            for broker, bound in listeners:
                nursery.start_soon(partial(trio.serve_listeners, partial(_handle, cluster, broker), bound))
            nursery.start_soon(retention_loop, cluster)
            nursery.start_soon(cluster.store.background, cluster)
            task_status.started([b for b, _ in listeners])
    finally:
        cluster.store.close(cluster)


async def _handle(cluster: Cluster, broker: Broker, stream: trio.SocketStream) -> None:
    await serve_connection(stream, cluster, broker)
