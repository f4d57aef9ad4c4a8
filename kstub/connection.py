"""One client connection: socket ↔ protocol.ServerConnection ↔ handlers.

Requests on a connection are handled one at a time, in order, as Kafka does
(it mutes a connection while a request is in progress), so responses go back
in request order however many the client pipelines. Produce with acks=0 gets
no response. A frame the codec rejects (too large, truncated, unknown api key
or version, undecodable body) closes this connection with a log line; other
connections are unaffected.

Faults from the control plane (kstub/control.py) apply here: lost requests
and responses, delayed responses, injected error codes. A `Session` lets the
broker close the connection between requests when it stops.
"""

from __future__ import annotations

import logging

import trio

from kstub.cluster.model import Broker, Cluster
from kstub.handlers import REGISTRY, Context
from kstub.protocol import RemoteProtocolError
from kstub.protocol.connection import NEED_DATA, Request, ServerConnection

log = logging.getLogger("kstub.connection")

RECEIVE_SIZE = 256 * 1024


class Session:
    """A connection as its broker sees it: cancellable, and busy while a request is being answered."""

    def __init__(self) -> None:
        self.scope = trio.CancelScope()
        self.busy = False
        self.closing = False

    def close_when_idle(self) -> None:
        """Close now if waiting for a request, else right after answering the current one."""
        self.closing = True
        if not self.busy:
            self.scope.cancel()


def _peer(stream: trio.abc.Stream) -> str:
    sock = getattr(stream, "socket", None)
    if sock is None:
        return "in-memory"
    try:
        host, port, *_ = sock.getpeername()
        return f"{host}:{port}"
    except OSError:
        return "?"


async def serve_connection(
    stream: trio.abc.Stream, cluster: Cluster, broker: Broker, session: Session | None = None
) -> None:
    peer = _peer(stream)
    log.info("broker %d: connection from %s", broker.node_id, peer)
    conn = ServerConnection(max_frame=cluster.config["socket.request.max.bytes"])
    try:
        async with stream:
            await _request_loop(stream, conn, cluster, broker, peer, session or Session())
    except RemoteProtocolError as exc:
        log.warning("broker %d: closing connection from %s: %s", broker.node_id, peer, exc)
        return
    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        log.info("broker %d: connection from %s lost: %s", broker.node_id, peer, exc or type(exc).__name__)
        return
    except Exception:
        # A bug of ours must cost one connection, never the server.
        log.exception("broker %d: internal error on connection from %s; closing it", broker.node_id, peer)
        return
    log.info("broker %d: connection from %s closed", broker.node_id, peer)


async def _request_loop(
    stream: trio.abc.Stream, conn: ServerConnection, cluster: Cluster, broker: Broker, peer: str, session: Session
) -> None:
    control = cluster.control
    while True:
        request = conn.next_request()
        if request is NEED_DATA:
            session.busy = False
            if session.closing:
                return
            data = await stream.receive_some(RECEIVE_SIZE)
            if not data:
                if conn.buffered:
                    raise RemoteProtocolError(f"connection closed inside a frame ({conn.buffered} bytes pending)")
                return
            conn.receive_data(data)
            continue
        assert isinstance(request, Request)
        session.busy = True
        if control.faults and control.take("drop_request", request.api_key, broker.node_id):
            return  # lost with the connection before the broker saw it
        response = await _dispatch(request, cluster, broker, peer)
        if control.faults:
            if control.take("drop_response", request.api_key, broker.node_id):
                return  # the request took effect; its answer is lost with the connection
            await control.apply_delay(request.api_key, broker.node_id)
        if response is not None:
            await stream.send_all(response if isinstance(response, bytes) else conn.encode_response(request, response))
        if session.closing:
            return


async def _dispatch(request: Request, cluster: Cluster, broker: Broker, peer: str) -> dict | bytes | None:
    log.debug(
        "broker %d: %s v%d correlation %d from %s (%s)",
        broker.node_id,
        request.api.name,
        request.api_version,
        request.correlation_id,
        peer,
        request.client_id,
    )
    if request.unsupported_version:
        return ServerConnection.encode_unsupported_api_versions(request.correlation_id, request.api)
    handler = REGISTRY.get(request.api_key)
    if handler is None:
        raise RemoteProtocolError(f"no handler for {request.api.name}")
    ctx = Context(cluster, broker, request.api_version, request.client_id, peer)
    if not cluster.control.faults:
        return await handler(ctx, request.body)
    injected = cluster.control.inject_errors(ctx, request)
    if injected is not None:
        return injected
    try:
        return await handler(ctx, request.body)
    finally:
        cluster.control.errors_fired(ctx)
