"""franz-go (github.com/twmb/franz-go: kgo, and kadm for admin requests) through compat/go's driver.

The driver (compat/go/main.go, built with `go build` into compat/go/bin on
first use; modules pinned by go.mod and go.sum) serves the whole run from one
process; see compat/clients/driven.py for its protocol. Its producer sends
either every message of a call to the partition the message names (kgo's
manual partitioner) or none (kgo's default: sticky for null keys, murmur2 of
the key otherwise, as Kafka's Java client). Group members commit what each poll
returned before they let a rebalance proceed (kgo.BlockRebalanceOnPoll).
"""

from __future__ import annotations

from ..build import FRANZ_GO, GO_BIN
from .driven import DrivenClient


class FranzGo(DrivenClient):
    name = "franz-go"
    target = FRANZ_GO
    limitations = {
        "null-key-spread": "kgo's default partitioner (UniformBytesPartitioner, as KIP-794) moves null-key messages "
        "to another partition only after 64 KiB went to one, however they are batched",
    }

    @classmethod
    def argv(cls) -> list[str]:
        return [str(GO_BIN)]
