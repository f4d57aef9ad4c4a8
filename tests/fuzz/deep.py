"""A deep fuzz run: ``python3 dev.py fuzz --minutes N`` (or this file with the venv's python).

Rounds until the time is up; each round

1. decodes frames in-process for a while (`fuzzlib.check_decode` on
   `fuzzlib.make_frame`'s generated and mutated frames: any exception other
   than the codec's own is a failure, its frame saved under --crash-dir);
2. runs a campaign of --frames-per-round frames against one long-lived
   ``kstub serve`` (a subprocess under an address-space limit) over
   --connections concurrent connections, with a watcher connection that must
   be answered throughout;
3. checks the server: alive, peak RSS under --max-rss-mb, ApiVersions and
   Metadata answered on a fresh connection, no traceback in its log.

At the end it prints the frames sent to the server, the frames decoded
in-process, and the server's peak RSS. It exits 1 at the first failing server
check (the round's seed reproduces its frames) or if any decode failed.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import traceback
from functools import partial
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzzlib import CampaignStats, LiveServer, campaign, check_decode, frame_stream, load_seeds, make_frame, rss_kib


def _args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="dev.py fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="how long to run (default 5)")
    parser.add_argument("--seed", type=int, default=None, help="first round's seed (default: from the clock)")
    parser.add_argument("--frames-per-round", type=int, default=20_000, help="frames per live campaign")
    parser.add_argument("--decode-seconds", type=float, default=5.0, help="in-process decoding per round")
    parser.add_argument("--connections", type=int, default=32, help="concurrent fuzzing connections")
    parser.add_argument("--memory-limit-mb", type=int, default=2048, help="the server's address-space limit")
    parser.add_argument("--max-rss-mb", type=int, default=512, help="peak RSS the server may reach")
    parser.add_argument(
        "--crash-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "kstub-fuzz-crashes",
        help="where frames that fail decoding are saved",
    )
    return parser.parse_args(argv)


def _decode_round(rnd: random.Random, seeds: list, seconds: float, crash_dir: Path) -> tuple[int, int]:
    frames = failures = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for _ in range(200):
            frame = make_frame(rnd, seeds)
            frames += 1
            try:
                check_decode(frame)
            except Exception:
                failures += 1
                crash_dir.mkdir(parents=True, exist_ok=True)
                path = crash_dir / f"decode-{frame[:4].hex()}-{len(frame)}-{failures}.bin"
                path.write_bytes(frame)
                print(f"DECODE FAILURE, frame saved as {path}:\n{traceback.format_exc()}", file=sys.stderr)
    return frames, failures


def main(argv: list[str]) -> int:
    args = _args(argv)
    seed = args.seed if args.seed is not None else int(time.time())
    seeds = load_seeds()
    deadline = time.monotonic() + args.minutes * 60
    totals = CampaignStats()
    decoded = decode_failures = rounds = 0
    peak_rss = 0
    failed = False
    print(f"fuzz: seed {seed}, {len(seeds)} seed frames, {args.minutes:g} min", flush=True)
    server = LiveServer(memory_limit=args.memory_limit_mb << 20).start()
    try:
        while time.monotonic() < deadline:
            round_seed = seed + rounds
            rnd = random.Random(round_seed)
            seconds = min(args.decode_seconds, max(deadline - time.monotonic(), 0))
            n, bad = _decode_round(rnd, seeds, seconds, args.crash_dir)
            decoded += n
            decode_failures += bad
            frames = frame_stream(random.Random(round_seed), seeds, args.frames_per_round)
            before = totals.frames
            try:
                trio.run(partial(campaign, server, frames, concurrency=args.connections, stats=totals, seed=round_seed))
                health = server.check(args.max_rss_mb * 1024)
            except Exception as exc:  # an assertion of the checks, or the server gone (OSError, in a group)
                print(f"SERVER FAILURE in round {rounds} (--seed {round_seed} reproduces it): {exc!r}", file=sys.stderr)
                print(f"kstub's log: {server.log_path}", file=sys.stderr)
                failed = True
                break
            peak_rss = max(peak_rss, health["peak_rss_kib"])
            rounds += 1
            print(
                f"round {rounds}: {totals.frames - before} frames to the server, {n} decoded in-process; "
                f"server RSS {health['rss_kib'] // 1024} MiB (peak {peak_rss // 1024} MiB)",
                flush=True,
            )
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    finally:
        if server.proc is not None and server.proc.poll() is None:
            try:
                peak_rss = max(peak_rss, rss_kib(server.proc.pid)[1])
            except OSError:
                pass
        server.stop()
    skipped = ", ".join(f"{v} x {k}" for k, v in sorted(totals.skipped.items())) or "none"
    print(
        f"fuzz: {rounds} rounds; frames sent to the server: {totals.frames} over {totals.connections} connections "
        f"({totals.answered} answered, {totals.closed_by_server} connections closed by the server, "
        f"{totals.watch_requests} watcher requests answered); frames decoded in-process: {decoded} "
        f"({decode_failures} failures); known issues not sent: {skipped}; "
        f"peak RSS of the server: {peak_rss / 1024:.1f} MiB"
    )
    if not failed and decode_failures == 0:
        server.log_path.unlink(missing_ok=True)
    return 1 if failed or decode_failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
