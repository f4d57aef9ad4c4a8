"""The ports RealKafka gives a cluster's listeners are distinct, and never one its settings already name.

A fake `socket.socket` stands for the kernel at its least helpful: binding port 0 gets the lowest port
no open socket holds, so a port picked and released at once comes straight back (CI once saw real
Kafka refuse to start with its PLAINTEXT and CONTROLLER listeners on one port).
"""

from __future__ import annotations

import pytest

from kstub.compat import realkafka
from kstub.compat.realkafka import RealKafka


class KernelReusingPorts:
    """Bind to port 0 gets the lowest port from 40000 that no open socket of this class holds."""

    held: set[int] = set()

    def __init__(self) -> None:
        self.port = 0

    def bind(self, address: tuple[str, int]) -> None:
        port = address[1] or min(p for p in range(40000, 40100) if p not in self.held)
        self.held.add(port)
        self.port = port

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def close(self) -> None:
        self.held.discard(self.port)

    def __enter__(self) -> KernelReusingPorts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture
def kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    KernelReusingPorts.held = set()
    monkeypatch.setattr(realkafka.socket, "socket", KernelReusingPorts)


@pytest.mark.parametrize("brokers", [1, 3])
def test_client_and_controller_ports_are_distinct(kernel: None, brokers: int) -> None:
    kafka = RealKafka(brokers=brokers)
    controller = kafka._pick_ports()
    assert len(set(kafka.ports + controller)) == 2 * brokers, (kafka.ports, controller)


def test_ports_the_settings_name_are_left_to_them(kernel: None) -> None:
    kafka = RealKafka(config={"listeners": "SASL_PLAINTEXT://127.0.0.1:40000,SSL://127.0.0.1:40001"})
    controller = kafka._pick_ports()
    assert {40000, 40001}.isdisjoint(kafka.ports + controller), (kafka.ports, controller)
    assert len(set(kafka.ports + controller)) == 2


def test_a_given_first_port_is_kept_and_not_reused(kernel: None) -> None:
    kafka = RealKafka(brokers=2, port=40000)
    controller = kafka._pick_ports()
    assert kafka.ports == [40000, 40001]
    assert {40000, 40001}.isdisjoint(controller) and len(set(controller)) == 2
