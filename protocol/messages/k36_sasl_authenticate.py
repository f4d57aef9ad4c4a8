"""SaslAuthenticate (key 36): versions 0-2, flexible from v2; v1 adds the session lifetime (KIP-368)."""

from ..schema import Api
from ..schema import Field as F

API = Api(
    key=36,
    name="SaslAuthenticate",
    min_version=0,
    max_version=2,
    flexible_from=2,
    request=[
        F("auth_bytes", "bytes"),
    ],
    response=[
        F("error_code", "int16"),
        F("error_message", "string", nullable="0+", default=None),
        F("auth_bytes", "bytes"),
        F("session_lifetime_ms", "int64", "1+", default=0),
    ],
)
