#!/usr/bin/env python3
"""How fast kstub starts and how much memory it holds, against its targets.

    python bench/startup.py [--runs 10] [--json]

(a) ``kstub serve``: from process start to the first successful Metadata
    response (target under 0.3 s). The server is started with ``--port 0``;
    its ``kstub ready: bootstrap servers ...`` log line says where it listens,
    then one Metadata v1 request is sent with kstub's codec.
(b) ``kstub.Cluster()``: in a fresh interpreter, from the call of the context
    manager to ready, i.e. listening (target under 30 ms). Reported for the
    first cluster of the process, for later ones, and, separately, the one-off
    import of ``kstub.Cluster`` (paid once per test session, at the first use
    of the fixture, not per cluster).
(c) Idle RSS of the ``kstub serve`` process after that first Metadata
    response (target under 40 MB), and of a Python process holding a running
    ``kstub.Cluster``.

For scale it also times a bare interpreter (``python -c pass``) and one that
imports Trio and nothing else (``python -c 'import trio'``): the floor under
(a) on this machine for any server on Trio. Reads /proc for memory, so Linux only.
Each figure is the median of --runs runs, with the min and max.

Bytecode: an installed package has its ``.pyc`` files, but an editable
install run under ``PYTHONDONTWRITEBYTECODE=1`` recompiles kstub's sources at
every start (about 30 ms more here). The child processes therefore run with
byte-code caching on (kstub's written next to its sources, as an installed
package has them), after one warm-up run; (a) is also reported with ``PYTHONDONTWRITEBYTECODE=1`` and no prefix
(an editable checkout without ``__pycache__``: kstub compiled at each start).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

from kstub.kafka_client import Connection
from kstub.protocol import ApiKey

METADATA = ApiKey.METADATA
READY = "kstub ready: bootstrap servers "

TARGETS = {"serve_to_metadata_s": 0.3, "cluster_ready_s": 0.030, "serve_idle_rss_mb": 40.0}


def child_env(bytecode: bool = True) -> dict[str, str]:
    env = dict(os.environ)
    if bytecode:
        # every module's .pyc where it is installed (a private PYTHONPYCACHEPREFIX would hide the standard
        # library's, so that each module first imported after the warm-up, e.g. on the first Produce, was
        # compiled from source in the middle of a measurement)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.pop("PYTHONPYCACHEPREFIX", None)
    else:  # dependencies' .pyc files as installed, none written for kstub's sources
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONPYCACHEPREFIX", None)
    return env


def serve_command() -> list[str]:
    """The installed ``kstub`` script next to this interpreter, else ``python -m kstub``."""
    script = shutil.which("kstub", path=os.path.dirname(sys.executable))
    return [script] if script else [sys.executable, "-m", "kstub"]


def metadata(address: str) -> dict:
    with Connection(address, client_id="bench") as conn:
        return conn.request(METADATA, 1, {"topics": None})


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def one_serve(bytecode: bool = True, brokers: int = 1) -> tuple[float, float]:
    """Seconds from spawning ``kstub serve`` to a Metadata response; its RSS then, in MB."""
    command = [*serve_command(), "serve", "--host", "127.0.0.1", "--port", "0", "--brokers", str(brokers)]
    env = child_env(bytecode)
    start = time.perf_counter()
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if READY in line:
                address = line.split(READY, 1)[1].split(",")[0].strip()
                break
        else:
            raise RuntimeError(f"kstub serve exited with {proc.wait()} before it was ready")
        body = metadata(address)
        elapsed = time.perf_counter() - start
        assert body["brokers"][0]["port"] == int(address.rsplit(":", 1)[1])
        return elapsed, rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait()


def bare_interpreter(code: str = "pass") -> float:
    env = child_env()
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    return time.perf_counter() - start


# Run in a fresh interpreter, so that nothing the benchmark itself imported is counted or spared.
IN_PROCESS = r"""
import json, sys, time
t0 = time.perf_counter()
import kstub
kstub.Cluster
t1 = time.perf_counter()
ready, total = [], []
for i in range(int(sys.argv[1])):
    start = time.perf_counter()
    with kstub.Cluster() as cluster:
        ready.append(time.perf_counter() - start)
        if i == 0:
            with open("/proc/self/status") as status:
                rss = next(int(l.split()[1]) / 1024 for l in status if l.startswith("VmRSS:"))
    total.append(time.perf_counter() - start)
