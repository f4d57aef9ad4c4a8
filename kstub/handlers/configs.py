"""DescribeConfigs (32), AlterConfigs (33) and IncrementalAlterConfigs (44).

Resources are topics (type 2), brokers (4: a broker id, or "" for the
cluster-wide dynamic default) and broker loggers (8, describe only). A topic
is described with every topic config Kafka has, each with its value, source
and (v1+, when asked) synonyms exactly as Kafka's ConfigHelper reports them
(kstub/cluster/config.py). AlterConfigs replaces a resource's whole set of
overrides; IncrementalAlterConfigs applies SET / DELETE / APPEND / SUBTRACT
per key. Validation and error codes follow Kafka's ConfigAdminManager and
controller: duplicate resources or keys and null values are INVALID_REQUEST,
unknown topic config names and bad values INVALID_CONFIG (with Kafka's
message), an unknown topic UNKNOWN_TOPIC_OR_PARTITION, a bad broker setting
INVALID_REQUEST. Changes take effect at once (the log reads its settings on
each append and each retention pass) and are persisted with the metadata.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

from kstub.cluster.config import (
    BROKER_SETTINGS,
    TOPIC_CONFIGS,
    ConfigError,
    ConfigSource,
    ConfigType,
    DescribedConfig,
    InvalidConfig,
    describe_broker_config,
    describe_topic_config,
    validate_broker_config,
    validate_topic_configs,
)
from kstub.cluster.model import Topic, topic_name_error
from kstub.protocol import ApiKey, Container, ErrorCode
from kstub.security import is_secret_setting

from .base import Body, Context, Op, Res, handles

log = logging.getLogger("kstub.configs")

TOPIC = 2
BROKER = 4
BROKER_LOGGER = 8
CLIENT_METRICS = 16
GROUP = 32

SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
_OP_NAMES = {SET: "SET", DELETE: "DELETE", APPEND: "APPEND", SUBTRACT: "SUBTRACT"}


class _Refusal(Exception):
    def __init__(self, code: ErrorCode, message: str | None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- DescribeConfigs ------------------------------------------------------------------------


def _undocumented(name: str) -> str:
    """For a setting kstub has no description of: Kafka documents every one when asked, so say where to look."""
    return f"{name}: accepted and reported as Kafka does; see Apache Kafka's configuration reference"


def entry_body(ctx: Context, d: DescribedConfig, include_synonyms: bool, include_documentation: bool) -> Body:
    secret = is_secret_setting(d.name)  # passwords, JAAS settings, SASL users: never on the wire (as Kafka)
    return {
        "name": d.name,
        "value": None if secret else d.value,
        "read_only": d.read_only,
        "is_default": d.source is ConfigSource.DEFAULT_CONFIG,
        "config_source": d.source,
        "is_sensitive": secret,
        "synonyms": [{"name": s.name, "value": None if secret else s.value, "source": s.source} for s in d.synonyms]
        if include_synonyms
        else [],
        "config_type": d.type,
        "documentation": (d.doc or _undocumented(d.name)) if include_documentation else None,
    }


def topic_config_entries(
    ctx: Context, explicit: dict[str, str], names: list[str] | None = None
) -> list[DescribedConfig]:
    """Every topic config (or those in `names`) of a topic whose overrides are `explicit`."""
    wanted = sorted(TOPIC_CONFIGS) if not names else [n for n in sorted(TOPIC_CONFIGS) if n in set(names)]
    return [describe_topic_config(name, explicit, ctx.cluster.config, ctx.node_id) for name in wanted]


def _broker_id(ctx: Context, name: str, *, allow_default: bool, describe: bool) -> int | None:
    """The broker a BROKER resource names (None: the cluster-wide default), or INVALID_REQUEST as Kafka says."""
    if not name:
        if allow_default:
            return None
        raise _Refusal(ErrorCode.INVALID_REQUEST, "Broker id must not be empty")
    try:
        broker_id = int(name)
    except ValueError:
        what = "Broker id" if describe else "Node id"
        raise _Refusal(ErrorCode.INVALID_REQUEST, f"{what} must be an integer, but it is: {name}") from None
    if broker_id != ctx.node_id:
        expected = f"{ctx.node_id} or empty string" if describe and allow_default else str(ctx.node_id)
        raise _Refusal(ErrorCode.INVALID_REQUEST, f"Unexpected broker id, expected {expected}, but received {name}")
    return broker_id


def _describe_one(ctx: Context, r: Container, include_synonyms: bool, include_doc: bool) -> Body:
    names = r.configuration_keys or None
    cluster = ctx.cluster
    if r.resource_type == TOPIC:
        reason = topic_name_error(r.resource_name)
        if reason:
            raise _Refusal(ErrorCode.INVALID_TOPIC_EXCEPTION, reason)
        topic = cluster.topics.get(r.resource_name)
        if topic is None:
            raise _Refusal(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, None)
        described = topic_config_entries(ctx, topic.configs, names)
    elif r.resource_type == BROKER:
        broker_id = _broker_id(ctx, r.resource_name, allow_default=True, describe=True)
        config = cluster.config
        if broker_id is None:
            all_names = sorted(config.dynamic_default)
        else:
            all_names = sorted(
                set(BROKER_SETTINGS)
                | set(config.static_raw)
                | set(config.dynamic_default)
                | set(config.dynamic_broker.get(broker_id, {}))
            )
        wanted = [n for n in all_names if not names or n in names]
        described = [describe_broker_config(n, config, broker_id) for n in wanted]
    elif r.resource_type == BROKER_LOGGER:
        _broker_id(ctx, r.resource_name, allow_default=False, describe=True)
        loggers = sorted(n for n in logging.root.manager.loggerDict if n == "kstub" or n.startswith("kstub."))
        described = [
            DescribedConfig(
                n,
                logging.getLevelName(logging.getLogger(n).getEffectiveLevel()),
                ConfigSource.DYNAMIC_BROKER_LOGGER_CONFIG,
                False,
                [],
                ConfigType.STRING,
                None,
            )
            for n in loggers
            if not names or n in names
        ]
    else:
        raise _Refusal(ErrorCode.INVALID_REQUEST, f"Unsupported resource type: {r.resource_type}")
    return {
        "error_code": ErrorCode.NONE,
        "error_message": None,
        "configs": [entry_body(ctx, d, include_synonyms, include_doc) for d in described],
    }


def config_denied(ctx: Context, resource_type: int, name: str, op: Op) -> ErrorCode | None:
    """DESCRIBE_CONFIGS / ALTER_CONFIGS on the topic, or on the cluster for broker (logger) resources."""
    if resource_type == TOPIC:
        return None if ctx.authorize(op, Res.TOPIC, name) else ErrorCode.TOPIC_AUTHORIZATION_FAILED
    if resource_type in (BROKER, BROKER_LOGGER, CLIENT_METRICS):
        return None if ctx.authorize_cluster(op) else ErrorCode.CLUSTER_AUTHORIZATION_FAILED
    if resource_type == GROUP:
        return None if ctx.authorize(op, Res.GROUP, name) else ErrorCode.GROUP_AUTHORIZATION_FAILED
    return None


@handles(ApiKey.DESCRIBE_CONFIGS)
async def describe_configs(ctx: Context, req: Container) -> Body:
    results, refused = [], []
    for r in req.resources:
        denied = config_denied(ctx, r.resource_type, r.resource_name, Op.DESCRIBE_CONFIGS)
        if denied is not None:  # answered after the others, as Kafka does
            refused.append({"error_code": denied, "error_message": None, "configs": []} | _resource(r))
            continue
        try:
            body = _describe_one(ctx, r, req.include_synonyms, req.include_documentation)
        except _Refusal as exc:
            body = {"error_code": exc.code, "error_message": exc.message, "configs": []}
        body.update(resource_type=r.resource_type, resource_name=r.resource_name)
        results.append(body)
    return {"throttle_time_ms": 0, "results": results + refused}


def _resource(r: Container) -> Body:
    return {"resource_type": r.resource_type, "resource_name": r.resource_name}


# --- AlterConfigs and IncrementalAlterConfigs ------------------------------------------------

# A resource's change: (current overrides, a key's default list, whether a key is a list) -> new overrides.
Change = Callable[[dict[str, str], Callable[[str], list[str]], Callable[[str], bool]], dict[str, str]]


def _check_common(r: Container, incremental: bool) -> None:
    """What Kafka's ConfigAdminManager.preprocess checks for every resource type."""
    keys = Counter(c.name for c in r.configs)
    if any(n > 1 for n in keys.values()):
        raise _Refusal(ErrorCode.INVALID_REQUEST, "Error due to duplicate config keys")
    nulls = [c.name for c in r.configs if c.value is None and not (incremental and c.config_operation == DELETE)]
    if nulls:
        raise _Refusal(ErrorCode.INVALID_REQUEST, "Null value not supported for : " + ", ".join(nulls))
    if incremental:
        for c in r.configs:
            if c.config_operation not in _OP_NAMES:
                raise _Refusal(ErrorCode.INVALID_REQUEST, f"Unknown operations type {c.config_operation}")


