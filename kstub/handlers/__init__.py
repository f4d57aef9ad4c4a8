"""Request handlers, one module per API family. Importing this registers them all."""

from . import (  # noqa: F401  (imported to register their handlers)
    acls,
    api_versions,
    cluster_info,
    configs,
    consumer_groups,
    coordinator,
    describe_producers,
    elections,
    fetch,
    groups,
    leader_epoch,
    list_offsets,
    metadata,
    offsets,
    produce,
    producer_ids,
    quotas,
    reassignments,
    sasl,
    scram_credentials,
    telemetry,
    topic_partitions,
    topics,
    transactions,
)
from .base import REGISTRY, Context, handles, served_apis

__all__ = ["REGISTRY", "Context", "handles", "served_apis"]
