"""AlterConfigs (key 33): versions 0-2, flexible from v2. Replaces a resource's whole config set."""

from ..schema import Api
from ..schema import Field as F

API = Api(
    key=33,
    name="AlterConfigs",
    min_version=0,
    max_version=2,
    flexible_from=2,
    request=[
        F(
            "resources",
            [
                F("resource_type", "int8"),
                F("resource_name", "string"),
                F(
                    "configs",
                    [
                        F("name", "string"),
                        F("value", "string", nullable="0+"),
                    ],
                ),
            ],
        ),
        F("validate_only", "bool"),
    ],
    response=[
        F("throttle_time_ms", "int32"),
        F(
            "responses",
            [
                F("error_code", "int16"),
                F("error_message", "string", nullable="0+"),
                F("resource_type", "int8"),
                F("resource_name", "string"),
            ],
        ),
    ],
)
