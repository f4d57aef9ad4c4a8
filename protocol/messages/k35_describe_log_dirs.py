"""DescribeLogDirs (key 35): versions 0-5, flexible from v2."""

from ..schema import Api
from ..schema import Field as F

API = Api(
    key=35,
    name="DescribeLogDirs",
    min_version=0,
    max_version=5,
    flexible_from=2,
    request=[
        F(
            "topics",
            [
                F("topic", "string"),
                F("partitions", "[]int32"),
            ],
            nullable="0+",
        ),
    ],
    response=[
        F("throttle_time_ms", "int32"),
        F("error_code", "int16", "3+"),
        F(
            "results",
            [
                F("error_code", "int16"),
                F("log_dir", "string"),
                F(
                    "topics",
                    [
                        F("name", "string"),
                        F(
                            "partitions",
                            [
                                F("partition_index", "int32"),
                                F("partition_size", "int64"),
                                F("offset_lag", "int64"),
                                F("is_future_key", "bool"),
                            ],
                        ),
                    ],
                ),
                F("total_bytes", "int64", "4+", default=-1),
                F("usable_bytes", "int64", "4+", default=-1),
                F("is_cordoned", "bool", "5+"),
            ],
        ),
    ],
)
