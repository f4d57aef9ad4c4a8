"""ApiVersions (18): advertise exactly the APIs and versions kstub implements.

The ranges come from the registered handlers and the codec's declarations, so
advertising cannot drift from what is served. A too-new ApiVersions request
never reaches this handler: the codec answers it with Kafka's v0-shaped
UNSUPPORTED_VERSION body. Kafka validates the v3+ client software name and
version and answers INVALID_REQUEST (in the request's version, with an empty
api key list) when they do not match its pattern.
"""

from __future__ import annotations

import re

from construct import Container

from kstub.protocol import ApiKey, ErrorCode

from .base import Body, Context, handles, served_apis

_SOFTWARE = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?")

#: Finalized feature levels (KIP-584) kstub serves, by name. group.version 1 is the consumer group
#: protocol (KIP-848), as Kafka 4.4 finalizes it (Kafka lists only metadata.version as supported).
FEATURES: dict[str, int] = {"group.version": 1}


def _features(ctx: Context) -> Body:
    if ctx.api_version < 3:
        return {}
    return {
        # -1 would say no feature is finalized; kstub's levels never change
        "finalized_features_epoch": 0,
        "finalized_features": [
            {"name": name, "max_version_level": level, "min_version_level": level} for name, level in FEATURES.items()
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
