"""Real Kafka nodes of a test's own (the shared one is conftest's `real_kafka` fixture): started, or the
test skipped with the reason (a failure under CI, as support.external says)."""

from __future__ import annotations

from collections.abc import Callable

from kstub.compat.realkafka import RealKafka, RealKafkaUnavailable

from support.external import unavailable
from support.served import free_ports


def start_real_kafka(brokers: int = 1, config: dict[str, str] | None = None) -> RealKafka:
    """A started RealKafka (stop it when done)."""
    try:
        return RealKafka(brokers=brokers, config=config).start()
    except RealKafkaUnavailable as exc:
        reason = str(exc)
    unavailable(f"real Kafka unavailable: {reason}")
    raise AssertionError("unreachable")  # unavailable() skips or fails


def start_sasl_kafka(settings: Callable[[str, int], dict[str, str]]) -> tuple[RealKafka, str]:
    """A real Kafka node with the listeners `settings(plain_port, sasl_port)` names (PLAINTEXT and
    SASL_PLAINTEXT, plus its controller's), and the address of its SASL_PLAINTEXT listener."""
    sasl_port = free_ports(1)
    config = settings("{port}", sasl_port)
    config["listeners"] += ",CONTROLLER://127.0.0.1:{controller_port}"
    config["listener.security.protocol.map"] = "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT"
    return start_real_kafka(config=config), f"127.0.0.1:{sasl_port}"
