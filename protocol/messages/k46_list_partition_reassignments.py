"""ListPartitionReassignments (key 46): version 0, flexible (KIP-455): the reassignments in progress."""

from ..schema import Api
from ..schema import Field as F

API = Api(
    key=46,
    name="ListPartitionReassignments",
    min_version=0,
    max_version=0,
    flexible_from=0,
    request=[
        F("timeout_ms", "int32", default=60000),
        F(
            "topics",
            [F("name", "string"), F("partition_indexes", "[]int32")],
            nullable="0+",
            default=None,
        ),
    ],
    response=[
        F("throttle_time_ms", "int32"),
        F("error_code", "int16"),
        F("error_message", "string", nullable="0+", default=None),
        F(
            "topics",
            [
                F("name", "string"),
                F(
                    "partitions",
                    [
                        F("partition_index", "int32"),
                        F("replicas", "[]int32"),
                        F("adding_replicas", "[]int32"),
                        F("removing_replicas", "[]int32"),
                    ],
                ),
            ],
        ),
    ],
)
