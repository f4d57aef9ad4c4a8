"""The network side: the brokers' listeners and tasks, which can be stopped, killed and restarted.

`serve_cluster` opens a listener for each broker, registers the brokers with
the cluster model (with the ports actually bound, so port 0 works), recovers
what the cluster's store kept from a previous run (``--data-dir``), starts the
brokers and reports them through `task_status.started`; cancel the surrounding
scope to stop everything (the store is then closed cleanly). Next to the
brokers run the periodic retention pass and the store's flush scheduler. Each
broker (`BrokerServer`) runs in its own cancel scope: its listener, its
connections (each in its own task), its replica fetcher and its ISR
expiration task. `ClusterServer` holds them all and does what the control
plane asks (kstub/control.py):

- stop: a controlled shutdown. The controller moves the broker's leaderships
  away first, then the listener closes, idle connections close, and busy
  ones close once their current request is answered (at most `grace` seconds).
- kill: a crash. The broker's tasks are cancelled at once: connections close
  mid-request. The controller notices only when the broker's session expires,
  broker.session.timeout.ms later (or when it is started again).
- start: the listener reopens on the same port; the broker catches up.

Each broker's accept loop applies Kafka's connection limits: at
max.connections it stops accepting until a connection ends (new ones wait in
the listen backlog, as with Kafka's acceptor), a connection beyond
max.connections.per.ip (or its entry in max.connections.per.ip.overrides) is
closed at once, and when accept fails for lack of file descriptors it logs
once, backs off (up to a second) and keeps serving the connections it has.
Idle and half-sent connections are closed by kstub/connection.py.

With ``ListenerSpec(in_memory=True)`` nothing listens on TCP: the brokers,
their replication and the cluster's timers run as usual, and
`ClusterServer.connect` hands out in-memory connections served by the same
connection code. That is how the broker is tested without sockets
(tests/support/memory.py), deterministically under Trio's MockClock.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from kstub.cluster.model import Broker, ClusterState
from kstub.cluster.replication import run_isr_expiration, run_replica_fetcher
from kstub.cluster.retention import retention_loop
from kstub.connection import Session, serve_connection
from kstub.security import (
    TLS_HANDSHAKE_TIMEOUT,
    ListenerSecurity,
    SaslServer,
    ensure_tls_dir,
    listener_security,
    parse_listeners,
    principal_from_certificate,
    use_tls_dir,
)

if TYPE_CHECKING:
    from kstub.control_http_access import Access

log = logging.getLogger("kstub.server")

#: the "address" in-memory connections (`BrokerServer.connect`) count under for max.connections.per.ip
IN_MEMORY = "in-memory"

#: how long a stopping broker lets in-flight requests finish
STOP_GRACE = 5.0

#: accept(2) errors that mean "out of resources, try again later" (file descriptors, memory)
ACCEPT_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
#: the first and the longest pause of the accept loop while out of resources
ACCEPT_BACKOFF = (0.05, 1.0)


def parse_ip_overrides(value: str) -> dict[str, int]:
    """max.connections.per.ip.overrides: ``host:count[,host:count...]``, hosts resolved to addresses.

    A host name stands for every address it resolves to (done once, when the
    setting is read); an IPv6 address may be written in brackets.
    """
    limits: dict[str, int] = {}
    for entry in value.split(","):
        entry = entry.strip()
        if not entry:
            continue
        host, sep, count = entry.rpartition(":")
        if not sep or not host or not count.strip().lstrip("-").isdigit():
            raise ValueError(f"invalid max.connections.per.ip.overrides entry {entry!r} (expected host:count)")
        host = host.strip().strip("[]")
        try:
            addresses = {info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
        except OSError:
            addresses = {host}
        for address in addresses:
            limits[address] = int(count)
    return limits


@dataclass
class ListenerSpec:
    host: str = "127.0.0.1"
    port: int = 9092
    brokers: int = 1
    advertised_host: str | None = None
    first_node_id: int = 0
    #: port of the admin HTTP API (None: no admin API; 0: ephemeral)
    admin_port: int | None = None
    #: where the admin HTTP API listens: loopback unless asked (never widened by `host`)
    admin_host: str = "127.0.0.1"
    #: the admin API's bearer token (None: none on loopback, generated beyond it)
    admin_token: str | None = None
    #: no TCP at all: brokers are reached with `ClusterServer.connect` (in-memory streams), for tests
    in_memory: bool = False
    #: the protocol of the one listener at host:port when the ``listeners`` setting is not given
    security_protocol: str = "PLAINTEXT"
    #: a directory for a throwaway CA and broker certificate (made if missing), used by TLS
    #: listeners that have no ``ssl.keystore.location`` of their own
    tls_dir: str | None = None


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


async def _close_all(listeners: list[trio.SocketListener]) -> None:
    with trio.CancelScope(shield=True):
        for listener in listeners:
            await listener.aclose()


async def _send_tls_alert(stream: trio.SSLStream[trio.abc.Stream], transport: trio.abc.Stream) -> None:
    """Send what the failed handshake left to send: the TLS alert saying why (a missing or untrusted client
    certificate), so the client reports that reason, as Java's broker does, not a bare disconnection.

    trio.SSLStream marks itself broken without flushing its outgoing buffer; the alert is in it.
    """
    outgoing = getattr(stream, "_outgoing", None)  # trio's ssl.MemoryBIO of bytes not yet sent
    if outgoing is None or not getattr(outgoing, "pending", 0):
        return
    with trio.move_on_after(1):
        try:
            await transport.send_all(outgoing.read())
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass


def _peer_ip(stream: trio.SocketStream) -> str:
    try:
        return str(stream.socket.getpeername()[0])
    except OSError:
        return "?"


@dataclass
class BoundListener:
    """One configured listener of one broker: its security, and its sockets while it listens."""

    security: ListenerSecurity
    port: int
    sockets: list[trio.SocketListener]
    #: addresses to listen on again after a restart (the same port)
    hosts: list[str]


class BrokerServer:
    """One broker's process: listeners, connections and replication tasks, under one cancel scope."""

    def __init__(
        self,
        cluster: ClusterState,
        broker: Broker,
        listeners: list[BoundListener] | None,
        default: ListenerSecurity | None = None,
    ) -> None:
        self.cluster = cluster
        self.broker = broker
        #: whether the broker listens on TCP (else it is reached only through `connect`)
        self.tcp = listeners is not None
        self._bound: list[BoundListener] = listeners or []
        #: the security of in-memory connections (`connect`): the first listener's
        self._default = default or (self._bound[0].security if self._bound else None)
        self._open = bool(self._bound)
        self._nursery: trio.Nursery | None = None
        self._scope: trio.CancelScope | None = None
        self._accept_scope: trio.CancelScope | None = None
        self._done = trio.Event()
        self._sessions: set[Session] = set()
        self._sessions_gone = trio.Event()
        #: set when a connection ends: the accept loop waits on it at max.connections
        self._slot_freed = trio.Event()
        self._per_ip: Counter[str] = Counter()
        self._overrides: tuple[str, dict[str, int]] = ("", {})
        self.state = "stopped"

    async def _reopen(self) -> None:
        try:
            for bound in self._bound:
                for host in bound.hosts:
                    bound.sockets += await trio.open_tcp_listeners(bound.port, host=host)
        except BaseException:
            await _close_all([s for b in self._bound for s in b.sockets])
            for bound in self._bound:
                bound.sockets = []
            raise

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        if self.tcp and not self._open:
            await self._reopen()
        self._open = False
        listeners = [s for b in self._bound for s in b.sockets]
        self._done = trio.Event()
        self.broker.running = True
        self.state = "running"
        try:
            with trio.CancelScope() as self._scope:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    if listeners:
                        nursery.start_soon(self._accept, nursery)
                    nursery.start_soon(run_replica_fetcher, self.cluster, self.broker)
                    nursery.start_soon(run_isr_expiration, self.cluster, self.broker)
                    task_status.started()
        finally:
            self.broker.running = False
            self._nursery = None
            self._scope = None
            await _close_all(listeners)
            for bound in self._bound:
                bound.sockets = []
            self._done.set()

    def connect(self) -> trio.abc.Stream:
        """A new client connection through memory instead of TCP: the same connection code serves it.

        Returns the client's end of the stream; the broker serves the other end
        as it serves an accepted socket (until it stops, is killed, or the
        client closes its end).
        """
        from trio.testing import memory_stream_pair

        if self._nursery is None or self.state != "running":
            raise ConnectionRefusedError(f"broker {self.broker.node_id} is {self.state}")
        client, server = memory_stream_pair()
        session = self._session(self._default)
        self._sessions.add(session)
        self._per_ip[IN_MEMORY] += 1
        self._nursery.start_soon(self._handle, server, IN_MEMORY, session)
        return client

    async def _accept(self, nursery: trio.Nursery) -> None:
        with trio.CancelScope() as self._accept_scope:
            async with trio.open_nursery() as accepting:
                for bound in self._bound:
                    for listener in bound.sockets:
                        accepting.start_soon(self._accept_loop, listener, nursery, bound.security)

    @staticmethod
    def _session(security: ListenerSecurity | None) -> Session:
        if security is None:
            return Session()
        sasl = SaslServer(security.sasl) if security.sasl is not None else None
        return Session(security.listener.name, sasl)

    def _ip_limit(self, ip: str) -> int:
        raw = self.cluster.config["max.connections.per.ip.overrides"]
        if raw != self._overrides[0]:
            self._overrides = (raw, parse_ip_overrides(raw))
        limit = self._overrides[1].get(ip)
        return self.cluster.config["max.connections.per.ip"] if limit is None else limit

    async def _accept_loop(
        self, listener: trio.SocketListener, nursery: trio.Nursery, security: ListenerSecurity | None = None
    ) -> None:
        """Accept connections while below max.connections (Kafka's acceptor waits for a free slot).

        Out of file descriptors (or memory), it says so once, backs off, and
        carries on serving the connections it has; it says when it accepts again.
        """
        backoff = 0.0
        async with listener:
            while True:
                while len(self._sessions) >= self.cluster.config["max.connections"]:
                    self._slot_freed = trio.Event()
                    await self._slot_freed.wait()
                try:
                    stream = await listener.accept()
                except OSError as exc:
                    if exc.errno not in ACCEPT_CAPACITY_ERRNOS:
                        raise
                    if not backoff:
                        log.warning(
                            "broker %d: cannot accept connections: %s (%s); retrying, more slowly while it lasts",
                            self.broker.node_id,
                            errno.errorcode[exc.errno],
                            os.strerror(exc.errno),
                        )
                    backoff = min(max(backoff * 2, ACCEPT_BACKOFF[0]), ACCEPT_BACKOFF[1])
                    await trio.sleep(backoff)
                    continue
                if backoff:
                    log.warning("broker %d: accepting connections again", self.broker.node_id)
                    backoff = 0.0
                ip = _peer_ip(stream)
                if self._per_ip[ip] >= self._ip_limit(ip):
                    # Kafka closes it at once (TooManyConnectionsException), without a word on the wire.
                    log.info(
                        "broker %d: refused a connection from %s: max.connections.per.ip (%d) reached",
                        self.broker.node_id,
                        ip,
                        self._ip_limit(ip),
                    )
                    await trio.aclose_forcefully(stream)
                    continue
                # Counted now, not when its task starts, so the limits see it at the next accept.
                self._per_ip[ip] += 1
                session = self._session(security)
                self._sessions.add(session)
                nursery.start_soon(self._handle, stream, ip, session, security)

    async def _handle(
        self, stream: trio.abc.Stream, ip: str, session: Session, security: ListenerSecurity | None = None
    ) -> None:
        try:
            with session.scope:
                served: trio.abc.Stream | None = stream
                if security is not None and security.ssl_context is not None:
                    served = await self._tls_handshake(stream, ip, session, security)
                if served is not None:
                    await serve_connection(served, self.cluster, self.broker, session)
        finally:
            await trio.aclose_forcefully(stream)
            self._sessions.discard(session)
            self._per_ip[ip] -= 1
            if not self._per_ip[ip]:
                del self._per_ip[ip]
            self._slot_freed.set()
            if not self._sessions:
                self._sessions_gone.set()

    async def _tls_handshake(
        self, transport: trio.abc.Stream, ip: str, session: Session, security: ListenerSecurity
    ) -> trio.SSLStream[trio.abc.Stream] | None:
        """The TLS handshake of a new connection; None (and a log line) if it fails: only this one closes."""
        assert security.ssl_context is not None
        stream = trio.SSLStream(transport, security.ssl_context, server_side=True)
        with trio.move_on_after(TLS_HANDSHAKE_TIMEOUT) as waiting:
            try:
                await stream.do_handshake()
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                cause = exc.__cause__ or exc
                log.info(
                    "broker %d: TLS handshake with %s on listener %s failed: %s",
                    self.broker.node_id,
                    ip,
                    security.listener.name,
                    cause,
                )
                await _send_tls_alert(stream, transport)
                await trio.aclose_forcefully(stream)
                return None
        if waiting.cancelled_caught:
            log.info("broker %d: TLS handshake with %s timed out", self.broker.node_id, ip)
            await trio.aclose_forcefully(stream)
            return None
        certificate = stream.getpeercert(binary_form=True)
        if certificate:
            session.principal = "User:" + principal_from_certificate(certificate, security.principal_rules)
            log.info("broker %d: TLS client %s is %s", self.broker.node_id, ip, session.principal)
        return stream

    def drop_connections(self) -> int:
        """Close every client connection now, mid-request or not; returns how many."""
        count = len(self._sessions)
        for session in list(self._sessions):
            session.scope.cancel()
        return count

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """Stop accepting, let busy connections answer (within `grace` seconds), then end everything."""
        if self._scope is None:
            return
        self.state = "stopping"
        if self._accept_scope is not None:
            self._accept_scope.cancel()
        self._sessions_gone = trio.Event()
        for session in list(self._sessions):
            session.close_when_idle()
        if self._sessions:
            with trio.move_on_after(grace):
                await self._sessions_gone.wait()
        self._scope.cancel()
        await self._done.wait()
        self.state = "stopped"

    async def kill(self) -> None:
        if self._scope is None:
            return
        self._scope.cancel()
        await self._done.wait()
        self.state = "killed"


