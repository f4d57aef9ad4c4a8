"""ApiVersions (18): advertise exactly the APIs and versions kstub implements.

The ranges come from the registered handlers and the codec's declarations, so
advertising cannot drift from what is served. A too-new ApiVersions request
never reaches this handler: the codec answers it with Kafka's v0-shaped
UNSUPPORTED_VERSION body. Kafka validates the v3+ client software name and
version and answers INVALID_REQUEST (in the request's version, with an empty
api key list) when they do not match its pattern. v3 finalizes ``group.version`` 1
(KIP-848) and ``transaction.version`` 2 (transactions v2) as Kafka 4.4 does, the
latter once Produce v12 is served (it is what tells the broker to add a partition
to the transaction).
"""

from __future__ import annotations

import re

from construct import Container

from kstub.cluster.transactions.coordinator import TRANSACTION_VERSION
from kstub.protocol import APIS, ApiKey, ErrorCode

from .base import Body, Context, handles, served_apis

#: a client with transactions v2 adds partitions by producing (Produce v12+); kstub serves transaction.version 2
#: only when it serves that Produce version, else the Java client would produce without adding partitions
TV2_PRODUCE_VERSION = 12

#: the epoch of the finalized features: clients take features only from an epoch >= 0 (Kafka: the metadata offset)
FEATURES_EPOCH = 1

_SOFTWARE = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?")

#: Finalized feature levels (KIP-584) kstub serves, by name. group.version 1 is the consumer group
#: protocol (KIP-848), as Kafka 4.4 finalizes it (Kafka lists only metadata.version as supported).
FEATURES: dict[str, int] = {"group.version": 1}


def _features(ctx: Context) -> Body:
    if ctx.api_version < 3:
        return {}
    levels = dict(FEATURES)
    if APIS[ApiKey.PRODUCE].max_version >= TV2_PRODUCE_VERSION:
        # transactions v2 (KIP-890 part 2), finalized as Kafka 4.4 finalizes it: the Java client uses it
        levels["transaction.version"] = TRANSACTION_VERSION
    return {
        # -1 would say no feature is finalized (a client takes features only from an epoch above it)
        "finalized_features_epoch": FEATURES_EPOCH,
        "finalized_features": [
            {"name": name, "max_version_level": level, "min_version_level": level} for name, level in levels.items()
        ],
    }


def api_keys() -> list[Body]:
    return [
        {"api_key": api.key, "min_version": api.min_version, "max_version": api.max_version}
        for api in served_apis().values()
    ]


@handles(ApiKey.API_VERSIONS)
async def api_versions(ctx: Context, req: Container) -> Body:
    keys = api_keys()
    if ctx.api_version >= 3 and not (
        _SOFTWARE.fullmatch(req.client_software_name) and _SOFTWARE.fullmatch(req.client_software_version)
    ):
        # Kafka answers at the request's version, with no api keys.
        return {"error_code": ErrorCode.INVALID_REQUEST, "api_keys": [], "throttle_time_ms": 0}
    return {"error_code": ErrorCode.NONE, "api_keys": keys, "throttle_time_ms": 0, **_features(ctx)}
