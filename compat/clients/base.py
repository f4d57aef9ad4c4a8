"""What every client adapter offers: primitive operations in the suite's own terms (compat.model).

An adapter only performs operations and reports what its client said; it
never judges. Each one declares the scenarios it cannot run, with the reason
(`unsupported`), the codecs it can produce with (`codecs`), and whether it can
run at all here (`unavailable`). An operation the client cannot perform the
way asked raises `Unsupported`, which makes the cell a skip with that reason.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable

from ..model import ClusterMeta, Delivery, Msg, Record, Unsupported

ALL_CODECS = ("gzip", "snappy", "lz4", "zstd")


class Member:
    """One member of a consumer group running in the background.

    It consumes continuously from the topic it subscribed to, commits what it
    consumed after every batch (synchronously), and keeps the latest
    assignment its client reported. `close` commits, leaves the group and
    returns once the client has closed.
    """

    def assignment(self) -> frozenset[int] | None:
        raise NotImplementedError

    def records(self) -> list[Record]:
        raise NotImplementedError

    def error(self) -> str | None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class RecordingMember(Member):
    """A member whose client's reports (assignments, records, the first error) are kept under a lock,
    read by the scenario's thread while the client's thread or reader writes them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._assignment: frozenset[int] | None = None
        self._records: list[Record] = []
        self._error: str | None = None

    def set_assignment(self, partitions: frozenset[int]) -> None:
        with self._lock:
            self._assignment = partitions

    def add_records(self, records: list[Record]) -> None:
        with self._lock:
            self._records.extend(records)

    def set_error(self, message: str) -> None:
        """Keep `message` unless an error was already kept (the first one tells what went wrong)."""
        with self._lock:
            self._error = self._error or message

    def assignment(self) -> frozenset[int] | None:
        with self._lock:
            return self._assignment

    def records(self) -> list[Record]:
        with self._lock:
            return list(self._records)


class ThreadMember(RecordingMember):
    """A member whose client runs on a thread of this process: `body(self)` loops until `stopping`."""

    def __init__(self, name: str, body: Callable[[ThreadMember], None]) -> None:
        super().__init__()
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(body,), name=f"compat-member-{name}", daemon=True)
        self._thread.start()

    def _run(self, body: Callable[[ThreadMember], None]) -> None:
        try:
            body(self)
        except BaseException as exc:  # reported through error()
            self._error = f"{type(exc).__name__}: {exc}"

    def error(self) -> str | None:
        return self._error

    def close(self, timeout: float = 30.0) -> None:
        self.stopping.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"group member did not close within {timeout}s")


class Client:
    """Base of the adapters. Every primitive raises Unsupported unless the adapter implements it."""

    name: str = ""
    #: scenario name -> why this client cannot run it
    unsupported: dict[str, str] = {}
    #: scenario name -> why this client fails it against any broker (the cell still runs and fails; its
    #: reason says this, and the matrix against both brokers shows Kafka failing it too)
    limitations: dict[str, str] = {}
    #: compression codecs this client can produce with
    codecs: tuple[str, ...] = ALL_CODECS

    def __init__(self, bootstrap: str, timeout: float = 15.0, caps: frozenset[str] = frozenset()) -> None:
        self.bootstrap = bootstrap
        self.timeout = timeout
        self.caps = caps  # what the cluster can do (see compat.runner.Capabilities)

    def with_timeout(self, timeout: float) -> Client:
        """The same client with another operation timeout."""
        return type(self)(self.bootstrap, timeout, self.caps)

    def with_bootstrap(self, bootstrap: str) -> Client:
        """The same client bootstrapping from other addresses."""
        return type(self)(bootstrap, self.timeout, self.caps)

    @classmethod
    def unavailable(cls) -> str | None:
        """Why this client cannot run on this machine (None when it can)."""
        return None

    @classmethod
    def version(cls) -> str:
        return "?"

    def _no(self, what: str) -> Unsupported:
        return Unsupported(f"{self.name} has no {what}")

    # --- primitives ----------------------------------------------------------------------

    def metadata(self, topics: list[str]) -> ClusterMeta:
        raise self._no("metadata request")

    def create_topic(self, topic: str, partitions: int, replication_factor: int = 1) -> None:
        """Create a topic; ClientError(kind=Kafka's error name) when the broker refuses."""
        raise self._no("admin API to create topics")

    def produce(
        self,
        topic: str,
        msgs: list[Msg],
        *,
        acks: str = "all",
        compression: str | None = None,
        idempotent: bool | None = None,
        flush_each: bool = False,
    ) -> list[Delivery] | None:
        """Produce `msgs` in order with one producer; return where each landed (None when the client
        does not tell which message went where). `idempotent`: None keeps the client's default.
        `flush_each`: wait for each message's acknowledgement before sending the next, so that each is
        a batch of its own. Raises ClientError."""
        raise self._no("producer")

    def consume(self, topic: str, starts: dict[int, int], count: int) -> list[Record]:
        """Assign the partitions (no group), start at the given offsets, return records until `count`
        have arrived or the timeout passed."""
        raise self._no("consumer")

    def group_consume(self, group: str, topic: str, count: int, *, reset: str = "earliest") -> list[Record]:
        """Subscribe as the only member of `group`, take exactly `count` records (or fewer at the
        timeout), commit the offsets of exactly those, leave the group."""
        raise self._no("group consumer")

    def group_member(self, group: str, topic: str) -> Member:
        raise self._no("background group consumer")

    def consume_new(self, group: str, topic: str, then_produce: list[Msg]) -> list[Record]:
        """Join `group` (no committed offsets) with auto.offset.reset=latest, wait until the client's
        position is set, produce `then_produce` with this client, return what the consumer receives."""
        raise self._no("way to tell when a consumer's position is set")

    def offsets_for_times(self, topic: str, times: dict[int, int]) -> dict[int, int | None]:
        """partition -> the first offset whose timestamp >= the time given (None where the client says none)."""
        raise self._no("offsets-for-times API")


class PythonLibraryClient(Client):
    """A client that is a Python library (`module`, installed from PyPI as `package`) in this environment."""

    module = ""
    package = ""

    @classmethod
    def unavailable(cls) -> str | None:
        try:
            importlib.import_module(cls.module)
        except ImportError:
            return f"{cls.package} is not installed (pip install {cls.package})"
        return None

    @classmethod
    def version(cls) -> str:
        return importlib.import_module(cls.module).__version__

    def _ms(self) -> int:
        """The operation timeout in milliseconds."""
        return int(self.timeout * 1000)


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True
