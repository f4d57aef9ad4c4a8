"""ElectLeaders (43): preferred and unclean leader elections, as `kafka-leader-election` asks for them.

Preferred (type 0): the first replica becomes the leader where it is a live
ISR member (ELECTION_NOT_NEEDED when it already leads,
PREFERRED_LEADER_NOT_AVAILABLE when it cannot). Unclean (type 1): only for a
partition without a leader (ELECTION_NOT_NEEDED otherwise): a live ISR member
if there is one, else any live replica, which may lose acknowledged records
(ELIGIBLE_LEADERS_NOT_AVAILABLE when no replica is alive). Without a list of
partitions every partition is elected and, as Kafka's controller does, only
those that needed an election are answered; version 0 has no election type
and means preferred.
"""

from __future__ import annotations

import logging

from kstub.cluster.model import Partition
from kstub.protocol import ApiKey, Container, ErrorCode

from .base import Body, Context, Op, handles

log = logging.getLogger(__name__)

PREFERRED, UNCLEAN = 0, 1


def _elect(ctx: Context, p: Partition, election_type: int) -> ErrorCode:
    controller, brokers = ctx.cluster.controller, ctx.cluster.brokers

    def alive(node: int) -> bool:
        return node in brokers and brokers[node].alive

    if election_type == PREFERRED:
        preferred = p.replicas[0]
        if p.leader == preferred:
            return ErrorCode.ELECTION_NOT_NEEDED
        if preferred not in p.isr or not alive(preferred):
            return ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE
        controller.set_leader(p, preferred, p.isr, "preferred leader election (ElectLeaders)")
        return ErrorCode.NONE
    if p.leader >= 0:
        return ErrorCode.ELECTION_NOT_NEEDED
    in_sync = [r for r in p.replicas if r in p.isr and alive(r)]
    if in_sync:
        controller.set_leader(p, in_sync[0], p.isr, "leader election (ElectLeaders)")
        return ErrorCode.NONE
    live = [r for r in p.replicas if alive(r)]
    if not live:
        return ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE
    log.warning("%s: unclean election of out-of-sync broker %d: data may be lost", p.name, live[0])
    controller.set_leader(p, live[0], [live[0]], "unclean leader election (ElectLeaders)")
    return ErrorCode.NONE


def _refused(req: Container, error: ErrorCode) -> Body:
    results = [
        {"topic": t.topic, "partition_result": [{"partition_id": i, "error_code": error} for i in t.partitions]}
        for t in req.topic_partitions or []
    ]
    return {"throttle_time_ms": 0, "error_code": error, "replica_election_results": results}


@handles(ApiKey.ELECT_LEADERS)
async def elect_leaders(ctx: Context, req: Container) -> Body:
    if not ctx.authorize_cluster(Op.ALTER):  # every partition asked gets the error, as Kafka answers
        return _refused(req, ErrorCode.CLUSTER_AUTHORIZATION_FAILED)
    election_type = req.election_type if ctx.api_version >= 1 else PREFERRED
    if election_type not in (PREFERRED, UNCLEAN):
        return {"throttle_time_ms": 0, "error_code": ErrorCode.INVALID_REQUEST, "replica_election_results": []}
    cluster = ctx.cluster
    results: dict[str, list[Body]] = {}
    if req.topic_partitions is None:
        if election_type == PREFERRED:
            cluster.groups.elect_preferred()  # the group coordinators' partitions, as Kafka's __consumer_offsets
            cluster.transactions.elect_preferred()  # and the transaction coordinators' (__transaction_state)
        for p in list(cluster.iter_partitions()):
            error = _elect(ctx, p, election_type)
            if error != ErrorCode.ELECTION_NOT_NEEDED:
                results.setdefault(p.topic.name, []).append({"partition_id": p.index, "error_code": error})
    else:
        for t in req.topic_partitions:
            answers = results.setdefault(t.topic, [])
            for index in t.partitions:
                p = cluster.partition(t.topic, index)
                error = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION if p is None else _elect(ctx, p, election_type)
                answers.append({"partition_id": index, "error_code": error})
    return {
        "throttle_time_ms": 0,
        "error_code": ErrorCode.NONE,
        "replica_election_results": [
            {"topic": topic, "partition_result": partitions} for topic, partitions in results.items()
        ],
    }
