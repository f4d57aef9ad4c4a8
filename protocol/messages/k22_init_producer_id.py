"""InitProducerId (key 22): versions 0-5 (v5 as v4: Kafka 4 answers it), flexible from v2."""

from ..schema import Api
from ..schema import Field as F

API = Api(
    key=22,
    name="InitProducerId",
    min_version=0,
    max_version=5,
    flexible_from=2,
    request=[
        F("transactional_id", "string", nullable="0+"),
        F("transaction_timeout_ms", "int32"),
        F("producer_id", "int64", "3+", default=-1),
        F("producer_epoch", "int16", "3+", default=-1),
    ],
    response=[
        F("throttle_time_ms", "int32"),
        F("error_code", "int16"),
        F("producer_id", "int64", default=-1),
        F("producer_epoch", "int16"),
    ],
)
