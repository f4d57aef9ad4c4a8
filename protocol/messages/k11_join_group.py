"""JoinGroup (key 11): versions 0-9, flexible from v6.

v1 adds the rebalance timeout, v4 the MEMBER_ID_REQUIRED handshake (no new
field), v5 static membership (group instance ids), v7 the protocol type in
the response (and a nullable protocol name), v8 a reason, v9 skip_assignment.
"""

from ..schema import Api
from ..schema import Field as F

API = Api(
    key=11,
    name="JoinGroup",
    min_version=0,
    max_version=9,
    flexible_from=6,
    request=[
        F("group_id", "string"),
        F("session_timeout_ms", "int32"),
        F("rebalance_timeout_ms", "int32", "1+", default=-1),
        F("member_id", "string"),
        F("group_instance_id", "string", "5+", nullable="5+", default=None),
        F("protocol_type", "string"),
        F("protocols", [F("name", "string"), F("metadata", "bytes")]),
        F("reason", "string", "8+", nullable="8+", default=None),
    ],
    response=[
        F("throttle_time_ms", "int32", "2+"),
        F("error_code", "int16"),
        F("generation_id", "int32", default=-1),
        F("protocol_type", "string", "7+", nullable="7+", default=None),
        F("protocol_name", "string", nullable="7+"),
        F("leader", "string"),
        F("skip_assignment", "bool", "9+", default=False),
        F("member_id", "string"),
        F(
            "members",
            [
                F("member_id", "string"),
                F("group_instance_id", "string", "5+", nullable="5+", default=None),
                F("metadata", "bytes"),
            ],
        ),
    ],
)
