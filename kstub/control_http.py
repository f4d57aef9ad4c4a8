"""The admin HTTP API: the control plane over HTTP/1.1 and JSON, for any language.

``kstub serve --admin-port P`` serves it; ``kstub ctl`` is its command-line
client; docs/replication.md ("The admin HTTP API") lists the routes with curl examples.
The HTTP/1.1 of it is h11's (kstub/control_http_messages.py); `serve_admin`
runs one Trio task per connection (keep-alive, as h11 decides) that checks
who is asking (kstub/control_http_access.py) and routes each request to the
cluster's `ControlPlane` (kstub/control_http_routes.py), answering JSON.
Refusals are JSON too: ``{"error": "..."}`` with 400 (bad input), 401 (no
or wrong token), 403 (a foreign Origin or Host), 404 (no such broker, topic,
fault, route), 405, 408, 409 (not possible in the cluster's current state),
413, 415 (a state-changing request that is not JSON), 431, 501, 505.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import TYPE_CHECKING

import h11
import trio

from kstub.control_http_access import Access
from kstub.control_http_messages import (
    CLOSED,
    NEED_DATA,
    HttpError,
    HttpRequest,
    Reply,
    RequestReader,
    StreamReply,
    json_reply,
    render,
)
from kstub.control_http_routes import dispatch

if TYPE_CHECKING:
    from kstub.cluster.model import ClusterState
    from kstub.control import ControlPlane

log = logging.getLogger("kstub.admin")

READ_TIMEOUT = 30.0
#: how long a kept-alive connection may wait for its next request
IDLE_TIMEOUT = 60.0


# --- the server -------------------------------------------------------------------


async def _answer(control: ControlPlane, access: Access, request: HttpRequest) -> Reply | StreamReply:
    try:
        access.check(request)
        result = await dispatch(control, request)
    except HttpError as exc:
        log.info("admin: refused %s %s: %d %s", request.method, request.path, exc.status, exc.message)
        return json_reply(exc.status, {"error": exc.message}, exc.headers)
    reply = result if isinstance(result, (Reply, StreamReply)) else json_reply(*result)
    log.info("admin: %s %s -> %d", request.method, request.path, reply.status)
    return reply


async def _serve_connection(control: ControlPlane, access: Access, stream: trio.abc.Stream) -> None:
    """Requests on one connection, one after the other, until either side closes."""
    reader = RequestReader()
    while True:
        close = False
        try:
            request = await _receive(reader, stream)
            if request is CLOSED:
                return
            assert isinstance(request, HttpRequest)
            reply = await _answer(control, access, request)
        except HttpError as exc:
            log.info("admin: refused a request: %d %s", exc.status, exc.message)
            reply, close = json_reply(exc.status, {"error": exc.message}, exc.headers), True
        except trio.TooSlowError:
            if not reader.started:
                return  # an idle kept-alive connection: nothing to answer
            reply, close = json_reply(408, {"error": "request not received in time"}), True
        except Exception:
            log.exception("admin: internal error")
            reply, close = json_reply(500, {"error": "internal error (see the kstub log)"}), True
        if reader.conn.our_state is not h11.SEND_RESPONSE and reader.conn.our_state is not h11.IDLE:
            return
        if isinstance(reply, StreamReply):
            await _stream(reader, reply, stream)
            return
        await stream.send_all(render(reader, reply, close=close))
        if close or reader.conn.our_state is not h11.DONE or reader.conn.their_state is not h11.DONE:
            return
        reader.next_cycle()


async def _stream(reader: RequestReader, reply: StreamReply, stream: trio.abc.Stream) -> None:
    """Send `reply` as it is produced (chunked, or until the close for HTTP/1.0), until it ends or the client leaves."""
    conn = reader.conn
    headers = [
        ("Content-Type", reply.content_type),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Accel-Buffering", "no"),
        ("Connection", "close"),
        *reply.headers,
    ]
    reason = HTTPStatus(reply.status).phrase.encode()
    await stream.send_all(conn.send(h11.Response(status_code=reply.status, headers=headers, reason=reason)) or b"")
    if reader.method == b"HEAD":
        await stream.send_all(conn.send(h11.EndOfMessage()) or b"")
        return

    async def send(data: bytes) -> None:
        await stream.send_all(conn.send(h11.Data(data=data)) or b"")

    async def until_closed(cancel_scope: trio.CancelScope) -> None:
        # Whatever the client sends now is ignored; its end of the connection ends the stream.
        while await stream.receive_some(65536):
            pass
        cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(until_closed, nursery.cancel_scope)
        await reply.produce(send)
        nursery.cancel_scope.cancel()
    if conn.our_state is h11.SEND_BODY:
        with trio.move_on_after(1):
            await stream.send_all(conn.send(h11.EndOfMessage()) or b"")


async def _receive(reader: RequestReader, stream: trio.abc.Stream) -> HttpRequest | object:
    """The next request: at most IDLE_TIMEOUT until it begins, READ_TIMEOUT for the whole of it."""
    request = reader.next_request()
    deadline = trio.current_time() + IDLE_TIMEOUT
    while request is NEED_DATA:
        if reader.started and deadline > trio.current_time() + READ_TIMEOUT:
            deadline = trio.current_time() + READ_TIMEOUT
        if reader.conn.they_are_waiting_for_100_continue:  # curl's Expect: 100-continue on larger bodies
            await stream.send_all(reader.conn.send(h11.InformationalResponse(status_code=100, headers=[])) or b"")
        with trio.fail_at(deadline):
            data = await stream.receive_some(65536)
        reader.receive_data(data)
        request = reader.next_request()
    return request


async def serve_admin(
    cluster: ClusterState,
    host: str,
    port: int,
    access: Access | None = None,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the admin API on `host`:`port` (0: ephemeral) until cancelled; reports the bound port."""
    access = access or Access.for_bind(host)
    listeners = await trio.open_tcp_listeners(port, host=host)
    if port == 0:
        for extra in listeners[1:]:
            await extra.aclose()
        listeners = listeners[:1]
    bound = listeners[0].socket.getsockname()[1]
    log.info("admin API on http://%s:%d", host, bound)
    from kstub.console_live import hub_for

    hub_for(cluster)  # the console's events log starts now, before any page is open
    task_status.started(bound)

    async def handle(stream: trio.SocketStream) -> None:
        async with stream:
            try:
                await _serve_connection(cluster.control, access, stream)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            except Exception:  # a bug of ours costs this connection, never the admin server or the cluster
                log.exception("admin: internal error; closing the connection")

    await trio.serve_listeners(handle, listeners)
