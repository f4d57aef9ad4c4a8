"""kstub: a wire-compatible Kafka broker on Trio, for tests and local development."""

__version__ = "0.1.0"
