"""What the embedded clusters (kstub/embedded.py) share: their settings, security side, topics.

`fixture_config` gives the broker settings of a fixture (Kafka's defaults,
then `FIXTURE_DEFAULTS`, then the caller's); `_Security` the listener, TLS and
SASL side; `_create_topic` creates a topic as CreateTopics would.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from typing import Any

from kstub.cluster.config import BrokerConfig
from kstub.cluster.model import Broker
from kstub.cluster.model import ClusterState as Model

#: Broker settings where a test fixture departs from Kafka's defaults, as
#: Kafka's own single-node config/server.properties and container images for
#: tests do: consumer groups form at once instead of waiting 3 s for more
#: members.
FIXTURE_DEFAULTS: Mapping[str, Any] = {"group.initial.rebalance.delay.ms": 0}


def fixture_config(
    brokers: int = 1,
    partitions: int | None = None,
    config: Mapping[str, Any] | None = None,
    *,
    test_defaults: bool = True,
) -> BrokerConfig:
    """Broker settings of an embedded cluster: Kafka's, then the fixture's defaults, then `config`.

    With fewer brokers than Kafka's ``offsets.topic.replication.factor`` (3)
    the offsets topic could never be created and groups would never form, so a
    fixture lowers it to the number of brokers (and the transaction state log's
    replication factor and min ISR likewise). `partitions` sets
    ``num.partitions`` (partitions of auto-created topics and of `create_topic`).
    """
    values: dict[str, Any] = {}
    if test_defaults:
        values.update(FIXTURE_DEFAULTS)
        values["offsets.topic.replication.factor"] = min(brokers, 3)
        values["transaction.state.log.replication.factor"] = min(brokers, 3)
        values["transaction.state.log.min.isr"] = min(brokers, 2)
    if partitions is not None:
        values["num.partitions"] = partitions
    values.update(config or {})
    return BrokerConfig(values)


def _bootstrap(brokers: list[Broker], listener: str | None = None) -> str:
    """Bootstrap servers of the first listener, or of the listener named."""
    if listener is None:
        return ",".join(f"{b.advertised_host}:{b.port}" for b in brokers)
    try:
        return ",".join("{}:{}".format(*b.endpoints[listener.upper()]) for b in brokers)
    except KeyError:
        raise KeyError(f"no listener {listener!r}; the brokers have {', '.join(brokers[0].endpoints)}") from None


def _listener_protocol(model: Model, listener: str, default: str) -> str:
    from kstub.security import parse_listeners

    for each in parse_listeners(model.config, "", 0, default):
        if each.name == listener.upper():
            return each.protocol
    raise KeyError(f"no listener {listener!r}")


class _Security:
    """The listener, TLS and SASL side of an embedded cluster (see docs/security.md)."""

    def __init__(
        self,
        model: Model,
        security_protocol: str,
        users: Mapping[str, str] | None,
        tls_dir: str | os.PathLike[str] | None,
    ) -> None:
        self.protocol = security_protocol.upper()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if users:
            model.config.set("kstub.sasl.users", ",".join(f"{name}:{password}" for name, password in users.items()))
        wants_tls = "SSL" in self.protocol or "SSL" in (model.config.raw("listeners") or "").upper()
        if tls_dir is None and wants_tls:
            self._tmp = tempfile.TemporaryDirectory(prefix="kstub-tls-")
            tls_dir = self._tmp.name
        self.tls_dir = None if tls_dir is None else os.fspath(tls_dir)

    def cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def client_config(
        self,
        bootstrap: str,
        username: str | None,
        password: str | None,
        mechanism: str,
        protocol: str,
    ) -> dict[str, str]:
        config = {"bootstrap.servers": bootstrap, "security.protocol": protocol}
        if "SSL" in protocol and self.tls_dir is not None:
            config["ssl.ca.location"] = os.path.join(self.tls_dir, "ca.pem")
        if protocol.startswith("SASL"):
            config["sasl.mechanism"] = mechanism
            if username is not None:
                config["sasl.username"] = username
            if password is not None:
                config["sasl.password"] = password
        return config


def _config_value(value: Any) -> str | None:
    """A topic config value as Kafka carries it: a string (booleans lower case), or None for the default."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _create_topic(
    model: Model,
    name: str,
    partitions: int | None,
    replication_factor: int | None,
    config: Mapping[str, Any] | None,
) -> None:
    model.create_topic(
        name,
        -1 if partitions is None else partitions,
        -1 if replication_factor is None else replication_factor,
        {key: _config_value(value) for key, value in (config or {}).items()},
    )


def _new_model(
    brokers: int,
    partitions: int | None,
    config: Mapping[str, Any] | None,
    test_defaults: bool,
    data_dir: str | os.PathLike[str] | None,
) -> Model:
    """The cluster model; kept on disk under `data_dir` if given (recovered if it exists)."""
    model = Model(fixture_config(brokers, partitions, config, test_defaults=test_defaults))
    if data_dir is not None:
        from kstub.cluster.disk_store import DiskStore

        model.store = DiskStore(data_dir, fsync_on_ack=model.config["kstub.fsync.on.ack"])
    return model


def _check_settings(brokers: int, port: int) -> None:
    if brokers < 1:
        raise ValueError(f"a cluster needs at least one broker, not {brokers}")
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be 0 (ephemeral) or a TCP port, not {port}")
