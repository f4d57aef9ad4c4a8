"""One client connection: socket ↔ protocol.ServerConnection ↔ handlers.

Requests on a connection are handled one at a time, in order, as Kafka does
(it mutes a connection while a request is in progress), so responses go back
in request order however many the client pipelines. Produce with acks=0 gets
no response. A frame the codec rejects (too large, truncated, unknown api key
or version, undecodable body) closes this connection with a log line; other
connections are unaffected.

A connection that sends nothing for connections.max.idle.ms (Kafka's setting,
10 minutes by default) while no request of its is in progress is closed, as
Kafka does; so is one whose request has begun to arrive but is not complete
kstub.request.receive.timeout.ms after its first byte (30 s by default: a
client gives up on a request after its request.timeout.ms, 30 s by default,
anyway), which bounds slow senders that would keep an idle timer fresh.

Faults from the control plane (kstub/control.py) apply here: lost requests
and responses, delayed responses, injected error codes. A `Session` lets the
broker close the connection between requests when it stops.
"""

from __future__ import annotations

import logging
import math
import time

import trio

from kstub.cluster.model import Broker, ClusterState
from kstub.handlers import REGISTRY, Context
from kstub.protocol import ApiKey, ErrorCode, RemoteProtocolError
from kstub.protocol.connection import NEED_DATA, Request, ServerConnection
from kstub.security import PRE_AUTH_APIS, SaslFailure, SaslServer

log = logging.getLogger("kstub.connection")

RECEIVE_SIZE = 256 * 1024


class Session:
    """A connection as its broker sees it: cancellable, and busy while a request is being answered.

    `listener` names the listener it came through (None: in-memory); `sasl`
    runs its SASL exchange on a SASL listener (nothing else is served until it
    has authenticated); `principal` is who it is (TLS certificate subject, SASL user).
    """

    def __init__(self, listener: str | None = None, sasl: SaslServer | None = None) -> None:
        self.scope = trio.CancelScope()
        self.busy = False
        self.closing = False
        self.listener = listener
        self.sasl = sasl
        self.principal = "User:ANONYMOUS"
        #: after a SaslHandshake v0: the next frames are bare SASL tokens
        self.raw_sasl = False
        #: when the SASL session ends (connections.max.reauth.ms, KIP-368): re-authenticate before, or be closed
        self.expires_at: float | None = None
        #: while re-authenticating: the principal the new session must have
        self.reauth_from: str | None = None

    def close_when_idle(self) -> None:
        """Close now if waiting for a request, else right after answering the current one."""
        self.closing = True
        if not self.busy:
            self.scope.cancel()


def _peer(stream: trio.abc.Stream) -> str:
    while isinstance(stream, trio.SSLStream):
        stream = stream.transport_stream
    sock = getattr(stream, "socket", None)
    if sock is None:
        return "in-memory"
    try:
        host, port, *_ = sock.getpeername()
        return f"{host}:{port}"
    except OSError:
        return "?"


async def serve_connection(
    stream: trio.abc.Stream, cluster: ClusterState, broker: Broker, session: Session | None = None
) -> None:
    peer = _peer(stream)
    log.info("broker %d: connection from %s", broker.node_id, peer)
    posed = cluster.kafka_version  # posing as an older Kafka: only the versions it accepted are read
    conn = ServerConnection(
        max_frame=cluster.config["socket.request.max.bytes"], apis=posed.accepted if posed is not None else None
    )
    stats = broker.stats
    stats.connections += 1
    stats.connections_total += 1
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
    finally:
        stats.connections -= 1
    log.info("broker %d: connection from %s closed", broker.node_id, peer)


async def _request_loop(
    stream: trio.abc.Stream, conn: ServerConnection, cluster: ClusterState, broker: Broker, peer: str, session: Session
) -> None:
    # One scope for every wait for bytes, its deadline set only while waiting (not one scope per
    # receive: this loop runs once per request)
    receiving = _Receiving()
    with receiving.scope:
        await _requests(stream, conn, cluster, broker, peer, session, receiving)
    if receiving.scope.cancel_called:
        message = _timed_out(cluster, receiving.in_request)
        log.info("broker %d: closing connection from %s: %s", broker.node_id, peer, message)


class _Receiving:
    """The wait for a connection's next bytes: a cancel scope with a deadline only while waiting."""

    __slots__ = ("in_request", "scope")

    def __init__(self) -> None:
        self.scope = trio.CancelScope()
        #: whether the deadline is the request's (kstub.request.receive.timeout.ms), not the idle one
        self.in_request = False


