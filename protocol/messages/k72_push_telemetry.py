"""PushTelemetry (key 72, KIP-714): version 0, flexible."""

from ..schema import Api
from ..schema import Field as F

API = Api(
    key=72,
    name="PushTelemetry",
    min_version=0,
    max_version=0,
    flexible_from=0,
    request=[
        F("client_instance_id", "uuid"),
        F("subscription_id", "int32"),
        F("terminating", "bool"),
        F("compression_type", "int8"),
        F("metrics", "bytes"),
    ],
    response=[
        F("throttle_time_ms", "int32"),
        F("error_code", "int16"),
    ],
)
