"""ConsumerGroupDescribe (key 69): versions 0-1, flexible from v0 (KIP-848).

Describes consumer groups (the new protocol's): the group and assignment
epochs, the assignor, and each member's current and target assignments.
v1 adds the member type (-1 unknown, 0 classic, 1 consumer).
"""

from ..schema import Api, Struct
from ..schema import Field as F

_ASSIGNMENT = Struct(
    [
        F(
            "topic_partitions",
            [F("topic_id", "uuid"), F("topic_name", "string"), F("partitions", "[]int32")],
        )
    ]
)

API = Api(
    key=69,
    name="ConsumerGroupDescribe",
    min_version=0,
    max_version=1,
    flexible_from=0,
    request=[
        F("group_ids", "[]string"),
        F("include_authorized_operations", "bool"),
    ],
    response=[
        F("throttle_time_ms", "int32"),
        F(
            "groups",
            [
                F("error_code", "int16"),
                F("error_message", "string", nullable="0+", default=None),
                F("group_id", "string"),
                F("group_state", "string"),
                F("group_epoch", "int32"),
                F("assignment_epoch", "int32"),
                F("assignor_name", "string"),
                F(
                    "members",
                    [
                        F("member_id", "string"),
                        F("instance_id", "string", nullable="0+", default=None),
                        F("rack_id", "string", nullable="0+", default=None),
                        F("member_epoch", "int32"),
                        F("client_id", "string"),
                        F("client_host", "string"),
                        F("subscribed_topic_names", "[]string"),
                        F("subscribed_topic_regex", "string", nullable="0+", default=None),
                        F("assignment", _ASSIGNMENT),
                        F("target_assignment", _ASSIGNMENT),
                        F("member_type", "int8", "1+", default=-1),
                    ],
                ),
                F("authorized_operations", "int32", default=-(2**31)),
            ],
        ),
    ],
)
