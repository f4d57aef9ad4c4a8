"""Running the matrix: every selected scenario with every selected client, one cell at a time per job.

A cell is "pass", "fail" (with what went wrong) or "skip" (with why: the
client cannot do it, or the cluster lacks a capability). Each cell runs on a
thread of its own with a deadline; a cell that overruns it fails, and the run
goes on (its thread is abandoned; topics and groups are unique per cell, so it
cannot disturb the others). Scenarios marked exclusive (they stop brokers)
run one at a time after all the others.
"""

from __future__ import annotations

import queue
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from .clients.base import Client
from .control_client import ControlPlane, ControlPlaneError
from .model import CapabilityMissing, CheckFailed, ClientError, Unsupported
from .probe import GROUP_APIS, Probe, ProbeError
from .scenarios import CONTROL_PLANE, GROUPS, NO_AUTO_CREATE, THREE_BROKERS, Ctx, Scenario, require

PASS, FAIL, SKIP = "pass", "fail", "skip"
NA = (
    "n/a"  # the scenario does not apply to this cluster (Runner's not_applicable: e.g. real Kafka has no control plane)
)


@dataclass
class Cell:
    scenario: str
    client: str
    status: str
    reason: str = ""
    seconds: float = 0.0


@dataclass
class Capabilities:
    caps: frozenset[str]
    brokers: int
    missing_group_apis: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def discover(bootstrap: str, admin_url: str | None, timeout: float = 10.0) -> Capabilities:
    """What the cluster at `bootstrap` can do, asked over the protocol (and the control plane's URL)."""
    caps: set[str] = set()
    notes: list[str] = []
    with Probe(bootstrap, timeout) as probe:
        brokers = len(probe.metadata([]).brokers)
        missing = probe.missing_apis(GROUP_APIS)
        if not missing:
            caps.add(GROUPS)
        if not probe.auto_creates_topics():
            caps.add(NO_AUTO_CREATE)
    if brokers >= 3:
        caps.add(THREE_BROKERS)
    if admin_url:
        try:
            ControlPlane(admin_url, timeout).check()
            caps.add(CONTROL_PLANE)
        except ControlPlaneError as exc:
            notes.append(f"control plane at {admin_url} does not answer: {exc}")
    return Capabilities(frozenset(caps), brokers, missing, notes)


@dataclass
class Results:
    bootstrap: str
    clients: dict[str, str | None]  # name -> version (None: unavailable)
    scenarios: list[Scenario]
    capabilities: Capabilities
    cells: list[Cell]
    seconds: float

    def cell(self, scenario: str, client: str) -> Cell:
        return next(c for c in self.cells if c.scenario == scenario and c.client == client)

    def count(self, status: str) -> int:
        return sum(1 for c in self.cells if c.status == status)

    @property
    def failed(self) -> bool:
        return self.count(FAIL) > 0

    def to_json(self) -> dict:
        return {
            "bootstrap": self.bootstrap,
            "clients": self.clients,
            "capabilities": sorted(self.capabilities.caps),
            "brokers": self.capabilities.brokers,
            "scenarios": [
                {"name": s.name, "title": s.title, "checks": s.checks, "needs": sorted(s.needs)} for s in self.scenarios
            ],
            "cells": [asdict(c) for c in self.cells],
            "summary": {status: self.count(status) for status in (PASS, FAIL, SKIP, NA)},
            "seconds": round(self.seconds, 1),
        }


