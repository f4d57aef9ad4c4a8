"""Transactions, the coordinator's side: transactional ids, their states and their timers.

`state` holds a transaction as data (Kafka's TransactionMetadata and its
states); `coordinator` owns every transactional id of the cluster, where each
lives (the leaders of ``__transaction_state``), the APIs' rules, the markers
written when a transaction ends, and the timers.
"""

from .coordinator import TransactionCoordinator
from .state import TransactionMetadata, TxnState

__all__ = ["TransactionCoordinator", "TransactionMetadata", "TxnState"]
