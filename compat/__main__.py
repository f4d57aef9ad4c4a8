"""python -m compat (or `kstub compat`): run the real-client compatibility matrix.

    python -m compat [--bootstrap HOST:PORT] [--admin-url URL] [--clients a,b] [--scenarios x,y]
                     [--json FILE] [--markdown FILE] [--jobs N] [--timeout S] [--list]

Without --bootstrap it starts kstub in this process (3 brokers, topic
auto-creation off, no initial rebalance delay) and runs against that. Prints
the client x scenario matrix; exits 1 if any cell failed, 2 if the cluster cannot be
reached, 0 otherwise.
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
from .report import text, write_json, write_markdown
from .runner import FAIL, Cell, Runner
from .scenarios import SCENARIOS

# The cluster `python -m compat` starts when given no --bootstrap.
SELF_CONFIG = {"auto.create.topics.enable": False, "group.initial.rebalance.delay.ms": 0}


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
    p.add_argument("--bootstrap", help="HOST:PORT[,...] of the cluster (default: start kstub in-process)")
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
    p.add_argument("--markdown", type=Path, metavar="FILE", help="write the matrix as a Markdown table")
    p.add_argument("--jobs", type=int, default=3, help="cells run at once (default 3; exclusive ones run alone)")
    p.add_argument("--timeout", type=float, default=15.0, help="seconds a client operation may take (default 15)")
    p.add_argument("--cell-timeout", type=float, default=120.0, help="seconds a cell may take (default 120)")
    p.add_argument("--brokers", type=int, default=3, help="brokers of the self-started kstub (default 3)")
    p.add_argument("--list", action="store_true", help="list scenarios and clients, and exit")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    return p


@contextlib.contextmanager
def self_started(brokers: int) -> Iterator[tuple[str, str | None]]:
    """kstub in this process; yields (bootstrap, admin URL or None when this kstub has no control plane)."""
    from kstub.embedded import EmbeddedCluster

    kwargs: dict = {"brokers": brokers, "config": dict(SELF_CONFIG)}
    has_admin = "admin_port" in inspect.signature(EmbeddedCluster).parameters
    if has_admin:
        kwargs["admin_port"] = 0
    with EmbeddedCluster(**kwargs) as cluster:
        yield cluster.bootstrap_servers, getattr(cluster, "admin_url", None) if has_admin else None


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

    def go(bootstrap: str, admin_url: str | None) -> int:
        runner = Runner(
            bootstrap,
            [CLIENTS[n] for n in args.clients],
            [SCENARIOS[n] for n in args.scenarios],
            admin_url=admin_url,
            timeout=args.timeout,
            cell_timeout=args.cell_timeout,
            jobs=args.jobs,
            progress=progress,
        )
        try:
            results = runner.run()
        except (OSError, ProbeError) as exc:
            print(f"compat: cannot use the cluster at {bootstrap}: {exc}", file=sys.stderr)
            return 2
        for note in results.capabilities.notes:
            print(f"note: {note}", file=sys.stderr)
        print(text(results))
        if args.json:
            write_json(results, args.json)
        if args.markdown:
            write_markdown(results, args.markdown)
        return 1 if any(c.status == FAIL for c in results.cells) else 0

    if args.bootstrap:
        return go(args.bootstrap, args.admin_url)
    with self_started(args.brokers) as (bootstrap, admin_url):
        return go(bootstrap, args.admin_url or admin_url)


def main(argv: list[str] | None = None, prog: str = "python -m compat") -> int:
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("kafka", "aiokafka"):  # they log what the cells report anyway (e.g. the missing topic)
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    return run(parser(prog).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
