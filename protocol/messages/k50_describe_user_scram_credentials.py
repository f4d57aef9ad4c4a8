"""DescribeUserScramCredentials (key 50): version 0, flexible; a null user list describes every user."""

from ..schema import Api
from ..schema import Field as F

API = Api(
    key=50,
    name="DescribeUserScramCredentials",
    min_version=0,
    max_version=0,
    flexible_from=0,
    request=[
        F("users", [F("name", "string")], nullable="0+"),
    ],
    response=[
        F("throttle_time_ms", "int32"),
        F("error_code", "int16"),
        F("error_message", "string", nullable="0+", default=None),
        F(
            "results",
            [
                F("user", "string"),
                F("error_code", "int16"),
                F("error_message", "string", nullable="0+", default=None),
                F("credential_infos", [F("mechanism", "int8"), F("iterations", "int32")]),
            ],
        ),
    ],
)
