"""AlterClientQuotas (key 49): versions 0-1, flexible from v1."""

from ..schema import Api
from ..schema import Field as F

_ENTITY = [
    F("entity_type", "string"),
    F("entity_name", "string", nullable="0+", default=None),
]

API = Api(
    key=49,
    name="AlterClientQuotas",
    min_version=0,
    max_version=1,
    flexible_from=1,
    request=[
        F(
            "entries",
            [
                F("entity", _ENTITY),
                F(
                    "ops",
                    [
                        F("key", "string"),
                        F("value", "float64"),
                        F("remove", "bool"),
                    ],
                ),
            ],
        ),
        F("validate_only", "bool"),
    ],
    response=[
        F("throttle_time_ms", "int32"),
        F(
            "entries",
            [
                F("error_code", "int16"),
                F("error_message", "string", nullable="0+", default=None),
                F("entity", _ENTITY),
            ],
        ),
    ],
)
