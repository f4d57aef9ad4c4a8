"""ConsumerGroupHeartbeat (key 68): versions 0-1, flexible from v0 (KIP-848).

The new consumer group protocol's one request: join (member epoch 0), heartbeat
and reconcile (the member's epoch), leave (-1) or leave for a while as a static
member (-2). v1 adds the server-side regular expression subscription and makes
the member id the client's own (required, chosen by the consumer).
"""

from ..schema import Api, Struct
from ..schema import Field as F

_TOPIC_PARTITIONS = [F("topic_id", "uuid"), F("partitions", "[]int32")]

API = Api(
    key=68,
    name="ConsumerGroupHeartbeat",
    min_version=0,
    max_version=1,
    flexible_from=0,
    request=[
        F("group_id", "string"),
        F("member_id", "string"),
        F("member_epoch", "int32"),
        F("instance_id", "string", nullable="0+", default=None),
        F("rack_id", "string", nullable="0+", default=None),
        F("rebalance_timeout_ms", "int32", default=-1),
        F("subscribed_topic_names", "[]string", nullable="0+", default=None),
        F("subscribed_topic_regex", "string", "1+", nullable="1+", default=None),
        F("server_assignor", "string", nullable="0+", default=None),
        F("topic_partitions", _TOPIC_PARTITIONS, nullable="0+", default=None),
    ],
    response=[
        F("throttle_time_ms", "int32"),
        F("error_code", "int16"),
        F("error_message", "string", nullable="0+", default=None),
        F("member_id", "string", nullable="0+", default=None),
        F("member_epoch", "int32"),
        F("heartbeat_interval_ms", "int32"),
        F("assignment", Struct([F("topic_partitions", _TOPIC_PARTITIONS)]), nullable="0+", default=None),
    ],
)
