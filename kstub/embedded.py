"""kstub inside your own program: a whole cluster for a test, in milliseconds.

From synchronous code, `Cluster` is a context manager: it runs Trio on a
background thread, serves the cluster on ephemeral loopback ports, returns
once every listener is bound, and on exit cancels the server and joins the
thread::

    with kstub.Cluster(brokers=3, partitions=3) as cluster:
        producer = KafkaProducer(bootstrap_servers=cluster.bootstrap_servers)

From Trio code the cluster runs in the caller's event loop instead, with
`open_cluster` (``async with kstub.open_cluster() as cluster:``) or `serve`
(``cluster = await nursery.start(kstub.serve)``); both hand back a
`TrioCluster`.

The cluster model has one owner, the Trio thread, and is not thread-safe by
design. `Cluster`'s methods therefore run their work on that thread (`call`),
and `Cluster.control` forwards every call on the control plane there.

Settings: Kafka's defaults, except where a test fixture wants something else
(`FIXTURE_DEFAULTS`, applied unless ``test_defaults=False``), overlaid with the
``config`` you pass. ``kstub serve`` keeps Kafka's defaults.
"""

from __future__ import annotations

import inspect
import os
import queue
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, TypeVar

import trio

from kstub.cluster.model import Broker
from kstub.cluster.model import ClusterState as Model
from kstub.control import ControlPlane
from kstub.embedded_setup import (
    FIXTURE_DEFAULTS,
    _bootstrap,
    _check_settings,
    _create_topic,
    _listener_protocol,
    _new_model,
    _Security,
    fixture_config,
)
from kstub.errors import unwrap
from kstub.server import ListenerSpec, serve_cluster

__all__ = ["FIXTURE_DEFAULTS", "Cluster", "EmbeddedCluster", "TrioCluster", "fixture_config", "open_cluster", "serve"]

T = TypeVar("T")


def _current_token() -> trio.lowlevel.TrioToken | None:
    """The token of the Trio run on this thread, if any."""
    try:
        return trio.lowlevel.current_trio_token()
    except RuntimeError:
        return None


def _unbox(box: queue.SimpleQueue[tuple[bool, Any]]) -> Any:
    ok, value = box.get()
    if ok:
        return value
    raise value


