"""Fetch sessions (KIP-227): full and incremental fetches, forgotten partitions, closing, and the session errors.

Each step sends the same raw Fetch to both brokers; a session's id is each
broker's own (normalised to ``session#N``, and turned back into that broker's
id for the next request of the session).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from support.batches import batch
from support.diff_requests import create, produce, session_fetch
from support.differential import Pair


def two_partitions(pair: Pair) -> str:
    name = create(pair, partitions=2)
    produce(pair, name, batch(3, value_size=20), partition=0)
    return name


def partitions_answered(answer: Any) -> list[tuple[Any, int]]:
    return [
        (t.get("topic_id", t.get("topic")), p["partition_index"]) for t in answer["responses"] for p in t["partitions"]
    ]


@pytest.mark.parametrize("version", [7, 12, 13, 18])
def test_incremental_fetches_answer_only_what_changed(pair: Pair, version: int) -> None:
    name = two_partitions(pair)
    # partition 0 holds offsets 0-2: the fetcher is at its end
    full, _ = pair.compare(1, session_fetch(0, 0, {name: {0: 3, 1: 0}}), version=version)
    assert full["session_id"] == "session#1" and len(partitions_answered(full)) == 2
    # epoch 1, nothing new: no partition in the answer
    nothing, _ = pair.compare(1, session_fetch("session#1", 1, {}), version=version)
    assert nothing["session_id"] == "session#1" and partitions_answered(nothing) == []
    # new records in partition 1 (offset 0 still cached for it): only partition 1 answers
    produce(pair, name, batch(2), partition=1)
    ones, _ = pair.compare(1, session_fetch("session#1", 2, {}), version=version)
    assert [p for _, p in partitions_answered(ones)] == [1]
    # the fetcher moves past them: the same high watermark, nothing to read, so nothing again
    moved, _ = pair.compare(1, session_fetch("session#1", 3, {name: {1: 2}}), version=version)
    assert partitions_answered(moved) == []
    # it goes back to offset 0 of partition 0: records there
    back, _ = pair.compare(1, session_fetch("session#1", 4, {name: {0: 0}}), version=version)
    assert [p for _, p in partitions_answered(back)] == [0]
    # forget partition 1: new records there are not answered, partition 0's are
    pair.compare(1, session_fetch("session#1", 5, {name: {0: 3}}, forgotten={name: [1]}), version=version)
    produce(pair, name, batch(1), partition=1)
    produce(pair, name, batch(1), partition=0)
    last, _ = pair.compare(1, session_fetch("session#1", 6, {}), version=version)
    assert [p for _, p in partitions_answered(last)] == [0]


def test_session_errors(pair: Pair) -> None:
    name = two_partitions(pair)
    pair.compare(1, session_fetch(0, 0, {name: {0: 0}}))
    wrong, _ = pair.compare(1, session_fetch("session#1", 7, {}))  # the session is at epoch 1
    assert wrong["error_code"] == 71 and wrong["session_id"] == 0
    pair.compare(1, session_fetch("session#1", 1, {}))  # the session still works
    duplicate, _ = pair.compare(1, session_fetch("session#1", 1, {}))  # a repeated epoch
    assert duplicate["error_code"] == 71
    unknown, _ = pair.compare(1, session_fetch(123456, 1, {}))
    assert unknown["error_code"] == 70
    # a session made with topic names cannot go on with topic ids, nor the other way round
    pair.compare(1, session_fetch(0, 0, {name: {0: 0}}), version=12)
    mixed, _ = pair.compare(1, session_fetch("session#2", 1, {}), version=13)
    assert mixed["error_code"] == 106
    pair.compare(1, session_fetch(0, 0, {name: {0: 0}}), version=13)
    mixed, _ = pair.compare(1, session_fetch("session#3", 1, {}), version=12)
    assert mixed["error_code"] == 106


def test_closing_sessions(pair: Pair) -> None:
    name = two_partitions(pair)
    pair.compare(1, session_fetch(0, 0, {name: {0: 0, 1: 0}}))
    # epoch -1 names the session: it is closed and this fetch is sessionless
    closed, _ = pair.compare(1, session_fetch("session#1", -1, {name: {0: 0}}))
    assert closed["session_id"] == 0 and len(partitions_answered(closed)) == 1
    gone, _ = pair.compare(1, session_fetch("session#1", 1, {}))
    assert gone["error_code"] == 70
    # a full fetch naming a session replaces it by a new one
    pair.compare(1, session_fetch(0, 0, {name: {0: 0}}))
    renewed, _ = pair.compare(1, session_fetch("session#2", 0, {name: {1: 0}}))
    assert renewed["session_id"] == "session#3"
    assert pair.compare(1, session_fetch("session#2", 1, {}))[0]["error_code"] == 70
    # forgetting every partition ends the session: a sessionless answer
    emptied, _ = pair.compare(1, session_fetch("session#3", 1, {}, forgotten={name: [1]}))
    assert emptied["session_id"] == 0 and emptied["error_code"] == 0
    assert pair.compare(1, session_fetch("session#3", 2, {}))[0]["error_code"] == 70


def test_unknown_partitions_in_a_session(pair: Pair) -> None:
    """Unknown topic ids and partitions are answered after the others, and again in each incremental answer.

    (Not compared: the zero topic id beside a known topic, which Kafka 4.4 answers with UNKNOWN_SERVER_ERROR
    for the whole request.)"""
    name = two_partitions(pair)
    for version, missing in ((12, pair.name()), (18, uuid.uuid4())):
        full, _ = pair.compare(1, session_fetch(0, 0, {missing: {0: 0}, name: {5: 0, 0: 0}}), version=version)
        session = full["session_id"]
        assert session != 0 and [p["error_code"] for t in full["responses"] for p in t["partitions"]] == [
            0,
            100 if version > 12 else 3,
            3,
        ]
        again, _ = pair.compare(1, session_fetch(session, 1, {}), version=version)
        assert len(partitions_answered(again)) == 3
