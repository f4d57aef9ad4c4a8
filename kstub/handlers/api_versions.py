"""ApiVersions (18): advertise exactly the APIs and versions kstub implements.

The ranges come from the registered handlers and the codec's declarations, so
advertising cannot drift from what is served. A too-new ApiVersions request
never reaches this handler: the codec answers it with Kafka's v0-shaped
UNSUPPORTED_VERSION body. Kafka validates the v3+ client software name and
version and answers INVALID_REQUEST (in the request's version, with an empty
api key list) when they do not match its pattern. From v5 (KIP-1242) a client
may name the cluster id and node id it means to reach: both or neither
(INVALID_REQUEST), and REBOOTSTRAP_REQUIRED when they are not this broker's.
Feature levels come from kstub/cluster/features.py (among them ``group.version``
1, KIP-848, and ``transaction.version`` 2, transactions v2, as Kafka 4.4).
Posing as an older Kafka (``--kafka-version``), the APIs, versions and
features are that release's (kstub/kafka_versions.py).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from kstub.cluster import features
from kstub.protocol import ApiKey, Container, ErrorCode
from kstub.protocol.constructs import Sealed

from .base import REGISTRY, Body, Context, handles, served_apis

if TYPE_CHECKING:
    from kstub.kafka_versions import KafkaVersion

_SOFTWARE = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?")


def api_keys(posed: KafkaVersion | None = None) -> list[Body]:
    if posed is not None:  # posing as an older Kafka (kstub/kafka_versions.py): what it advertised
        return [{"api_key": k, "min_version": lo, "max_version": hi} for k, (lo, hi) in posed.advertised.items()]
    return [
        {"api_key": api.key, "min_version": api.min_version, "max_version": api.max_version}
        for api in served_apis().values()
    ]


def _features(posed: KafkaVersion | None, api_version: int) -> Body:
    if posed is None:
        return {
            "supported_features": features.supported(api_version),
            "finalized_features_epoch": features.FINALIZED_EPOCH,
            "finalized_features": features.finalized(),
        }
    levels = posed.features
    return {
        "supported_features": [
            {"name": f.name, "min_version": f.min_version, "max_version": f.max_version}
            for f in levels
            if api_version >= 4 or f.min_version > 0  # KAFKA-17011, as features.supported
        ],
        # a ZooKeeper-based cluster has no finalized features (-1), a KRaft one finalized them at its start
        "finalized_features_epoch": features.FINALIZED_EPOCH if posed.kraft else -1,
        "finalized_features": [
            {"name": f.name, "min_version_level": f.level, "max_version_level": f.level} for f in levels if f.level > 0
        ],
    }


@handles(ApiKey.API_VERSIONS)
async def api_versions(ctx: Context, req: Container) -> Body:
    posed = ctx.cluster.kafka_version
    if ctx.api_version >= 3 and not (
        _SOFTWARE.fullmatch(req.client_software_name) and _SOFTWARE.fullmatch(req.client_software_version)
    ):
        # Kafka answers at the request's version, with no api keys.
        return {"error_code": ErrorCode.INVALID_REQUEST, "api_keys": [], "throttle_time_ms": 0}
    if ctx.api_version >= 5 and (req.cluster_id is not None or req.node_id != -1):
        # KIP-1242: a client names the cluster and node it means to reach; both or neither.
        if req.cluster_id is None or req.node_id == -1:
            return {"error_code": ErrorCode.INVALID_REQUEST, "api_keys": [], "throttle_time_ms": 0}
        if req.cluster_id != ctx.cluster.cluster_id or req.node_id != ctx.node_id:
            return {"error_code": ErrorCode.REBOOTSTRAP_REQUIRED, "api_keys": [], "throttle_time_ms": 0}
    return _answer(posed, ctx.api_version)


#: (posed release, request version, handlers registered) -> the whole answer: every connection asks
#: ApiVersions first, and the answer never changes for a broker, so it is made once and `Sealed` (its
#: bytes kept per version by the compiled encoder: some 70 api keys not encoded again)
_ANSWERS: dict[tuple[str | None, int, int], Sealed] = {}


def _answer(posed: KafkaVersion | None, api_version: int) -> Sealed:
    key = (None if posed is None else posed.name, api_version, len(REGISTRY))
    answer = _ANSWERS.get(key)
    if answer is None:
        answer = _ANSWERS[key] = Sealed(
            error_code=ErrorCode.NONE,
            api_keys=api_keys(posed),
            throttle_time_ms=0,
            **_features(posed, api_version),
        )
    return answer
