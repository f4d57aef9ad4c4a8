"""DescribeTransactions (key 65): version 0, flexible (KIP-664)."""

from ..schema import Api
from ..schema import Field as F

API = Api(
    key=65,
    name="DescribeTransactions",
    min_version=0,
    max_version=0,
    flexible_from=0,
    request=[F("transactional_ids", "[]string")],
    response=[
        F("throttle_time_ms", "int32"),
        F(
            "transaction_states",
            [
                F("error_code", "int16"),
                F("transactional_id", "string"),
                F("transaction_state", "string"),
                F("transaction_timeout_ms", "int32"),
                F("transaction_start_time_ms", "int64"),
                F("producer_id", "int64"),
                F("producer_epoch", "int16"),
                F("topics", [F("topic", "string"), F("partitions", "[]int32")]),
            ],
        ),
    ],
)
