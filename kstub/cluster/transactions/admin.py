"""ListTransactions and an abort from outside (`kstub txn abort`): a base of `TransactionCoordinator`."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable

from kstub.protocol import ErrorCode

from .state import TRANSACTION_VERSION, Timing, TransactionMetadata, TxnState


class TxnAdmin:
    """What operators ask of the transaction coordinator."""

    now: Callable[[], float]
    txns: dict[str, TransactionMetadata]
    _timing: dict[str, Timing]

    # and the coordinator's check_coordinator, get, _end (coordinator.py, placement.py)
    def list_transactions(
        self,
        node_id: int,
        states: Iterable[str],
        producer_ids: Iterable[int],
        duration_ms: int = -1,
        pattern: str | None = None,
    ) -> tuple[list[str], list[TransactionMetadata]]:
        """The ids this broker coordinates that pass the filters, and the state filters it does not know."""
        known = {s.value for s in TxnState}
        wanted_states = set(states)
        unknown = sorted(s for s in wanted_states if s not in known)
        pids = set(producer_ids)
        regex = re.compile(pattern) if pattern else None
        out = []
        for tid, txn in self.txns.items():
            if txn.state is TxnState.DEAD or self.check_coordinator(tid, node_id) is not None:
                continue
            if wanted_states and txn.state.value not in wanted_states:
                continue
            if pids and txn.producer_id not in pids:
                continue
            if duration_ms >= 0 and self._running_ms(txn) <= duration_ms:
                continue
            if regex is not None and not regex.fullmatch(tid):
                continue
            out.append(txn)
        return unknown, out

    def _running_ms(self, txn: TransactionMetadata) -> float:
        """How long the id's transaction has run (the timers' clock); as in Kafka, without one (start time -1)
        an id counts as running since the epoch."""
        timing = self._timing.get(txn.transactional_id)
        if txn.start_ms < 0 or timing is None:
            return math.inf
        return (self.now() - timing.started) * 1000

    def abort(self, transactional_id: str) -> ErrorCode:
        """Abort an ongoing transaction from outside (kstub txn abort): fence its producer as a timeout does."""
        txn = self.get(transactional_id)
        if txn is None:
            return ErrorCode.TRANSACTIONAL_ID_NOT_FOUND
        if txn.state.completing:
            return ErrorCode.CONCURRENT_TRANSACTIONS
        if txn.state is not TxnState.ONGOING:
            return ErrorCode.INVALID_TXN_STATE
        self._end(txn, commit=False, client_version=TRANSACTION_VERSION, no_partition_added=False)
        return ErrorCode.NONE
