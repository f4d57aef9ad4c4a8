"""A blocking Kafka protocol client over a plain socket, on kstub's own codec.

For tests that need exact control over what is sent: hand-made requests,
garbage frames, duplicate batches.
"""

from __future__ import annotations

import socket
from typing import Any

from kstub.protocol.connection import NEED_DATA, ClientConnection


class RawClient:
    def __init__(self, bootstrap: str, timeout: float = 10.0) -> None:
        host, port = bootstrap.split(",")[0].rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.conn = ClientConnection("raw-test")

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, api_key: int, version: int, body: dict[str, Any], *, expect_response: bool = True) -> None:
        self.sock.sendall(self.conn.send_request(api_key, version, body))
        if not expect_response:
            self.conn.forget_last()

    def receive(self):
        while True:
            response = self.conn.next_response()
            if response is not NEED_DATA:
                return response.body
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("connection closed by the broker")
            self.conn.receive_data(data)

    def request(self, api_key: int, version: int, body: dict[str, Any]):
        self.send(api_key, version, body)
        return self.receive()

    def is_closed_by_peer(self) -> bool:
        """True once the broker has closed the connection (reads EOF or a reset)."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
