"""DescribeTopicPartitions (key 75): version 0, flexible."""

from ..schema import Api, Struct
from ..schema import Field as F

_CURSOR = Struct([F("topic_name", "string"), F("partition_index", "int32")])

API = Api(
    key=75,
    name="DescribeTopicPartitions",
    min_version=0,
    max_version=0,
    flexible_from=0,
    request=[
        F("topics", [F("name", "string")]),
        F("response_partition_limit", "int32", default=2000),
        F("cursor", _CURSOR, nullable="0+", default=None),
    ],
    response=[
        F("throttle_time_ms", "int32"),
        F(
            "topics",
            [
                F("error_code", "int16"),
                F("name", "string", nullable="0+"),
                F("topic_id", "uuid"),
                F("is_internal", "bool", default=False),
                F(
                    "partitions",
                    [
                        F("error_code", "int16"),
                        F("partition_index", "int32"),
                        F("leader_id", "int32"),
                        F("leader_epoch", "int32", default=-1),
                        F("replica_nodes", "[]int32"),
                        F("isr_nodes", "[]int32"),
                        F("eligible_leader_replicas", "[]int32", nullable="0+", default=None),
                        F("last_known_elr", "[]int32", nullable="0+", default=None),
                        F("offline_replicas", "[]int32"),
                    ],
                ),
                F("topic_authorized_operations", "int32", default=-(2**31)),
            ],
        ),
        F("next_cursor", _CURSOR, nullable="0+", default=None),
    ],
)
