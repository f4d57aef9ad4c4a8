"""ElectLeaders (key 43): versions 0-2, flexible from v2."""

from ..schema import Api
from ..schema import Field as F

API = Api(
    key=43,
    name="ElectLeaders",
    min_version=0,
    max_version=2,
    flexible_from=2,
    request=[
        F("election_type", "int8", versions="1+"),
        F(
            "topic_partitions",
            [
                F("topic", "string"),
                F("partitions", "[]int32"),
            ],
            nullable="0+",
        ),
        F("timeout_ms", "int32", default=60000),
    ],
    response=[
        F("throttle_time_ms", "int32"),
        F("error_code", "int16", versions="1+"),
        F(
            "replica_election_results",
            [
                F("topic", "string"),
                F(
                    "partition_result",
                    [
                        F("partition_id", "int32"),
                        F("error_code", "int16"),
                        F("error_message", "string", nullable="0+", default=None),
                    ],
                ),
            ],
        ),
    ],
)
