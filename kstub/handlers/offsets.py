"""Committed offsets: OffsetCommit (8), OffsetFetch (9) and OffsetDelete (47).

As in Kafka, a commit is checked in layers: unknown topics or partitions get
UNKNOWN_TOPIC_OR_PARTITION, then the group (a valid id, coordinated here,
then Kafka's member/generation rules) decides for every remaining partition,
then metadata longer than offset.metadata.max.bytes gets
OFFSET_METADATA_TOO_LARGE. Commits with generation -1 and no member id (an
assign()-style consumer, or an admin tool) are accepted while the group has no
members. OffsetFetch answers -1 for a partition with no committed offset,
every committed partition for a null topic list (v2+), and per group in v8.
"""

from __future__ import annotations

from collections.abc import Iterable

from kstub.cluster.groups import CommittedOffset, GroupError, TopicPartition
from kstub.protocol import ApiKey, Container, ErrorCode

from .base import Body, Context, Op, Res, handles
from .groups import check_group


def _exists(ctx: Context, topic: str, partition: int) -> bool:
    return ctx.cluster.partition(topic, partition) is not None


def _answer_topics(
    topics: Iterable[Container], errors: dict[TopicPartition, ErrorCode], first: set[TopicPartition]
) -> list[Body]:
    """Per-partition answers in Kafka's order: the partitions refused before the coordinator (`first`:
    unknown topics or partitions) come first, then the coordinator's answers merged in topic by topic."""
    out: dict[str, list[Body]] = {}
    for early in (True, False):
        for t in topics:
            for p in t.partitions:
                tp = (t.name, p.partition_index)
                if (tp in first) == early:
                    out.setdefault(t.name, []).append({"partition_index": p.partition_index, "error_code": errors[tp]})
    return [{"name": name, "partitions": partitions} for name, partitions in out.items()]


@handles(ApiKey.OFFSET_COMMIT)
async def offset_commit(ctx: Context, req: Container) -> Body:
    coordinator = ctx.cluster.groups
    errors: dict[TopicPartition, ErrorCode] = {}
    known: list[tuple[str, Container]] = []
    unknown: set[TopicPartition] = set()
    if not ctx.authorize(Op.READ, Res.GROUP, req.group_id):
        errors = {
            (t.name, p.partition_index): ErrorCode.GROUP_AUTHORIZATION_FAILED for t in req.topics for p in t.partitions
        }
        return {"throttle_time_ms": 0, "topics": _answer_topics(req.topics, errors, set())}
    for t in req.topics:
        for p in t.partitions:
            if not ctx.authorize(Op.READ, Res.TOPIC, t.name):
                errors[(t.name, p.partition_index)] = ErrorCode.TOPIC_AUTHORIZATION_FAILED
                unknown.add((t.name, p.partition_index))
            elif _exists(ctx, t.name, p.partition_index):
                known.append((t.name, p))
            else:
                errors[(t.name, p.partition_index)] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                unknown.add((t.name, p.partition_index))
    if known:
        group_error = check_group(ctx, req.group_id, allow_empty=True)
        group = None
        if group_error is None:
            try:
                group = coordinator.validate_commit(
                    req.group_id,
                    req.generation_id_or_member_epoch,
                    req.member_id,
                    req.group_instance_id,
                    api_version=ctx.api_version,
                )
            except GroupError as exc:
                group_error = exc.code
        max_metadata = ctx.cluster.config["offset.metadata.max.bytes"]
        for topic, p in known:
            metadata = p.committed_metadata or ""
            if group is None:
                error = group_error
            elif len(metadata) > max_metadata:
                error = ErrorCode.OFFSET_METADATA_TOO_LARGE
            else:
                coordinator.store_offset(
                    group,
                    topic,
                    p.partition_index,
                    p.committed_offset,
                    p.committed_leader_epoch,
                    metadata,
                    req.retention_time_ms,
                    p.commit_timestamp,
                )
                error = ErrorCode.NONE
            errors[(topic, p.partition_index)] = error
        if group is not None:
            await ctx.cluster.store.sync_offsets()  # with --fsync: durable before the answer
    return {"throttle_time_ms": 0, "topics": _answer_topics(req.topics, errors, unknown)}


def _partition(index: int, committed: CommittedOffset | None, error: ErrorCode = ErrorCode.NONE) -> Body:
    if committed is None:
        return {
            "partition_index": index,
            "committed_offset": -1,
            "committed_leader_epoch": -1,
            "metadata": "",
            "error_code": error,
        }
    return {
        "partition_index": index,
        "committed_offset": committed.offset,
        "committed_leader_epoch": committed.leader_epoch,
        "metadata": committed.metadata,
        "error_code": error,
    }


