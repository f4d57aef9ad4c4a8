"""Clients driven through a long-running driver program that speaks JSON lines (the Java client, franz-go).

The driver (compat/java: Driver.java; compat/go: main.go) reads one command a
line on stdin, ``{"id": N, "op": ..., "args": {...}}``, runs each on a thread
of its own and answers ``{"id": N, "ok": true, "result": ...}`` or ``{"id": N,
"ok": false, "error": {"kind": ..., "message": ...}}``; a background group
member ("member") also prints ``{"id": N, "event": ...}`` lines until it is
stopped. The operations and their arguments are those of the kafkajs driver
(compat/js/driver.js), which runs one operation per process instead: a JVM
takes too long to start for that. One driver process serves every cell of a
run (it is started on first use, after building the driver if needed, and ends
when this process does).
"""

from __future__ import annotations

import atexit
import collections
import itertools
import json
import queue
import subprocess
import threading
from typing import Any, ClassVar

from ..build import BuildError, Target, ensure
from ..model import ClientError, Record, Unsupported
from .base import Client, Member, RecordingMember
from .json_ops import JsonOps, _record

_EXITED = object()  # put in every waiting queue when the driver process ends


class Driver:
    """One driver process: commands go out on its stdin, answers come back by id on its stdout."""

    def __init__(self, argv: list[str], name: str) -> None:
        self.name = name
        self._ids = itertools.count(1)
        self._waiting: dict[int, queue.Queue[Any]] = {}
        self._lock = threading.Lock()
        self._stderr: collections.deque[str] = collections.deque(maxlen=20)
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        threading.Thread(target=self._read, daemon=True, name=f"{name}-driver-out").start()
        threading.Thread(target=self._read_stderr, daemon=True, name=f"{name}-driver-err").start()

    def _read(self) -> None:
        assert self.proc.stdout
        for raw in self.proc.stdout:
            try:
                message = json.loads(raw)
            except ValueError:
                self._stderr.append(raw.decode(errors="replace").rstrip())
                continue
            with self._lock:
                waiting = self._waiting.get(message.get("id"))
            if waiting is not None:
                waiting.put(message)
        with self._lock:
            for waiting in self._waiting.values():
                waiting.put(_EXITED)

    def _read_stderr(self) -> None:
        assert self.proc.stderr
        for raw in self.proc.stderr:
            self._stderr.append(raw.decode(errors="replace").rstrip())

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stderr_tail(self) -> str:
        return " | ".join(self._stderr)

    def send(self, op: str, args: dict[str, Any]) -> tuple[int, queue.Queue[Any]]:
        """Start `op`; returns its id and the queue its events and answer arrive on."""
        ident = next(self._ids)
        waiting: queue.Queue[Any] = queue.Queue()
        line = json.dumps({"id": ident, "op": op, "args": args}) + "\n"
        with self._lock:
            self._waiting[ident] = waiting
            if not self.alive():
                waiting.put(_EXITED)
                return ident, waiting
            try:
                assert self.proc.stdin
                self.proc.stdin.write(line.encode())
                self.proc.stdin.flush()
            except OSError:
                waiting.put(_EXITED)
        return ident, waiting

    def done(self, ident: int) -> None:
        with self._lock:
            self._waiting.pop(ident, None)

    def exited(self) -> ClientError:
        return ClientError(
            "EXIT", f"the {self.name} driver exited with status {self.proc.poll()}: {self.stderr_tail()}"
        )

    def answer(self, ident: int, waiting: queue.Queue[Any], op: str, timeout: float) -> Any:
        """Wait for the answer to command `ident`, skipping events; raise the error it reports."""
        try:
            while True:
                try:
                    message = waiting.get(timeout=timeout)
                except queue.Empty:
                    raise ClientError(
                        "TIMEOUT", f"the {self.name} driver did not answer {op} within {timeout:.0f}s"
                    ) from None
                if message is _EXITED:
                    raise self.exited()
                if "ok" in message:
                    return _result(message)
        finally:
            self.done(ident)

    def close(self, timeout: float = 30.0) -> None:
        if self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _result(message: dict[str, Any]) -> Any:
    if message["ok"]:
        return message.get("result")
    kind = message["error"]["kind"]
    text = (message["error"].get("message") or "").strip().splitlines()
    first = text[0] if text else ""
    if kind == "UNSUPPORTED":
        raise Unsupported(first)
    raise ClientError(kind, first)


