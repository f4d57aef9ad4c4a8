"""``kstub txn``: list, describe and abort transactions, like kafka-transactions.sh.

Over the Kafka protocol (kstub/kafka_client.py), so it works against any
Kafka-compatible broker: ListTransactions to every broker, FindCoordinator
(key type 1) then DescribeTransactions at the id's coordinator. ``list`` and
``describe`` print what kafka-transactions.sh prints (its tab-separated,
padded table). ``abort ID`` ends a hanging transaction the way a new producer
with the same transactional.id would: InitProducerId fences the open
transaction (the coordinator aborts it and bumps the epoch, so its producer is
fenced); the command then waits until the abort is complete.

Each command returns an exit status; output is written to the given streams.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import TextIO

from kstub.protocol import ApiKey, Container, ErrorCode

from .groups_tool import connection_options, run_with_client
from .kafka_client import AdminClient, AdminError

TRANSACTION = 1


def tab_table(rows: Sequence[Sequence[object]], out: TextIO) -> None:
    """kafka-transactions.sh's table: each cell padded to its column's width, then a tab."""
    cells = [[str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    for row in cells:
        print("".join(c.ljust(w) + "\t" for c, w in zip(row, widths, strict=True)), file=out)


def list_transactions(
    client: AdminClient, states: list[str], producer_ids: list[int]
) -> list[tuple[str, int, int, str]]:
    """(transactional id, coordinator, producer id, state) from every broker."""
    found = []
    for node_id in sorted(client.brokers):
        conn = client.broker(node_id)
        body = conn.request(ApiKey.LIST_TRANSACTIONS, {"state_filters": states, "producer_id_filters": producer_ids})
        if body.error_code != ErrorCode.NONE:
            raise AdminError(f"ListTransactions on {conn.address} failed: {ErrorCode(body.error_code).name}")
        found += [(t.transactional_id, node_id, t.producer_id, t.transaction_state) for t in body.transaction_states]
    return found


def describe_transaction(client: AdminClient, tid: str) -> tuple[int, Container]:
    """The coordinator's node id and its DescribeTransactions answer for `tid`."""
    node_id = client.find_coordinator(tid, key_type=TRANSACTION)
    (state,) = (
        client.broker(node_id).request(ApiKey.DESCRIBE_TRANSACTIONS, {"transactional_ids": [tid]}).transaction_states
    )
    if state.error_code == ErrorCode.TRANSACTIONAL_ID_NOT_FOUND:
        raise AdminError(
            f"Failed to describe transaction state of transactional-id `{tid}`: the ID could not be found."
        )
    if state.error_code != ErrorCode.NONE:
        raise AdminError(f"DescribeTransactions for `{tid}` failed: {ErrorCode(state.error_code).name}")
    return node_id, state


def cmd_list(client: AdminClient, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    states = [s for s in (args.state or "").split(",") if s]
    rows = list_transactions(client, states, args.producer_id or [])
    tab_table([("TransactionalId", "Coordinator", "ProducerId", "TransactionState"), *rows], out)
    return 0


def cmd_describe(client: AdminClient, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    node_id, s = describe_transaction(client, args.transactional_id)
    start = s.transaction_start_time_ms
    duration = int(time.time() * 1000) - start if start >= 0 else None
    partitions = ",".join(f"{t.topic}-{p}" for t in s.topics for p in t.partitions)
    header = (
        "CoordinatorId",
        "TransactionalId",
        "ProducerId",
        "ProducerEpoch",
        "TransactionState",
        "TransactionTimeoutMs",
        "CurrentTransactionStartTimeMs",
        "TransactionDurationMs",
        "TopicPartitions",
    )
    row = (
        node_id,
        s.transactional_id,
        s.producer_id,
        s.producer_epoch,
        s.transaction_state,
        s.transaction_timeout_ms,
        "None" if start < 0 else start,
        "None" if duration is None else duration,
        partitions,
    )
    tab_table([header, row], out)
    return 0


def cmd_abort(client: AdminClient, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    tid = args.transactional_id
    node_id, s = describe_transaction(client, tid)
    if s.transaction_state != "Ongoing":
        print(f"Transactional id `{tid}` has no open transaction (it is {s.transaction_state}).", file=err)
        return 1
    conn = client.broker(node_id)
    body = {
        "transactional_id": tid,
        "transaction_timeout_ms": s.transaction_timeout_ms,
        "producer_id": -1,
        "producer_epoch": -1,
    }
    answer = conn.request(ApiKey.INIT_PRODUCER_ID, body)
    if answer.error_code not in (ErrorCode.NONE, ErrorCode.CONCURRENT_TRANSACTIONS):
        raise AdminError(f"InitProducerId for `{tid}` failed: {ErrorCode(answer.error_code).name}")
    deadline = time.monotonic() + args.timeout
    while True:  # the markers are written by the coordinator; no request tells when, so ask
        _, s = describe_transaction(client, tid)
        if not s.transaction_state.startswith("Prepare"):
            break
        if time.monotonic() > deadline:
            raise AdminError(f"`{tid}` is still {s.transaction_state} after {args.timeout:.0f} s")
        time.sleep(0.1)
    print(
        f"Aborted the transaction of `{tid}` (producer {s.producer_id} is now at epoch {s.producer_epoch}).", file=out
    )
    return 0


COMMANDS = {"list": cmd_list, "describe": cmd_describe, "abort": cmd_abort}


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``txn`` command and its subcommands, for kstub/cli.py."""
    common = connection_options()
    txn = sub.add_parser("txn", help="list, describe and abort transactions (as kafka-transactions.sh)")
    actions = txn.add_subparsers(dest="txn_command", required=True)
    listing = actions.add_parser("list", parents=[common], help="every transactional id of the cluster")
    listing.add_argument("--state", default=None, metavar="STATES", help="only these states (comma-separated)")
    listing.add_argument("--producer-id", type=int, action="append", metavar="ID", help="only this producer id")
    describe = actions.add_parser("describe", parents=[common], help="an id's transaction: state, epoch, partitions")
    describe.add_argument("transactional_id", metavar="ID")
    abort = actions.add_parser("abort", parents=[common], help="abort an id's open transaction (fences its producer)")
    abort.add_argument("transactional_id", metavar="ID")
    abort.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS", help="wait this long for the abort")


def run(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    return run_with_client(args, "kstub-txn", COMMANDS[args.txn_command], out, err)
