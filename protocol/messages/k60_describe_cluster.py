"""DescribeCluster (key 60): versions 0-2, flexible from v0."""

from ..schema import Api
from ..schema import Field as F

API = Api(
    key=60,
    name="DescribeCluster",
    min_version=0,
    max_version=2,
    flexible_from=0,
    request=[
        F("include_cluster_authorized_operations", "bool"),
        F("endpoint_type", "int8", "1+", default=1),
        F("include_fenced_brokers", "bool", "2+"),
    ],
    response=[
        F("throttle_time_ms", "int32"),
        F("error_code", "int16"),
        F("error_message", "string", nullable="0+", default=None),
        F("endpoint_type", "int8", "1+", default=1),
        F("cluster_id", "string"),
        F("controller_id", "int32", default=-1),
        F(
            "brokers",
            [
                F("broker_id", "int32"),
                F("host", "string"),
                F("port", "int32"),
                F("rack", "string", nullable="0+", default=None),
                F("is_fenced", "bool", "2+"),
            ],
        ),
        F("cluster_authorized_operations", "int32", default=-2147483648),
    ],
)
