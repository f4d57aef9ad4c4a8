"""OffsetForLeaderEpoch (key 23): versions 0-4, flexible from v4."""

from ..schema import Api
from ..schema import Field as F

API = Api(
    key=23,
    name="OffsetForLeaderEpoch",
    min_version=0,
    max_version=4,
    flexible_from=4,
    request=[
        F("replica_id", "int32", "3+", default=-2),
        F(
            "topics",
            [
                F("topic", "string"),
                F(
                    "partitions",
                    [
                        F("partition", "int32"),
                        F("current_leader_epoch", "int32", "2+", default=-1),
                        F("leader_epoch", "int32"),
                    ],
                ),
            ],
        ),
    ],
    response=[
        F("throttle_time_ms", "int32", "2+"),
        F(
            "topics",
            [
                F("topic", "string"),
                F(
                    "partitions",
                    [
                        F("error_code", "int16"),
                        F("partition", "int32"),
                        F("leader_epoch", "int32", "1+", default=-1),
                        F("end_offset", "int64", default=-1),
                    ],
                ),
            ],
        ),
    ],
)
