"""The ``capacity`` suite: how many voice devices does a fleet serve?

A simulated voice device loops over one conversational turn:

1. ASR -- ``POST /asr/echo`` with a 16 KiB body (the audio upload); the ASR
   mock waits 80-120 ms, then echoes the body back;
2. LLM -- ``GET /llm/sse?events=10&interval_ms=20`` (``--llm-events 1-19``: 1 to
   19 events, drawn per turn), read to the end (the mock
   waits 40 ms before the first event: ~230 ms per answer);
3. TTS -- ``POST /tts/synthesize`` with a small JSON body (50-70 ms);

then "thinks" (plays the answer, listens to the user) for 2.5-3.5 s, uniformly
at random, and starts the next turn. Every instance of every stage is a
fulcrum-mock with ``--capacity 4`` (four requests processed at a time, the
rest wait in FIFO order, like a GPU batch). The turn time is the time from the
start of the ASR upload to the end of the TTS answer.

For a given fleet (1 instance per stage, then 4 per stage) the suite finds
the largest number of devices for which the turn p95 stays under the SLO
(default 800 ms, about twice the unloaded turn of ~390 ms), by running the
load at increasing device counts and then bisecting. The ideal scaling from 1
to 4 instances per stage is 4x.

Systems: Fulcrum for both fleets (``least_connections`` with
``max_concurrent: 4`` per instance and its admission queue); with a full run
also nginx (least_conn) and HAProxy (leastconn, ``maxconn 4`` per server, its
queue) for 4 per stage.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import loadgen
from common import (
    BenchError,
    build_and_describe,
    prebuilt_binaries,
    note_background,
    ProcessRegistry,
    SystemUnavailable,
    ensure_tools,
    free_port,
    log,
    write_json,
    write_text,
)
from systems import SYSTEMS, Backend, Pool, http_json, start_mock

SUITE = "capacity"
LABELS = {"fulcrum": "Fulcrum", "nginx": "nginx", "haproxy": "HAProxy"}

# Stage -> (route, mock latency, latency max, request)
STAGES = {
    "asr": {"route": "/asr/", "latency": "80ms", "latency_max": "120ms"},
    "llm": {"route": "/llm/", "latency": "40ms", "latency_max": None},
    "tts": {"route": "/tts/", "latency": "50ms", "latency_max": "70ms"},
}
MOCK_CAPACITY = 4
ASR_BODY = os.urandom(8192).hex().encode()  # 16 KiB
TTS_BODY = b'{"text": "Turn left at the next junction, then continue for two kilometres."}'
LLM_PATH = "/llm/sse?events={events}&interval_ms=20"
LLM_EVENTS = (10, 10)  # the default: every answer 10 events long
THINK_S = (2.5, 3.5)
ALGO = {"fulcrum": "least_connections", "nginx": "least_connections",
        "haproxy": "least_connections"}
NATIVE_ALGO = {"fulcrum": f"least_connections + max_concurrent {MOCK_CAPACITY} + queue",
               "nginx": "least_conn",
               "haproxy": f"leastconn + maxconn {MOCK_CAPACITY} (queue)"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("capacity suite")
    g.add_argument("--slo-ms", type=float, default=800.0,
                   help="capacity: end-to-end turn p95 SLO in ms (default: 800)")
    g.add_argument("--fulcrum-limits", default="4",
                   help="capacity: comma-separated max_concurrent settings Fulcrum's fleets "
                        "are measured with, each a separate row: a number, 'auto' (learned "
                        "from latency) or 'none' (default: 4, the mocks' real capacity)")
    g.add_argument("--capacity-stages", default="1,4",
                   help="capacity: comma-separated instances per stage for Fulcrum's fleets "
                        "(default: 1,4)")
    g.add_argument("--llm-events", default="10",
                   help="capacity: events per LLM answer, a number or a range A-B drawn "
                        "uniformly per turn (answers of varying length: e.g. 1-19, mean 10, "
                        "service 60-420 ms); default: 10")
    g.add_argument("--llm-capacities", default=None,
                   help="capacity: comma-separated capacities of the LLM stage's mocks, one "
                        "per instance (instances of unequal, unknown capacity: e.g. 2,4,6,4, "
                        "16 slots as the default 4,4,4,4); needs --capacity-stages of that "
                        "count; default: every mock 4")
    g.add_argument("--capacity-peers", action="store_true", default=None,
                   help="capacity: also measure nginx and HAProxy at 4 instances per stage "
                        "(default: on for a full run, off with --quick)")


# --------------------------------------------------------------------------
# one load level


def parse_events(spec: str) -> Tuple[int, int]:
    """``--llm-events``: ``N`` or ``A-B`` (1 <= A <= B)."""
    try:
        lo, dash, hi = spec.strip().partition("-")
        a, b = int(lo), int(hi if dash else lo)
    except ValueError:
        raise BenchError(f"--llm-events: `{spec}` is not a number or a range A-B") from None
    if not 1 <= a <= b:
        raise BenchError(f"--llm-events: `{spec}` needs 1 <= A <= B")
    return a, b


def parse_capacities(spec: Optional[str], stages: List[int]) -> Optional[List[int]]:
    """``--llm-capacities``: one capacity >= 1 per LLM instance."""
    if spec is None:
        return None
    try:
        caps = [int(x) for x in spec.split(",") if x.strip()]
    except ValueError:
        raise BenchError(f"--llm-capacities: `{spec}` is not a list of numbers") from None
    if not caps or min(caps) < 1:
        raise BenchError(f"--llm-capacities: `{spec}` needs capacities of at least 1")
    if any(per != len(caps) for per in stages):
        raise BenchError(f"--llm-capacities: {len(caps)} capacities, but "
                         f"--capacity-stages asks for {','.join(map(str, stages))} instances")
    return caps


def _draw(events: Tuple[int, int], rng: random.Random) -> int:
    """One answer's length; a fixed one draws nothing (the think times
    stay those of runs before --llm-events)."""
    return events[0] if events[0] == events[1] else rng.randint(*events)


async def _device(i: int, port: int, t0: float, end: float, turns: List[tuple],
                  rng: random.Random, events: Tuple[int, int] = LLM_EVENTS) -> None:
    conn = loadgen.Connection("127.0.0.1", port)
    # Devices join spread over one think time, so they do not speak in chorus.
    await asyncio.sleep(min(rng.uniform(0, THINK_S[1]), max(0.0, end - time.perf_counter())))
    try:
        while time.perf_counter() < end:
            start = time.perf_counter()
            ok = True
            for method, path, body in (("POST", "/asr/echo", ASR_BODY),
                                       ("GET", LLM_PATH.format(events=_draw(events, rng)),
                                        b""),
                                       ("POST", "/tts/synthesize", TTS_BODY)):
                status, _inst, _lat = await loadgen.timed(
                    conn, method, path, body,
                    {"Content-Type": "application/json"} if method == "POST" else None,
                    timeout=30.0)
                if not 200 <= status < 300:
                    ok = False
                    break
            now = time.perf_counter()
            turns.append((start - t0, now - start, ok))
            await asyncio.sleep(min(rng.uniform(*THINK_S), max(0.0, end - now)))
    finally:
        conn.close()


def run_level(port: int, devices: int, warm_s: float, measure_s: float,
              seed: int = 1, events: Tuple[int, int] = LLM_EVENTS) -> dict:
    """``devices`` devices for warm_s + measure_s; stats of the turns that
    started within the measured window (failed turns count as infinitely slow)."""
    async def main():
        turns: List[tuple] = []
        t0 = time.perf_counter()
        end = t0 + warm_s + measure_s
        rng = random.Random(seed)
        await asyncio.gather(*(_device(i, port, t0, end, turns, random.Random(rng.random()),
                                       events)
                               for i in range(devices)))
        return turns

    turns = asyncio.run(main())
    sel = [t for t in turns if warm_s <= t[0] < warm_s + measure_s]
    lat = [t[1] if t[2] else math.inf for t in sel]
    fails = sum(1 for t in sel if not t[2])
    p95 = loadgen.percentile(lat, 95)
    p50 = loadgen.percentile(lat, 50)
    return {"devices": devices, "turns": len(sel), "failed_turns": fails,
            "p50_ms": None if p50 is None or math.isinf(p50) else round(p50 * 1e3, 1),
            "p95_ms": None if p95 is None else (math.inf if math.isinf(p95)
                                                else round(p95 * 1e3, 1)),
            "turns_per_s": round(len(sel) / measure_s, 2)}


# --------------------------------------------------------------------------
# a fleet behind one proxy


@dataclass
class Fleet:
    system: str
    per_stage: int
    port: int
    stop: object


def limit_label(limit: str) -> str:
    """How a Fulcrum row's max_concurrent reads in the table."""
    if limit == "none":
        return "least_connections, no limit (queues in the instances)"
    if limit == "auto":
        return "least_connections + max_concurrent auto (learned) + queue"
    return f"least_connections + max_concurrent {limit} + queue"


