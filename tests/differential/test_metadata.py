"""Metadata: known, unknown and invalid topics, auto-creation, all topics, topic ids, every version."""

from __future__ import annotations

import uuid

import pytest

from support.diff_requests import create, wait_for_leaders
from support.differential import Pair, Side, normalise


def body(*names: str | None, auto: bool = False, ops: bool = False) -> dict:
    return {
        "topics": [{"name": n, "topic_id": uuid.UUID(int=0)} for n in names],
        "allow_auto_topic_creation": auto,
        "include_cluster_authorized_operations": ops,
        "include_topic_authorized_operations": ops,
    }


@pytest.mark.parametrize("version", [0, 1, 4, 5, 7, 8, 9, 10, 11, 12])
def test_known_topic(pair: Pair, version: int) -> None:
    name = create(pair, partitions=3)
    pair.compare(3, body(name), version=version)


@pytest.mark.parametrize("version", [1, 4, 9, 12])
def test_unknown_topic_without_auto_creation(pair: Pair, version: int) -> None:
    # v0-v3 always auto-create: only v4+ can say no
    pair.compare(3, body(pair.name(), auto=False), version=max(version, 4))


@pytest.mark.parametrize("version", [4, 9, 12])
def test_unknown_topic_auto_created(pair: Pair, version: int) -> None:
    name = pair.name()
    pair.compare(3, body(name, auto=True), version=version)
    wait_for_leaders(pair, name, 1)
    pair.compare(3, body(name, auto=False), version=version)


@pytest.mark.kstub(config={"auto.create.topics.enable": "false"})
def test_broker_without_auto_creation(pair: Pair) -> None:
    # the real Kafka node creates topics on request: kstub with creation off is asked to create, Kafka is not
    name = pair.name()
    pair.compare(3, lambda side: body(name, auto=side.name == "kstub"), version=12)
    pair.compare(3, lambda side: body(name, auto=side.name == "kstub"), version=1)
    pair.compare(3, body(name, auto=False), version=12)


@pytest.mark.parametrize(
    "name", ["", ".", "..", "has space", "slash/name", "x" * 250, "ünicode"], ids=lambda n: repr(n)[:12]
)
@pytest.mark.parametrize("auto", [False, True])
def test_invalid_topic_names(pair: Pair, name: str, auto: bool) -> None:
    pair.compare(3, body(name, auto=auto), version=12)


def test_known_unknown_and_invalid_together(pair: Pair) -> None:
    name = create(pair, partitions=2)
    # the two names of no topic come after the topic found, in the order of Kafka's hash set
    # (kstub keeps the request's): compared in name order
    pair.compare(3, body(pair.name(), name, "bad name"), version=12, view=_missing_by_name)


def _missing_by_name(answer: dict) -> dict:
    found = [t for t in answer["topics"] if t["error_code"] == 0]
    missing = sorted((t for t in answer["topics"] if t["error_code"] != 0), key=lambda t: t["name"])
    return {**answer, "topics": found + missing}


def test_order_and_duplicates(pair: Pair) -> None:
    known = [create(pair, partitions=2), create(pair)]
    # Kafka answers unknown topic ids, then the topics found, then the names not found; each once
    # (the names not found come in the order of Kafka's hash set: one of them here)
    pair.compare(3, body(pair.name(), known[1], known[0], known[1]), version=12)
    pair.compare(3, body(known[0], "bad name", known[0]), version=12)
    pair.compare(3, {**body(known[0]), "topics": [{"name": known[0]}, {"name": None, "topic_id": uuid.uuid4()}]})


@pytest.mark.parametrize("version", [0, 1, 9, 12])
def test_null_topic_list_lists_every_topic(pair: Pair, version: int) -> None:
    names = sorted(create(pair, partitions=p) for p in (1, 2))
    answers = []
    for side in pair.sides:
        # every topic: a null list (v1+), an empty one in v0
        raw = side.conn.request(3, {**body(), "topics": None if version else []}, version=version)
        raw.topics = sorted((t for t in raw.topics if t.name.startswith(pair.prefix)), key=lambda t: t.name)
        answer = normalise(side, raw)
        answers.append(answer)
    assert [t["name"] for t in answers[0]["topics"]] == names
    pair.judge(f"Metadata v{version} (all topics, ours only)", *answers)


@pytest.mark.parametrize("version", [1, 12])
def test_empty_topic_list_lists_none(pair: Pair, version: int) -> None:
    create(pair)
    pair.compare(3, body(), version=version)


def test_authorized_operations(pair: Pair) -> None:
    name = create(pair)
    pair.compare(3, body(name, ops=True), version=10)
    pair.compare(3, body(name, ops=True), version=12)


def test_by_topic_id(pair: Pair) -> None:
    name = create(pair, partitions=2)
    ids = {}
    for side in pair.sides:
        md = side.conn.request(3, body(name), version=12)
        ids[side.name] = md.topics[0].topic_id

    def by_id(side: Side) -> dict:
        return {**body(), "topics": [{"name": None, "topic_id": ids[side.name]}]}

    pair.compare(3, by_id, version=12)


def test_unknown_topic_id(pair: Pair) -> None:
    pair.compare(3, {**body(), "topics": [{"name": None, "topic_id": uuid.uuid4()}]}, version=12)


def test_null_name_and_zero_topic_id(pair: Pair) -> None:
    pair.compare(3, {**body(), "topics": [{"name": None, "topic_id": uuid.UUID(int=0)}]}, version=12)
