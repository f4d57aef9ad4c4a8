"""ListConfigResources (key 74; ListClientMetricsResources before v1, KIP-1142): versions 0-1, flexible."""

from ..schema import Api
from ..schema import Field as F

API = Api(
    key=74,
    name="ListConfigResources",
    min_version=0,
    max_version=1,
    flexible_from=0,
    request=[
        F("resource_types", "[]int8", "1+"),
    ],
    response=[
        F("throttle_time_ms", "int32"),
        F("error_code", "int16"),
        F(
            "config_resources",
            [
                F("resource_name", "string"),
                F("resource_type", "int8", "1+", default=16),
            ],
        ),
    ],
)
