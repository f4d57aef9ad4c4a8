"""One module per API key (``kNN_name.py``), each declaring its request and response once.

`DECLARED` lists them, with each API's name and version range, as data: the
schemas themselves are imported on the first use of an API (encoding or
decoding one of its messages, or reading its fields), so that a broker's start
does not load fifty declarations it may never use, while ApiVersions, version
checks and names need no import at all. Adding an API is adding its module and
its line here; tests/protocol/test_declared.py checks that the two agree.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from typing import Any, overload

from ..schema import Api, Field

#: api key -> (module, name, min_version, max_version, first flexible version); each module's `API` says the same
DECLARED: dict[int, tuple[str, str, int, int, int | None]] = {
    0: ("k00_produce", "Produce", 0, 12, 9),
    1: ("k01_fetch", "Fetch", 0, 18, 12),
    2: ("k02_list_offsets", "ListOffsets", 0, 11, 6),
    3: ("k03_metadata", "Metadata", 0, 13, 9),
    8: ("k08_offset_commit", "OffsetCommit", 0, 9, 8),
    9: ("k09_offset_fetch", "OffsetFetch", 0, 9, 6),
    10: ("k10_find_coordinator", "FindCoordinator", 0, 4, 3),
    11: ("k11_join_group", "JoinGroup", 0, 9, 6),
    12: ("k12_heartbeat", "Heartbeat", 0, 4, 4),
    13: ("k13_leave_group", "LeaveGroup", 0, 5, 4),
    14: ("k14_sync_group", "SyncGroup", 0, 5, 4),
    15: ("k15_describe_groups", "DescribeGroups", 0, 6, 5),
    16: ("k16_list_groups", "ListGroups", 0, 5, 3),
    17: ("k17_sasl_handshake", "SaslHandshake", 0, 1, None),
    18: ("k18_api_versions", "ApiVersions", 0, 5, 3),
    19: ("k19_create_topics", "CreateTopics", 0, 7, 5),
    20: ("k20_delete_topics", "DeleteTopics", 0, 6, 4),
    21: ("k21_delete_records", "DeleteRecords", 0, 2, 2),
    22: ("k22_init_producer_id", "InitProducerId", 0, 5, 2),
    23: ("k23_offset_for_leader_epoch", "OffsetForLeaderEpoch", 0, 4, 4),
    24: ("k24_add_partitions_to_txn", "AddPartitionsToTxn", 0, 5, 3),
    25: ("k25_add_offsets_to_txn", "AddOffsetsToTxn", 0, 4, 3),
    26: ("k26_end_txn", "EndTxn", 0, 5, 3),
    28: ("k28_txn_offset_commit", "TxnOffsetCommit", 0, 6, 3),
    29: ("k29_describe_acls", "DescribeAcls", 1, 3, 2),
    30: ("k30_create_acls", "CreateAcls", 1, 3, 2),
    31: ("k31_delete_acls", "DeleteAcls", 1, 3, 2),
    32: ("k32_describe_configs", "DescribeConfigs", 0, 4, 4),
    33: ("k33_alter_configs", "AlterConfigs", 0, 2, 2),
    35: ("k35_describe_log_dirs", "DescribeLogDirs", 0, 5, 2),
    36: ("k36_sasl_authenticate", "SaslAuthenticate", 0, 2, 2),
    37: ("k37_create_partitions", "CreatePartitions", 0, 3, 2),
    42: ("k42_delete_groups", "DeleteGroups", 0, 2, 2),
    43: ("k43_elect_leaders", "ElectLeaders", 0, 2, 2),
    44: ("k44_incremental_alter_configs", "IncrementalAlterConfigs", 0, 1, 1),
    45: ("k45_alter_partition_reassignments", "AlterPartitionReassignments", 0, 1, 0),
    46: ("k46_list_partition_reassignments", "ListPartitionReassignments", 0, 0, 0),
    47: ("k47_offset_delete", "OffsetDelete", 0, 0, None),
    48: ("k48_describe_client_quotas", "DescribeClientQuotas", 0, 1, 1),
    49: ("k49_alter_client_quotas", "AlterClientQuotas", 0, 1, 1),
    50: ("k50_describe_user_scram_credentials", "DescribeUserScramCredentials", 0, 0, 0),
    51: ("k51_alter_user_scram_credentials", "AlterUserScramCredentials", 0, 0, 0),
    60: ("k60_describe_cluster", "DescribeCluster", 0, 2, 0),
    61: ("k61_describe_producers", "DescribeProducers", 0, 0, 0),
    65: ("k65_describe_transactions", "DescribeTransactions", 0, 0, 0),
    66: ("k66_list_transactions", "ListTransactions", 0, 2, 0),
    68: ("k68_consumer_group_heartbeat", "ConsumerGroupHeartbeat", 0, 1, 0),
    69: ("k69_consumer_group_describe", "ConsumerGroupDescribe", 0, 1, 0),
    71: ("k71_get_telemetry_subscriptions", "GetTelemetrySubscriptions", 0, 0, 0),
    72: ("k72_push_telemetry", "PushTelemetry", 0, 0, 0),
    74: ("k74_list_config_resources", "ListConfigResources", 0, 1, 0),
    75: ("k75_describe_topic_partitions", "DescribeTopicPartitions", 0, 0, 0),
}


class _Declared(Sequence[Field]):
    """One message's fields as its module declares them, imported on first use."""

    __slots__ = ("_fields", "_module", "_which")

    def __init__(self, module: str, which: str) -> None:
        self._module = module
        self._which = which  # "request" or "response"
        self._fields: Sequence[Field] | None = None

    def _load(self) -> Sequence[Field]:
        fields = self._fields
        if fields is None:
            api = importlib.import_module(f"{__name__}.{self._module}").API
            fields = self._fields = getattr(api, self._which)
        return fields

    @overload
    def __getitem__(self, index: int) -> Field: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Field]: ...
    def __getitem__(self, index: Any) -> Any:
        return self._load()[index]

    def __len__(self) -> int:
        return len(self._load())

    def __iter__(self) -> Iterator[Field]:
        return iter(self._load())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _Declared):
            other = other._load()
        return list(self._load()) == list(other) if isinstance(other, Sequence) else NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._load())


def _api(key: int, module: str, name: str, low: int, high: int, flexible_from: int | None) -> Api:
    return Api(key, name, low, high, flexible_from, _Declared(module, "request"), _Declared(module, "response"))


#: Every API the codec declares, by key (its messages' fields are imported on first use).
ALL: dict[int, Api] = {key: _api(key, *entry) for key, entry in DECLARED.items()}