def start_fleet(registry: ProcessRegistry, tmp: Path, bins: Path, args, system: str,
                per_stage: int, tag: str, limit: str = str(MOCK_CAPACITY),
                llm_capacities: Optional[List[int]] = None):
    procs = []
    pools = []
    for stage, spec in STAGES.items():
        backends = []
        for k in range(per_stage):
            port = free_port()
            name = f"{stage}{k}"
            cap = (llm_capacities[k] if stage == "llm" and llm_capacities
                   else MOCK_CAPACITY)
            procs.append(start_mock(registry, bins, name, port, args.load_cpu,
                                    latency=spec["latency"], latency_max=spec["latency_max"],
                                    capacity=cap))
            if system == "fulcrum":
                max_conc = None if limit == "none" else limit
            else:
                max_conc = MOCK_CAPACITY if system != "nginx" else None
            backends.append(Backend(name, port, 1, max_conc=max_conc))
        pools.append(Pool(stage, ALGO[system], backends, route=spec["route"], strip=True))
    kw = {}
    if system == "fulcrum":
        kw["extra_pool"] = "    queue: { max: 10000, timeout: 30s }\n"
        kw["exe"] = prebuilt_binaries(args).get("fulcrum")
    sysobj = SYSTEMS[system](registry, tmp / tag, bins, args.proxy_cpu, pools,
                             streaming=True, **kw)
    try:
        sysobj.start()
    except Exception:
        for p in procs:
            registry.stop(p)
        raise

    def stop():
        sysobj.stop()
        for p in procs:
            registry.stop(p)
    return sysobj, stop


