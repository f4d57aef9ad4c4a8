"""DescribeGroups (key 15): versions 0-6, flexible from v5.

v3 adds authorized operations, v4 the members' group instance ids, v6 an error
message (and GROUP_ID_NOT_FOUND for a group that does not exist, KIP-1043).
"""

from ..schema import Api
from ..schema import Field as F

API = Api(
    key=15,
    name="DescribeGroups",
    min_version=0,
    max_version=6,
    flexible_from=5,
    request=[
        F("groups", "[]string"),
        F("include_authorized_operations", "bool", "3+"),
    ],
    response=[
        F("throttle_time_ms", "int32", "1+"),
        F(
            "groups",
            [
                F("error_code", "int16"),
                F("error_message", "string", "6+", nullable="6+", default=None),
                F("group_id", "string"),
                F("group_state", "string"),
                F("protocol_type", "string"),
                F("protocol_data", "string"),
                F(
                    "members",
                    [
                        F("member_id", "string"),
                        F("group_instance_id", "string", "4+", nullable="4+", default=None),
                        F("client_id", "string"),
                        F("client_host", "string"),
                        F("member_metadata", "bytes"),
                        F("member_assignment", "bytes"),
                    ],
                ),
                F("authorized_operations", "int32", "3+", default=-2147483648),
            ],
        ),
    ],
)