class Runner:
    def __init__(
        self,
        bootstrap: str,
        clients: list[type[Client]],
        scenarios: list[Scenario],
        *,
        admin_url: str | None = None,
        timeout: float = 15.0,
        cell_timeout: float = 120.0,
        jobs: int = 1,
        progress: Callable[[Cell, int, int], None] | None = None,
        not_applicable: dict[str, str] | None = None,
    ) -> None:
        """`not_applicable`: capability -> reason; a scenario that needs one the cluster lacks is "n/a" with
        that reason rather than a skip (what a kind of cluster cannot offer at all, not a missing option)."""
        self.bootstrap = bootstrap
        self.clients = clients
        self.scenarios = scenarios
        self.admin_url = admin_url
        self.timeout = timeout
        self.cell_timeout = cell_timeout
        self.jobs = max(1, jobs)
        self.progress = progress
        self.not_applicable = not_applicable or {}
        self.run_id = uuid.uuid4().hex[:6]

    def run(self) -> Results:
        started = time.monotonic()
        caps = discover(self.bootstrap, self.admin_url, self.timeout)
        versions: dict[str, str | None] = {}
        for cls in self.clients:
            versions[cls.name] = None if cls.unavailable() else _version(cls)
        pairs = [(s, c) for s in self.scenarios for c in self.clients]
        shared = [p for p in pairs if not p[0].exclusive]
        alone = [p for p in pairs if p[0].exclusive]
        done: dict[tuple[str, str], Cell] = {}
        total = len(pairs)

        def finish(cell: Cell) -> None:
            done[(cell.scenario, cell.client)] = cell
            if self.progress:
                self.progress(cell, len(done), total)

        self._run_pool(shared, caps, self.jobs, finish)
        self._run_pool(alone, caps, 1, finish)
        cells = [done[(s.name, c.name)] for s, c in pairs]
        return Results(self.bootstrap, versions, self.scenarios, caps, cells, time.monotonic() - started)

    def _run_pool(
        self,
        pairs: list[tuple[Scenario, type[Client]]],
        caps: Capabilities,
        jobs: int,
        finish: Callable[[Cell], None],
    ) -> None:
        work: queue.Queue[tuple[Scenario, type[Client]]] = queue.Queue()
        for p in pairs:
            work.put(p)
        lock = threading.Lock()

        def worker() -> None:
            while True:
                try:
                    s, c = work.get_nowait()
                except queue.Empty:
                    return
                cell = self.run_cell(s, c, caps)
                with lock:
                    finish(cell)

        workers = [threading.Thread(target=worker, daemon=True, name=f"compat-job-{i}") for i in range(jobs)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()

    def run_cell(self, s: Scenario, cls: type[Client], caps: Capabilities) -> Cell:
        reason = cls.unavailable()
        if reason:
            return Cell(s.name, cls.name, SKIP, reason)
        if s.name in cls.unsupported:
            return Cell(s.name, cls.name, SKIP, cls.unsupported[s.name])
        for need in sorted(s.needs - caps.caps):
            if need in self.not_applicable:
                return Cell(s.name, cls.name, NA, self.not_applicable[need])
        try:
            require(caps.caps, s.needs, caps.missing_group_apis)
        except CapabilityMissing as exc:
            return Cell(s.name, cls.name, SKIP, str(exc))
        outcome: list[Cell] = []
        started = time.monotonic()
        thread = threading.Thread(
            target=lambda: outcome.append(self._execute(s, cls, caps)), daemon=True, name=f"compat-{s.name}-{cls.name}"
        )
        thread.start()
        thread.join(self.cell_timeout)
        if not outcome:
            return Cell(s.name, cls.name, FAIL, f"did not finish within {self.cell_timeout:.0f}s", self.cell_timeout)
        cell = outcome[0]
        cell.seconds = round(time.monotonic() - started, 2)
        if cell.status == FAIL and s.name in cls.limitations:
            cell.reason = f"{cell.reason} (a known limitation of {cls.name}: {cls.limitations[s.name]})"
        return cell

    def _execute(self, s: Scenario, cls: type[Client], caps: Capabilities) -> Cell:
        def cell(status: str, reason: str) -> Cell:
            return Cell(s.name, cls.name, status, " ".join(reason.split()))

        admin = ControlPlane(self.admin_url, self.timeout) if CONTROL_PLANE in caps.caps and self.admin_url else None
        try:
            with Probe(self.bootstrap, self.timeout) as probe:
                ctx = Ctx(self.run_id, s.name, cls.name, probe, caps.caps, admin, self.timeout)
                client = cls(self.bootstrap, self.timeout, caps.caps)
                try:
                    detail = s.fn(client, ctx)
                finally:
                    ctx.cleanup()
            return cell(PASS, detail or "")
        except CheckFailed as exc:
            return cell(FAIL, str(exc))
        except ClientError as exc:
            return cell(FAIL, f"{cls.name} reported {exc}")
        except Unsupported as exc:
            return cell(SKIP, str(exc))
        except CapabilityMissing as exc:
            return cell(SKIP, str(exc))
        except (ProbeError, ControlPlaneError) as exc:
            return cell(FAIL, f"set-up or check by the suite failed: {exc}")
        except Exception as exc:
            where = traceback.extract_tb(exc.__traceback__)[-1]
            return cell(FAIL, f"{type(exc).__name__}: {exc} (at {where.filename.rsplit('/', 1)[-1]}:{where.lineno})")


def _version(cls: type[Client]) -> str:
    try:
        return cls.version()
    except Exception as exc:
        return f"? ({exc})"
