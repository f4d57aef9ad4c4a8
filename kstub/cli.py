"""The kstub command line: `kstub serve` runs a cluster, `kstub ctl` controls it, `kstub groups` manages groups,
`kstub txn` transactions."""

from __future__ import annotations

import argparse
import gc
import io
import logging
import os
import sys


def _parser(serve_only: bool = False) -> argparse.ArgumentParser:
    """The command line's parser; with `serve_only`, without the other commands (whose modules
    ``kstub serve`` need not import: they cost start-up time and memory)."""
    from kstub import __version__

    parser = argparse.ArgumentParser(prog="kstub", description="A wire-compatible Kafka broker for tests.")
    parser.add_argument("--version", action="version", version=f"kstub {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve a cluster until interrupted")
    serve.add_argument(
        "--host", default="localhost", help="address to listen on (default localhost: IPv4 and IPv6 loopback)"
    )
    serve.add_argument(
        "--port",
        type=int,
        default=9092,
        help="port of the first broker; broker N listens on port+N (0: ephemeral ports)",
    )
    serve.add_argument("--brokers", type=int, default=1, help="number of brokers (default 1)")
    serve.add_argument(
        "--advertised-host", default=None, help="host name given to clients in Metadata (default: --host, or localhost)"
    )
    serve.add_argument(
        "-c",
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Kafka broker setting, as in server.properties (repeatable)",
    )
    serve.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="keep logs, metadata and group offsets in DIR and recover them on start (default: memory only)",
    )
    serve.add_argument(
        "--fsync",
        action="store_true",
        help="with --data-dir: fsync new data before acknowledging a produce (same as -c kstub.fsync.on.ack=true)",
    )
    serve.add_argument(
        "--admin-port", type=int, default=None, help="serve the admin HTTP API on this port (0: ephemeral)"
    )
    serve.add_argument(
        "--admin-host",
        default="127.0.0.1",
        help="address of the admin HTTP API (default 127.0.0.1 whatever --host is; beyond loopback it needs a token)",
    )
    serve.add_argument(
        "--admin-token",
        default=None,
        metavar="TOKEN",
        help="require 'Authorization: Bearer TOKEN' on the admin API (generated and printed beyond loopback)",
    )
    serve.add_argument(
        "--security-protocol",
        default="PLAINTEXT",
        type=str.upper,
        choices=["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"],
        help="protocol of the one listener at --host/--port (default PLAINTEXT; -c listeners=... for several)",
    )
    serve.add_argument(
        "--tls-dir",
        default=None,
        metavar="DIR",
        help="TLS without settings: a throwaway CA and broker certificate in DIR (made if missing); "
        "clients trust DIR/ca.pem (see docs/security.md)",
    )
    serve.add_argument(
        "--sasl-users",
        default=None,
        metavar="USER:PASSWORD,...",
        help="SASL users (PLAIN and SCRAM-SHA-256/512); same as -c kstub.sasl.users=...",
    )
    serve.add_argument(
        "--user",
        action="append",
        default=[],
        metavar="USER:PASSWORD",
        help="a SASL user (repeatable); added to --sasl-users",
    )
    serve.add_argument(
        "--kafka-version",
        default=None,
        metavar="X",
        help="pose as this Apache Kafka release (2.8, 3.0-3.9, 4.0-4.4; 2, 3, 4: the newest of each): its API "
        "versions, features and refusals (default: kstub's newest surface; docs/kafka-versions.md)",
    )
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    if serve_only:
        return parser
    from kstub import ctl

    ctl.add_parser(sub)
    from kstub import groups_tool

    groups_tool.add_parser(sub)
    from kstub import txn_tool

    txn_tool.add_parser(sub)
    sub.add_parser("compat", add_help=False, help="run real Kafka clients' compatibility matrix (kstub compat --help)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["compat"]:  # its own options; imported only when asked for (it loads client libraries)
        from kstub.compat.__main__ import main as compat_main

        return compat_main(argv[1:], prog="kstub compat")
    args = _parser(serve_only=argv[:1] == ["serve"]).parse_args(argv)
    logging.basicConfig(
        level=getattr(args, "log_level", "WARNING"),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "serve":
        return _serve(args)
    try:
        if args.command == "ctl":
            from kstub import ctl

            return ctl.run(args)
        if args.command == "groups":
            from kstub import groups_tool

            return groups_tool.run(args)
        if args.command == "txn":
            from kstub import txn_tool

            return txn_tool.run(args)
    except BrokenPipeError:
        # `kstub groups describe G | head`: the reader left early; not an error of ours. Point stdout
        # at /dev/null so the interpreter's final flush does not complain either (Python's own recipe).
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, io.UnsupportedOperation):
            pass
        return 0
    return 2


def _serve(args: argparse.Namespace) -> int:
    import signal
    from collections.abc import AsyncIterator

    import trio

    from kstub.cluster.config import BrokerConfig
    from kstub.cluster.model import ClusterState
    from kstub.server import ClusterServer, ListenerSpec

    if args.brokers < 1:
        print("kstub: --brokers must be at least 1", file=sys.stderr)
        return 2
    try:
        config = BrokerConfig.from_pairs(args.config)
        users = [u for u in [args.sasl_users, *args.user] if u]
        if users:
            config.set("kstub.sasl.users", ",".join(users))
        if args.kafka_version is not None:
            config.set("kstub.kafka.version", args.kafka_version)
        cluster = ClusterState(config)  # (a setting it cannot serve: authorizer.class.name)
    except ValueError as exc:
        print(f"kstub: {exc}", file=sys.stderr)
        return 2
    if args.data_dir:
        from kstub.cluster.disk_store import DiskStore

        cluster.store = DiskStore(args.data_dir, fsync_on_ack=args.fsync or config["kstub.fsync.on.ack"])
    elif args.fsync:
        print("kstub: --fsync needs --data-dir", file=sys.stderr)
        return 2
    spec = ListenerSpec(
        host=args.host,
        port=args.port,
        brokers=args.brokers,
        advertised_host=args.advertised_host,
        admin_port=args.admin_port,
        admin_host=args.admin_host,
        admin_token=args.admin_token,
        security_protocol=args.security_protocol,
        tls_dir=args.tls_dir,
    )
    server = ClusterServer(cluster, spec)

    async def stop_on_sigterm(signals: AsyncIterator[int], scope: trio.CancelScope) -> None:
        async for _ in signals:
            logging.getLogger("kstub").info("SIGTERM: stopping")
            scope.cancel()  # a clean stop: the store is closed (the in-memory store removes its spill directory)
            return

    async def run() -> None:
        with trio.open_signal_receiver(signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(stop_on_sigterm, signals, nursery.cancel_scope)
                brokers = await nursery.start(server.run)
                bootstrap = ",".join(f"{b.advertised_host}:{b.port}" for b in brokers)
                names = list(brokers[0].endpoints) if brokers else []
                for name in names[1:]:
                    servers = ",".join("{}:{}".format(*b.endpoints[name]) for b in brokers)
                    logging.getLogger("kstub").info("listener %s: bootstrap servers %s", name, servers)
                if args.tls_dir and os.path.exists(os.path.join(args.tls_dir, "ca.pem")):
                    logging.getLogger("kstub").info("TLS: clients trust %s", os.path.join(args.tls_dir, "ca.pem"))
                logging.getLogger("kstub").info("kstub ready: bootstrap servers %s", bootstrap)
                # What start-up made (modules, schemas, settings, the cluster) lives as long as the process:
                # out of the cyclic collector's full passes, which would otherwise walk it again each time
                gc.freeze()
                if cluster.kafka_version is not None:
                    posed = cluster.kafka_version
                    logging.getLogger("kstub").info(
                        "posing as Apache Kafka %s (as %s advertised it)", posed.name, posed.artifact
                    )
                if server.admin_port is not None:
                    from kstub.control_http_access import url_host

                    url = f"http://{url_host(args.admin_host)}:{server.admin_port}"
                    logging.getLogger("kstub").info("admin API: %s", url)
                    token = server.admin_access.token if server.admin_access else None
                    if token is not None:
                        logging.getLogger("kstub").info(
                            "admin API token: %s (kstub ctl --admin-token, or Authorization: Bearer)", token
                        )
                    console = f"{url}/" + (f"?token={token}" if token is not None else "")
                    logging.getLogger("kstub").info("console: %s (metrics: %s/metrics)", console, url)

    try:
        trio.run(run)
    except BaseException as exc:
        from kstub.cluster.disk_store import RecoveryError
        from kstub.errors import unwrap
        from kstub.security import SecurityConfigError

        error = unwrap(exc)  # trio wraps errors from inside nurseries in exception groups
        if isinstance(error, KeyboardInterrupt):
            return 0
        if isinstance(error, OSError):
            print(f"kstub: cannot listen: {error}", file=sys.stderr)
            return 1
        if isinstance(error, SecurityConfigError):
            print(f"kstub: {error}", file=sys.stderr)
            return 2
        if isinstance(error, RecoveryError):
            print(f"kstub: {error}", file=sys.stderr)
            return 1
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
