"""Client quotas: the quotas set with AlterClientQuotas, and the byte rates they throttle, as Kafka applies them.

A quota entity is a set of (type, name) pairs: ``user``, ``client-id`` (a
name, or None for the default entity of that type) or ``ip`` alone. Quotas
are float values per key; the byte-rate ones (``producer_byte_rate``,
``consumer_byte_rate``) throttle Produce and Fetch.

Throttling follows Kafka's ClientQuotaManager: the quota that applies to a
request is found in Kafka's order of precedence (user and client id, user
and default client id, user, default user and client id, ..., client id,
default client id); the bytes of each request are counted in 11 windows of
one second; when the measured rate is above the quota, the throttle time is
``(rate - quota) / quota * measured time`` (not capped: a burst of 100 kB
against 1000 B/s is throttled for about 90 s). Kafka counts the whole request
(Produce) or response (Fetch); kstub counts the record bytes, a little less.
The connection is then
muted that long, as Kafka does (kstub/connection.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

Entity = frozenset[tuple[str, str | None]]

USER, CLIENT_ID, IP = "user", "client-id", "ip"
PRODUCER_BYTE_RATE = "producer_byte_rate"
CONSUMER_BYTE_RATE = "consumer_byte_rate"
#: quota keys per entity kind, and whether each takes whole numbers only (Kafka's LONG and INT types)
CLIENT_KEYS = {
    PRODUCER_BYTE_RATE: True,
    CONSUMER_BYTE_RATE: True,
    "request_percentage": False,
    "controller_mutation_rate": False,
}
IP_KEYS = {"connection_creation_rate": True}

#: Kafka's quota.window.num and quota.window.size.seconds
SAMPLES = 11
WINDOW_MS = 1000


def quota_user(principal: str) -> str:
    """The user a quota applies to: the principal's name (``User:alice`` → alice; ANONYMOUS unauthenticated)."""
    return principal.partition(":")[2] or principal


@dataclass
class _Rate:
    """Bytes counted in windows of WINDOW_MS (Kafka's SampledStat with a Rate over it)."""

    windows: list[tuple[int, float]] = field(default_factory=list)  # (window start ms, bytes)

    def record(self, now_ms: int, amount: float) -> None:
        if self.windows and now_ms - self.windows[-1][0] < WINDOW_MS:
            start, total = self.windows[-1]
            self.windows[-1] = (start, total + amount)
        else:
            self.windows.append((now_ms, amount))
        self._purge(now_ms)

    def _purge(self, now_ms: int) -> None:
        oldest = now_ms - SAMPLES * WINDOW_MS
        self.windows = [w for w in self.windows if w[0] > oldest][-SAMPLES:]

    def rate(self, now_ms: int) -> float:
        """Bytes a second: the total over the elapsed time, taken as at least SAMPLES - 1 whole windows."""
        self._purge(now_ms)
        if not self.windows:
            return 0.0
        elapsed = now_ms - self.windows[0][0]
        full = elapsed // WINDOW_MS
        if full < SAMPLES - 1:
            elapsed += (SAMPLES - 1 - full) * WINDOW_MS
        return sum(b for _, b in self.windows) * 1000.0 / elapsed

    def elapsed(self, now_ms: int) -> int:
        elapsed = now_ms - self.windows[0][0] if self.windows else 0
        full = elapsed // WINDOW_MS
        if full < SAMPLES - 1:
            elapsed += (SAMPLES - 1 - full) * WINDOW_MS
        return elapsed


class ClientQuotas:
    """The cluster's client quotas (what DescribeClientQuotas lists) and the rates measured against them."""

    def __init__(self) -> None:
        self.entities: dict[Entity, dict[str, float]] = {}
        self._rates: dict[tuple[str, Entity], _Rate] = {}

    def alter(self, entity: Entity, ops: list[tuple[str, float, bool]]) -> None:
        values = self.entities.setdefault(entity, {})
        for key, value, remove in ops:
            if remove:
                values.pop(key, None)
            else:
                values[key] = value
        if not values:
            del self.entities[entity]

    def quota_for(self, key: str, user: str, client_id: str) -> tuple[Entity, float] | None:
        """The quota `key` that applies to (user, client id), in Kafka's order of precedence, and its entity."""
        if not self.entities:  # no quota set: asked on every Produce and Fetch
            return None
        candidates: list[Entity] = [
            frozenset({(USER, user), (CLIENT_ID, client_id)}),
            frozenset({(USER, user), (CLIENT_ID, None)}),
            frozenset({(USER, user)}),
            frozenset({(USER, None), (CLIENT_ID, client_id)}),
            frozenset({(USER, None), (CLIENT_ID, None)}),
            frozenset({(USER, None)}),
            frozenset({(CLIENT_ID, client_id)}),
            frozenset({(CLIENT_ID, None)}),
        ]
        for entity in candidates:
            value = self.entities.get(entity, {}).get(key)
            if value is not None:
                return entity, value
        return None

    def record(self, key: str, user: str, client_id: str, amount: int, now_ms: int) -> int:
        """Count `amount` bytes against the quota `key` that applies; the throttle time in ms (0: none applies).

        Each (user, client id) is measured apart, as Kafka's sensors are per
        quota entity as the client connects (a default quota is each client's).
        """
        found = self.quota_for(key, user, client_id)
        if found is None:
            return 0
        _, quota = found
        rate = self._rates.setdefault((key, frozenset({(USER, user), (CLIENT_ID, client_id)})), _Rate())
        rate.record(now_ms, amount)
        measured = rate.rate(now_ms)
        if measured <= quota:
            return 0
        return round((measured - quota) / quota * rate.elapsed(now_ms))

    def unrecord(self, key: str, user: str, client_id: str, amount: int, now_ms: int) -> None:
        """Take back bytes counted for a response not sent (a throttled Fetch answers empty)."""
        rate = self._rates.get((key, frozenset({(USER, user), (CLIENT_ID, client_id)})))
        if rate is not None:
            rate.record(now_ms, -amount)

    def window_bytes(self, key: str, user: str, client_id: str) -> int | None:
        """The most bytes one response may carry without being throttled for sure (quota x measured time)."""
        found = self.quota_for(key, user, client_id)
        if found is None:
            return None
        return int(found[1] * (SAMPLES - 1) * WINDOW_MS / 1000)
