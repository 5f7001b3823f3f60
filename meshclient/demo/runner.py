"""Runs the demo: start the mesh, drive traffic through meshclient and the baseline, step
through the phases while the renderer shows the live state, then summarise and plot.

Everything is bounded: the traffic stops at `duration`, requests in flight are drained
with a timeout and cancelled, every backend is stopped in `finally`. No thread is started
here beyond the backends' own (daemon) server threads, which `Mesh.stop()` joins.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import sys
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ..errors import PolicyError
from ..policy import Policy, PolicyStore
from . import plot
from .baseline import RoundRobinClient
from .driver import Caller, Driver, MeshCaller
from .narrate import Narrator
from .scenario import DEFAULT_DURATION, USERS_SHARE, Mesh, Stage, policy_doc, timeline
from .stats import summarize, table
from .view import Monitor, legend

#: Timeout of each logical call, for both clients.
CLIENT_TIMEOUT_S = 2.0
TICK_S = 0.25


@dataclass(frozen=True)
class Options:
    duration: float = DEFAULT_DURATION
    rate: float = 40.0
    plot: str | None = None
    plain: bool = False
    seed: int = 1


def choose_renderer(options: Options) -> tuple[object, str | None]:
    """Rich when it imports and stdout is an interactive terminal (not CI, not `--plain`);
    plain lines otherwise. Returns the renderer and why plain was chosen (or None)."""
    from .render_plain import PlainRenderer

    reason = None
    if options.plain:
        reason = "--plain"
    elif os.environ.get("CI") or not sys.stdout.isatty() or os.environ.get("TERM") == "dumb":
        reason = "not an interactive terminal"
    else:
        try:
            from .render_rich import RichRenderer
        except ImportError:
            reason = "rich is not installed (pip install 'meshclient[demo]')"
        else:
            return RichRenderer(options.duration), None
    return PlainRenderer(), reason


def run(options: Options) -> int:
    """Run the whole demo; returns the exit code (0)."""
    random.seed(options.seed)  # the backends' fail_ratio draws
    # The mesh's own log lines (ejections, panic) would interleave with the narration, which
    # already tells them: show only errors while the demo runs.
    log = logging.getLogger("meshclient")
    errors_only = logging.StreamHandler(sys.stderr)
    errors_only.setLevel(logging.ERROR)
    log.addHandler(errors_only)
    mesh = Mesh()
    try:
        mesh.start()
        return asyncio.run(_main(options, mesh))
    finally:
        mesh.stop()
        log.removeHandler(errors_only)


async def _main(options: Options, mesh: Mesh) -> int:
    renderer: object
    renderer, plain_reason = choose_renderer(options)
    r: Any = renderer
    scale = options.duration / DEFAULT_DURATION
    store = PolicyStore(Policy.from_dict(policy_doc(mesh, scale)))
    names = mesh.endpoint_names()
    narrator = Narrator(names)
    monitor = Monitor(names)
    mesh_caller = MeshCaller(store, CLIENT_TIMEOUT_S)
    baseline = RoundRobinClient({"users": mesh.addresses("users"),
                                 "orders": mesh.addresses("orders")}, CLIENT_TIMEOUT_S)
    callers: list[Caller] = [mesh_caller, baseline]
    driver = Driver(callers, options.rate, ("users", "orders"), (USERS_SHARE, 1 - USERS_SHARE),
                    random.Random(options.seed))
    steps = timeline(options.duration)
    canary_missing: list[bool] = []

    def apply_canary(weight: int) -> None:
        doc = policy_doc(mesh, scale, canary=weight)
        try:
            policy = Policy.from_dict(doc)
        except PolicyError as exc:
            if not canary_missing:
                canary_missing.append(True)
                reason = next((e for e in exc.errors if "routes" in e), exc.errors[0])
                r.say(driver.now(), "canary routing is not available in this build (the policy "
                      f"was rejected: {reason}); users-v2 stays at 0%")
            return
        store.replace(policy)
        if narrator.claim_policy(policy.version):
            r.say(driver.now(), f"policy {policy.version!r} applied: {weight}% of users -> "
                  "users-v2 (PolicyStore.replace; no restart)")

    stage = Stage(mesh, apply_canary)
    header = [f"meshclient demo: {options.duration:.0f}s, {options.rate:.0f} requests/s "
              "through meshclient and the same through a plain round-robin client",
              "services: " + ", ".join(f"{n} x{len(c)}" for n, c in mesh.clusters.items())
              + " (real HTTP servers on 127.0.0.x)"]
    if plain_reason:
        header.append(f"(plain output: {plain_reason})")
    narrator.start()
    r.begin(header)
    traffic = asyncio.create_task(driver.run(options.duration))
    try:
        for index, (phase, start, end) in enumerate(steps, 1):
            await _until(driver, start)
            narrator.new_phase()
            r.phase(index, len(steps), phase, start, end)
            if phase.enter is not None:
                phase.enter(stage)
            if index == 1:
                await _until(driver, min(end, start + 1.0))
                snapshot = mesh_caller.transport.snapshot()
                r.say(driver.now(), _balancer_note(snapshot))
                note = legend(monitor.view(driver.now(), snapshot, driver.samples,
                                           mesh_caller.name).services)
                if note:
                    r.say(driver.now(), note)
            if phase.key.startswith("canary"):
                monitor.track_canary = True
            while driver.now() < end:
                await asyncio.sleep(max(0.0, min(TICK_S, end - driver.now())))
                for line in narrator.drain():
                    r.say(driver.now(), line)
                view = monitor.view(driver.now(), mesh_caller.transport.snapshot(),
                                    driver.samples, mesh_caller.name)
                r.update(view, *narrator.counts())
            if phase.leave is not None:
                phase.leave(stage)
        for line in narrator.drain(flush=True):
            r.say(driver.now(), line)
        await asyncio.wait_for(traffic, timeout=5)
        await driver.drain()
    finally:
        if not traffic.done():
            traffic.cancel()
        narrator.stop()
        for caller in callers:
            await caller.aclose()
        r.end()
    _report(r, options, driver, steps, [c.name for c in callers])
    return 0


async def _until(driver: Driver, t: float) -> None:
    delay = t - driver.now()
    if delay > 0:
        await asyncio.sleep(delay)


def _balancer_note(snapshot: dict[str, object]) -> str:
    services = snapshot.get("services")
    kind = None
    if isinstance(services, dict) and "users" in services:
        kind = services["users"].get("kind")
    if kind:
        return f"balancer: {kind}"
    return ("balancer: round robin (this build reports no balancer kind: peak-EWMA P2C, "
            "retries and breakers show here once they are built in)")


def _report(r: Any, options: Options, driver: Driver, steps: list[tuple[Any, float, float]],
            clients: list[str]) -> None:
    rows = summarize(driver.samples, [(p.title, a, b) for p, a, b in steps], clients)
    header, cells = table(rows, clients)
    overall = rows[-1].stats
    notes = [f"{sum(s.count for s in overall.values())} requests in all; latency percentiles "
             "include failed requests; figures from this machine, this run."]
    for client in clients:
        kinds = Counter(s.error for s in driver.samples if s.client == client and s.error)
        if kinds:
            notes.append(f"{client} failures: " + ", ".join(
                f"{kind} x{n}" for kind, n in kinds.most_common(4)))
    mesh_ok, rr_ok = overall["meshclient"].success, overall["round-robin"].success
    mesh_p99, rr_p99 = overall["meshclient"].p99_ms, overall["round-robin"].p99_ms
    better_ok, better_p99 = mesh_ok - rr_ok > 0.005, mesh_p99 < rr_p99 * 0.9
    worse = mesh_ok - rr_ok < -0.005 or mesh_p99 > rr_p99 * 1.1
    if (better_ok or better_p99) and not worse:
        notes.append(f"meshclient is ahead of round robin: success {mesh_ok * 100:.1f}% vs "
                     f"{rr_ok * 100:.1f}%, p99 {mesh_p99:.0f} ms vs {rr_p99:.0f} ms.")
    else:
        notes.append("meshclient is not ahead of round robin in this run (a build without "
                     "P2C, retries and breakers routes the same way round robin does).")
    r.summary("Summary: meshclient vs plain round robin (same traffic)", header, cells, notes)
    if options.plot:
        if not plot.available():
            r.say(driver.now(), f"--plot {options.plot}: matplotlib is needed "
                  "(pip install 'meshclient[demo]'); no picture written")
        else:
            plot.draw(options.plot, driver.samples, steps, clients, options.duration)
            r.say(driver.now(), f"plot written to {options.plot}")