def learned_limits(admin: int) -> Dict[str, List[Optional[int]]]:
    """The limits Fulcrum learned (``max_concurrent: auto``), by pool, in
    member order, from its admin API."""
    st, doc = http_json("GET", admin, "/api/v1/pools")
    if st != 200:
        raise BenchError(f"GET /api/v1/pools answered {st}: {doc}")
    pools = doc if isinstance(doc, list) else (doc or {}).get("pools", [])
    return {p.get("name", "?"): [m.get("learned_limit") for m in p.get("instances", [])]
            for p in pools if isinstance(p, dict)}


def search(sysobj, slo_ms: float, start: int, warm_s: float, measure_s: float,
           label: str, max_probes: int = 9,
           observe: Optional[Callable[[], dict]] = None,
           events: Tuple[int, int] = LLM_EVENTS) -> Tuple[Optional[int], List[dict]]:
    """Largest device count with turn p95 < slo_ms: step up ~12 % from
    ``start`` (or down, if it fails) until the answer flips, then bisect.
    ``observe``, when given, is read at the end of every level and its
    keys added to the level's record (e.g. the learned limits)."""
    probes: Dict[int, dict] = {}

    def ok(n: int) -> bool:
        if n not in probes:
            r = run_level(sysobj.port, n, warm_s, measure_s, seed=n, events=events)
            sysobj.check_alive()
            if observe is not None:
                r.update(observe())
            probes[n] = r
            log(f"  {label}: {n} devices -> turn p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, "
                f"{r['turns']} turns, {r['failed_turns']} failed"
                f" -> {'within' if r['p95_ms'] < slo_ms else 'OVER'} the SLO"
                + (f"; learned limits {r['learned_limits']}" if "learned_limits" in r else ""))
        return probes[n]["p95_ms"] < slo_ms

    lo, hi = None, None  # lo passes, hi fails
    n = max(1, start)
    while len(probes) < max_probes:
        if ok(n):
            lo = n
            if hi is not None:
                break
            n = max(n + 1, int(round(n * 1.12)))
        else:
            hi = n
            if lo is not None:
                break
            if n == 1:
                break
            # Always strictly smaller (round(4 / 1.12) is 4 again).
            n = max(1, min(n - 1, int(round(n / 1.12))))
    while lo is not None and hi is not None and hi - lo > 1 and len(probes) < max_probes:
        mid = (lo + hi) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    # Monotonicity is not guaranteed near the knee: report the largest
    # passing count below the smallest failing one.
    fails = [k for k, r in probes.items() if not r["p95_ms"] < slo_ms]
    first_fail = min(fails) if fails else None
    passing = [k for k, r in probes.items() if r["p95_ms"] < slo_ms
               and (first_fail is None or k < first_fail)]
    best = max(passing) if passing else None
    return best, sorted(probes.values(), key=lambda r: r["devices"])


