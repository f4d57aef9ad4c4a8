"""kstub's sans-IO codec for the Kafka wire protocol.

Bytes in, objects out, and back: no sockets, no Trio (a test checks). Installed,
this package is ``kstub.protocol``; its source lives in the top-level
``protocol/`` folder of the repository.
"""

from .api_keys import ApiKey
from .constructs import Container
from .errors import (
    DecodeError,
    ErrorCode,
    FrameTooLarge,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
    UnsupportedRequest,
)
from .messages import ALL as APIS
from .schema import Api, Field, Message, MessageCodec, Struct, VersionRange

__all__ = [
    "APIS",
    "Api",
    "ApiKey",
    "Container",
    "DecodeError",
    "ErrorCode",
    "Field",
    "FrameTooLarge",
    "LocalProtocolError",
    "Message",
    "MessageCodec",
    "ProtocolError",
    "RemoteProtocolError",
    "Struct",
    "UnsupportedRequest",
    "VersionRange",
]