def _requested(topics: Iterable[Container]) -> list[tuple[str, list[int]]]:
    return [(t.name, list(t.partition_indexes)) for t in topics]


def _fetch_group(
    ctx: Context,
    group_id: str,
    topics: list[Container] | None,
    member: tuple[str | None, int] | None = None,
    require_stable: bool = False,
) -> tuple[ErrorCode, list[Body]]:
    """One group's committed offsets: the requested partitions, or all (`topics` None). From v9, `member`
    (its id and epoch) is checked against a consumer group's (KIP-848). With `require_stable`
    (v7+), a partition a transaction holds an uncommitted offset for is UNSTABLE_OFFSET_COMMIT."""
    if not ctx.authorize(Op.DESCRIBE, Res.GROUP, group_id):
        return ErrorCode.GROUP_AUTHORIZATION_FAILED, []
    error = check_group(ctx, group_id, allow_empty=True)
    if error is None and member is not None:
        error = ctx.cluster.groups.validate_fetch(group_id, *member) or None
    if error is not None:
        return error, []
    committed = ctx.cluster.groups.committed(group_id)
    denied: list[tuple[str, list[int]]] = []
    if topics is None:  # offsets of topics the principal may not describe are left out
        by_topic: dict[str, list[int]] = {}
        for topic, partition in sorted(committed):
            by_topic.setdefault(topic, []).append(partition)
        wanted = [(t, ps) for t, ps in by_topic.items() if ctx.authorize(Op.DESCRIBE, Res.TOPIC, t)]
    else:
        wanted = []
        for topic, partitions in _requested(topics):
            (wanted if ctx.authorize(Op.DESCRIBE, Res.TOPIC, topic) else denied).append((topic, partitions))
    commits = ctx.cluster.groups.commits

    def answer(topic: str, p: int) -> Body:
        if require_stable and commits.has_pending(group_id, (topic, p)):
            return _partition(p, None, ErrorCode.UNSTABLE_OFFSET_COMMIT)
        return _partition(p, committed.get((topic, p)))

    return ErrorCode.NONE, [
        {"name": topic, "partitions": [answer(topic, p) for p in partitions]} for topic, partitions in wanted
    ] + [
        {"name": topic, "partitions": [_partition(p, None, ErrorCode.TOPIC_AUTHORIZATION_FAILED) for p in partitions]}
        for topic, partitions in denied
    ]


@handles(ApiKey.OFFSET_FETCH)
async def offset_fetch(ctx: Context, req: Container) -> Body:
    v = ctx.api_version
    if v >= 8:
        groups = []
        for g in req.groups:
            error, topics = _fetch_group(
                ctx, g.group_id, g.topics, (g.member_id, g.member_epoch) if v >= 9 else None, req.require_stable
            )
            groups.append({"group_id": g.group_id, "topics": topics, "error_code": error})
        return {"throttle_time_ms": 0, "groups": groups}
    error, topics = _fetch_group(ctx, req.group_id, req.topics, require_stable=v >= 7 and req.require_stable)
    if error != ErrorCode.NONE and v < 2:
        # no top-level error before v2: every requested partition carries it
        topics = [
            {"name": topic, "partitions": [_partition(p, None, error) for p in partitions]}
            for topic, partitions in _requested(req.topics or [])
        ]
    return {"throttle_time_ms": 0, "topics": topics, "error_code": error}


@handles(ApiKey.OFFSET_DELETE)
async def offset_delete(ctx: Context, req: Container) -> Body:
    error = None if ctx.authorize(Op.DELETE, Res.GROUP, req.group_id) else ErrorCode.GROUP_AUTHORIZATION_FAILED
    error = error or check_group(ctx, req.group_id)
    if error is not None:
        return {"error_code": error, "throttle_time_ms": 0, "topics": []}
    requested = [(t.name, p.partition_index) for t in req.topics for p in t.partitions]
    denied = {tp for tp in requested if not ctx.authorize(Op.READ, Res.TOPIC, tp[0])}  # READ on each topic too
    known = [tp for tp in requested if tp not in denied and _exists(ctx, *tp)]
    error, errors = ctx.cluster.groups.delete_offsets(req.group_id, known)
    if error != ErrorCode.NONE:
        return {"error_code": error, "throttle_time_ms": 0, "topics": []}
    unknown = set(requested) - set(known)
    errors.update(dict.fromkeys(unknown - denied, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION))
    errors.update(dict.fromkeys(denied, ErrorCode.TOPIC_AUTHORIZATION_FAILED))
    return {"error_code": ErrorCode.NONE, "throttle_time_ms": 0, "topics": _answer_topics(req.topics, errors, unknown)}