def _incremental(configs: list[Container]) -> Change:
    """Kafka's incrementalAlterConfigResource: each key SET, DELETEd, or (LIST keys) APPENDed / SUBTRACTed."""

    def change(
        current: dict[str, str], default_parts: Callable[[str], list[str]], is_list: Callable[[str], bool]
    ) -> dict[str, str]:
        new = dict(current)
        for c in configs:
            op = c.config_operation
            if op == SET:
                new[c.name] = c.value
            elif op == DELETE:
                new.pop(c.name, None)
            else:
                if not is_list(c.name):
                    raise _Refusal(
                        ErrorCode.INVALID_CONFIG,
                        f"Can't {_OP_NAMES[op]} to key {c.name} because its type is not LIST.",
                    )
                parts = [p for p in new[c.name].split(",") if p] if c.name in new else default_parts(c.name)
                for value in c.value.split(","):
                    if op == APPEND and value not in parts:
                        parts.append(value)
                    elif op == SUBTRACT and value in parts:
                        parts.remove(value)
                new[c.name] = ",".join(parts)
        return new

    return change


def _replace(configs: list[Container]) -> Change:
    """Legacy AlterConfigs: the listed keys become the whole set of overrides."""

    def change(current: dict[str, str], default_parts: object, is_list: object) -> dict[str, str]:
        return {c.name: c.value for c in configs}

    return change


