"""OffsetFetch (key 9): versions 0-9, flexible from v6.

v2 allows a null topic list (every committed partition) and adds a top-level
error code, v5 the leader epoch, v7 require_stable, and v8 fetches several
groups at once (`groups`, answered per group), v9 each group's member id and
epoch (KIP-848: checked for consumer groups).
"""

from ..schema import Api
from ..schema import Field as F

_PARTITION = [
    F("partition_index", "int32", "8+"),
    F("committed_offset", "int64", "8+"),
    F("committed_leader_epoch", "int32", "8+", default=-1),
    F("metadata", "string", "8+", nullable="8+"),
    F("error_code", "int16", "8+"),
]

API = Api(
    key=9,
    name="OffsetFetch",
    min_version=0,
    max_version=9,
    flexible_from=6,
    request=[
        F("group_id", "string", "0-7"),
        F(
            "topics",
            [F("name", "string", "0-7"), F("partition_indexes", "[]int32", "0-7")],
            "0-7",
            nullable="2-7",
        ),
        F(
            "groups",
            [
                F("group_id", "string", "8+"),
                F("member_id", "string", "9+", nullable="9+", default=None),
                F("member_epoch", "int32", "9+", default=-1),
                F(
                    "topics",
                    [F("name", "string", "8+"), F("partition_indexes", "[]int32", "8+")],
                    "8+",
                    nullable="8+",
                ),
            ],
            "8+",
        ),
        F("require_stable", "bool", "7+", default=False),
    ],
    response=[
        F("throttle_time_ms", "int32", "3+"),
        F(
            "topics",
            [
                F("name", "string", "0-7"),
                F(
                    "partitions",
                    [
                        F("partition_index", "int32", "0-7"),
                        F("committed_offset", "int64", "0-7"),
                        F("committed_leader_epoch", "int32", "5-7", default=-1),
                        F("metadata", "string", "0-7", nullable="0-7"),
                        F("error_code", "int16", "0-7"),
                    ],
                    "0-7",
                ),
            ],
            "0-7",
        ),
        F("error_code", "int16", "2-7", default=0),
        F(
            "groups",
            [
                F("group_id", "string", "8+"),
                F("topics", [F("name", "string", "8+"), F("partitions", _PARTITION, "8+")], "8+"),
                F("error_code", "int16", "8+", default=0),
            ],
            "8+",
        ),
    ],
)
