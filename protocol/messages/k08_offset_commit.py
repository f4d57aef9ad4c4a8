"""OffsetCommit (key 8): versions 0-9, flexible from v8.

v1 adds the generation and member id (and a per-partition commit timestamp,
v1 only), v2-4 a retention time, v6 the leader epoch, v7 the group instance id. v9 is v8 for the new consumer protocol
(KIP-848): the generation field carries the member epoch (STALE_MEMBER_EPOCH...).
"""

from ..schema import Api
from ..schema import Field as F

API = Api(
    key=8,
    name="OffsetCommit",
    min_version=0,
    max_version=9,
    flexible_from=8,
    request=[
        F("group_id", "string"),
        F("generation_id_or_member_epoch", "int32", "1+", default=-1),
        F("member_id", "string", "1+"),
        F("group_instance_id", "string", "7+", nullable="7+", default=None),
        F("retention_time_ms", "int64", "2-4", default=-1),
        F(
            "topics",
            [
                F("name", "string"),
                F(
                    "partitions",
                    [
                        F("partition_index", "int32"),
                        F("committed_offset", "int64"),
                        F("committed_leader_epoch", "int32", "6+", default=-1),
                        F("commit_timestamp", "int64", "1", default=-1),
                        F("committed_metadata", "string", nullable="0+"),
                    ],
                ),
            ],
        ),
    ],
    response=[
        F("throttle_time_ms", "int32", "3+"),
        F(
            "topics",
            [
                F("name", "string"),
                F("partitions", [F("partition_index", "int32"), F("error_code", "int16")]),
            ],
        ),
    ],
)
