"""The admin API's routes: each maps a method and a path to the control plane (docs/replication.md lists them)."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import trio

from kstub.control import ControlError
from kstub.control_http_access import SAFE_METHODS
from kstub.control_http_messages import HttpError, HttpRequest, Reply, StreamReply

if TYPE_CHECKING:
    from kstub.control import ControlPlane

#: integers in a body must fit Kafka's longs (a delay of 10**400 ms would overflow a float)
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1


# --- routes -------------------------------------------------------------------------

Handler = Callable[["ControlPlane", re.Match[str], HttpRequest], Awaitable[tuple[int, Any] | Reply | StreamReply]]
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = []


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        ROUTES.append((method, re.compile(pattern), fn))
        return fn

    return register


def _int(obj: dict[str, Any], name: str, *, required: bool = False, default: Any = None) -> Any:
    value = obj.get(name, default)
    if value is None:
        if required:
            raise HttpError(400, f"{name!r} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise HttpError(400, f"{name!r} must be an integer")
    if not LONG_MIN <= value <= LONG_MAX:
        raise HttpError(400, f"{name!r} is out of range (a 64-bit integer)")
    return value


def _str(obj: dict[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is not None and not isinstance(value, str):
        raise HttpError(400, f"{name!r} must be a string")
    return value


@route("GET", r"/v1/cluster")
async def _cluster(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any]:
    return 200, control.describe_cluster()


@route("GET", r"/v1/topics")
async def _topics(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any]:
    return 200, control.describe_partitions()


@route("GET", r"/v1/topics/(?P<topic>[^/]+)")
async def _topic(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any]:
    return 200, control.describe_partitions(m["topic"])


_BROKER_ACTIONS = {
    "stop": "stop_broker",
    "start": "start_broker",
    "kill": "kill_broker",
    "drop-connections": "drop_connections",
    "pause-replication": "pause_replication",
    "resume-replication": "resume_replication",
    "isolate": "isolate",
    "heal": "heal",
}


@route("POST", r"/v1/brokers/(?P<id>-?\d+)/(?P<action>[a-z-]+)")
async def _broker(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any]:
    broker_id, action = int(m["id"]), m["action"]
    if action == "replication-delay":
        control.set_replication_delay(broker_id, _int(req.json(), "ms", required=True))
    elif action in _BROKER_ACTIONS:
        result = getattr(control, _BROKER_ACTIONS[action])(broker_id)
        if hasattr(result, "__await__"):
            await result
    else:
        raise HttpError(404, f"no broker action {action!r}")
    return 200, control.describe_cluster()


@route("GET", r"/v1/faults")
async def _faults(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any]:
    return 200, control.describe_faults()


@route("POST", r"/v1/faults")
async def _add_fault(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any]:
    body = req.json()
    kind = _str(body, "type")
    api = body.get("api")
    if api is not None and not isinstance(api, (str, int)):
        raise HttpError(400, "'api' must be a name or a number")
    count = None if "count" in body and body["count"] is None else _int(body, "count", default=1)
    broker = _int(body, "broker")
    if kind == "error":
        error = body.get("error")
        if api is None or error is None or not isinstance(error, (str, int)):
            raise HttpError(400, "an error fault needs 'api' and 'error'")
        fault = control.inject_error(
            api, error, count, broker, topic=_str(body, "topic"), partition=_int(body, "partition")
        )
    elif kind == "delay":
        fault = control.delay_response(api, _int(body, "ms", required=True), count, broker)
    elif kind == "drop-response":
        fault = control.drop_response(api, count, broker)
    elif kind == "drop-request":
        fault = control.drop_request(api, count, broker)
    else:
        raise HttpError(400, "'type' must be one of error, delay, drop-response, drop-request")
    return 201, fault.describe()


@route("DELETE", r"/v1/faults")
async def _clear_faults(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any]:
    for fault in list(control.faults):
        control.remove_fault(fault.id)
    return 200, []


@route("DELETE", r"/v1/faults/(?P<id>\d+)")
async def _remove_fault(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any]:
    control.remove_fault(int(m["id"]))
    return 200, control.describe_faults()


@route("POST", r"/v1/topics/(?P<topic>[^/]+)/partitions/(?P<partition>\d+)/move-leader")
async def _move_leader(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any]:
    control.move_leader(m["topic"], int(m["partition"]), _int(req.json(), "broker", required=True))
    return 200, control.describe_partitions(m["topic"])


@route("POST", r"/v1/topics/(?P<topic>[^/]+)/partitions/(?P<partition>\d+)/reassign")
async def _reassign(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any]:
    replicas = req.json().get("replicas")
    if replicas is not None and (
        not isinstance(replicas, list) or not all(isinstance(r, int) and not isinstance(r, bool) for r in replicas)
    ):
        raise HttpError(400, "replicas: a list of broker ids, or null to cancel")
    return 200, control.reassign(m["topic"], int(m["partition"]), replicas)


@route("GET", r"/v1/reassignments")
async def _reassignments(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any]:
    return 200, control.describe_reassignments()


@route("POST", r"/v1/leaders/elect-preferred")
async def _elect_preferred(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any]:
    return 200, {"moved": control.elect_preferred_leaders()}


@route("POST", r"/v1/logs/clean")
async def _clean_logs(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any]:
    body = req.json()
    topic = body.get("topic")
    force = body.get("force", False) is True
    if topic is not None and not isinstance(topic, str):
        raise ControlError("topic must be a string")
    return 200, {"cleaned": await control.clean_logs(topic, force=force)}


@route("POST", r"/v1/clear")
async def _clear(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any]:
    control.clear()
    return 200, control.describe_cluster()


@route("GET", r"/")
async def _console(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any] | Reply:
    from kstub.console import PAGE_HEADERS, page

    return Reply(200, page(), "text/html; charset=utf-8", list(PAGE_HEADERS))


@route("GET", r"/v1/state")
async def _state(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any] | Reply:
    from kstub.console_live import hub_for

    # A fresh structure of plain values: written as JSON in a worker thread while the brokers serve.
    body = await trio.to_thread.run_sync(json.dumps, hub_for(control.cluster).picture())
    return Reply(200, body.encode(), "application/json")


@route("GET", r"/v1/events")
async def _events(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any] | StreamReply:
    from kstub.console_live import MAX_STREAMS, hub_for, stream_events

    hub = hub_for(control.cluster)
    if hub.streams >= MAX_STREAMS:
        raise HttpError(503, f"too many console pages open (at most {MAX_STREAMS})")

    async def produce(send: Callable[[bytes], Awaitable[None]]) -> None:
        await stream_events(hub, send)

    return StreamReply("text/event-stream; charset=utf-8", produce)


def _query_int(req: HttpRequest, name: str, default: int | None) -> int | None:
    values = parse_qs(req.query).get(name)
    if not values or values[-1] == "":
        return default
    try:
        value = int(values[-1])
    except ValueError:
        raise HttpError(400, f"{name!r} must be an integer") from None
    if not LONG_MIN <= value <= LONG_MAX:
        raise HttpError(400, f"{name!r} is out of range (a 64-bit integer)")
    return value


@route("GET", r"/v1/topics/(?P<topic>[^/]+)/partitions/(?P<partition>\d+)/records")
async def _records(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any]:
    from kstub.console_records import DEFAULT_LIMIT, DEFAULT_MAX_BYTES, browse

    limit = _query_int(req, "limit", DEFAULT_LIMIT)
    max_bytes = _query_int(req, "max_bytes", DEFAULT_MAX_BYTES)
    assert limit is not None and max_bytes is not None
    offset = _query_int(req, "offset", None)
    return 200, await browse(control.cluster, m["topic"], int(m["partition"]), offset, limit, max_bytes)


@route("GET", r"/metrics")
async def _metrics(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any] | Reply:
    from kstub.metrics import exposition

    body, content_type = await exposition(control.cluster)
    return Reply(200, body, content_type)


@route("GET", r"/v1/actions")
async def _actions(control: ControlPlane, m: re.Match[str], req: HttpRequest) -> tuple[int, Any]:
    return 200, list(control.actions)


async def dispatch(control: ControlPlane, req: HttpRequest) -> tuple[int, Any] | Reply | StreamReply:
    allowed = []
    for method, pattern, handler in ROUTES:
        m = pattern.fullmatch(req.path)
        if m is None:
            continue
        if method != ("GET" if req.method == "HEAD" else req.method):
            allowed.append(method)
            continue
        try:
            result = await handler(control, m, req)
        except ControlError as exc:
            return exc.status, {"error": str(exc)}
        if req.method not in SAFE_METHODS:  # the console's pages see what it did at once
            from kstub.console_live import hub_for

            hub_for(control.cluster).changed()
        return result
    if allowed:
        return 405, {"error": f"{req.method} not allowed here (allowed: {', '.join(allowed)})"}
    return 404, {"error": f"no route {req.path}"}