async def _requests(
    stream: trio.abc.Stream,
    conn: ServerConnection,
    cluster: ClusterState,
    broker: Broker,
    peer: str,
    session: Session,
    receiving: _Receiving,
) -> None:
    control = cluster.control
    stats = broker.stats
    #: when the first byte of the request now arriving came (None: between requests)
    begun: float | None = None
    while True:
        request = conn.next_raw_frame() if session.raw_sasl else conn.next_request()
        if request is NEED_DATA:
            session.busy = False
            if session.closing:
                return
            now = trio.current_time()
            if conn.buffered and begun is None:
                begun = now
            receiving.scope.deadline, receiving.in_request = _receive_deadline(cluster, now, begun)
            data = await stream.receive_some(RECEIVE_SIZE)
            if receiving.scope.cancel_called:  # the deadline passed just as the bytes came: too late all the same
                return
            receiving.scope.deadline = math.inf
            if begun is None:
                begun = trio.current_time()
            if not data:
                if conn.buffered:
                    raise RemoteProtocolError(f"connection closed inside a frame ({conn.buffered} bytes pending)")
                return
            stats.bytes_in += len(data)
            conn.receive_data(data)
            continue
        begun = None
        if isinstance(request, bytes):  # a bare SASL token (after SaslHandshake v0)
            if not await _raw_sasl_token(stream, request, session, broker, peer):
                return
            continue
        assert isinstance(request, Request)
        session.busy = True
        started = time.perf_counter()
        api = request.api.name
        if session.sasl is not None and session.sasl.authenticated and session.sasl.settings.reauth_ms > 0:
            if request.api_key == ApiKey.SASL_HANDSHAKE:  # re-authentication (KIP-368) begins
                session.reauth_from = session.principal
                session.sasl = SaslServer(session.sasl.settings)
            elif session.expires_at is not None and trio.current_time() >= session.expires_at:
                log.info(
                    "broker %d: closing connection from %s: its SASL session expired (connections.max.reauth.ms)",
                    broker.node_id,
                    peer,
                )
                return
        if session.sasl is not None and not session.sasl.authenticated:
            if not await _sasl_request(stream, conn, request, cluster, broker, peer, session):
                return
            continue
        if control.faults and control.take("drop_request", request.api_key, broker.node_id):
            stats.requests[api, "dropped"] += 1
            return  # lost with the connection before the broker saw it
        try:
            response = await _dispatch(request, cluster, broker, peer, session.listener, session.principal)
        except Exception:
            stats.requests[api, "failed"] += 1
            raise
        if control.faults:
            if control.take("drop_response", request.api_key, broker.node_id):
                stats.requests[api, "dropped"] += 1
                return  # the request took effect; its answer is lost with the connection
            await control.apply_delay(request.api_key, broker.node_id)
        throttle_s, client_throttles = _quota_throttle(request, response)
        if throttle_s and not client_throttles:  # KIP-219: an older client is throttled by a late answer
            await trio.sleep(throttle_s)
        if response is None:
            stats.requests[api, "no_response"] += 1
        else:
            stats.requests[api, "error" if isinstance(response, dict) and response.get("error_code") else "ok"] += 1
            frame = response if isinstance(response, bytes) else conn.encode_response(request, response)
            stats.bytes_out += len(frame)
            await stream.send_all(frame)
        stats.timed(api, time.perf_counter() - started)
        if session.closing:
            return
        if throttle_s and client_throttles:  # KIP-219: answered at once, then the connection is muted as long
            session.busy = False  # idle meanwhile: a broker stopping closes it at once
            await trio.sleep(throttle_s)


#: the first version of each quota-throttled API whose client waits out the throttle time itself (KIP-219)
_CLIENT_THROTTLES_FROM = {ApiKey.PRODUCE: 6, ApiKey.FETCH: 8}


def _quota_throttle(request: Request, response: object) -> tuple[float, bool]:
    """How long a byte-rate quota throttles this Produce or Fetch (seconds, 0: not), and whether the client
    waits it out itself (then Kafka answers at once and mutes the connection; else it answers late)."""
    since = _CLIENT_THROTTLES_FROM.get(request.api_key)
    if since is None or not isinstance(response, dict):
        return 0.0, True
    throttle_ms = response.get("throttle_time_ms") or 0
    return (throttle_ms / 1000 if throttle_ms > 0 else 0.0), request.api_version >= since


def _receive_deadline(cluster: ClusterState, now: float, begun: float | None) -> tuple[float, bool]:
    """When to give up waiting for bytes: connections.max.idle.ms since the last bytes (negative: never),
    and for a request already begun, kstub.request.receive.timeout.ms since its first. The flag says
    which one is nearer (True: the request's), for the log line if it passes."""
    idle_ms = cluster.config["connections.max.idle.ms"]
    deadline = now + idle_ms / 1000 if idle_ms >= 0 else math.inf
    if begun is not None:
        timeout_ms = cluster.config["kstub.request.receive.timeout.ms"]
        if timeout_ms >= 0 and begun + timeout_ms / 1000 < deadline:
            return begun + timeout_ms / 1000, True
    return deadline, False


def _timed_out(cluster: ClusterState, in_request: bool) -> str:
    if in_request:
        ms = cluster.config["kstub.request.receive.timeout.ms"]
        return f"request not complete within kstub.request.receive.timeout.ms ({ms} ms)"
    return f"idle for connections.max.idle.ms ({cluster.config['connections.max.idle.ms']} ms)"


