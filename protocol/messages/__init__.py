"""One module per API key, each declaring its request and response once."""

from __future__ import annotations

from ..schema import Api
from . import (
    k00_produce,
    k01_fetch,
    k02_list_offsets,
    k03_metadata,
    k10_find_coordinator,
    k18_api_versions,
    k19_create_topics,
    k20_delete_topics,
    k21_delete_records,
    k22_init_producer_id,
    k23_offset_for_leader_epoch,
    k32_describe_configs,
    k33_alter_configs,
    k35_describe_log_dirs,
    k37_create_partitions,
    k44_incremental_alter_configs,
    k60_describe_cluster,
)

#: Every API the codec declares, by key.
ALL: dict[int, Api] = {
    m.API.key: m.API
    for m in (
        k00_produce,
        k01_fetch,
        k02_list_offsets,
        k03_metadata,
        k10_find_coordinator,
        k18_api_versions,
        k19_create_topics,
        k20_delete_topics,
        k21_delete_records,
        k22_init_producer_id,
        k23_offset_for_leader_epoch,
        k32_describe_configs,
        k33_alter_configs,
        k35_describe_log_dirs,
        k37_create_partitions,
        k44_incremental_alter_configs,
        k60_describe_cluster,
    )
}