class ClusterServer:
    """Every broker of a cluster, and the controller's timers; what the control plane drives."""

    def __init__(self, cluster: ClusterState, spec: ListenerSpec) -> None:
        self.cluster = cluster
        self.spec = spec
        self.brokers: dict[int, BrokerServer] = {}
        self._nursery: trio.Nursery | None = None
        self._session_timers: dict[int, trio.CancelScope] = {}
        self.admin_port: int | None = None
        #: the admin API's rules (its token among them), once it is served
        self.admin_access: Access | None = None

    async def run(self, *, task_status: trio.TaskStatus[list[Broker]] = trio.TASK_STATUS_IGNORED) -> None:
        spec = self.spec
        config = self.cluster.config
        listeners = parse_listeners(config, spec.host, spec.port, spec.security_protocol)
        if spec.tls_dir and any(listener.tls for listener in listeners):
            hosts = [h for listener in listeners for h in (listener.host, listener.advertised_host or "")]
            use_tls_dir(config, ensure_tls_dir(spec.tls_dir, [*hosts, spec.advertised_host or ""]))
        securities = [listener_security(config, listener, self.cluster.scram_credentials) for listener in listeners]
        opened: list[tuple[Broker, list[BoundListener] | None]] = []
        try:
            for i in range(spec.brokers):
                bound: list[BoundListener] | None = None if spec.in_memory else []
                endpoints: dict[str, tuple[str, int]] = {}
                for listener, security in zip(listeners, securities, strict=True):
                    port = listener.port + i if listener.port else 0
                    if bound is None:
                        bound_port = (listener.port or 9092) + i  # what Metadata names; nothing listens there
                    else:
                        try:
                            sockets = await _open_listeners(listener.host, port)
                        except OSError as exc:
                            await _close_all([s for b in bound for s in b.sockets])
                            raise OSError(exc.errno, f"{listener.host}:{port}: {exc.strerror or exc}") from exc
                        bound_port = sockets[0].socket.getsockname()[1]
                        hosts = [s.socket.getsockname()[0] for s in sockets]
                        bound.append(BoundListener(security, bound_port, sockets, hosts))
                    advertised_host = (
                        listener.advertised_host
                        or spec.advertised_host
                        or (listener.host if listener.host not in ("0.0.0.0", "::", "") else "localhost")
                    )
                    advertised_port = listener.advertised_port + i if listener.advertised_port else bound_port
                    endpoints[listener.name] = (advertised_host, advertised_port)
                first_host, first_port = endpoints[listeners[0].name]
                broker = self.cluster.add_broker(spec.first_node_id + i, listeners[0].host, first_port, first_host)
                broker.endpoints = endpoints
                opened.append((broker, bound))
            # What the store kept from a previous run (--data-dir) comes back before anything is served.
            self.cluster.store.recover(self.cluster)
            self.cluster.groups.restore_offsets(self.cluster.store.load_offsets())
            self.cluster.groups.consumer.restore(self.cluster.store.load_consumer_groups())
            self.cluster.transactions.restore(self.cluster.store.load_transactions())
            for broker, bound in opened:
                for listener, each in zip(listeners, bound or [], strict=False):
                    host, port = broker.endpoints[listener.name]
                    log.info(
                        "broker %d listening on %s:%d, listener %s (%s), advertised %s:%d",
                        broker.node_id,
                        listener.host,
                        each.port,
                        listener.name,
                        listener.protocol,
                        host,
                        port,
                    )
        except BaseException:
            for _, bound in opened:
                await _close_all([s for b in bound or [] for s in b.sockets])
            raise
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for broker, bound in opened:
                    server = self.brokers[broker.node_id] = BrokerServer(self.cluster, broker, bound, securities[0])
                    await nursery.start(server.run)
                nursery.start_soon(self._auto_rebalance)
                nursery.start_soon(self.cluster.groups.run)  # the group coordinator's timers
                nursery.start_soon(self.cluster.transactions.run)  # transaction timeouts, markers
                nursery.start_soon(retention_loop, self.cluster)
                nursery.start_soon(self.cluster.cleaner.run)  # log compaction (kstub/cluster/cleaner.py)
                nursery.start_soon(self.cluster.store.background, self.cluster)
                if spec.admin_port is not None:
                    from kstub.control_http import serve_admin
                    from kstub.control_http_access import Access

                    self.admin_access = Access.for_bind(spec.admin_host, spec.admin_token)
                    self.admin_port = await nursery.start(
                        serve_admin, self.cluster, spec.admin_host, spec.admin_port, self.admin_access
                    )
                self.cluster.control.attach(self)
                task_status.started([b for b, _ in opened])
        finally:
            self.cluster.store.close(self.cluster)

    def _server(self, broker_id: int) -> BrokerServer:
        server = self.brokers.get(broker_id)
        if server is None:
            raise KeyError(f"no broker {broker_id}")
        return server

    def state(self, broker_id: int) -> str:
        return self._server(broker_id).state

    async def stop_broker(self, broker_id: int) -> None:
        server = self._server(broker_id)
        if server.state != "running":
            raise ValueError(f"broker {broker_id} is {server.state}")
        self.cluster.controller.broker_left(broker_id, "controlled shutdown")
        await server.stop()
        log.info("broker %d stopped", broker_id)

    async def kill_broker(self, broker_id: int) -> None:
        server = self._server(broker_id)
        if server.state != "running":
            raise ValueError(f"broker {broker_id} is {server.state}")
        await server.kill()
        log.info("broker %d killed", broker_id)
        assert self._nursery is not None
        timeout = self.cluster.config["broker.session.timeout.ms"] / 1000
        scope = trio.CancelScope()
        self._session_timers[broker_id] = scope
        self._nursery.start_soon(self._expire_session, broker_id, timeout, scope)

    async def _expire_session(self, broker_id: int, timeout: float, scope: trio.CancelScope) -> None:
        with scope:
            await trio.sleep(timeout)
            self._session_timers.pop(broker_id, None)
            self.cluster.controller.broker_left(broker_id, "session expired")

    async def start_broker(self, broker_id: int) -> None:
        server = self._server(broker_id)
        if server.state not in ("stopped", "killed"):
            raise ValueError(f"broker {broker_id} is {server.state}")
        timer = self._session_timers.pop(broker_id, None)
        if timer is not None:
            # Back before its session expired: the controller fences the old incarnation now.
            timer.cancel()
            self.cluster.controller.broker_left(broker_id, "restarted")
        assert self._nursery is not None
        await self._nursery.start(server.run)
        self.cluster.controller.broker_returned(broker_id)
        log.info("broker %d started", broker_id)

    def drop_connections(self, broker_id: int) -> int:
        return self._server(broker_id).drop_connections()

    def connect(self, broker_id: int) -> trio.abc.Stream:
        """A client connection to broker `broker_id` through memory (see `BrokerServer.connect`)."""
        return self._server(broker_id).connect()

    async def _auto_rebalance(self) -> None:
        """Kafka's periodic preferred-leader check (auto.leader.rebalance.enable)."""
        while True:
            await trio.sleep(self.cluster.config["leader.imbalance.check.interval.seconds"])
            if self.cluster.config["auto.leader.rebalance.enable"] and self.cluster.controller_id >= 0:
                moved = self.cluster.controller.rebalance_if_imbalanced()
                if moved:
                    log.info("auto leader rebalance moved %d partition leader(s)", len(moved))


async def serve_cluster(
    cluster: ClusterState, spec: ListenerSpec, *, task_status: trio.TaskStatus[list[Broker]] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve `spec.brokers` brokers of `cluster` until cancelled."""
    await ClusterServer(cluster, spec).run(task_status=task_status)


__all__ = ["BrokerServer", "ClusterServer", "ListenerSpec", "serve_cluster"]
