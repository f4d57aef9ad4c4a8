"""Produce (key 0): versions 0-9, flexible from v9."""

from ..schema import Api
from ..schema import Field as F

API = Api(
    key=0,
    name="Produce",
    min_version=0,
    max_version=9,
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
                    ],
                ),
            ],
        ),
        F("throttle_time_ms", "int32", "1+"),
    ],
)