print(json.dumps({"import_s": t1 - t0, "ready_s": ready, "start_stop_s": total, "rss_mb": rss}))
"""


def in_process(clusters: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", IN_PROCESS, str(clusters)], check=True, capture_output=True, text=True, env=child_env()
    )
    return json.loads(out.stdout)


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--brokers", type=int, default=1, help="kstub serve --brokers N (default 1)")
    args = parser.parse_args()

    one_serve(brokers=args.brokers), in_process(1)  # warm-up: fills the bytecode cache
    bare = [bare_interpreter() for _ in range(args.runs)]
    with_trio = [bare_interpreter("import trio") for _ in range(args.runs)]
    no_pyc = [one_serve(bytecode=False, brokers=args.brokers) for _ in range(args.runs)]
    serves = [one_serve(brokers=args.brokers) for _ in range(args.runs)]
    runs = [in_process(10) for _ in range(args.runs)]
    figures = {
        "python": sys.version.split()[0],
        "command": " ".join(serve_command()),
        "brokers": args.brokers,
        "bare_interpreter_s": summary(bare),
        "import_trio_s": summary(with_trio),
        "serve_to_metadata_s": summary([s[0] for s in serves]),
        "serve_idle_rss_mb": summary([s[1] for s in serves]),
        "serve_to_metadata_no_pyc_s": summary([s[0] for s in no_pyc]),
        "cluster_import_s": summary([r["import_s"] for r in runs]),
        "cluster_ready_s": summary([r["ready_s"][0] for r in runs]),
        "cluster_ready_later_s": summary([x for r in runs for x in r["ready_s"][1:]]),
        "cluster_start_stop_later_s": summary([x for r in runs for x in r["start_stop_s"][1:]]),
        "cluster_process_rss_mb": summary([r["rss_mb"] for r in runs]),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return

    def line(label: str, key: str, unit: str) -> None:
        f = figures[key]
        scale = 1000 if unit == "ms" else 1
        target = TARGETS.get(key)
        verdict = ""
        if target is not None:
            verdict = f"  target < {target * scale:g} {unit}: {'ok' if f['median'] < target else 'MISSED'}"
        print(
            f"{label:<52} {f['median'] * scale:7.1f} {unit}"
            f"  (min {f['min'] * scale:.1f}, max {f['max'] * scale:.1f}){verdict}"
        )

    print(
        f"kstub start-up, Python {figures['python']}, kstub serve --brokers {args.brokers}, "
        f"{args.runs} runs each, median (min, max)"
    )
    line("bare interpreter: python -c pass", "bare_interpreter_s", "ms")
    line("the runtime's floor: python -c 'import trio'", "import_trio_s", "ms")
    line("(a) kstub serve: process start -> Metadata response", "serve_to_metadata_s", "ms")
    line("    the same, kstub's sources compiled at start", "serve_to_metadata_no_pyc_s", "ms")
    line("(b) kstub.Cluster(): call -> ready, first in process", "cluster_ready_s", "ms")
    line("    kstub.Cluster(): call -> ready, later ones", "cluster_ready_later_s", "ms")
    line("    kstub.Cluster(): start + stop, later ones", "cluster_start_stop_later_s", "ms")
    line("    import kstub + kstub.Cluster (once per process)", "cluster_import_s", "ms")
    line("(c) kstub serve: idle RSS after first Metadata", "serve_idle_rss_mb", "MB")
    line("    python process with a running kstub.Cluster", "cluster_process_rss_mb", "MB")


if __name__ == "__main__":
    main()
