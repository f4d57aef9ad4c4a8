"""The real clients the suite drives, in matrix column order."""

from __future__ import annotations

from .aiokafka_client import AioKafka
from .base import Client, Member
from .confluent import Confluent
from .franz_go import FranzGo
from .java import Java
from .kafka_python import KafkaPython
from .kafkajs import KafkaJS
from .kcat import Kcat

CLIENTS: dict[str, type[Client]] = {c.name: c for c in (KafkaPython, Confluent, AioKafka, Kcat, KafkaJS, Java, FranzGo)}

__all__ = ["CLIENTS", "Client", "Member"]
