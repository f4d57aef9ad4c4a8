"""A blocking Kafka protocol client over a plain socket, on kstub's own codec.

For tests that need exact control over what is sent: hand-made requests,
garbage frames, duplicate batches. It is `kstub.kafka_client.Connection`, the
project's one request/response client, opened on the first bootstrap address.
"""

from __future__ import annotations

from kstub.kafka_client import Connection


class RawClient(Connection):
    def __init__(self, bootstrap: str, timeout: float = 10.0) -> None:
        super().__init__(bootstrap.split(",")[0], client_id="raw-test", timeout=timeout)
