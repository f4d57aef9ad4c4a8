"""What a broker counts about its clients' traffic, for metrics (kstub/metrics.py).

Plain integers bumped on the request path (a dict increment per request, an
addition per read and write); everything else the metrics show is read from
the cluster model when scraped.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

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
