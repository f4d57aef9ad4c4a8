"""Produce (key 0): versions 0-12, flexible from v9.

v10 adds the new leader's id, epoch and endpoint to NOT_LEADER answers
(tagged, KIP-951: kstub leaves them out and clients refresh their metadata as
before), v11 lets the answer be TRANSACTION_ABORTABLE, v12 tells the broker
the producer speaks transactions v2 (KIP-890: the partition joins the
transaction by being produced to).
"""

from ..schema import Api, Struct
from ..schema import Field as F

API = Api(
    key=0,
    name="Produce",
    min_version=0,
    max_version=12,
    flexible_from=9,
    request=[
        F("transactional_id", "string", "3+", nullable="3+", default=None),
        F("acks", "int16"),
        F("timeout_ms", "int32"),
        F(
            "topic_data",
            [
                F("name", "string"),
                F(
                    "partition_data",
                    [
                        F("index", "int32"),
                        F("records", "records", nullable="0+"),
                    ],
                ),
            ],
        ),
    ],
    response=[
        F(
            "responses",
            [
                F("name", "string"),
                F(
                    "partition_responses",
                    [
                        F("index", "int32"),
                        F("error_code", "int16"),
                        F("base_offset", "int64"),
                        F("log_append_time_ms", "int64", "2+", default=-1),
                        F("log_start_offset", "int64", "5+", default=-1),
                        F(
                            "record_errors",
                            [
                                F("batch_index", "int32", "8+"),
                                F("batch_index_error_message", "string", "8+", nullable="8+", default=None),
                            ],
                            "8+",
                        ),
                        F("error_message", "string", "8+", nullable="8+", default=None),
                        F(
                            "current_leader",
                            Struct(
                                [
                                    F("leader_id", "int32", "10+", default=-1),
                                    F("leader_epoch", "int32", "10+", default=-1),
                                ]
                            ),
                            "10+",
                            tag=0,
                            tagged="10+",
                        ),
                    ],
                ),
            ],
        ),
        F("throttle_time_ms", "int32", "1+"),
        F(
            "node_endpoints",
            [
                F("node_id", "int32", "10+"),
                F("host", "string", "10+"),
                F("port", "int32", "10+"),
                F("rack", "string", "10+", nullable="10+", default=None),
            ],
            "10+",
            tag=0,
            tagged="10+",
        ),
    ],
)
