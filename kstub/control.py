"""Fault injection: make the cluster misbehave the way real clusters do.

This is the start of the control plane (the replication issue extends it with
broker stop/start, replication lag and more). Faults are rules consulted by
the connection loop; each fires a given number of times and then retires.
Every action is logged.

- `drop_response(api_key, count)`: handle the request (its effects happen)
  but close the connection instead of answering, as when a broker's reply is
  lost. An idempotent producer then retries the same batch, which is how a
  retried batch reaches a real broker.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger("kstub.control")


@dataclass
class _Rule:
    action: str
    api_key: int
    remaining: int
    broker_id: int | None = None


class ControlPlane:
    def __init__(self) -> None:
        self._rules: list[_Rule] = []

    def drop_response(self, api_key: int, count: int = 1, broker_id: int | None = None) -> None:
        log.info(
            "control: drop the next %d response(s) to api key %d%s",
            count,
            api_key,
            "" if broker_id is None else f" on broker {broker_id}",
        )
        self._rules.append(_Rule("drop_response", api_key, count, broker_id))

    def clear(self) -> None:
        self._rules.clear()

    def take(self, action: str, api_key: int, broker_id: int) -> bool:
        """Whether a fault fires for this request; counts it down if so."""
        for rule in self._rules:
            if rule.action == action and rule.api_key == api_key and rule.broker_id in (None, broker_id):
                rule.remaining -= 1
                if rule.remaining <= 0:
                    self._rules.remove(rule)
                log.info("control: %s for api key %d on broker %d", action, api_key, broker_id)
                return True
        return False
