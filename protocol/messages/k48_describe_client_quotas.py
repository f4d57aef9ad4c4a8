"""DescribeClientQuotas (key 48): versions 0-1, flexible from v1."""

from ..schema import Api
from ..schema import Field as F

API = Api(
    key=48,
    name="DescribeClientQuotas",
    min_version=0,
    max_version=1,
    flexible_from=1,
    request=[
        F(
            "components",
            [
                F("entity_type", "string"),
                F("match_type", "int8"),
                F("match", "string", nullable="0+", default=None),
            ],
        ),
        F("strict", "bool"),
    ],
    response=[
        F("throttle_time_ms", "int32"),
        F("error_code", "int16"),
        F("error_message", "string", nullable="0+", default=None),
        F(
            "entries",
            [
                F(
                    "entity",
                    [
                        F("entity_type", "string"),
                        F("entity_name", "string", nullable="0+", default=None),
                    ],
                ),
                F(
                    "values",
                    [
                        F("key", "string"),
                        F("value", "float64"),
                    ],
                ),
            ],
            nullable="0+",
        ),
    ],
)
