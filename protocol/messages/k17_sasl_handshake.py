"""SaslHandshake (key 17): versions 0-1, never flexible.

v0 is followed by raw SASL tokens (length-prefixed, no Kafka header); v1 by
SaslAuthenticate requests. The response lists the mechanisms the listener has enabled.
"""

from ..schema import Api
from ..schema import Field as F

API = Api(
    key=17,
    name="SaslHandshake",
    min_version=0,
    max_version=1,
    flexible_from=None,
    request=[
        F("mechanism", "string"),
    ],
    response=[
        F("error_code", "int16"),
        F("mechanisms", "[]string"),
    ],
)