_drivers: dict[str, Driver] = {}
_drivers_lock = threading.Lock()


@atexit.register
def _close_drivers() -> None:
    with _drivers_lock:
        for driver in _drivers.values():
            driver.close(10.0)
        _drivers.clear()


class DrivenMember(RecordingMember):
    """A background group member living in the driver: its events arrive on the member command's queue."""

    def __init__(self, driver: Driver, args: dict[str, Any], timeout: float) -> None:
        self._driver = driver
        self._timeout = timeout
        super().__init__()
        self._answer: dict[str, Any] | None = None
        self._closed = threading.Event()
        self._id, self._queue = driver.send("member", args)
        threading.Thread(target=self._follow, daemon=True, name=f"{driver.name}-member-{self._id}").start()

    def _follow(self) -> None:
        try:
            while True:
                message = self._queue.get()
                if message is _EXITED:
                    self.set_error(str(self._driver.exited()))
                    return
                if "ok" in message:
                    self._answer = message
                    if not message["ok"]:
                        self.set_error(f"{message['error']['kind']}: {message['error']['message']}")
                    return
                event = message.get("event")
                with self._lock:
                    if event == "assigned":
                        self._assignment = frozenset(message["partitions"])
                    elif event == "records":
                        self._records.extend(_record(r) for r in message["records"])
                if event == "error":
                    self.set_error(message.get("message", "error"))
        finally:
            self._driver.done(self._id)
            self._closed.set()

    def error(self) -> str | None:
        with self._lock:
            if self._error is None and self._closed.is_set() and self._answer is None:
                return "the member ended"
            return self._error

    def close(self, timeout: float | None = None) -> None:
        if not self._closed.is_set():
            stop_id, stopped = self._driver.send("stop", {"member": self._id})
            self._driver.answer(stop_id, stopped, "stop", self._timeout)
        wait = timeout if timeout is not None else self._timeout * 2 + 15
        if not self._closed.wait(wait):
            raise TimeoutError(f"the group member did not leave within {wait:.0f}s")
        if self._answer is not None and not self._answer["ok"]:
            _result(self._answer)


class DrivenClient(JsonOps, Client):
    """An adapter whose operations run in a shared driver process (see the module's docstring)."""

    #: what builds and runs the driver
    target: ClassVar[Target]

    @classmethod
    def unavailable(cls) -> str | None:
        return cls.target.unavailable()

    @classmethod
    def argv(cls) -> list[str]:
        raise NotImplementedError

    @classmethod
    def driver(cls) -> Driver:
        """The running driver, started (and built) on first use, restarted if it died."""
        with _drivers_lock:
            driver = _drivers.get(cls.name)
            if driver is None or not driver.alive():
                try:
                    ensure(cls.target)
                except BuildError as exc:
                    raise ClientError("BUILD", str(exc)) from exc
                driver = _drivers[cls.name] = Driver(cls.argv(), cls.name)
            return driver

    @classmethod
    def version(cls) -> str:
        driver = cls.driver()
        ident, waiting = driver.send("version", {})
        return str(driver.answer(ident, waiting, "version", 120.0))

    def _args(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"bootstrap": self.bootstrap, "timeoutMs": int(self.timeout * 1000), **args}

    def _call(self, op: str, **args: Any) -> Any:
        driver = self.driver()
        ident, waiting = driver.send(op, self._args(args))
        return driver.answer(ident, waiting, op, self.timeout * 3 + 15)

    def consume(self, topic: str, starts: dict[int, int], count: int) -> list[Record]:
        answer = self._call("consume", topic=topic, starts={str(p): o for p, o in starts.items()}, count=count)
        return [_record(r) for r in answer]

    def group_member(self, group: str, topic: str) -> Member:
        return DrivenMember(self.driver(), self._args({"group": group, "topic": topic}), self.timeout)
