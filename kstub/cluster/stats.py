"""What a broker counts about its clients' traffic, for metrics (kstub/metrics.py).

Plain integers bumped on the request path (a dict increment per request, an
addition per read and write); everything else the metrics show is read from
the cluster model when scraped.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

#: how many of an API's latest request times are kept for its quantiles (as Kafka's histograms, recent ones)
RECENT_TIMES = 1024

#: outcomes of a request: answered (top-level error code 0 or none), answered with a top-level
#: error code, performed without answer (acks=0), lost by a fault, or failed (the connection closed)
OUTCOMES = ("ok", "error", "no_response", "dropped", "failed")


@dataclass(slots=True)
class BrokerStats:
    #: (API name, outcome) → requests
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: bytes received from and sent to clients (request and response frames)
    bytes_in: int = 0
    bytes_out: int = 0
    #: client connections open now, and accepted since start
    connections: int = 0
    connections_total: int = 0
    #: API name → its requests' times (received whole → answer written; Kafka's TotalTimeMs)
    times: dict[str, RequestTimes] = field(default_factory=dict)
    #: topic → [messages in, bytes in, bytes out] as Kafka's BrokerTopicMetrics count them: records the
    #: leader appended for producers, the bytes of their batches, the record bytes fetched by consumers
    topics: dict[str, list[int]] = field(default_factory=dict)
    #: ISR changes of the partitions this broker led (Kafka's IsrShrinksPerSec, IsrExpandsPerSec)
    isr_shrinks: int = 0
    isr_expands: int = 0

    def timed(self, api: str, seconds: float) -> None:
        times = self.times.get(api)
        if times is None:
            times = self.times[api] = RequestTimes()
        times.count += 1
        times.total += seconds
        times.recent.append(seconds)

    def produced(self, topic: str, messages: int, size: int) -> None:
        counts = self.topics.get(topic)
        if counts is None:
            counts = self.topics[topic] = [0, 0, 0]
        counts[0] += messages
        counts[1] += size

    def fetched(self, topic: str, size: int) -> None:
        counts = self.topics.get(topic)
        if counts is None:
            counts = self.topics[topic] = [0, 0, 0]
        counts[2] += size


@dataclass(slots=True)
class RequestTimes:
    """One API's request times: how many, their sum, and the latest `RECENT_TIMES` (seconds)."""

    count: int = 0
    total: float = 0.0
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_TIMES))
