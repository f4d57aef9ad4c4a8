"""TxnOffsetCommit (key 28): versions 0-6, flexible from v3.

v2 adds the leader epoch, v3 the group metadata (KIP-447: generation, member
id, instance id); v4 may answer TRANSACTION_ABORTABLE, v5 adds the group's
offsets partition to the transaction implicitly (KIP-890 part 2), v6 names
topics by id.
"""

from ..schema import Api
from ..schema import Field as F

API = Api(
    key=28,
    name="TxnOffsetCommit",
    min_version=0,
    max_version=6,
    flexible_from=3,
    request=[
        F("transactional_id", "string"),
        F("group_id", "string"),
        F("producer_id", "int64"),
        F("producer_epoch", "int16"),
        F("generation_id_or_member_epoch", "int32", "3+", default=-1),
        F("member_id", "string", "3+", default=""),
        F("group_instance_id", "string", "3+", nullable="3+", default=None),
        F(
            "topics",
            [
                F("name", "string", "0-5", default=""),
                F("topic_id", "uuid", "6+"),
                F(
                    "partitions",
                    [
                        F("partition_index", "int32"),
                        F("committed_offset", "int64"),
                        F("committed_leader_epoch", "int32", "2+", default=-1),
                        F("committed_metadata", "string", nullable="0+"),
                    ],
                ),
            ],
        ),
    ],
    response=[
        F("throttle_time_ms", "int32"),
        F(
            "topics",
            [
                F("name", "string", "0-5", default=""),
                F("topic_id", "uuid", "6+"),
                F("partitions", [F("partition_index", "int32"), F("error_code", "int16")]),
            ],
        ),
    ],
)
