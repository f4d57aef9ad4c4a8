"""A cluster served from a background thread, for synchronous code and tests.

``with EmbeddedCluster(brokers=1) as c:`` starts a Trio event loop on a
thread, serves the cluster on ephemeral loopback ports, and returns once every
listener is bound; leaving the block cancels the server and joins the thread.
Touch the cluster model only through `call`, which runs a function on the
Trio thread (the model is not thread-safe, by design: one owner of state);
`control` forwards calls on the control plane there (async ones awaited).
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, TypeVar

import trio

from kstub.cluster.config import BrokerConfig
from kstub.cluster.model import Broker, Cluster
from kstub.server import ListenerSpec, serve_cluster

T = TypeVar("T")


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
        """The admin HTTP API's base URL (needs ``admin_port``)."""
        port = self.call(lambda: self.cluster.control.admin_port)
        assert port is not None, "started without admin_port"
        return f"http://{self._spec.host}:{port}"

    @property
    def control(self) -> _OnTrioThread:
        """The control plane (kstub.control.ControlPlane); each call runs on the Trio thread."""
        return _OnTrioThread(self)

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
                self.brokers = await nursery.start(serve_cluster, self.cluster, self._spec)
                self._ready.set()

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the cluster's Trio thread and return its result."""
        assert self._token is not None
        return trio.from_thread.run_sync(fn, *args, trio_token=self._token)

    def call_async(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Await `fn(*args)` on the cluster's Trio thread and return its result."""
        assert self._token is not None
        return trio.from_thread.run(fn, *args, trio_token=self._token)

    def stop(self) -> None:
        if self._token is not None and self._cancel is not None:
            try:
                trio.from_thread.run_sync(self._cancel.cancel, trio_token=self._token)
            except trio.RunFinishedError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._token = None


class _OnTrioThread:
    """The control plane's methods for another thread: each runs (or is awaited) on the Trio thread."""

    def __init__(self, owner: EmbeddedCluster) -> None:
        self._owner = owner

    def __getattr__(self, name: str) -> Any:
        value = self._owner.call(lambda: getattr(self._owner.cluster.control, name))
        if not callable(value):
            return value
        if inspect.iscoroutinefunction(value):
            return lambda *args, **kwargs: self._owner.call_async(partial(value, *args, **kwargs))
        return lambda *args, **kwargs: self._owner.call(partial(value, *args, **kwargs))
