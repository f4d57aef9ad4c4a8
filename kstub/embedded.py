"""A cluster served from a background thread, for synchronous code and tests.

``with EmbeddedCluster(brokers=1) as c:`` starts a Trio event loop on a
thread, serves the cluster on ephemeral loopback ports, and returns once every
listener is bound; leaving the block cancels the server and joins the thread.
Touch the cluster model only through `call`, which runs a function on the
Trio thread (the model is not thread-safe, by design: one owner of state).

`control` is the cluster's control plane (kstub/control.py) for synchronous
callers: ``c.control.kill_broker(1)`` runs the action on the Trio thread and
returns when it is done. ``admin_port=0`` also serves the admin HTTP API
(`admin_url`).
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import trio

from kstub.cluster.config import BrokerConfig
from kstub.cluster.model import Broker, Cluster
from kstub.server import ClusterServer, ListenerSpec

T = TypeVar("T")


class SyncControl:
    """The control plane's methods, callable from another thread: each runs on the Trio thread."""

    def __init__(self, owner: EmbeddedCluster) -> None:
        self._owner = owner

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._owner.cluster.control, name)
        if not callable(method):
            return self._owner.call(lambda: getattr(self._owner.cluster.control, name))
        token = self._owner._token

        def run(*args: Any, **kwargs: Any) -> Any:
            if inspect.iscoroutinefunction(method):
                return trio.from_thread.run(lambda: method(*args, **kwargs), trio_token=token)
            return trio.from_thread.run_sync(lambda: method(*args, **kwargs), trio_token=token)

        return run


class EmbeddedCluster:
    def __init__(
        self,
        brokers: int = 1,
        config: Mapping[str, Any] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        admin_port: int | None = None,
    ) -> None:
        self.cluster = Cluster(BrokerConfig(config))
        self._spec = ListenerSpec(host=host, port=port, brokers=brokers, admin_port=admin_port)
        self._server: ClusterServer | None = None
        self.control = SyncControl(self)
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._cancel: trio.CancelScope | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.brokers: list[Broker] = []

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"{b.advertised_host}:{b.port}" for b in self.brokers)

    @property
    def admin_url(self) -> str:
        assert self._server is not None and self._server.admin_port is not None, "started without admin_port"
        return f"http://{self._spec.host}:{self._server.admin_port}"

    def __enter__(self) -> EmbeddedCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="kstub", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise RuntimeError("kstub failed to start") from self._error

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        with trio.CancelScope() as scope:
            self._cancel = scope
            async with trio.open_nursery() as nursery:
                self._server = ClusterServer(self.cluster, self._spec)
                self.brokers = await nursery.start(self._server.run)
                self._ready.set()

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the cluster's Trio thread and return its result."""
        assert self._token is not None
        return trio.from_thread.run_sync(fn, *args, trio_token=self._token)

    def run(self, afn: Callable[..., Any], *args: Any) -> Any:
        """Run the async function `afn(*args)` on the cluster's Trio thread and return its result."""
        assert self._token is not None
        return trio.from_thread.run(afn, *args, trio_token=self._token)

    def stop(self) -> None:
        if self._token is not None and self._cancel is not None:
            try:
                trio.from_thread.run_sync(self._cancel.cancel, trio_token=self._token)
            except trio.RunFinishedError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._token = None
