"""Faults on requests: what `ControlPlane.inject_error`, `delay_response`, `drop_response` and
`drop_request` add, and what the connection loop asks of them (kstub/control.py describes each)."""

from __future__ import annotations

import itertools
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from kstub.protocol import APIS, ErrorCode

if TYPE_CHECKING:
    from kstub.cluster.model import ClusterState
    from kstub.handlers.base import Context
    from kstub.protocol.connection import Request

log = logging.getLogger("kstub.control")

#: APIs whose handlers apply injected errors per topic (and partition), serving the rest
TOPIC_SCOPED_APIS = frozenset({0, 1, 2, 3, 19, 20, 23})
#: of those, the ones whose errors are per partition
PARTITION_SCOPED_APIS = frozenset({0, 1, 2, 23})

FAULT_KINDS = ("error", "delay", "drop_request", "drop_response")


class ControlError(Exception):
    """An action the control plane refuses: `status` is the HTTP status the admin API answers."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_API_BY_NAME = {_squash(api.name): key for key, api in APIS.items()}


def api_key_of(api: int | str | None) -> int | None:
    """An API key from its number or name (``0``, ``"produce"``, ``"ListOffsets"``, ``"list_offsets"``)."""
    if api is None:
        return None
    if isinstance(api, int) or (isinstance(api, str) and api.strip().lstrip("-").isdigit()):
        key = int(api)
        if key not in APIS:
            raise ControlError(f"unknown api key {key}")
        return key
    key = _API_BY_NAME.get(_squash(api))
    if key is None:
        raise ControlError(f"unknown API {api!r} (known: {', '.join(a.name for a in APIS.values())})")
    return key


def error_code_of(code: int | str) -> ErrorCode:
    """An ErrorCode from its number or name (``6``, ``"NOT_LEADER_OR_FOLLOWER"``)."""
    try:
        if isinstance(code, int) or (isinstance(code, str) and code.strip().lstrip("-").isdigit()):
            return ErrorCode(int(code))
        return ErrorCode[code.strip().upper()]
    except (KeyError, ValueError):
        raise ControlError(f"unknown error code {code!r}") from None


def _has_top_level_error(api_key: int, version: int) -> bool:
    return any(
        f.name == "error_code" and f.version_range is not None and version in f.version_range
        for f in APIS[api_key].response
    )


@dataclass(eq=False)
class Fault:
    id: int
    kind: str
    api_key: int | None  # None: any API
    remaining: int | None  # None: until removed
    broker_id: int | None = None
    topic: str | None = None
    partition: int | None = None
    error_code: ErrorCode | None = None
    delay_ms: int = 0
    fired: int = 0

    def applies(self, kind: str, api_key: int, broker_id: int) -> bool:
        return (
            self.kind == kind
            and self.api_key in (None, api_key)
            and self.broker_id in (None, broker_id)
            and (self.remaining is None or self.remaining > 0)
        )

    def matches(self, topic: str | None, partition: int | None) -> bool:
        """Whether this error fault covers `topic` (and `partition`; None: the topic as a whole)."""
        if self.topic is not None and self.topic != topic:
            return False
        return self.partition is None or self.partition == partition

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "type": self.kind.replace("_", "-"),
            "api": APIS[self.api_key].name if self.api_key is not None else None,
            "api_key": self.api_key,
            "remaining": self.remaining,
            "fired": self.fired,
            "broker": self.broker_id,
        }
        if self.kind == "error":
            assert self.error_code is not None
            d.update(error=self.error_code.name, error_code=int(self.error_code))
            d.update(topic=self.topic, partition=self.partition)
        if self.kind == "delay":
            d["ms"] = self.delay_ms
        return d


class RequestFaults:
    """The request-fault half of the control plane (a base of `ControlPlane`)."""

    faults: list[Fault]
    _ids: itertools.count[int]
    _cluster: ClusterState | None

    @property
    def cluster(self) -> ClusterState:  # overridden by ControlPlane
        raise NotImplementedError

    def _record(self, action: str, **params: Any) -> None:  # overridden by ControlPlane
        raise NotImplementedError

    # --- request faults -----------------------------------------------------

    def _add(self, kind: str, api: int | str | None, count: int | None, broker_id: int | None, **extra: Any) -> Fault:
        if count is not None and count < 1:
            raise ControlError("count must be at least 1 (or null: until removed)")
        if broker_id is not None and self._cluster is not None and broker_id not in self.cluster.brokers:
            raise ControlError(f"no broker {broker_id}", 404)
        fault = Fault(next(self._ids), kind, api_key_of(api), count, broker_id, **extra)
        self.faults.append(fault)
        self._record(kind.replace("_", "-"), **fault.describe())
        return fault

    def inject_error(
        self,
        api: int | str,
        error: int | str | ErrorCode,
        count: int | None = 1,
        broker_id: int | None = None,
        topic: str | None = None,
        partition: int | None = None,
    ) -> Fault:
        key = api_key_of(api)
        assert key is not None
        code = error if isinstance(error, ErrorCode) else error_code_of(error)
        if topic is not None and key not in TOPIC_SCOPED_APIS:
            raise ControlError(f"{APIS[key].name} errors cannot be limited to a topic")
        if partition is not None and (topic is None or key not in PARTITION_SCOPED_APIS):
            raise ControlError("a partition needs a topic, and an API answered per partition")
        if key not in TOPIC_SCOPED_APIS and not any(
            _has_top_level_error(key, v) for v in range(APIS[key].min_version, APIS[key].max_version + 1)
        ):
            raise ControlError(f"{APIS[key].name} responses have no error code to inject")
        return self._add("error", key, count, broker_id, topic=topic, partition=partition, error_code=code)

    def delay_response(
        self, api: int | str | None, delay_ms: int, count: int | None = 1, broker_id: int | None = None
    ) -> Fault:
        if delay_ms < 0:
            raise ControlError("delay must be >= 0 ms")
        return self._add("delay", api, count, broker_id, delay_ms=delay_ms)

    def drop_response(self, api: int | str | None, count: int | None = 1, broker_id: int | None = None) -> Fault:
        return self._add("drop_response", api, count, broker_id)

    def drop_request(self, api: int | str | None, count: int | None = 1, broker_id: int | None = None) -> Fault:
        return self._add("drop_request", api, count, broker_id)

    def remove_fault(self, fault_id: int) -> None:
        for fault in self.faults:
            if fault.id == fault_id:
                self.faults.remove(fault)
                self._record("remove-fault", id=fault_id)
                return
        raise ControlError(f"no fault {fault_id}", 404)

    def _fire(self, fault: Fault, api_key: int, broker_id: int) -> None:
        fault.fired += 1
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining <= 0 and fault in self.faults:
                self.faults.remove(fault)
        log.info("control: fault #%d (%s) fired for api key %d on broker %d", fault.id, fault.kind, api_key, broker_id)

    # --- what the connection loop asks ---------------------------------------------

    def take(self, kind: str, api_key: int, broker_id: int) -> bool:
        """Whether a fault of `kind` fires for this request; counts it down if so."""
        for fault in self.faults:
            if fault.applies(kind, api_key, broker_id):
                self._fire(fault, api_key, broker_id)
                return True
        return False

    async def apply_delay(self, api_key: int, broker_id: int) -> None:
        for fault in self.faults:
            if fault.applies("delay", api_key, broker_id):
                self._fire(fault, api_key, broker_id)
                await trio.sleep(fault.delay_ms / 1000)
                return

    def inject_errors(self, ctx: Context, request: Request) -> dict[str, Any] | None:
        """Before a request is handled: an error response to send instead, or None (handle it).

        Topic-scoped APIs get the candidate faults in `ctx`: their handlers
        ask `ctx.injected_error(topic, partition)`, and `errors_fired` counts
        down the faults that were used.
        """
        faults = tuple(f for f in self.faults if f.applies("error", request.api_key, ctx.node_id))
        if not faults:
            return None
        if request.api_key in TOPIC_SCOPED_APIS:
            ctx.faults = faults
            return None
        if not _has_top_level_error(request.api_key, request.api_version):
            log.warning(
                "control: cannot inject an error into %s v%d (no top-level error code); serving it",
                request.api.name,
                request.api_version,
            )
            return None
        fault = faults[0]
        self._fire(fault, request.api_key, ctx.node_id)
        return {"error_code": fault.error_code, "throttle_time_ms": 0}

    def errors_fired(self, ctx: Context) -> None:
        for fault in ctx.fired or ():
            self._fire(fault, -1 if fault.api_key is None else fault.api_key, ctx.node_id)
