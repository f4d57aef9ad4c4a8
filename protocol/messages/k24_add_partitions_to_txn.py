"""AddPartitionsToTxn (key 24): versions 0-5, flexible from v3.

v0-3 carry one transaction (the producer's own request); v4+ batch
transactions and add `verify_only` (KIP-890 part 1: brokers asking the
coordinator whether a partition is in a transaction), with a top-level error.
"""

from ..schema import Api
from ..schema import Field as F

_TOPIC = [F("name", "string"), F("partitions", "[]int32")]
_TOPIC_RESULT = [
    F("name", "string"),
    F("results_by_partition", [F("partition_index", "int32"), F("partition_error_code", "int16")]),
]

API = Api(
    key=24,
    name="AddPartitionsToTxn",
    min_version=0,
    max_version=5,
    flexible_from=3,
    request=[
        F(
            "transactions",
            [
                F("transactional_id", "string", "4+"),
                F("producer_id", "int64", "4+"),
                F("producer_epoch", "int16", "4+"),
                F("verify_only", "bool", "4+", default=False),
                F("topics", [F("name", "string", "4+"), F("partitions", "[]int32", "4+")], "4+"),
            ],
            "4+",
        ),
        F("v3_and_below_transactional_id", "string", "0-3"),
        F("v3_and_below_producer_id", "int64", "0-3"),
        F("v3_and_below_producer_epoch", "int16", "0-3"),
        F("v3_and_below_topics", _TOPIC, "0-3"),
    ],
    response=[
        F("throttle_time_ms", "int32"),
        F("error_code", "int16", "4+"),
        F(
            "results_by_transaction",
            [
                F("transactional_id", "string", "4+"),
                F(
                    "topic_results",
                    [
                        F("name", "string", "4+"),
                        F(
                            "results_by_partition",
                            [F("partition_index", "int32", "4+"), F("partition_error_code", "int16", "4+")],
                            "4+",
                        ),
                    ],
                    "4+",
                ),
            ],
            "4+",
        ),
        F("results_by_topic_v3_and_below", _TOPIC_RESULT, "0-3"),
    ],
)
