"""Where things are in a record batch and a legacy message, and the errors a bad one gets."""

from __future__ import annotations

import struct

from ..errors import ErrorCode, ProtocolError

Buffer = bytes | bytearray | memoryview

# --- layout ----------------------------------------------------------------

LOG_OVERHEAD = 12  # offset int64 + size int32, in front of every entry
_MAGIC_OFFSET = 16
_MIN_ENTRY_SIZE = 14  # Kafka's LegacyRecord.RECORD_OVERHEAD_V0: smallest `size` any entry may declare

# magic 2 header offsets (from the start of the batch)
_BASE_OFFSET = 0
_BATCH_LENGTH = 8
_LEADER_EPOCH = 12
_CRC = 17
_ATTRIBUTES = 21
_LAST_OFFSET_DELTA = 23
_BASE_TIMESTAMP = 27
_MAX_TIMESTAMP = 35
_PRODUCER_ID = 43
_PRODUCER_EPOCH = 51
_BASE_SEQUENCE = 53
_RECORDS_COUNT = 57

_COMPRESSION_MASK = 0x07
_TIMESTAMP_TYPE_BIT = 0x08
_TRANSACTIONAL_BIT = 0x10
_CONTROL_BIT = 0x20

# legacy message: offset int64, size int32, crc uint32, magic int8, attributes int8, [timestamp int64 if magic 1]
_LEGACY_HEAD = struct.Struct(">qiIbb")
_LEGACY_TIMESTAMP = 18
_LEGACY_KEY_V0 = 18
_LEGACY_KEY_V1 = 26

_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_U32 = struct.Struct(">I")
_I64 = struct.Struct(">q")
_SIZE_AND_MAGIC = struct.Struct(">i4xb")  # size int32 at 8, (epoch / crc), magic int8 at 16

_NO_TIMESTAMP = -1


class BatchError(ProtocolError):
    """A record batch or message set that Kafka would refuse, with the error code to answer it with.

    Produce answers it per partition (``code`` goes into the partition's
    ``error_code``); it does not mean the connection is broken, which is why
    this is a `ProtocolError` and not a `RemoteProtocolError`.
    """

    def __init__(self, code: ErrorCode, message: str) -> None:
        self.code = code
        self.message = message
        #: found by Kafka's request-level checks (ProduceRequest.validateRecords), before any log is involved
        self.request_level = False
        super().__init__(f"{code.name}: {message}")


def _corrupt(message: str) -> BatchError:
    return BatchError(ErrorCode.CORRUPT_MESSAGE, message)


def _invalid(message: str) -> BatchError:
    return BatchError(ErrorCode.INVALID_RECORD, message)
