"""Request handlers, one module per API family, each registering its handlers with ``@handles``.

`HANDLERS` names the module that serves each API key. A module is imported at
the first request of one of its APIs: until then `REGISTRY` holds a stand-in
that imports it (its ``@handles`` then puts the real handler in `REGISTRY`)
and hands the request over, so a broker's start does not load the handlers of
APIs no client has used yet. `load_all` imports every one.
tests/broker/test_handler_table.py checks the table against the modules.
"""

from __future__ import annotations

import importlib

from kstub.protocol import ApiKey, Container

from .base import REGISTRY, Body, Context, Handler, handles, served_apis

__all__ = ["HANDLERS", "REGISTRY", "Context", "handles", "load_all", "served_apis"]

#: api key -> the module (in this package) whose handler serves it
HANDLERS: dict[int, str] = {
    ApiKey.PRODUCE: "produce",
    ApiKey.FETCH: "fetch",
    ApiKey.LIST_OFFSETS: "list_offsets",
    ApiKey.METADATA: "metadata",
    ApiKey.OFFSET_COMMIT: "offsets",
    ApiKey.OFFSET_FETCH: "offsets",
    ApiKey.FIND_COORDINATOR: "coordinator",
    ApiKey.JOIN_GROUP: "groups",
    ApiKey.HEARTBEAT: "groups",
    ApiKey.LEAVE_GROUP: "groups",
    ApiKey.SYNC_GROUP: "groups",
    ApiKey.DESCRIBE_GROUPS: "groups",
    ApiKey.LIST_GROUPS: "groups",
    ApiKey.SASL_HANDSHAKE: "sasl",
    ApiKey.API_VERSIONS: "api_versions",
    ApiKey.CREATE_TOPICS: "topics",
    ApiKey.DELETE_TOPICS: "topics",
    ApiKey.DELETE_RECORDS: "topics",
    ApiKey.INIT_PRODUCER_ID: "producer_ids",
    ApiKey.OFFSET_FOR_LEADER_EPOCH: "leader_epoch",
    ApiKey.ADD_PARTITIONS_TO_TXN: "transactions",
    ApiKey.ADD_OFFSETS_TO_TXN: "transactions",
    ApiKey.END_TXN: "transactions",
    ApiKey.TXN_OFFSET_COMMIT: "transactions",
    ApiKey.DESCRIBE_ACLS: "acls",
    ApiKey.CREATE_ACLS: "acls",
    ApiKey.DELETE_ACLS: "acls",
    ApiKey.DESCRIBE_CONFIGS: "configs",
    ApiKey.ALTER_CONFIGS: "configs",
    ApiKey.DESCRIBE_LOG_DIRS: "cluster_info",
    ApiKey.SASL_AUTHENTICATE: "sasl",
    ApiKey.CREATE_PARTITIONS: "topics",
    ApiKey.DELETE_GROUPS: "groups",
    ApiKey.ELECT_LEADERS: "elections",
    ApiKey.INCREMENTAL_ALTER_CONFIGS: "configs",
    ApiKey.ALTER_PARTITION_REASSIGNMENTS: "reassignments",
    ApiKey.LIST_PARTITION_REASSIGNMENTS: "reassignments",
    ApiKey.OFFSET_DELETE: "offsets",
    ApiKey.DESCRIBE_CLIENT_QUOTAS: "quotas",
    ApiKey.ALTER_CLIENT_QUOTAS: "quotas",
    ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS: "scram_credentials",
    ApiKey.ALTER_USER_SCRAM_CREDENTIALS: "scram_credentials",
    ApiKey.DESCRIBE_CLUSTER: "cluster_info",
    ApiKey.DESCRIBE_PRODUCERS: "describe_producers",
    ApiKey.DESCRIBE_TRANSACTIONS: "transactions",
    ApiKey.LIST_TRANSACTIONS: "transactions",
    ApiKey.CONSUMER_GROUP_HEARTBEAT: "consumer_groups",
    ApiKey.CONSUMER_GROUP_DESCRIBE: "consumer_groups",
    ApiKey.GET_TELEMETRY_SUBSCRIPTIONS: "telemetry",
    ApiKey.PUSH_TELEMETRY: "telemetry",
    ApiKey.LIST_CONFIG_RESOURCES: "telemetry",
    ApiKey.DESCRIBE_TOPIC_PARTITIONS: "topic_partitions",
}


def _load(module: str) -> None:
    importlib.import_module(f"{__name__}.{module}")


def _stand_in(key: int, module: str) -> Handler:
    async def handler(ctx: Context, body: Container) -> Body | None:
        _load(module)  # registers the real handler in place of this one
        real = REGISTRY.get(key)
        if real is None or real is handler:
            raise RuntimeError(f"kstub.handlers.{module} does not handle api key {key}")
        return await real(ctx, body)

    handler.__qualname__ = f"load_{module}_then_handle_{key}"
    return handler


def load_all() -> None:
    """Import every handler module now (no stand-in left in `REGISTRY`)."""
    for module in sorted(set(HANDLERS.values())):
        _load(module)


for _key, _module in HANDLERS.items():
    REGISTRY.setdefault(_key, _stand_in(_key, _module))
del _key, _module