def _topic_default_parts(name: str) -> list[str]:
    setting = TOPIC_CONFIGS.get(name)
    return list(setting.default) if setting and isinstance(setting.default, list) else []


def _topic_is_list(name: str) -> bool:
    return name in TOPIC_CONFIGS and TOPIC_CONFIGS[name].type is ConfigType.LIST


def _alter_topic(ctx: Context, name: str, change: Change, validate_only: bool) -> None:
    if not name:
        raise _Refusal(ErrorCode.INVALID_REQUEST, "Default topic resources are not allowed.")
    reason = topic_name_error(name)
    if reason:
        raise _Refusal(ErrorCode.INVALID_TOPIC_EXCEPTION, reason)
    topic: Topic | None = ctx.cluster.topics.get(name)
    new = change(dict(topic.configs) if topic else {}, _topic_default_parts, _topic_is_list)
    try:
        explicit = validate_topic_configs(new)
    except InvalidConfig as exc:
        raise _Refusal(ErrorCode.INVALID_CONFIG, str(exc)) from None
    if topic is None:
        raise _Refusal(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, None)
    if validate_only:
        return
    topic.configs = explicit
    ctx.cluster.store.save_metadata(ctx.cluster)
    ctx.cluster.cleaner.wake()  # cleanup.policy, dirty ratio or lags may have changed
    log.info("topic %s configs now %s", name, explicit or "{}")


def _alter_broker(ctx: Context, name: str, change: Change, validate_only: bool) -> None:
    broker_id = _broker_id(ctx, name, allow_default=True, describe=False)
    config = ctx.cluster.config
    current = config.dynamic_default if broker_id is None else config.dynamic_broker.get(broker_id, {})

    def default_parts(key: str) -> list[str]:
        return [p for p in (config.raw(key, broker_id) or "").split(",") if p]

    def is_list(key: str) -> bool:
        setting = BROKER_SETTINGS.get(key)
        return setting is not None and setting.config_type is ConfigType.LIST

    new = change(dict(current), default_parts, is_list)
    try:
        for key, value in new.items():
            if current.get(key) != value:
                validate_broker_config(key, value)
    except ConfigError as exc:
        raise _Refusal(ErrorCode.INVALID_REQUEST, str(exc)) from None
    if broker_id is None and "min.insync.replicas" in current and "min.insync.replicas" not in new:
        # Kafka 4 keeps a cluster-wide min.insync.replicas while eligible leader replicas are on (KIP-966)
        raise _Refusal(
            ErrorCode.INVALID_CONFIG,
            "Cannot remove the min.insync.replicas config at the cluster level while eligible leader "
            "replicas are enabled.",
        )
    if validate_only:
        return
    if broker_id is None:
        config.dynamic_default = new
    else:
        config.set_dynamic_broker(broker_id, new)
    ctx.cluster.store.save_metadata(ctx.cluster)
    ctx.cluster.cleaner.wake()  # log.cleaner.* settings may have changed
    log.info("broker %s dynamic configs now %s", name or "<default>", new or "{}")


def _alter(ctx: Context, req: Container, incremental: bool) -> Body:
    seen = Counter((r.resource_type, r.resource_name) for r in req.resources)
    responses = []
    for r in req.resources:
        try:
            if seen[(r.resource_type, r.resource_name)] > 1:
                raise _Refusal(ErrorCode.INVALID_REQUEST, "Each resource must appear at most once.")
            _check_common(r, incremental)
            denied = config_denied(ctx, r.resource_type, r.resource_name, Op.ALTER_CONFIGS)
            if denied is not None:
                raise _Refusal(denied, None)
            change = _incremental(r.configs) if incremental else _replace(r.configs)
            if r.resource_type == TOPIC:
                _alter_topic(ctx, r.resource_name, change, req.validate_only)
            elif r.resource_type == BROKER:
                _alter_broker(ctx, r.resource_name, change, req.validate_only)
            else:
                raise _Refusal(ErrorCode.INVALID_REQUEST, f"Unknown resource type {r.resource_type}")
            code, message = ErrorCode.NONE, None
        except _Refusal as exc:
            code, message = exc.code, exc.message
        responses.append(
            {
                "error_code": code,
                "error_message": message,
                "resource_type": r.resource_type,
                "resource_name": r.resource_name,
            }
        )
    return {"throttle_time_ms": 0, "responses": responses}


@handles(ApiKey.ALTER_CONFIGS)
async def alter_configs(ctx: Context, req: Container) -> Body:
    return _alter(ctx, req, incremental=False)


@handles(ApiKey.INCREMENTAL_ALTER_CONFIGS)
async def incremental_alter_configs(ctx: Context, req: Container) -> Body:
    return _alter(ctx, req, incremental=True)
