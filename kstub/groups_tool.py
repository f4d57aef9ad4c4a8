"""``kstub groups``: list, describe, reset and delete consumer groups, like kafka-consumer-groups.

Everything goes over the Kafka protocol (kstub/kafka_client.py), so the tool
works against any Kafka-compatible broker: ListGroups to every broker,
FindCoordinator then DescribeGroups / OffsetFetch / OffsetCommit /
DeleteGroups at the group's coordinator, Metadata and ListOffsets (at each
partition's leader) for log-end offsets and resets. Members' assignments are
decoded with the consumer protocol's declared schema. A consumer group of the
KIP-848 protocol, which DescribeGroups does not know, is described with
ConsumerGroupDescribe: its epochs, and each member's epoch and current and
target assignments.

Each command returns an exit status; output is written to the given streams.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

from kstub.protocol import ApiKey, Container, DecodeError, ErrorCode
from kstub.protocol.consumer_protocol import PROTOCOL_TYPE, decode_assignment

from .kafka_client import AdminClient, AdminError

LATEST = -1
EARLIEST = -2
DEFAULT_BOOTSTRAP = "localhost:9092"

TopicPartition = tuple[str, int]


def table(rows: Sequence[Sequence[object]], out: TextIO) -> None:
    """Columns padded to their widest cell, as Kafka's tools print them."""
    cells = [["-" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    for row in cells:
        print(" ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)


def _check(error: int, what: str) -> None:
    if error != ErrorCode.NONE:
        raise AdminError(f"{what} failed: {ErrorCode(error).name}")


# --- what the broker says --------------------------------------------------------


def list_groups(
    client: AdminClient, states: list[str] | None, types: list[str] | None = None
) -> list[tuple[str, str, str, str]]:
    """(group, protocol type, state, type: classic or consumer) from every broker, sorted by group id."""
    found: dict[str, tuple[str, str, str, str]] = {}
    wanted_types = None if not types else {t.lower() for t in types}
    for node_id in sorted(client.brokers):
        conn = client.broker(node_id)
        version = conn.version(ApiKey.LIST_GROUPS)
        if states and version < 4:
            raise AdminError(f"{conn.address} cannot filter groups by state (ListGroups v4 needed)")
        body = {"states_filter": states or [], "types_filter": types or []}
        answer = conn.request(ApiKey.LIST_GROUPS, body, version=version)
        _check(answer.error_code, f"ListGroups on {conn.address}")
        for g in answer.groups:
            kind = g.group_type.lower() if version >= 5 and g.group_type else "classic"  # v5 (KIP-848) tells
            if wanted_types is not None and kind not in wanted_types:
                continue  # (a broker before v5 does not filter by type)
            found[g.group_id] = (g.group_id, g.protocol_type, g.group_state if version >= 4 else "", kind)
    return [found[g] for g in sorted(found)]


def describe_group(client: AdminClient, group: str) -> Container:
    conn = client.coordinator(group)
    body = conn.request(ApiKey.DESCRIBE_GROUPS, {"groups": [group], "include_authorized_operations": False})
    described = body.groups[0]
    if described.error_code in (ErrorCode.NONE, ErrorCode.GROUP_ID_NOT_FOUND) and described.group_state == "Dead":
        consumer = describe_consumer_group(client, group)
        if consumer is not None:
            return consumer
    if described.error_code == ErrorCode.GROUP_ID_NOT_FOUND:  # v6+: no such group, as a Dead one before
        described.group_state = "Dead"
        return described
    _check(described.error_code, f"DescribeGroups for '{group}'")
    return described


def describe_consumer_group(client: AdminClient, group: str) -> Container | None:
    """A consumer group of the KIP-848 protocol (ConsumerGroupDescribe), or None: no such group (or API)."""
    conn = client.coordinator(group)
    if ApiKey.CONSUMER_GROUP_DESCRIBE not in conn.versions:
        return None
    body = conn.request(ApiKey.CONSUMER_GROUP_DESCRIBE, {"group_ids": [group], "include_authorized_operations": False})
    g = body.groups[0]
    if g.error_code == ErrorCode.GROUP_ID_NOT_FOUND:
        return None
    _check(g.error_code, f"ConsumerGroupDescribe for '{group}'")
    g.protocol_type, g.protocol_data = "consumer", g.assignor_name
    return g


def committed_offsets(client: AdminClient, group: str) -> dict[TopicPartition, int]:
    conn = client.coordinator(group)
    version = conn.version(ApiKey.OFFSET_FETCH)
    if version >= 8:
        body = conn.request(ApiKey.OFFSET_FETCH, {"groups": [{"group_id": group, "topics": None}]}, version=version)
        answer = body.groups[0]
        _check(answer.error_code, f"OffsetFetch for '{group}'")
        topics = answer.topics
    else:
        if version < 2:
            raise AdminError(f"{conn.address} cannot list a group's offsets (OffsetFetch v2 needed)")
        body = conn.request(ApiKey.OFFSET_FETCH, {"group_id": group, "topics": None}, version=version)
        _check(body.error_code, f"OffsetFetch for '{group}'")
        topics = body.topics
    return {
        (t.name, p.partition_index): p.committed_offset
        for t in topics
        for p in t.partitions
        if p.committed_offset >= 0 and p.error_code == ErrorCode.NONE
    }


def partitions_of(client: AdminClient, topics: Iterable[str]) -> dict[TopicPartition, int]:
    """Each partition of `topics` and its leader."""
    wanted = sorted(set(topics))
    if not wanted:
        return {}
    body = client.metadata(wanted)
    leaders: dict[TopicPartition, int] = {}
    for t in body.topics:
        if t.error_code != ErrorCode.NONE:
            raise AdminError(f"topic '{t.name}': {ErrorCode(t.error_code).name}")
        for p in t.partitions:
            leaders[(t.name, p.partition_index)] = p.leader_id
    return leaders


def list_offsets(client: AdminClient, leaders: dict[TopicPartition, int], timestamp: int) -> dict[TopicPartition, int]:
    """ListOffsets at each partition's leader: -1 latest, -2 earliest, else the first offset at/after a time."""
    by_leader: dict[int, list[TopicPartition]] = defaultdict(list)
    for tp, leader in leaders.items():
        if leader < 0:
            raise AdminError(f"partition {tp[0]}-{tp[1]} has no leader")
        by_leader[leader].append(tp)
    result: dict[TopicPartition, int] = {}
    for leader, tps in by_leader.items():
        conn = client.broker(leader)
        version = conn.version(ApiKey.LIST_OFFSETS)
        if timestamp >= 0 and version < 1:
            raise AdminError(f"{conn.address} cannot look offsets up by time (ListOffsets v1 needed)")
        topics: dict[str, list[int]] = defaultdict(list)
        for topic, partition in tps:
            topics[topic].append(partition)
        body = conn.request(
            ApiKey.LIST_OFFSETS,
            {
                "replica_id": -1,
                "isolation_level": 0,
                "topics": [
                    {"name": t, "partitions": [{"partition_index": p, "timestamp": timestamp} for p in ps]}
                    for t, ps in topics.items()
                ],
            },
            version=version,
        )
        for t in body.topics:
            for p in t.partitions:
                _check(p.error_code, f"ListOffsets for {t.name}-{p.partition_index}")
                offset = p.offset if version >= 1 else (p.old_style_offsets[0] if p.old_style_offsets else -1)
                result[(t.name, p.partition_index)] = offset
    return result


@dataclass
class MemberView:
    member_id: str
    instance_id: str | None
    host: str
    client_id: str
    partitions: list[TopicPartition]
    #: consumer groups (KIP-848) only: the member's epoch and target assignment
    epoch: int | None = None
    target: list[TopicPartition] | None = None
    #: the protocol the member speaks: classic or consumer (a consumer group may have both: a mixed group)
    kind: str = "classic"


def _partitions(assignment: Container) -> list[TopicPartition]:
    return sorted((t.topic_name, p) for t in assignment.topic_partitions for p in t.partitions)


def members_of(described: Container) -> list[MemberView]:
    views = []
    if "group_epoch" in described:  # ConsumerGroupDescribe
        for m in described.members:
            kind = "classic" if m.get("member_type", 1) == 0 else "consumer"  # v1's member type (v0: consumer)
            views.append(
                MemberView(m.member_id, m.instance_id, m.client_host, m.client_id, _partitions(m.assignment),
                           m.member_epoch, _partitions(m.target_assignment), kind)
            )  # fmt: skip
        return views
    for m in described.members:
        partitions: list[TopicPartition] = []
        if described.protocol_type == PROTOCOL_TYPE and m.member_assignment:
            try:
                assignment = decode_assignment(m.member_assignment)
                partitions = [(a.topic, p) for a in assignment.assigned_partitions for p in sorted(a.partitions)]
            except DecodeError:
                partitions = []
        views.append(MemberView(m.member_id, m.group_instance_id, m.client_host, m.client_id, sorted(partitions)))
    return views


# --- the commands ----------------------------------------------------------------


def cmd_list(client: AdminClient, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    states = None if args.state is None else [s.strip() for s in args.state.split(",") if s.strip()]
    types = None if args.type is None else [t.strip() for t in args.type.split(",") if t.strip()]
    groups = list_groups(client, states, types)
    if args.state is None and args.type is None:
        for group, _, _, _ in groups:
            print(group, file=out)
    elif args.type is None:
        table([("GROUP", "STATE"), *((g, s) for g, _, s, _ in groups)], out)
    elif args.state is None:
        table([("GROUP", "TYPE"), *((g, k) for g, _, _, k in groups)], out)
    else:
        table([("GROUP", "TYPE", "STATE"), *((g, k, s) for g, _, s, k in groups)], out)
    return 0


def _assignment_text(partitions: list[TopicPartition]) -> str:
    by_topic: dict[str, list[int]] = defaultdict(list)
    for topic, p in partitions:
        by_topic[topic].append(p)
    return ",".join(f"{t}({','.join(map(str, ps))})" for t, ps in sorted(by_topic.items())) or "-"


def cmd_describe(client: AdminClient, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    status = 0
    for group in args.group:
        described = describe_group(client, group)
        if described.group_state == "Dead":
            print(f"Error: Consumer group '{group}' does not exist.", file=err)
            status = 1
            continue
        coordinator = client.find_coordinator(group)
        host, port = client.brokers[coordinator]
        members = members_of(described)
        committed = committed_offsets(client, group)
        owner = {tp: m for m in members for tp in m.partitions}
        partitions = sorted(set(committed) | set(owner))
        ends = list_offsets(client, partitions_of(client, {t for t, _ in partitions}), LATEST) if partitions else {}

        consumer_group = "group_epoch" in described
        table(
            [
                ("GROUP", "COORDINATOR (ID)", "ASSIGNMENT-STRATEGY", "STATE", "TYPE", "#MEMBERS"),
                (group, f"{host}:{port} ({coordinator})", described.protocol_data or "-", described.group_state,
                 "consumer" if consumer_group else "classic", len(members)),
            ],
            out,
        )  # fmt: skip
        print(file=out)
        if consumer_group:
            print(f"GROUP-EPOCH {described.group_epoch}  ASSIGNMENT-EPOCH {described.assignment_epoch}", file=out)
            print(file=out)
        if members and consumer_group:
            # a member's current assignment (with what it has yet to revoke) and its target; in a mixed group
            # some members speak the classic protocol (MEMBER-TYPE classic)
            table(
                [
                    ("GROUP", "CONSUMER-ID", "GROUP-INSTANCE-ID", "HOST", "CLIENT-ID", "MEMBER-TYPE", "EPOCH",
                     "#PARTITIONS", "ASSIGNMENT", "TARGET-ASSIGNMENT"),
                    *(
                        (group, m.member_id, m.instance_id, m.host, m.client_id, m.kind, m.epoch, len(m.partitions),
                         _assignment_text(m.partitions), _assignment_text(m.target or []))
                        for m in members
                    ),
                ],
                out,
            )  # fmt: skip
        elif members:
            table(
                [
                    ("GROUP", "CONSUMER-ID", "GROUP-INSTANCE-ID", "HOST", "CLIENT-ID", "#PARTITIONS", "ASSIGNMENT"),
                    *(
                        (group, m.member_id, m.instance_id, m.host, m.client_id, len(m.partitions),
                         _assignment_text(m.partitions))
                        for m in members
                    ),
                ],
                out,
            )  # fmt: skip
        else:
            print(f"Consumer group '{group}' has no active members.", file=out)
        print(file=out)
        rows: list[Sequence[object]] = [
            ("GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST",
             "CLIENT-ID"),
        ]  # fmt: skip
        for tp in partitions:
            current, end, m = committed.get(tp), ends.get(tp), owner.get(tp)
            lag = end - current if current is not None and end is not None else None
            rows.append((group, tp[0], tp[1], current, end, lag, m and m.member_id, m and m.host, m and m.client_id))
        table(rows, out)
    return status


def parse_datetime(text: str) -> int:
    """Kafka's --to-datetime: 'YYYY-MM-DDTHH:mm:SS.sss', an optional zone (local time without one), in ms."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise AdminError(f"invalid --to-datetime {text!r} (expected e.g. 2024-01-31T12:00:00.000)") from None
    if when.tzinfo is None:
        when = when.astimezone()  # local time, as Kafka's tool
    return int(when.timestamp() * 1000)


def _reset_targets(client: AdminClient, args: argparse.Namespace, committed: dict[TopicPartition, int]):
    if args.all_topics:
        return partitions_of(client, {t for t, _ in committed})
    whole: list[str] = []
    chosen: list[TopicPartition] = []
    for spec in args.topic:
        topic, sep, parts = spec.partition(":")
        if not sep:
            whole.append(topic)
            continue
        try:
            chosen.extend((topic, int(p)) for p in parts.split(","))
        except ValueError:
            raise AdminError(f"invalid --topic {spec!r} (expected TOPIC or TOPIC:P[,P...])") from None
    leaders = partitions_of(client, whole + [t for t, _ in chosen])
    targets = {tp: leader for tp, leader in leaders.items() if tp[0] in whole}
    for tp in chosen:
        if tp not in leaders:
            raise AdminError(f"partition {tp[0]}-{tp[1]} does not exist")
        targets[tp] = leaders[tp]
    return targets


def cmd_reset_offsets(client: AdminClient, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    group = args.group
    state = describe_group(client, group).group_state
    if state not in ("Empty", "Dead"):
        print(
            f"Error: Assignments can only be reset if the group '{group}' is inactive, "
            f"but the current state is {state}.",
            file=err,
        )
        return 1
    committed = committed_offsets(client, group)
    targets = _reset_targets(client, args, committed)
    if not targets:
        raise AdminError("no partitions to reset")
    earliest = list_offsets(client, targets, EARLIEST)
    latest = list_offsets(client, targets, LATEST)

    def clamp(tp: TopicPartition, offset: int) -> int:
        return min(max(offset, earliest[tp]), latest[tp])

    if args.to_earliest:
        new = earliest
    elif args.to_latest:
        new = latest
    elif args.to_offset is not None:
        new = {tp: clamp(tp, args.to_offset) for tp in targets}
    elif args.shift_by is not None:
        missing = [tp for tp in targets if tp not in committed]
        if missing:
            tp = missing[0]
            raise AdminError(f"cannot shift {tp[0]}-{tp[1]}: the group has no committed offset for it")
        new = {tp: clamp(tp, committed[tp] + args.shift_by) for tp in targets}
    else:
        found = list_offsets(client, targets, parse_datetime(args.to_datetime))
        new = {tp: (offset if offset >= 0 else latest[tp]) for tp, offset in found.items()}

    if args.execute:
        conn = client.coordinator(group)
        topics: dict[str, list[int]] = defaultdict(list)
        for topic, p in sorted(new):
            topics[topic].append(p)
        body = conn.request(
            ApiKey.OFFSET_COMMIT,
            {
                "group_id": group,
                "generation_id_or_member_epoch": -1,
                "member_id": "",
                "topics": [
                    {
                        "name": t,
                        "partitions": [
                            {"partition_index": p, "committed_offset": new[(t, p)], "committed_metadata": ""}
                            for p in ps
                        ],
                    }
                    for t, ps in topics.items()
                ],
            },
        )
        for t in body.topics:
            for p in t.partitions:
                _check(p.error_code, f"OffsetCommit for {t.name}-{p.partition_index}")
    elif not args.dry_run:
        print("WARN: No action will be performed as the --execute option is missing (a dry run).", file=err)
    table([("GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"), *((group, t, p, new[(t, p)]) for t, p in sorted(new))], out)
    return 0


def cmd_delete(client: AdminClient, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    failed: list[tuple[str, str]] = []
    for group in args.group:
        conn = client.coordinator(group)
        body = conn.request(ApiKey.DELETE_GROUPS, {"groups_names": [group]})
        error = ErrorCode(body.results[0].error_code)
        if error != ErrorCode.NONE:
            failed.append((group, error.name))
    if failed:
        print("Error: Deletion of some consumer groups failed:", file=err)
        for group, reason in failed:
            print(f"* Group '{group}' could not be deleted due to: {reason}", file=err)
        return 1
    names = ", ".join(f"'{g}'" for g in args.group)
    print(f"Deletion of requested consumer groups ({names}) was successful.", file=out)
    return 0


COMMANDS = {
    "list": cmd_list,
    "describe": cmd_describe,
    "reset-offsets": cmd_reset_offsets,
    "delete": cmd_delete,
}


def connection_options() -> argparse.ArgumentParser:
    """``--bootstrap-server`` and ``--command-config``: a parent parser of each tool's subcommands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--bootstrap-server",
        default=DEFAULT_BOOTSTRAP,
        metavar="HOST:PORT",
        help=f"a broker to start from, or several, comma-separated (default {DEFAULT_BOOTSTRAP})",
    )
    common.add_argument(
        "--command-config",
        default=None,
        metavar="FILE",
        help="client settings for a secured listener (security.protocol, ssl.*, sasl.*), as Kafka's tools take them",
    )
    return common


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``groups`` command and its subcommands, for kstub/cli.py."""
    common = connection_options()
    groups = sub.add_parser("groups", help="list, describe, reset and delete consumer groups")
    actions = groups.add_subparsers(dest="groups_command", required=True)

    listing = actions.add_parser("list", parents=[common], help="list every group of the cluster")
    listing.add_argument(
        "--state",
        nargs="?",
        const="",
        default=None,
        metavar="STATES",
        help="show each group's state; with STATES (comma-separated, e.g. Stable,Empty) only those",
    )
    listing.add_argument(
        "--type",
        nargs="?",
        const="",
        default=None,
        metavar="TYPES",
        help="show each group's type (classic or consumer); with TYPES (comma-separated) only those",
    )

    describe = actions.add_parser("describe", parents=[common], help="members, assignments, offsets and lag")
    describe.add_argument("group", nargs="+", metavar="GROUP")

    reset = actions.add_parser(
        "reset-offsets", parents=[common], help="move a group's committed offsets (dry run without --execute)"
    )
    reset.add_argument("group", metavar="GROUP")
    scope = reset.add_mutually_exclusive_group(required=True)
    scope.add_argument(
        "--topic", action="append", metavar="TOPIC[:P,...]", help="a topic, or some of its partitions (repeatable)"
    )
    scope.add_argument("--all-topics", action="store_true", help="every topic the group has offsets for")
    how = reset.add_mutually_exclusive_group(required=True)
    how.add_argument("--to-earliest", action="store_true")
    how.add_argument("--to-latest", action="store_true")
    how.add_argument("--to-offset", type=int, metavar="N")
    how.add_argument("--to-datetime", metavar="YYYY-MM-DDTHH:mm:SS.sss")
    how.add_argument("--shift-by", type=int, metavar="N")
    run = reset.add_mutually_exclusive_group()
    run.add_argument("--execute", action="store_true", help="commit the new offsets")
    run.add_argument("--dry-run", action="store_true", help="only show them (the default)")

    delete = actions.add_parser("delete", parents=[common], help="delete empty groups and their offsets")
    delete.add_argument("group", nargs="+", metavar="GROUP")


Command = Callable[[AdminClient, argparse.Namespace, TextIO, TextIO], int]


def run_with_client(args: argparse.Namespace, client_id: str, command: Command, out: TextIO, err: TextIO) -> int:
    """A tool's `command` with a client of ``--bootstrap-server`` (``--command-config``: its settings);
    an AdminError is printed as Kafka's tools print it, and the exit status is 1 (kstub groups, kstub txn)."""
    try:
        security = None
        if getattr(args, "command_config", None):
            from kstub.kafka_client import ClientSecurity, read_properties

            try:
                security = ClientSecurity(read_properties(args.command_config))
            except OSError as exc:
                raise AdminError(f"cannot read {args.command_config}: {exc}") from None
        with AdminClient(args.bootstrap_server, client_id=client_id, security=security) as client:
            return command(client, args, out, err)
    except AdminError as exc:
        print(f"Error: {exc}", file=err)
        return 1


def run(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    return run_with_client(args, "kstub-groups", COMMANDS[args.groups_command], out, err)
