"""The cluster's control plane over HTTP (`kstub serve --admin-port P`, routes under /v1): stop and start brokers.

Only the failover scenario uses it, and only when the run has an admin URL
(`--admin-url`, or the one of the kstub the suite started itself).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any


class ControlPlaneError(Exception):
    pass


class ControlPlane:
    def __init__(self, url: str, timeout: float = 10.0, token: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        #: the admin API's token, when it needs one (default: $KSTUB_ADMIN_TOKEN)
        self.token = token if token is not None else os.environ.get("KSTUB_ADMIN_TOKEN")

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                text = resp.read().decode()
        except urllib.error.HTTPError as exc:
            raise ControlPlaneError(f"{method} {path}: HTTP {exc.code} {exc.read().decode(errors='replace')}") from exc
        except OSError as exc:
            raise ControlPlaneError(f"{method} {path}: {exc}") from exc
        return json.loads(text) if text.strip() else None

    def check(self) -> None:
        """Raise ControlPlaneError unless the control plane answers."""
        self._request("GET", "/v1/cluster")

    def stop_broker(self, node_id: int) -> None:
        """A clean shutdown of the broker: its listener closes, its partitions get new leaders."""
        self._request("POST", f"/v1/brokers/{node_id}/stop", {})

    def start_broker(self, node_id: int) -> None:
        self._request("POST", f"/v1/brokers/{node_id}/start", {})
