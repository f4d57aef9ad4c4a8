"""``kstub ctl``: the admin HTTP API (kstub/control_http.py) from the command line.

    kstub ctl --admin-url http://localhost:9644 broker kill 1

Each command is one HTTP request; the JSON answer is printed. Exit status 0
on success, 1 when the server refuses (its error on stderr) or cannot be
reached. The URL may also come from $KSTUB_ADMIN_URL, the token of a server
that needs one (``--admin-token``, printed by ``kstub serve``) from
$KSTUB_ADMIN_TOKEN.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any

BROKER_ACTIONS = {
    "stop": "stop",
    "start": "start",
    "kill": "kill",
    "drop-connections": "drop-connections",
    "pause": "pause-replication",
    "resume": "resume-replication",
    "isolate": "isolate",
    "heal": "heal",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    ctl = sub.add_parser("ctl", help="fault injection and cluster control over the admin API")
    ctl.add_argument(
        "--admin-url",
        default=os.environ.get("KSTUB_ADMIN_URL"),
        help="base URL of `kstub serve --admin-port` (default: $KSTUB_ADMIN_URL)",
    )
    ctl.add_argument(
        "--admin-token",
        default=os.environ.get("KSTUB_ADMIN_TOKEN"),
        help="the admin API's token, when it needs one (default: $KSTUB_ADMIN_TOKEN)",
    )
    what = ctl.add_subparsers(dest="what", required=True)

    what.add_parser("status", help="brokers, their state and the controller")
    topics = what.add_parser("topics", help="partitions: leader, epoch, replicas, ISR, offsets")
    topics.add_argument("topic", nargs="?")
    what.add_parser("actions", help="the actions taken so far")
    what.add_parser("clear", help="remove every fault and replication knob")

    broker = what.add_parser("broker", help="stop, start, kill a broker; pause, isolate, slow its replication")
    actions = broker.add_subparsers(dest="action", required=True)
    for name in BROKER_ACTIONS:
        actions.add_parser(name).add_argument("id", type=int)
    lag = actions.add_parser("lag", help="each replication round of the broker takes MS ms (0: none)")
    lag.add_argument("id", type=int)
    lag.add_argument("ms", type=int)

    fault = what.add_parser("fault", help="errors, delays and lost requests or responses")
    kinds = fault.add_subparsers(dest="kind", required=True)
    error = kinds.add_parser("error", help="answer the next requests of API with ERROR (name or number)")
    error.add_argument("api")
    error.add_argument("error")
    error.add_argument("--topic")
    error.add_argument("--partition", type=int)
    delay = kinds.add_parser("delay", help="answer the next requests of API (or 'any') MS ms late")
    delay.add_argument("api")
    delay.add_argument("ms", type=int)
    for name, text in (("drop-response", "perform but do not answer"), ("drop-request", "close without performing")):
        kinds.add_parser(name, help=f"{text} the next requests of API (or 'any')").add_argument("api")
    for parser in (error, delay, *(kinds.choices[n] for n in ("drop-response", "drop-request"))):
        parser.add_argument("--count", type=int, default=1, help="how many requests (default 1)")
        parser.add_argument("--forever", action="store_true", help="until removed")
        parser.add_argument("--broker", type=int, help="only on this broker")
    kinds.add_parser("list")
    clear = kinds.add_parser("clear", help="remove one fault, or all")
    clear.add_argument("id", type=int, nargs="?")

    partition = what.add_parser("partition", help="move a partition's leadership or replicas")
    moves = partition.add_subparsers(dest="action", required=True)
    move = moves.add_parser("move-leader")
    move.add_argument("topic")
    move.add_argument("partition", type=int)
    move.add_argument("broker", type=int)
    reassign = moves.add_parser("reassign", help="move its replicas (AlterPartitionReassignments' rules)")
    reassign.add_argument("topic")
    reassign.add_argument("partition", type=int)
    reassign.add_argument("replicas", help="broker ids, comma-separated (e.g. 2,1), or 'cancel'")
    moves.add_parser("reassignments", help="the reassignments in progress")

    leaders = what.add_parser("leaders", help="preferred leader election")
    leaders.add_subparsers(dest="action", required=True).add_parser("elect-preferred")
    logs = what.add_parser("logs", help="log compaction")
    clean = logs.add_subparsers(dest="action", required=True).add_parser("clean", help="run a cleaning pass now")
    clean.add_argument("--topic", help="only this topic")
    clean.add_argument("--force", action="store_true", help="ignore min.cleanable.dirty.ratio")


def request_for(args: argparse.Namespace) -> tuple[str, str, dict[str, Any] | None]:
    """(method, path, JSON body) for a parsed ``kstub ctl`` command line."""
    what = args.what
    if what == "status":
        return "GET", "/v1/cluster", None
    if what == "topics":
        return "GET", f"/v1/topics/{args.topic}" if args.topic else "/v1/topics", None
    if what == "actions":
        return "GET", "/v1/actions", None
    if what == "clear":
        return "POST", "/v1/clear", {}
    if what == "broker":
        if args.action == "lag":
            return "POST", f"/v1/brokers/{args.id}/replication-delay", {"ms": args.ms}
        return "POST", f"/v1/brokers/{args.id}/{BROKER_ACTIONS[args.action]}", {}
    if what == "fault":
        if args.kind == "list":
            return "GET", "/v1/faults", None
        if args.kind == "clear":
            return "DELETE", "/v1/faults" + (f"/{args.id}" if args.id is not None else ""), None
        api = None if args.api.lower() == "any" else (int(args.api) if args.api.isdigit() else args.api)
        body: dict[str, Any] = {"type": args.kind, "api": api, "count": None if args.forever else args.count}
        if args.broker is not None:
            body["broker"] = args.broker
        if args.kind == "error":
            body["error"] = int(args.error) if args.error.lstrip("-").isdigit() else args.error
            if args.topic is not None:
                body["topic"] = args.topic
            if args.partition is not None:
                body["partition"] = args.partition
        if args.kind == "delay":
            body["ms"] = args.ms
        return "POST", "/v1/faults", body
    if what == "partition" and args.action == "reassignments":
        return "GET", "/v1/reassignments", None
    if what == "partition" and args.action == "reassign":
        replicas = None if args.replicas == "cancel" else [int(r) for r in args.replicas.split(",") if r.strip()]
        return "POST", f"/v1/topics/{args.topic}/partitions/{args.partition}/reassign", {"replicas": replicas}
    if what == "partition":
        return "POST", f"/v1/topics/{args.topic}/partitions/{args.partition}/move-leader", {"broker": args.broker}
    if what == "leaders":
        return "POST", "/v1/leaders/elect-preferred", {}
    if what == "logs":
        return "POST", "/v1/logs/clean", {"topic": args.topic, "force": args.force}
    raise AssertionError(what)


def run(args: argparse.Namespace) -> int:
    if not args.admin_url:
        print("kstub ctl: give --admin-url (or set KSTUB_ADMIN_URL)", file=sys.stderr)
        return 2
    method, path, body = request_for(args)
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(args.admin_url.rstrip("/") + path, data=data, method=method)
    if method != "GET":
        req.add_header("Content-Type", "application/json")
    if args.admin_token:
        req.add_header("Authorization", f"Bearer {args.admin_token}")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            answer = json.load(resp)
    except urllib.error.HTTPError as exc:
        try:
            message = json.load(exc).get("error", exc.reason)
        except (ValueError, AttributeError):
            message = exc.reason
        print(f"kstub ctl: {exc.code}: {message}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"kstub ctl: cannot reach {args.admin_url}: {getattr(exc, 'reason', exc)}", file=sys.stderr)
        return 1
    print(json.dumps(answer, indent=2))
    return 0
