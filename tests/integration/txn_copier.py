"""Consume-transform-produce with confluent-kafka, for tests/integration/test_transactions_eos.py.

The same program as tests/integration/streams_app/TxnCopier.java: reads INPUT (read_committed, group
GROUP), writes each record's value upper-cased to OUTPUT keyed by where it came from ("partition:offset"),
and commits the consumed offsets in the same transaction (send_offsets_to_transaction), at most 5 records a
transaction. Prints "committed N" after each commit; with STOP_AFTER >= 0, once N reaches it the next
transaction is written but not committed, "open" is printed and the process waits to be killed.

    python txn_copier.py BOOTSTRAP INPUT OUTPUT GROUP TRANSACTIONAL_ID STOP_AFTER
"""

from __future__ import annotations

import sys
import threading

from confluent_kafka import Consumer, Producer, TopicPartition


def main(bootstrap: str, source: str, sink: str, group: str, tid: str, stop_after: int) -> None:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,  # a killed instance leaves the group soon
        }
    )
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid, "transaction.timeout.ms": 60000})
    producer.init_transactions(60)
    consumer.subscribe([source])
    done = 0
    while True:
        batch = [m for m in consumer.consume(5, 0.2) if not m.error()]
        if not batch:
            continue
        producer.begin_transaction()
        offsets: dict[int, int] = {}
        for m in batch:
            producer.produce(sink, m.value().upper(), key=f"{m.partition()}:{m.offset()}", partition=m.partition())
            offsets[m.partition()] = m.offset() + 1
        positions = [TopicPartition(source, p, o) for p, o in sorted(offsets.items())]
        producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), 60)
        done += len(batch)
        if 0 <= stop_after <= done:
            producer.flush(60)
            print("open", flush=True)
            threading.Event().wait()  # killed here, the transaction open
        producer.commit_transaction(60)
        print(f"committed {done}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:6], int(sys.argv[6]))
