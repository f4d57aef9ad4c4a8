"""CreateAcls (key 30): versions 1-3 (Kafka 4 removed v0), flexible from v2."""

from ..schema import Api
from ..schema import Field as F

API = Api(
    key=30,
    name="CreateAcls",
    min_version=1,
    max_version=3,
    flexible_from=2,
    request=[
        F(
            "creations",
            [
                F("resource_type", "int8"),
                F("resource_name", "string"),
                F("resource_pattern_type", "int8", "1+", default=3),
                F("principal", "string"),
                F("host", "string"),
                F("operation", "int8"),
                F("permission_type", "int8"),
            ],
        ),
    ],
    response=[
        F("throttle_time_ms", "int32"),
        F(
            "results",
            [
                F("error_code", "int16"),
                F("error_message", "string", nullable="0+", default=None),
            ],
        ),
    ],
)
