"""What every handler gets, and the registry that ApiVersions is built from.

A handler is ``async def handle(ctx, request) -> response body | None``,
registered with ``@handles(API_KEY)``. It checks the request against the
cluster model and builds the response; it never parses bytes (the codec did)
and never touches the socket (kstub/connection.py does). ``None`` means "no
response" (Produce with acks=0).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from kstub.cluster.acls import AclOperation, ResourceType
from kstub.cluster.model import Broker, ClusterState
from kstub.protocol import APIS, Api, ApiKey, Container, ErrorCode

#: short names for handlers' checks: ``ctx.authorize(Op.READ, Res.TOPIC, name)``
Op = AclOperation
Res = ResourceType


@dataclass(slots=True)
class Context:
    cluster: ClusterState
    broker: Broker
    api_version: int
    client_id: str | None
    peer: str
    #: injected-error faults that may fire for this request (kstub/control.py), and those that did
    faults: tuple[Any, ...] = ()
    fired: list[Any] | None = None
    #: the listener the request came through (None: in-memory connections, the broker's first listener)
    listener: str | None = None
    #: who sent it: the SASL user or TLS certificate subject (``User:...``), else User:ANONYMOUS
    principal: str = "User:ANONYMOUS"

    @property
    def node_id(self) -> int:
        return self.broker.node_id

    def endpoint(self, broker: Broker) -> tuple[str, int]:
        """Where clients of this request's listener reach `broker`: that listener's advertised host and port."""
        if self.listener is not None:
            endpoint = broker.endpoints.get(self.listener)
            if endpoint is not None:
                return endpoint
        return broker.advertised_host, broker.port

    # --- authorization (kstub/cluster/acls.py): one call per check, as Kafka's AuthHelper ---

    @property
    def client_host(self) -> str:
        """The client's address as ACL host entries name it: as Java writes it (IPv6 in full, 0:0:0:0:0:0:0:1)."""
        host = (self.peer.rsplit(":", 1)[0] if ":" in self.peer else self.peer).strip("[]")
        if ":" in host:
            try:
                host = ":".join(f"{int(group, 16):x}" for group in ipaddress.IPv6Address(host).exploded.split(":"))
            except ValueError:
                pass
        return host

    def authorize(self, op: AclOperation, resource_type: ResourceType, name: str) -> bool:
        """May this request's principal do `op` on the resource? Always, without an authorizer."""
        acls = self.cluster.acls
        return not acls.enabled or acls.authorize(self.principal, self.client_host, op, resource_type, name)

    def authorize_cluster(self, op: AclOperation) -> bool:
        return self.authorize(op, ResourceType.CLUSTER, "kafka-cluster")

    def authorized_operations(self, resource_type: ResourceType, name: str = "kafka-cluster") -> int:
        """An authorized_operations field: the operations the principal may do on the resource."""
        return self.cluster.acls.authorized_operations(self.principal, self.client_host, resource_type, name)

    def authorize_by_resource_type(self, op: AclOperation, resource_type: ResourceType) -> bool:
        """May the principal do `op` on some resource of this type (Kafka's authorizeByResourceType)?"""
        return self.cluster.acls.authorize_by_resource_type(self.principal, self.client_host, op, resource_type)

    def injected_error(self, topic: str | None, partition: int | None = None) -> ErrorCode | None:
        """The error the control plane injects for this topic (partition), if any: answer it instead."""
        for fault in self.faults:
            if fault.matches(topic, partition):
                if self.fired is None:
                    self.fired = []
                if fault not in self.fired:
                    self.fired.append(fault)
                return fault.error_code
        return None


Body = dict[str, Any]
Handler = Callable[[Context, Container], Awaitable[Body | None]]

#: api key → handler; only registered APIs are served, and advertised unless in UNADVERTISED.
REGISTRY: dict[int, Handler] = {}
#: APIs answered but left out of ApiVersions, as Kafka leaves them out (telemetry without a metrics plugin);
#: known before their handler modules are imported (kstub/handlers/__init__.py), so ApiVersions needs none
UNADVERTISED: frozenset[int] = frozenset({ApiKey.GET_TELEMETRY_SUBSCRIPTIONS, ApiKey.PUSH_TELEMETRY})


def handles(api_key: int) -> Callable[[Handler], Handler]:
    if api_key not in APIS:
        raise ValueError(f"no codec declared for api key {api_key}")

    def register(handler: Handler) -> Handler:
        REGISTRY[api_key] = handler
        return handler

    return register


def served_apis() -> dict[int, Api]:
    """The APIs kstub implements and advertises: a codec and a handler each."""
    return {key: APIS[key] for key in sorted(REGISTRY) if key not in UNADVERTISED}


def unique_partitions(
    topics: list[Container], topic_field: str, parts_field: str, index_field: str
) -> list[tuple[str, list[Container]]]:
    """A request's (topic, partitions) with each partition once, as Kafka reads them into a linked map.

    A partition named again replaces the earlier entry's data but keeps its
    place; consecutive entries of the same topic form one topic of the answer.
    """
    last: dict[tuple[str, int], Container] = {}
    order: list[tuple[str, int]] = []
    for t in topics:
        for p in getattr(t, parts_field):
            key = (getattr(t, topic_field), getattr(p, index_field))
            if key not in last:
                order.append(key)
            last[key] = p
    grouped: list[tuple[str, list[Container]]] = []
    for topic, index in order:
        if grouped and grouped[-1][0] == topic:
            grouped[-1][1].append(last[(topic, index)])
        else:
            grouped.append((topic, [last[(topic, index)]]))
    return grouped
