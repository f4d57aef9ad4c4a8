"""python -m compat (or `kstub compat`): run the real-client compatibility matrix.

    python -m compat [--bootstrap HOST:PORT | --against kstub|kafka|both] [--admin-url URL]
                     [--clients a,b] [--scenarios x,y] [--json FILE] [--markdown FILE] [--jobs N]
                     [--timeout S] [--list]

Without --bootstrap it starts the cluster itself (3 brokers, topic
auto-creation off, no initial rebalance delay): kstub in this process
(`--against kstub`, the default), real Apache Kafka (`--against kafka`, the
release pinned in compat/kafka/pom.xml), or one after the other (`--against
both`), which prints each cell's result against both side by side. Exits 1 if
any cell failed (with --against both: failed on one broker but not on the
other), 2 if a cluster cannot be reached or started, 0 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

from .clients import CLIENTS
from .probe import ProbeError
from .realkafka import KAFKA_VERSION, RealKafkaUnavailable
from .report import Comparison, compare_text, text, write_json, write_markdown
from .runner import FAIL, Cell, Results, Runner
from .scenarios import CONTROL_PLANE, SCENARIOS

# The cluster `python -m compat` starts when given no --bootstrap.
SELF_CONFIG = {"auto.create.topics.enable": False, "group.initial.rebalance.delay.ms": 0}

#: Scenarios that need what real Kafka has no counterpart of are "n/a" there, not skipped.
KAFKA_NOT_APPLICABLE = {CONTROL_PLANE: "needs kstub's control plane (to stop and restart a broker)"}


def _names(value: str, known: dict, what: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown {what}: {', '.join(unknown)} (known: {', '.join(known)})")
    return names


def parser(prog: str = "python -m compat") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Real Kafka clients against a cluster: a client x scenario matrix of pass / fail / skip.",
    )
    p.add_argument("--bootstrap", help="HOST:PORT[,...] of the cluster (default: start the --against cluster)")
    p.add_argument(
        "--against",
        choices=("kstub", "kafka", "both"),
        help="without --bootstrap: start kstub in-process (default), real Apache Kafka, or both, one after the other",
    )
    p.add_argument("--admin-url", help="the cluster's control plane (kstub serve --admin-port), for failover")
    p.add_argument(
        "--clients",
        type=lambda v: _names(v, CLIENTS, "client"),
        default=list(CLIENTS),
        help=f"comma-separated (default all: {','.join(CLIENTS)})",
    )
    p.add_argument(
        "--scenarios",
        type=lambda v: _names(v, SCENARIOS, "scenario"),
        default=list(SCENARIOS),
        help="comma-separated (default all; --list shows them)",
    )
    p.add_argument("--json", type=Path, metavar="FILE", help="write the results as JSON")
    p.add_argument(
        "--markdown",
        type=Path,
        metavar="FILE",
        action="append",
        default=[],
        help="write the matrix as a Markdown table (between the matrix markers where FILE has them); repeatable",
    )
    p.add_argument("--jobs", type=int, default=3, help="cells run at once (default 3; exclusive ones run alone)")
    p.add_argument("--timeout", type=float, default=15.0, help="seconds a client operation may take (default 15)")
    p.add_argument("--cell-timeout", type=float, default=120.0, help="seconds a cell may take (default 120)")
    p.add_argument("--brokers", type=int, default=3, help="brokers of the self-started cluster(s) (default 3)")
    p.add_argument(
        "--kafka-version",
        metavar="X",
        help="the self-started kstub poses as this Apache Kafka release (kstub serve --kafka-version), e.g. 2.8",
    )
    p.add_argument("--list", action="store_true", help="list scenarios and clients, and exit")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    return p


@contextlib.contextmanager
def self_started(brokers: int, kafka_version: str | None = None) -> Iterator[tuple[str, str | None]]:
    """kstub in this process (posing as `kafka_version` if given); yields (bootstrap, admin URL or None when
    this kstub has no control plane)."""
    from kstub.embedded import EmbeddedCluster

    kwargs: dict = {"brokers": brokers, "config": dict(SELF_CONFIG)}
    if kafka_version:
        kwargs["kafka_version"] = kafka_version
    has_admin = "admin_port" in inspect.signature(EmbeddedCluster).parameters
    if has_admin:
        kwargs["admin_port"] = 0
    with EmbeddedCluster(**kwargs) as cluster:
        yield cluster.bootstrap_servers, getattr(cluster, "admin_url", None) if has_admin else None


@contextlib.contextmanager
def self_started_kafka(brokers: int) -> Iterator[str]:
    """Real Apache Kafka with the same settings as the self-started kstub; yields its bootstrap servers."""
    from .realkafka import RealKafka

    config = {k: str(v).lower() for k, v in SELF_CONFIG.items()}
    with RealKafka(brokers=brokers, config=config) as kafka:
        yield kafka.bootstrap_servers


def run(args: argparse.Namespace) -> int:
    if args.list:
        for s in SCENARIOS.values():
            needs = f"  [needs: {', '.join(sorted(s.needs))}]" if s.needs else ""
            print(f"{s.name:24} {s.title}{needs}")
        print()
        for name, cls in CLIENTS.items():
            print(f"{name:24} {cls.unavailable() or 'available'}")
        return 0

    def progress(cell: Cell, done: int, total: int) -> None:
        if not args.quiet:
            reason = f": {cell.reason}" if cell.reason and cell.status != "pass" else ""
            print(
                f"[{done:3}/{total}] {cell.scenario} x {cell.client}: {cell.status} ({cell.seconds:.1f}s){reason}",
                file=sys.stderr,
                flush=True,
            )

    def matrix(bootstrap: str, admin_url: str | None, not_applicable: dict[str, str] | None = None) -> Results:
        runner = Runner(
            bootstrap,
            [CLIENTS[n] for n in args.clients],
            [SCENARIOS[n] for n in args.scenarios],
            admin_url=admin_url,
            timeout=args.timeout,
            cell_timeout=args.cell_timeout,
            jobs=args.jobs,
            progress=progress,
            not_applicable=not_applicable,
        )
        results = runner.run()
        for note in results.capabilities.notes:
            print(f"note: {note}", file=sys.stderr)
        return results

    def report(results: Results | Comparison) -> None:
        if args.json:
            write_json(results, args.json)
        for path in args.markdown:
            write_markdown(results, path)

    def on_kstub() -> Results:
        with self_started(args.brokers, args.kafka_version) as (bootstrap, admin_url):
            return matrix(bootstrap, args.admin_url or admin_url)

    def on_kafka() -> Results:
        with self_started_kafka(args.brokers) as bootstrap:
            return matrix(bootstrap, None, KAFKA_NOT_APPLICABLE)

    if args.bootstrap and args.against:
        print("compat: --against starts the cluster itself; it cannot be combined with --bootstrap", file=sys.stderr)
        return 2
    try:
        if args.bootstrap:
            results = matrix(args.bootstrap, args.admin_url)
        elif args.against == "both":
            if not args.quiet:
                print("compat: against kstub", file=sys.stderr, flush=True)
            on_kstub_results = on_kstub()
            if not args.quiet:
                print(f"compat: against Apache Kafka {KAFKA_VERSION}", file=sys.stderr, flush=True)
            comparison = Comparison(on_kstub_results, on_kafka(), KAFKA_VERSION)
            print(compare_text(comparison))
            report(comparison)
            return 1 if comparison.differences() else 0
        elif args.against == "kafka":
            results = on_kafka()
        else:
            results = on_kstub()
    except RealKafkaUnavailable as exc:
        print(f"compat: cannot start real Kafka: {exc}", file=sys.stderr)
        return 2
    except (OSError, ProbeError) as exc:
        where = f" at {args.bootstrap}" if args.bootstrap else ""
        print(f"compat: cannot use the cluster{where}: {exc}", file=sys.stderr)
        return 2
    print(text(results))
    report(results)
    return 1 if any(c.status == FAIL for c in results.cells) else 0


def main(argv: list[str] | None = None, prog: str = "python -m compat") -> int:
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("kafka", "aiokafka"):  # they log what the cells report anyway (e.g. the missing topic)
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    return run(parser(prog).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
