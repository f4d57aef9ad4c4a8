"""kafka-transactions.sh list and describe against kstub (3 brokers), and ``kstub txn`` printing the same.

A confluent-kafka transactional producer leaves one transaction open and one
id with a committed one; the tool lists both with their coordinator and state
and describes each. ``kstub txn list`` must print what kafka-transactions.sh
prints, byte for byte; ``describe`` too but for the duration column (time
passes between the two runs). ``kstub txn abort`` then aborts the open
transaction and fences its producer.
"""

from __future__ import annotations

import io

import pytest
from confluent_kafka import KafkaException, Producer

from kstub.cli import _parser
from kstub.embedded import EmbeddedCluster
from kstub.txn_tool import run as txn_run

from support.kafka_tools import create_topic, tool, unique


def _kstub_txn(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = txn_run(_parser().parse_args(["txn", *argv]), out, err)
    return status, out.getvalue(), err.getvalue()


def _rows(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.split("\t")[:-1]] for line in text.splitlines()]


@pytest.fixture
def cluster():
    with EmbeddedCluster(brokers=3) as kc:
        yield kc


def test_list_and_describe_match_kafka_transactions(cluster: EmbeddedCluster) -> None:
    bootstrap = cluster.bootstrap_servers
    topic = unique("txt")
    create_topic(bootstrap, topic, 3, 3)
    open_id, done_id = unique("open"), unique("done")
    conf = {"bootstrap.servers": bootstrap, "transaction.timeout.ms": 60000}
    opened = Producer({**conf, "transactional.id": open_id})
    opened.init_transactions(30)
    opened.begin_transaction()
    opened.produce(topic, b"x", partition=2)
    opened.produce(topic, b"y", partition=0)
    assert opened.flush(30) == 0
    done = Producer({**conf, "transactional.id": done_id})
    done.init_transactions(30)
    done.begin_transaction()
    done.produce(topic, b"z", partition=1)
    done.commit_transaction(30)

    b = ["--bootstrap-server", bootstrap]
    theirs = tool("kafka-transactions", *b, "list").stdout
    status, ours, _ = _kstub_txn("list", *b)
    assert status == 0
    assert sorted(_rows(theirs)[1:]) == sorted(_rows(ours)[1:]) and _rows(theirs)[0] == _rows(ours)[0]
    listed = {row[0]: row for row in _rows(theirs)[1:]}
    coordinator = cluster.call(lambda: cluster.cluster.transactions.coordinator_for(open_id).node_id)
    assert listed[open_id][1:] == [str(coordinator), listed[open_id][2], "Ongoing"]
    assert listed[done_id][3] == "CompleteCommit"

    theirs = tool("kafka-transactions", *b, "describe", "--transactional-id", open_id).stdout
    status, ours, _ = _kstub_txn("describe", *b, open_id)
    assert status == 0
    (header, row), (our_header, our_row) = _rows(theirs), _rows(ours)
    assert header == our_header
    described = dict(zip(header, row, strict=True))
    assert described["TransactionState"] == "Ongoing"
    assert sorted(described["TopicPartitions"].split(",")) == [f"{topic}-0", f"{topic}-2"]
    mine = dict(zip(header, our_row, strict=True))
    for column in header:
        if column not in ("TransactionDurationMs", "TopicPartitions"):
            assert mine[column] == described[column], column
    assert sorted(mine["TopicPartitions"].split(",")) == sorted(described["TopicPartitions"].split(","))

    missing = tool("kafka-transactions", *b, "describe", "--transactional-id", "no-such-id", check=False)
    assert missing.returncode != 0 and "could not be found" in missing.stderr
    status, _, err = _kstub_txn("describe", *b, "no-such-id")
    assert status == 1 and "could not be found" in err

    # abort the open transaction: its producer is fenced, the id is at CompleteAbort
    status, _, err = _kstub_txn("abort", *b, open_id)
    assert status == 0, err
    state = cluster.call(lambda: cluster.cluster.transactions.get(open_id))
    assert state.state.value == "CompleteAbort" and state.producer_epoch == 1  # the fencing abort bumped it
    with pytest.raises(KafkaException):
        opened.commit_transaction(10)
    status, _, err = _kstub_txn("abort", *b, done_id)
    assert status == 1 and "no open transaction" in err
