"""Client telemetry (KIP-714) as a Kafka 4.4 broker without a metrics plugin answers it, and ListConfigResources.

Kafka without a telemetry-receiving metrics reporter does not advertise
GetTelemetrySubscriptions (71) or PushTelemetry (72) in ApiVersions, so
clients (the Java client, librdkafka 2.5+) do not ask; a client that asks
anyway is answered as Kafka answers. There are no client-metrics
subscriptions, so the subscription requests no metrics (an empty list) and
pushed metrics are dropped unread. Each broker keeps its client instances:

- GetTelemetrySubscriptions: the zero instance id gets a new id; an
  instance asking again within the push interval (5 minutes) is answered
  THROTTLING_QUOTA_EXCEEDED. The answer lists the compression types Kafka
  accepts (zstd, lz4, gzip, snappy), telemetry.max.bytes and delta temporality.
- PushTelemetry: the zero instance id is INVALID_REQUEST; a push after the
  terminating one is INVALID_REQUEST; a push within the push interval of the
  last one is THROTTLING_QUOTA_EXCEEDED unless it is the terminating one; a
  subscription id that is not the instance's is UNKNOWN_SUBSCRIPTION_ID;
  metrics above telemetry.max.bytes are TELEMETRY_TOO_LARGE; an unknown
  compression type is UNSUPPORTED_COMPRESSION_TYPE.

ListConfigResources (74; ListClientMetricsResources at v0) lists the config
resources of the types asked (all when none): at v0, client-metrics
resources only (kstub has none); at v1 brokers (4), broker loggers (8) and
topics (2); groups (32) and client metrics (16) have none; any other type is
UNSUPPORTED_VERSION, as Kafka answers. It needs DESCRIBE_CONFIGS on the
cluster (CLUSTER_AUTHORIZATION_FAILED); the telemetry APIs need no permission.
"""

from __future__ import annotations

import uuid
import weakref
import zlib
from dataclasses import dataclass

from kstub.cluster.model import Broker
from kstub.protocol import ApiKey, Container, ErrorCode

from .base import Body, Context, Op, handles

#: Kafka's default push interval of a client-metrics subscription (ms)
PUSH_INTERVAL_MS = 300_000
TELEMETRY_MAX_BYTES = 1_048_576
#: zstd, lz4, gzip, snappy: the order Kafka prefers them in
ACCEPTED_COMPRESSION = [4, 3, 1, 2]
#: instances unseen this long are forgotten (Kafka's cache keeps them for a few push intervals),
#: and at most this many are kept (the oldest made go first), as Kafka bounds its cache
EXPIRY_MS = 3 * PUSH_INTERVAL_MS
MAX_INSTANCES = 16_384
ZERO = uuid.UUID(int=0)

BROKER, BROKER_LOGGER, TOPIC, GROUP, CLIENT_METRICS = 4, 8, 2, 32, 16
_LISTABLE = (BROKER_LOGGER, BROKER, TOPIC, GROUP, CLIENT_METRICS)


@dataclass(slots=True)
class _Instance:
    subscription_id: int
    last_get_ms: int
    last_push_ms: int | None = None
    terminating: bool = False
    last_seen_ms: int = 0


_instances: weakref.WeakKeyDictionary[Broker, dict[uuid.UUID, _Instance]] = weakref.WeakKeyDictionary()


def _subscription_id(instance_id: uuid.UUID) -> int:
    """A subscription id of the instance's own (Kafka's is a hash of the subscription and the instance)."""
    value = zlib.crc32(instance_id.bytes)
    return value - 2**32 if value >= 2**31 else value


def _known(ctx: Context) -> dict[uuid.UUID, _Instance]:
    instances = _instances.setdefault(ctx.broker, {})
    now = ctx.cluster.now_ms()
    for key in [k for k, v in instances.items() if now - v.last_seen_ms > EXPIRY_MS]:
        del instances[key]
    while len(instances) >= MAX_INSTANCES:
        del instances[next(iter(instances))]
    return instances