async def _sasl_request(
    stream: trio.abc.Stream,
    conn: ServerConnection,
    request: Request,
    cluster: ClusterState,
    broker: Broker,
    peer: str,
    session: Session,
) -> bool:
    """A request before authentication, as Kafka's SaslServerAuthenticator takes it; False: close.

    ApiVersions is served; SaslHandshake picks the mechanism (an unsupported one
    is answered UNSUPPORTED_SASL_MECHANISM, then the connection closes);
    SaslAuthenticate carries the tokens (bad credentials: SASL_AUTHENTICATION_FAILED,
    then close). Any other request closes the connection unanswered.
    """
    sasl = session.sasl
    assert sasl is not None
    key = request.api_key
    if key not in PRE_AUTH_APIS or (key == ApiKey.SASL_AUTHENTICATE and sasl.mechanism is None):
        log.warning(
            "broker %d: closing connection from %s: %s before SASL authentication",
            broker.node_id,
            peer,
            request.api.name,
        )
        return False
    if key == ApiKey.API_VERSIONS or request.unsupported_version:
        response = await _dispatch(request, cluster, broker, peer, session.listener, session.principal)
        assert response is not None
        await stream.send_all(response if isinstance(response, bytes) else conn.encode_response(request, response))
        return True
    body = request.body
    assert body is not None
    if key == ApiKey.SASL_HANDSHAKE:
        error = ErrorCode.ILLEGAL_SASL_STATE if sasl.mechanism is not None else sasl.handshake(body.mechanism)
        answer = {"error_code": error, "mechanisms": list(sasl.settings.mechanisms)}
        await stream.send_all(conn.encode_response(request, answer))
        if error != ErrorCode.NONE:
            log.info(
                "broker %d: closing connection from %s: SaslHandshake %s: %s",
                broker.node_id,
                peer,
                body.mechanism,
                error.name,
            )
            return False
        session.raw_sasl = request.api_version == 0
        return True
    try:
        token = sasl.step(bytes(body.auth_bytes))
    except SaslFailure as failure:
        answer = {"error_code": failure.error, "error_message": failure.message, "auth_bytes": b""}
        await stream.send_all(conn.encode_response(request, answer))
        log.info("broker %d: closing connection from %s: %s", broker.node_id, peer, failure.message)
        await _failed_authentication_delay(cluster)
        return False
    if sasl.principal is not None and session.reauth_from not in (None, sasl.principal):
        message = f"Cannot change principals during re-authentication from {session.reauth_from}: {sasl.principal}"
        answer = {"error_code": ErrorCode.SASL_AUTHENTICATION_FAILED, "error_message": message, "auth_bytes": b""}
        await stream.send_all(conn.encode_response(request, answer))
        log.info("broker %d: closing connection from %s: %s", broker.node_id, peer, message)
        return False
    lifetime = sasl.settings.reauth_ms if sasl.principal is not None else 0
    answer = {"error_code": ErrorCode.NONE, "error_message": None, "auth_bytes": token, "session_lifetime_ms": lifetime}
    await stream.send_all(conn.encode_response(request, answer))
    _authenticated(session, broker, peer)
    return True


async def _raw_sasl_token(stream: trio.abc.Stream, token: bytes, session: Session, broker: Broker, peer: str) -> bool:
    """A bare SASL token (SaslHandshake v0): answered with a bare token; a failure closes at once."""
    assert session.sasl is not None
    try:
        answer = session.sasl.step(token)
    except SaslFailure as failure:
        log.info("broker %d: closing connection from %s: %s", broker.node_id, peer, failure.message)
        return False
    await stream.send_all(len(answer).to_bytes(4, "big") + answer)
    _authenticated(session, broker, peer)
    return True


async def _failed_authentication_delay(cluster: ClusterState) -> None:
    """Kafka closes a connection that failed authentication connection.failed.authentication.delay.ms
    (100 ms by default) after answering, which also lets clients read the answer before the close."""
    raw = cluster.config.raw("connection.failed.authentication.delay.ms")
    try:
        delay_ms = int(raw) if raw is not None else 100
    except ValueError:
        delay_ms = 100
    if delay_ms > 0:
        await trio.sleep(delay_ms / 1000)


def _authenticated(session: Session, broker: Broker, peer: str) -> None:
    sasl = session.sasl
    if sasl is not None and sasl.principal is not None:
        session.raw_sasl = False
        session.principal = sasl.principal
        again = " again" if session.reauth_from is not None else ""
        session.reauth_from = None
        if sasl.settings.reauth_ms > 0:
            session.expires_at = trio.current_time() + sasl.settings.reauth_ms / 1000
        log.info(
            "broker %d: %s authenticated%s as %s (%s)", broker.node_id, peer, again, sasl.principal, sasl.mechanism
        )


async def _dispatch(
    request: Request,
    cluster: ClusterState,
    broker: Broker,
    peer: str,
    listener: str | None = None,
    principal: str = "User:ANONYMOUS",
) -> dict | bytes | None:
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
    ctx = Context(cluster, broker, request.api_version, request.client_id, peer, listener=listener, principal=principal)
    if not cluster.control.faults:
        return await handler(ctx, request.body)
    injected = cluster.control.inject_errors(ctx, request)
    if injected is not None:
        return injected
    try:
        return await handler(ctx, request.body)
    finally:
        cluster.control.errors_fired(ctx)
