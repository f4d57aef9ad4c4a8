"""AlterPartitionReassignments (key 45): versions 0-1, flexible (KIP-455; v1: KIP-860's replication factor check)."""

from ..schema import Api
from ..schema import Field as F

API = Api(
    key=45,
    name="AlterPartitionReassignments",
    min_version=0,
    max_version=1,
    flexible_from=0,
    request=[
        F("timeout_ms", "int32", default=60000),
        F("allow_replication_factor_change", "bool", "1+", default=True),
        F(
            "topics",
            [
                F("name", "string"),
                F(
                    "partitions",
                    [
                        F("partition_index", "int32"),
                        F("replicas", "[]int32", nullable="0+", default=None),
                    ],
                ),
            ],
        ),
    ],
    response=[
        F("throttle_time_ms", "int32"),
        F("allow_replication_factor_change", "bool", "1+", default=True),
        F("error_code", "int16"),
        F("error_message", "string", nullable="0+", default=None),
        F(
            "responses",
            [
                F("name", "string"),
                F(
                    "partitions",
                    [
                        F("partition_index", "int32"),
                        F("error_code", "int16"),
                        F("error_message", "string", nullable="0+", default=None),
                    ],
                ),
            ],
        ),
    ],
)