# --------------------------------------------------------------------------
# reporting


def _f(v, spec=".1f"):
    return "–" if v is None else format(v, spec)


def _flags(prm: dict) -> str:
    """The suite's own options when not their defaults, as typed."""
    out = ""
    if prm.get("fulcrum_limits", ["4"]) != ["4"]:
        out += " --fulcrum-limits " + ",".join(prm["fulcrum_limits"])
    if prm.get("instances_per_stage", [1, 4]) != [1, 4]:
        out += " --capacity-stages " + ",".join(str(x) for x in prm["instances_per_stage"])
    a, b = prm.get("llm_events", LLM_EVENTS)
    if (a, b) != LLM_EVENTS:
        out += f" --llm-events {a}" + (f"-{b}" if b != a else "")
    if prm.get("llm_capacities"):
        out += " --llm-capacities " + ",".join(map(str, prm["llm_capacities"]))
    return out


def _events(prm: dict) -> str:
    a, b = prm.get("llm_events", LLM_EVENTS)
    return str(a) if a == b else f"{a}-{b} (uniform per turn)"


def markdown(result: dict) -> str:
    m, prm = result["machine"], result["params"]
    L = [
        "# Capacity suite results",
        "",
        f"Generated by `bench/run capacity{' --quick' if prm['quick'] else ''}"
        f"{_flags(prm)}` on "
        f"{m['date_utc']} (Fulcrum rev `{m['fulcrum_git_rev']}`).",
        "",
        f"Each device loops: ASR upload (16 KiB POST, 80-120 ms) -> LLM SSE stream (40 ms + "
        f"{_events(prm)} events 20 ms apart) -> TTS POST (50-70 ms), then thinks {THINK_S[0]}-{THINK_S[1]} s. "
        + (f"Every mock instance processes {MOCK_CAPACITY} requests at a time (FIFO beyond). "
           if not prm.get("llm_capacities") else
           f"The LLM mocks process {'/'.join(map(str, prm['llm_capacities']))} requests at a "
           f"time (FIFO beyond), the others {MOCK_CAPACITY}. ")
        + f"SLO: end-to-end turn p95 < {prm['slo_ms']:.0f} ms; unloaded turn (1 device) "
        f"p50 {_f(prm.get('unloaded_turn_p50_ms'))} ms. Each load level: "
        f"{prm['warm_s']:g} s ramp + {prm['measure_s']:g} s measured.",
        "",
        "| System | Instances per stage | Algorithm | Devices within the SLO | turn p95 there (ms) "
        "| turns/s there | ratio vs 1 per stage |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in result["records"]:
        L.append(f"| {LABELS[r['system']]} | {r['instances_per_stage']} | {r['algorithm']} | "
                 f"{_f(r['devices'], 'd')} | {_f(r.get('p95_ms'))} | "
                 f"{_f(r.get('turns_per_s'), '.1f')} | {_f(r.get('ratio'), '.2f')} |")
    L += ["", "Load levels tried (devices: turn p95 ms):", ""]
    for r in result["records"]:
        pts = ", ".join(f"{p['devices']}: {_f(p['p95_ms'], '.0f')}" for p in r["probes"])
        lim = f", max_concurrent {r['limit']}" if r.get("limit") else ""
        L.append(f"* {LABELS[r['system']]}, {r['instances_per_stage']} per stage{lim}: {pts}")
    learned = [r for r in result["records"]
               if any("learned_limits" in p for p in r["probes"])]
    if learned:
        L += ["", "Limits learned (`max_concurrent: auto`) at the end of each level, "
                  "by pool, one per instance:", ""]
        for r in learned:
            for p in r["probes"]:
                if "learned_limits" in p:
                    by_pool = "; ".join(f"{k} {'/'.join(_f(x, 'd') for x in v)}"
                                        for k, v in p["learned_limits"].items())
                    L.append(f"* {p['devices']} devices: {by_pool}")
    ratio = result.get("ratio")
    if ratio is not None:
        L += ["", f"**Scaling 1 -> 4 instances per stage behind Fulcrum: {ratio:.2f}x** "
                  f"(ideal 4x, target >= 3.6x: {'met' if ratio >= 3.6 else 'NOT met'})."]
    L += ["",
          "Machine: {cpu_model}, {nproc} CPUs, {mem_gib} GiB, Linux {kernel}; {nginx}; "
          "{haproxy}. Background CPU load before the run: {background_cpu_busy_pct}%. "
        "Binaries: {binaries} (fulcrum built {fulcrum_binary_mtime_utc})."
          .format(**{"binaries": "?", "fulcrum_binary_mtime_utc": "?", **m}), ""]
    return "\n".join(L)


# --------------------------------------------------------------------------
# entry point


def run(args: argparse.Namespace) -> int:
    quick = bool(args.quick)
    peers = args.capacity_peers if args.capacity_peers is not None else not quick
    systems_allowed = [s.strip() for s in getattr(args, "quality_systems",
                                                  "fulcrum,nginx,haproxy").split(",")]
    warm_s, measure_s = (3.0, 8.0) if quick else (5.0, 30.0)
    max_probes = 6 if quick else 9
    tools = {"taskset": ["util-linux"]}
    if peers:
        tools.update({"nginx": ["nginx-light", "nginx"], "haproxy": ["haproxy"]})
    ensure_tools(tools, allow_install=not args.no_install)
    bins, machine = build_and_describe(["fulcrum", "fulcrum-mock"], args.no_build,
                                       prebuilt_binaries(args))
    if not (bins / "fulcrum-mock").exists():
        raise BenchError(f"{bins / 'fulcrum-mock'} not found")
    note_background(machine)
    tmp = Path(tempfile.mkdtemp(prefix="fulcrum-bench-capacity-"))
    os.chmod(tmp, 0o755)
    log(f"work dir {tmp}")
    old_aff = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {args.load_cpu})
    records: List[dict] = []
    curves: Dict[str, list] = {}
    unloaded = None
    ok = False
    t_start = time.monotonic()
    # Saturation estimate for the seed of the search: the LLM stage is the
    # bottleneck (MOCK_CAPACITY slots x ~0.23 s per answer per instance).
    cycle = 0.39 + sum(THINK_S) / 2
    sat1 = MOCK_CAPACITY / 0.23 * cycle
    limits = [x.strip() for x in args.fulcrum_limits.split(",") if x.strip()]
    for x in limits:
        if x not in ("auto", "none") and not (x.isdigit() and int(x) > 0):
            raise BenchError(f"--fulcrum-limits: `{x}` is not a number, auto or none")
    stages = [int(x) for x in args.capacity_stages.split(",") if x.strip()]
    events = parse_events(args.llm_events)
    # nginx and HAProxy are measured at 4 instances per stage.
    llm_caps = parse_capacities(args.llm_capacities, stages + ([4] if peers else []))
    plan = [("fulcrum", per, lim) for lim in limits for per in stages]
    if peers:
        plan += [(s, 4, None) for s in ("nginx", "haproxy") if s in systems_allowed]
    try:
        with ProcessRegistry(tmp) as registry:
            n1 = None
            for system, per, lim in plan:
                tag = f"{system}-{per}" + (f"-{lim}" if lim else "")
                algo = limit_label(lim) if lim else NATIVE_ALGO[system]
                try:
                    sysobj, stop = start_fleet(registry, tmp, bins, args, system, per, tag,
                                               llm_capacities=llm_caps,
                                               **({"limit": lim} if lim else {}))
                except SystemUnavailable as e:
                    log(f"SKIP {tag}: {e}")
                    records.append({"suite": SUITE, "system": system, "instances_per_stage": per,
                                    "algorithm": algo, "limit": lim, "devices": None,
                                    "probes": [], "note": str(e).splitlines()[0]})
                    continue
                try:
                    if unloaded is None:
                        r = run_level(sysobj.port, 1, 1.0, 4.0 if quick else 8.0,
                                      events=events)
                        unloaded = r["p50_ms"]
                        log(f"unloaded turn (1 device): p50 {r['p50_ms']} ms, "
                            f"p95 {r['p95_ms']} ms")
                    if per == 1:
                        seed = int(sat1 * 0.8)
                    else:
                        seed = int((n1 or sat1 * 0.75) * per * 0.95)
                    label = f"{LABELS[system]} {per}/stage" + (
                        f" max_concurrent {lim}" if lim and len(limits) > 1 else "")
                    log(f"{label}: searching from {seed} devices (SLO p95 < {args.slo_ms:g} ms)")
                    observe = None
                    if system == "fulcrum" and lim == "auto":
                        def observe(admin=sysobj.admin):
                            return {"learned_limits": learned_limits(admin)}
                    best, probes = search(sysobj, args.slo_ms, seed, warm_s, measure_s, label,
                                          max_probes, observe, events)
                    config = sysobj.config_text()
                finally:
                    stop()
                for p in probes:  # JSON has no infinity: a p95 made of failed turns
                    if p["p95_ms"] is not None and math.isinf(p["p95_ms"]):
                        p["p95_ms"], p["note"] = None, "p95 is a failed turn"
                at = next((p for p in probes if p["devices"] == best), {})
                rec = {"suite": SUITE, "system": system, "instances_per_stage": per,
                       "algorithm": algo, "limit": lim, "devices": best,
                       "p95_ms": at.get("p95_ms"), "p50_ms": at.get("p50_ms"),
                       "turns_per_s": at.get("turns_per_s"), "slo_ms": args.slo_ms,
                       "probes": probes, "config": config}
                if system == "fulcrum" and per == 1 and lim == limits[0]:
                    n1 = best
                if n1 and best is not None:
                    rec["ratio"] = round(best / n1, 3)
                records.append(rec)
                curves[f"{system}/{per}" + (f"/{lim}" if lim and len(limits) > 1 else "")] = [(p["devices"], p["p95_ms"]) for p in probes
                                             if p["p95_ms"] is not None
                                             and not math.isinf(p["p95_ms"])]
                log(f"{label}: {best} devices within the SLO")
                time.sleep(0.5)
        ok = all(r.get("devices") is not None for r in records)
    finally:
        os.sched_setaffinity(0, old_aff)
        if args.keep_tmp or not ok:
            log(f"logs and configs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    f1 = next((r for r in records if r["system"] == "fulcrum" and r["instances_per_stage"] == 1
               and r.get("limit") == limits[0]), None)
    f4 = next((r for r in records if r["system"] == "fulcrum" and r["instances_per_stage"] == 4
               and r.get("limit") == limits[0]), None)
    ratio = (round(f4["devices"] / f1["devices"], 3)
             if f1 and f4 and f1.get("devices") and f4.get("devices") else None)
    elapsed = time.monotonic() - t_start
    result = {
        "suite": SUITE,
        "machine": machine,
        "params": {"quick": quick, "slo_ms": args.slo_ms, "warm_s": warm_s,
                   "measure_s": measure_s, "think_s": list(THINK_S),
                   "mock_capacity": MOCK_CAPACITY, "stages": STAGES,
                   "fulcrum_limits": limits, "instances_per_stage": stages,
                   "llm_events": list(events), "llm_capacities": llm_caps,
                   "unloaded_turn_p50_ms": unloaded, "proxy_cpu": args.proxy_cpu,
                   "load_cpu": args.load_cpu, "elapsed_s": round(elapsed, 1)},
        "records": records,
        "ratio": ratio,
        "curves": curves,
    }
    out = Path(args.out_dir)
    write_json(out / f"{SUITE}.json", result)
    md = markdown(result)
    charts_md = ""
    try:
        import charts
        charts_md = charts.capacity_charts(result, out)
    except Exception as e:
        log(f"WARNING: charts not drawn: {type(e).__name__}: {e}")
    write_text(out / f"{SUITE}.md", md + "\n" + charts_md)
    print(md + "\n" + charts_md)
    log(f"wrote {out / (SUITE + '.json')} and {out / (SUITE + '.md')} in {elapsed:.0f}s")
    return 0 if ok else 3
