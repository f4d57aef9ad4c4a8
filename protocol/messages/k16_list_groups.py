"""ListGroups (key 16): versions 0-5, flexible from v3; v4 filters by state, v5 by group type
(KIP-848: classic, consumer) and answers each group's type.
"""

from ..schema import Api
from ..schema import Field as F

API = Api(
    key=16,
    name="ListGroups",
    min_version=0,
    max_version=5,
    flexible_from=3,
    request=[
        F("states_filter", "[]string", "4+"),
        F("types_filter", "[]string", "5+"),
    ],
    response=[
        F("throttle_time_ms", "int32", "1+"),
        F("error_code", "int16"),
        F(
            "groups",
            [
                F("group_id", "string"),
                F("protocol_type", "string"),
                F("group_state", "string", "4+"),
                F("group_type", "string", "5+"),
            ],
        ),
    ],
)