class _ClusterFront:
    """What `TrioCluster` and `Cluster` share: the model, the brokers, bootstrap servers, topics, reset.

    `_on_trio` runs a function where the model lives: in place for a
    `TrioCluster`, on the cluster's Trio thread for a `Cluster`.
    """

    cluster: Model
    brokers: list[Broker]

    def _on_trio(self, fn: Callable[..., T], *args: Any) -> T:
        return fn(*args)

    @property
    def state(self) -> Model:
        """The cluster model (kstub.cluster.model.ClusterState): topics, partitions, logs, groups, hooks.

        (``cluster`` is the same object, under the name it had before 0.2.)
        """
        return self.cluster

    @property
    def bootstrap_servers(self) -> str:
        """``host:port,host:port``: what Kafka clients take as bootstrap servers."""
        return _bootstrap(self.brokers)

    def bootstrap(self, listener: str) -> str:
        """Bootstrap servers of one listener (``listeners=...`` with several): its advertised endpoints."""
        return _bootstrap(self.brokers, listener)

    def create_topic(
        self,
        name: str,
        partitions: int | None = None,
        replication_factor: int | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        """Create a topic as CreateTopics would (partitions and replication factor default to the
        broker's ``num.partitions`` and ``default.replication.factor``); raises `kstub.ClusterError`
        with Kafka's error code where Kafka refuses (e.g. TOPIC_ALREADY_EXISTS)."""
        self._on_trio(_create_topic, self.cluster, name, partitions, replication_factor, config)

    def delete_topic(self, name: str) -> None:
        self._on_trio(self.cluster.delete_topic, name)

    def reset(self) -> None:
        """Drop every topic and group and clear injected faults: a clean cluster for the next test."""
        self._on_trio(self.cluster.reset)


class TrioCluster(_ClusterFront):
    """A cluster served inside the current Trio run; from `open_cluster` or `serve`.

    Everything here runs on the caller's (the only) Trio thread, so the model
    and the control plane are used directly.
    """

    def __init__(self, model: Model, brokers: list[Broker]) -> None:
        #: the cluster model (kstub.cluster.model.ClusterState): topics, partitions, logs
        self.cluster = model
        #: the brokers, with the ports actually bound
        self.brokers = brokers
        #: where the throwaway CA (ca.pem) and certificates are, if TLS is on (see docs/security.md)
        self.tls_dir: str | None = None

    @property
    def control(self) -> ControlPlane:
        """The control plane: fault injection and, as it grows, broker failures."""
        return self.cluster.control

    def __repr__(self) -> str:
        return f"<TrioCluster {self.bootstrap_servers}>"


async def serve(
    brokers: int = 1,
    partitions: int | None = None,
    config: Mapping[str, Any] | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    advertised_host: str | None = None,
    test_defaults: bool = True,
    data_dir: str | os.PathLike[str] | None = None,
    security_protocol: str = "PLAINTEXT",
    users: Mapping[str, str] | None = None,
    tls_dir: str | os.PathLike[str] | None = None,
    kafka_version: str | None = None,
    task_status: trio.TaskStatus[TrioCluster] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve a new cluster until cancelled; for ``cluster = await nursery.start(kstub.serve)``.

    Reports a `TrioCluster` through `task_status` once every broker listens.
    Pass settings positionally or with `functools.partial`, as `nursery.start`
    takes no keyword arguments.
    """
    _check_settings(brokers, port)
    model = _new_model(brokers, partitions, _posing(config, kafka_version), test_defaults, data_dir)
    security = _Security(model, security_protocol, users, tls_dir)
    spec = ListenerSpec(
        host=host,
        port=port,
        brokers=brokers,
        advertised_host=advertised_host,
        security_protocol=security.protocol,
        tls_dir=security.tls_dir,
    )
    try:
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(serve_cluster, model, spec)
            cluster = TrioCluster(model, bound)
            cluster.tls_dir = security.tls_dir
            task_status.started(cluster)
    finally:
        security.cleanup()


@asynccontextmanager
async def open_cluster(
    brokers: int = 1,
    partitions: int | None = None,
    config: Mapping[str, Any] | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    advertised_host: str | None = None,
    test_defaults: bool = True,
    data_dir: str | os.PathLike[str] | None = None,
    security_protocol: str = "PLAINTEXT",
    users: Mapping[str, str] | None = None,
    tls_dir: str | os.PathLike[str] | None = None,
    kafka_version: str | None = None,
) -> AsyncIterator[TrioCluster]:
    """``async with open_cluster(...) as cluster:`` serves a cluster for the duration of the block."""
    async with trio.open_nursery() as nursery:
        cluster = await nursery.start(
            partial(
                serve,
                brokers,
                partitions,
                config,
                host=host,
                port=port,
                advertised_host=advertised_host,
                test_defaults=test_defaults,
                data_dir=data_dir,
                security_protocol=security_protocol,
                users=users,
                tls_dir=tls_dir,
                kafka_version=kafka_version,
            )
        )
        try:
            yield cluster
        finally:
            nursery.cancel_scope.cancel()


def _posing(config: Mapping[str, Any] | None, kafka_version: str | None) -> Mapping[str, Any] | None:
    """`config` with ``kstub.kafka.version`` set: `kafka_version=` poses as that Kafka (kstub/kafka_versions.py)."""
    if kafka_version is None:
        return config
    return {**(config or {}), "kstub.kafka.version": kafka_version}


class _OnTrioThread:
    """Forwards attribute reads and method calls on an object owned by the Trio thread.

    Methods run on the Trio thread (async ones awaited there) and their result
    comes back; so `cluster.control.drop_response(0)` is safe from any thread.
    """

    def __init__(self, owner: Cluster, target: Callable[[], Any]) -> None:
        self._owner = owner
        self._target = target

    def __getattr__(self, name: str) -> Any:
        value = self._owner.call(lambda: getattr(self._target(), name))
        if not callable(value):
            return value
        if inspect.iscoroutinefunction(value):
            return lambda *args, **kwargs: self._owner.call_async(partial(value, *args, **kwargs))
        return lambda *args, **kwargs: self._owner.call(partial(value, *args, **kwargs))

    def __dir__(self) -> list[str]:
        return dir(self._target())

    def __repr__(self) -> str:
        return f"<on kstub's Trio thread: {self._target()!r}>"


class Cluster(_ClusterFront):
    """A cluster served from a background thread, for synchronous code and tests.

    ``with Cluster(brokers=1, partitions=None, config={...}) as cluster:``;
    or `start` and `stop`. Ports are ephemeral unless `port` is given (broker
    N then listens on port+N).
    """

    def __init__(
        self,
        brokers: int = 1,
        partitions: int | None = None,
        config: Mapping[str, Any] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        advertised_host: str | None = None,
        test_defaults: bool = True,
        data_dir: str | os.PathLike[str] | None = None,
        admin_port: int | None = None,
        admin_host: str = "127.0.0.1",
        admin_token: str | None = None,
        security_protocol: str = "PLAINTEXT",
        users: Mapping[str, str] | None = None,
        tls_dir: str | os.PathLike[str] | None = None,
        kafka_version: str | None = None,
    ) -> None:
        _check_settings(brokers, port)
        #: the cluster model (kstub.cluster.model.ClusterState); touch it only through `call`
        self.cluster = _new_model(brokers, partitions, _posing(config, kafka_version), test_defaults, data_dir)
        #: the brokers, with the ports actually bound (set by `start`)
        self.brokers: list[Broker] = []
        self._security = _Security(self.cluster, security_protocol, users, tls_dir)
        self._spec = ListenerSpec(
            host=host,
            port=port,
            brokers=brokers,
            advertised_host=advertised_host,
            admin_port=admin_port,
            admin_host=admin_host,
            admin_token=admin_token,
            security_protocol=self._security.protocol,
            tls_dir=self._security.tls_dir,
        )
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._cancel: trio.CancelScope | None = None
        self._nursery: trio.Nursery
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def tls_dir(self) -> str | None:
        """Where the throwaway CA (``ca.pem``) and certificates are (see docs/security.md), if TLS is on."""
        return self._security.tls_dir

    def client_config(
        self,
        username: str | None = None,
        password: str | None = None,
        *,
        mechanism: str = "PLAIN",
        listener: str | None = None,
    ) -> dict[str, str]:
        """librdkafka-style settings (confluent-kafka) to reach this cluster: bootstrap, protocol, CA, SASL."""
        protocol = self._security.protocol
        if listener is not None:
            protocol = _listener_protocol(self.cluster, listener, protocol)
        return self._security.client_config(_bootstrap(self.brokers, listener), username, password, mechanism, protocol)

    @property
    def control(self) -> Any:
        """The control plane (`kstub.control.ControlPlane`); each call runs on the Trio thread."""
        return _OnTrioThread(self, lambda: self.cluster.control)

    @property
    def admin_url(self) -> str:
        """The admin HTTP API's base URL (needs ``admin_port``: 0 for an ephemeral one)."""
        port = self.call(lambda: self.cluster.control.admin_port)
        if port is None:
            raise RuntimeError("this cluster was started without admin_port")
        from kstub.control_http_access import url_host

        return f"http://{url_host(self._spec.admin_host)}:{port}"

    @property
    def admin_token(self) -> str | None:
        """The admin HTTP API's bearer token (None when it needs none: on loopback without admin_token)."""
        return self.call(lambda: self.cluster.control.admin_token)

    @property
    def running(self) -> bool:
        return self._token is not None

    # --- life cycle ----------------------------------------------------------

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.stop(raise_errors=exc_type is None)

    def start(self) -> None:
        """Start serving; returns once every broker listens (or raises why it could not)."""
        if self._thread is not None:
            raise RuntimeError("this kstub cluster was already started; make a new Cluster")
        self._thread = threading.Thread(target=self._run, name="kstub", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._token is None:
            self._thread.join()
            error = self._error
            assert error is not None
            if isinstance(error, Exception):
                raise error
            raise RuntimeError("kstub failed to start") from error

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # reported to the thread that started or stops us
            self._error = unwrap(exc)
        finally:
            self._ready.set()

    async def _main(self) -> None:
        with trio.CancelScope() as scope:
            self._cancel = scope
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self.brokers = await nursery.start(serve_cluster, self.cluster, self._spec)
                self._token = trio.lowlevel.current_trio_token()
                self._ready.set()

    def stop(self, *, raise_errors: bool = True) -> None:
        """Stop serving and join the thread; connections are closed. Idempotent."""
        token, self._token = self._token, None
        if token is not None and self._cancel is not None:
            try:
                token.run_sync_soon(self._cancel.cancel)
            except trio.RunFinishedError:
                pass
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._security.cleanup()
        if raise_errors and token is not None and self._error is not None:
            error, self._error = self._error, None
            raise RuntimeError("kstub's server thread failed") from error

    # --- working on the Trio thread -------------------------------------------
    #
    # `trio.from_thread` refuses to run inside any Trio run, which would make a
    # Cluster unusable from async tests (pytest-trio) and Trio programs: the
    # calls below go through the token's thread-safe `run_sync_soon` instead,
    # and the caller's thread (or event loop) waits for the answer.

    def _running_token(self) -> trio.lowlevel.TrioToken:
        token = self._token
        if token is None:
            raise RuntimeError("the kstub cluster is not running")
        return token

    def _submit(self, token: trio.lowlevel.TrioToken, callback: Callable[[], None]) -> None:
        try:
            token.run_sync_soon(callback)
        except trio.RunFinishedError:
            raise RuntimeError("the kstub cluster is not running") from None

    def _on_trio(self, fn: Callable[..., T], *args: Any) -> T:
        return self.call(fn, *args)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the cluster's Trio thread and return its result (or raise its exception)."""
        token = self._running_token()
        if _current_token() is token:
            return fn(*args)  # already on the cluster's thread (e.g. from a function given to `call`)
        box: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()

        def run() -> None:
            try:
                box.put((True, fn(*args)))
            except BaseException as exc:  # handed to the caller, never to the cluster's event loop
                box.put((False, exc))

        self._submit(token, run)
        return _unbox(box)

    def call_async(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Await `fn(*args)` on the cluster's Trio thread and return its result."""
        token = self._running_token()
        if _current_token() is token:
            raise RuntimeError("call_async would wait for itself on the cluster's thread; await the function there")
        box: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()

        async def run() -> None:
            try:
                box.put((True, await fn(*args)))
            except Exception as exc:  # handed to the caller; the cluster carries on
                box.put((False, exc))
            except BaseException:  # cancelled: the cluster is stopping
                box.put((False, RuntimeError("the kstub cluster stopped during the call")))
                raise

        def spawn() -> None:
            try:
                self._nursery.start_soon(run)
            except RuntimeError as exc:  # the nursery is closing: the cluster is stopping
                box.put((False, exc))

        self._submit(token, spawn)
        return _unbox(box)

    def __repr__(self) -> str:
        return f"<kstub.Cluster {self.bootstrap_servers if self.running else 'not running'}>"


#: The former name, kept for existing code.
EmbeddedCluster = Cluster