def _subscription(instance_id: uuid.UUID, instance: _Instance | None, error: ErrorCode = ErrorCode.NONE) -> Body:
    if error != ErrorCode.NONE or instance is None:
        return {"throttle_time_ms": 0, "error_code": error, "client_instance_id": ZERO}
    return {
        "throttle_time_ms": 0,
        "error_code": ErrorCode.NONE,
        "client_instance_id": instance_id,
        "subscription_id": instance.subscription_id,
        "accepted_compression_types": ACCEPTED_COMPRESSION,
        "push_interval_ms": PUSH_INTERVAL_MS,
        "telemetry_max_bytes": TELEMETRY_MAX_BYTES,
        "delta_temporality": True,
        "requested_metrics": [],
    }


@handles(ApiKey.GET_TELEMETRY_SUBSCRIPTIONS)  # not advertised: base.UNADVERTISED
async def get_telemetry_subscriptions(ctx: Context, req: Container) -> Body:
    instances = _known(ctx)
    now = ctx.cluster.now_ms()
    instance_id = req.client_instance_id
    if instance_id == ZERO:
        instance_id = uuid.uuid4()
        while instance_id in instances:
            instance_id = uuid.uuid4()
    instance = instances.get(instance_id)
    if instance is None:
        instance = instances[instance_id] = _Instance(_subscription_id(instance_id), now, last_seen_ms=now)
        return _subscription(instance_id, instance)
    instance.last_seen_ms = now
    if now - instance.last_get_ms < PUSH_INTERVAL_MS:
        return _subscription(instance_id, None, ErrorCode.THROTTLING_QUOTA_EXCEEDED)
    instance.last_get_ms = now
    return _subscription(instance_id, instance)


def _push_error(ctx: Context, req: Container) -> ErrorCode:
    if req.client_instance_id == ZERO:
        return ErrorCode.INVALID_REQUEST
    instances = _known(ctx)
    now = ctx.cluster.now_ms()
    instance = instances.get(req.client_instance_id)
    if instance is None:  # an instance this broker has not seen: it gets its own subscription
        sid = _subscription_id(req.client_instance_id)
        instance = instances[req.client_instance_id] = _Instance(sid, now, last_seen_ms=now)
    instance.last_seen_ms = now
    if instance.terminating:
        return ErrorCode.INVALID_REQUEST
    if not req.terminating:
        if instance.last_push_ms is not None and now - instance.last_push_ms < PUSH_INTERVAL_MS:
            return ErrorCode.THROTTLING_QUOTA_EXCEEDED
        instance.last_push_ms = now
    if req.subscription_id != instance.subscription_id:
        return ErrorCode.UNKNOWN_SUBSCRIPTION_ID
    if req.terminating:
        instance.terminating = True
    if len(req.metrics) > TELEMETRY_MAX_BYTES:
        return ErrorCode.TELEMETRY_TOO_LARGE
    if req.compression_type not in (0, *ACCEPTED_COMPRESSION):
        return ErrorCode.UNSUPPORTED_COMPRESSION_TYPE
    return ErrorCode.NONE


@handles(ApiKey.PUSH_TELEMETRY)  # not advertised: base.UNADVERTISED
async def push_telemetry(ctx: Context, req: Container) -> Body:
    return {"throttle_time_ms": 0, "error_code": _push_error(ctx, req)}


@handles(ApiKey.LIST_CONFIG_RESOURCES)
async def list_config_resources(ctx: Context, req: Container) -> Body:
    if not ctx.authorize_cluster(Op.DESCRIBE_CONFIGS):
        return {"throttle_time_ms": 0, "error_code": ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "config_resources": []}
    types = list(req.resource_types) if ctx.api_version >= 1 else [CLIENT_METRICS]
    if any(t not in _LISTABLE for t in types):
        return {"throttle_time_ms": 0, "error_code": ErrorCode.UNSUPPORTED_VERSION, "config_resources": []}
    wanted = set(types or _LISTABLE)
    found: list[Body] = []
    if BROKER_LOGGER in wanted:
        found.append({"resource_name": str(ctx.node_id), "resource_type": BROKER_LOGGER})
    if BROKER in wanted:
        found += [{"resource_name": str(b.node_id), "resource_type": BROKER} for b in ctx.cluster.live_brokers()]
    if TOPIC in wanted:
        found += [{"resource_name": name, "resource_type": TOPIC} for name in ctx.cluster.topics]
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "config_resources": found}
