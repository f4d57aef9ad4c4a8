"""AlterUserScramCredentials (key 51): version 0, flexible; salted passwords computed by the client."""

from ..schema import Api
from ..schema import Field as F

API = Api(
    key=51,
    name="AlterUserScramCredentials",
    min_version=0,
    max_version=0,
    flexible_from=0,
    request=[
        F("deletions", [F("name", "string"), F("mechanism", "int8")]),
        F(
            "upsertions",
            [
                F("name", "string"),
                F("mechanism", "int8"),
                F("iterations", "int32"),
                F("salt", "bytes"),
                F("salted_password", "bytes"),
            ],
        ),
    ],
    response=[
        F("throttle_time_ms", "int32"),
        F(
            "results",
            [
                F("user", "string"),
                F("error_code", "int16"),
                F("error_message", "string", nullable="0+", default=None),
            ],
        ),
    ],
)
