"""The ``quality`` suite: how well does each proxy *balance*?

Five scenarios, each run against Fulcrum (several algorithms), nginx
(round robin, least_conn; passive health + proxy_next_upstream) and HAProxy
(roundrobin, leastconn; active checks + retry-on + redispatch), with the same
fulcrum-mock backends, the same closed-loop load and the same duration:

* weighted      -- weights 3:2:1: max deviation of the shares from 3/6, 2/6, 1/6;
* heterogeneous -- instances of capacity 8, 4 and 2 (concurrent requests):
                   throughput and p50/p99/p99.9;
* degraded      -- one instance becomes 20x slower after 1 s: p99 / p99.9;
* kill          -- one instance is killed (SIGKILL) mid-run and restarted later:
                   failed requests, time until the proxy stops sending to it,
                   time until it serves again;
* join          -- a fourth instance is added mid-run (Fulcrum: it registers
                   through the registry API; nginx: config edit + reload;
                   HAProxy: runtime API ``add server``): time to first traffic,
                   and whether it is flooded.

Every case starts fresh backends and a fresh proxy. The proxy is pinned to
``--proxy-cpu`` with one worker; the backends and the load generator (this
process, asyncio) share ``--load-cpu``. See docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
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
from systems import SYSTEMS, Backend, Pool, mock_control, start_mock

SUITE = "quality"
SCENARIOS = ["weighted", "heterogeneous", "degraded", "kill", "join"]
SYSTEM_ORDER = ["fulcrum", "nginx", "haproxy"]
LABELS = {"fulcrum": "Fulcrum", "nginx": "nginx", "haproxy": "HAProxy"}
NATIVE = {  # generic algorithm name -> what the system calls it
    "nginx": {"round_robin": "round_robin", "weighted_round_robin": "round_robin (weights)",
              "least_connections": "least_conn"},
    "haproxy": {"round_robin": "roundrobin", "weighted_round_robin": "roundrobin (weights)",
                "least_connections": "leastconn"},
}

PEER = ["round_robin", "least_connections"]
# A Fulcrum algorithm name with this suffix runs with dynamic weights.
DW = "+dw2s"
DW_POOL = "    dynamic_weights: { interval: 2s }\n"


def split_dw(algorithm: str) -> Tuple[str, str]:
    """(the pool's algorithm, extra pool lines) of a case's algorithm name:
    ``weighted_round_robin+dw2s`` is weighted round robin with dynamic
    weights every 2 s."""
    if algorithm.endswith(DW):
        return algorithm[: -len(DW)], DW_POOL
    return algorithm, ""

# Algorithms run per scenario and system: (full run, --quick).
ALGORITHMS: Dict[str, Dict[str, Tuple[List[str], List[str]]]] = {
    "weighted": {
        "fulcrum": (["weighted_round_robin", "random", "power_of_two"], ["weighted_round_robin"]),
        "nginx": (["weighted_round_robin"], ["weighted_round_robin"]),
        "haproxy": (["weighted_round_robin"], ["weighted_round_robin"]),
    },
    "heterogeneous": {
        "fulcrum": (["round_robin", "least_connections", "least_calls", "response_time",
                     "power_of_two"],
                    ["round_robin", "least_connections", "response_time"]),
        "nginx": (PEER, PEER),
        "haproxy": (PEER, PEER),
    },
    "degraded": {
        # least_calls and weights from measured latency (dynamic weights,
        # every 2 s): the candidates for registry.default_algorithm.
        "fulcrum": (["round_robin", "least_connections", "response_time", "power_of_two",
                     "least_calls", "weighted_round_robin" + DW],
                    ["least_connections", "response_time"]),
        "nginx": (PEER, PEER),
        "haproxy": (PEER, PEER),
    },
    "kill": {
        "fulcrum": (["round_robin", "least_connections", "response_time"],
                    ["least_connections", "response_time"]),
        "nginx": (PEER, ["least_connections"]),
        "haproxy": (PEER, ["least_connections"]),
    },
    "join": {
        "fulcrum": (["least_calls", "least_connections", "round_robin"], ["least_calls"]),
        "nginx": (PEER, ["round_robin"]),
        "haproxy": (PEER, ["round_robin"]),
    },
}


@dataclass
class Params:
    quick: bool

    def d(self, full: float, quick: float) -> float:
        return quick if self.quick else full


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("quality suite")
    g.add_argument("--scenarios", default=",".join(SCENARIOS),
                   help="quality: comma-separated subset of %s" % ",".join(SCENARIOS))
    g.add_argument("--quality-systems", default=",".join(SYSTEM_ORDER),
                   help="quality/capacity: comma-separated subset of fulcrum,nginx,haproxy")


# --------------------------------------------------------------------------
# one case


@dataclass
class Ctx:
    args: argparse.Namespace
    tmp: Path
    bins: Path
    registry: ProcessRegistry
    prm: Params
    series: Dict[str, dict]  # kept for charts: key -> data
    case_no: int = 0
    fulcrum_exe: Optional[Path] = None  # --fulcrum-bin


def _start_backends(ctx: Ctx, specs: List[dict]) -> Tuple[List[Backend], Dict[str, object]]:
    backends, procs = [], {}
    for s in specs:
        port = free_port()
        kw = {k: s[k] for k in ("latency", "latency_max", "capacity") if k in s}
        procs[s["name"]] = start_mock(ctx.registry, ctx.bins, s["name"], port,
                                      ctx.args.load_cpu, **kw)
        backends.append(Backend(s["name"], port, s.get("weight", 1)))
    return backends, procs


class AttemptPoller:
    """Polls a proxy's per-instance attempt counter (Fulcrum admin API,
    HAProxy stats socket) every 50 ms in a thread; times are perf_counter."""

    def __init__(self, system, backend: Backend):
        self.system, self.backend = system, backend
        self.samples: List[Tuple[float, int]] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                n = self.system.attempts(self.backend)
                if n is not None:
                    self.samples.append((time.perf_counter(), n))
            except Exception:
                pass
            self._stop.wait(0.05)

    def start(self):
        self._t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._t.join(5)

    def attempt_times(self) -> List[float]:
        """Times at which the counter increased (one entry per sample with an increase)."""
        out = []
        for (t0, n0), (t1, n1) in zip(self.samples, self.samples[1:]):
            if n1 > n0:
                out.append(t1)
        return out


def run_case(ctx: Ctx, scenario: str, system: str, algorithm: str) -> dict:
    prm = ctx.prm
    ctx.case_no += 1
    workdir = ctx.tmp / f"{ctx.case_no:02d}-{scenario}-{system}-{algorithm}"
    clients = 12
    duration = prm.d(20, 4)
    events: List[loadgen.Event] = []
    extra: Dict[str, object] = {}
    names = ["a", "b", "c"]
    t_measure = 0.5  # records before this are warm-up

    if scenario == "weighted":
        specs = [{"name": n, "latency": "10ms", "weight": w} for n, w in zip(names, (3, 2, 1))]
    elif scenario == "heterogeneous":
        specs = [{"name": n, "latency": "20ms", "capacity": c} for n, c in zip(names, (8, 4, 2))]
        clients = 28
    elif scenario == "degraded":
        specs = [{"name": n, "latency": "10ms"} for n in names]
        duration = prm.d(20, 5)
        t_measure = 1.0
    elif scenario == "kill":
        specs = [{"name": n, "latency": "10ms"} for n in names]
        duration = prm.d(26, 10)
    elif scenario == "join":
        specs = [{"name": n, "latency": "10ms"} for n in names]
        duration = prm.d(20, 8)
    else:
        raise BenchError(f"unknown scenario {scenario}")

    backends, procs = _start_backends(ctx, specs)
    pool_algorithm, extra_pool = split_dw(algorithm)
    pool = Pool("bench", pool_algorithm, backends)
    cls = SYSTEMS[system]
    kw = {}
    if extra_pool:
        kw["extra_pool"] = extra_pool
    if system == "fulcrum" and scenario == "join":
        kw["registry_enabled"] = True
    if system == "fulcrum" and ctx.fulcrum_exe:
        kw["exe"] = ctx.fulcrum_exe
    sysobj = cls(ctx.registry, workdir, ctx.bins, ctx.args.proxy_cpu, [pool],
                 attempt_log=(scenario == "kill" and system == "nginx"), **kw)
    poller: Optional[AttemptPoller] = None
    victim = backends[2]
    t0_box: Dict[str, float] = {}
    try:
        sysobj.start()
        # --- scenario events
        if scenario == "degraded":
            events.append(loadgen.Event(1.0, "slow", lambda: mock_control(
                victim.port, {"latency": "200ms"})))
        elif scenario == "kill":
            t_kill, t_restart = prm.d(8, 2.5), prm.d(16, 5.5)

            def do_kill():
                p = procs[victim.name]
                t = time.time()
                os.killpg(p.pid, 9)
                p.popen.wait(5)
                ctx.registry.stop(p)
                return t

            def do_restart():
                procs[victim.name] = start_mock(ctx.registry, ctx.bins, victim.name,
                                                victim.port, ctx.args.load_cpu, latency="10ms")

            events.append(loadgen.Event(t_kill, "kill", do_kill))
            events.append(loadgen.Event(t_restart, "restart", do_restart))
        elif scenario == "join":
            t_join = prm.d(6, 2.5)
            newb = Backend("d", free_port(), 1)

            def do_join():
                procs["d"] = start_mock(ctx.registry, ctx.bins, "d", newb.port,
                                        ctx.args.load_cpu, latency="10ms")
                t = time.perf_counter()
                sysobj.add_backend("bench", newb)
                return t - t0_box["t0"]  # when the system was told

            events.append(loadgen.Event(t_join, "join", do_join))

        if scenario == "kill" and system != "nginx":
            poller = AttemptPoller(sysobj, victim).start()
        time.sleep(0.2)
        log(f"{scenario} / {system} {algorithm}: {clients} clients, {duration:g}s")
        t0 = time.perf_counter()
        wall0 = time.time()
        t0_box["t0"] = t0
        recs = loadgen.closed_loop("127.0.0.1", sysobj.port, clients, duration,
                                   events=events, t0=t0)
        if poller:
            poller.stop()
        sysobj.check_alive()
        config = sysobj.config_text()
    finally:
        if poller:
            poller.stop()
        sysobj.stop()
        for p in list(procs.values()):
            ctx.registry.stop(p)

    # --- metrics
    summ = loadgen.latency_summary(recs, t_measure, duration)
    rec = {"suite": SUITE, "scenario": scenario, "system": system,
           "algorithm": NATIVE.get(system, {}).get(algorithm, algorithm),
           "algorithm_generic": algorithm,
           # errors over the whole run (warm-up included); latencies after t_measure
           "requests": summ["requests"],
           "errors": sum(1 for r in recs if not 200 <= r[2] < 400), "rps": summ["rps"],
           "p50_ms": summ["p50_ms"], "p99_ms": summ["p99_ms"], "p999_ms": summ["p999_ms"],
           "max_ms": summ["max_ms"], "max_share_dev": None, "detect_s": None,
           "recover_s": None, "clients": clients, "duration_s": duration}
    all_names = [b.name for b in backends] + (["d"] if scenario == "join" else [])
    sh = loadgen.shares(recs, all_names, t_measure, duration)
    rec["shares"] = {k: round(v, 4) for k, v in sh.items()}
    key = f"{scenario}/{system}/{algorithm}"

    if scenario == "weighted":
        tot = sum(b.weight for b in backends)
        dev = max(abs(sh[b.name] - b.weight / tot) for b in backends)
        rec["max_share_dev"] = round(100 * dev, 2)  # percentage points
        rec["expected_shares"] = {b.name: round(b.weight / tot, 4) for b in backends}
    elif scenario == "kill":
        ev_kill, ev_restart = events[0], events[1]
        t_kill = ev_kill.result - wall0  # just before the SIGKILL
        t_up = ev_restart.done_at  # the mock is listening again
        rec["kill_at_s"], rec["restart_at_s"] = round(t_kill, 3), round(t_up, 3)
        if system == "nginx":
            times = sysobj.attempt_times(victim) or []
            attempts = [t - wall0 for t in times]
        else:
            attempts = [t - t0 for t in poller.attempt_times()] if poller else []
        in_window = lambda t: ev_kill.started_at <= t < ev_restart.started_at  # noqa: E731
        after = sorted(t for t in attempts if in_window(t))
        wall_kill = ev_kill.result  # time.time() just before the SIGKILL
        if system == "nginx":
            # Exact: every attempt is in the access log. The end of the
            # initial burst is the last attempt before the first quiet gap of
            # 0.5 s; later ones are nginx's trial requests after fail_timeout.
            last, prev = None, t_kill
            for t in after:
                if t - prev >= 0.5:
                    break
                last = prev = t
            t_out = last if last is not None else t_kill
            rec["detect_source"] = "last attempt of the initial burst (access log, ms)"
        else:
            # When the proxy took it out of service: its own log line (Fulcrum,
            # µs timestamps) or the moment HAProxy printed "is DOWN".
            outs = [t - wall0 for t in sysobj.out_of_service_times(victim)
                    if t >= wall_kill - 1.0]
            t_out = min(outs) if outs else None
            rec["detect_source"] = ("Fulcrum log: ejected / marked down (µs)"
                                    if system == "fulcrum" else
                                    "HAProxy 'is DOWN' line, time of arrival (ms)")
            if t_out is None and after:
                t_out = after[-1]
                rec["detect_source"] = "last increase of the attempt counter (50 ms polls)"
        rec["detect_s"] = round(max(0.0, t_out - t_kill), 4) if t_out is not None else None
        # Attempts seen clearly after that (trial requests, expired ejections...).
        late = [t for t in after if t_out is not None and t > t_out + 0.1]
        rec["late_attempts"] = len(late)
        # The issue's "time until no request goes to it": the last try on the
        # dead instance before its restart (trial requests included).
        t_quiet = max([t_out] + late) if t_out is not None else None
        rec["quiet_s"] = round(max(0.0, t_quiet - t_kill), 4) if t_quiet is not None else None
        rec["attempt_source"] = ("nginx access log ($upstream_addr)" if system == "nginx"
                                 else "proxy attempt counter polled every 50 ms "
                                      "(polls with an increase)")
        served = [r[0] + r[1] for r in recs if r[3] == victim.name and r[0] >= t_up]
        rec["recover_s"] = round(min(served) - t_up, 3) if served else None
        fails_after_kill = [r for r in recs if not (200 <= r[2] < 400) and r[0] >= t_kill - 0.1]
        rec["errors_around_kill"] = len(fails_after_kill)
        ctx.series[key] = {"records": [(round(r[0], 4), round(r[1] * 1e3, 3), r[2], r[3])
                                       for r in recs],
                           "kill": t_kill, "restart": t_up, "victim": victim.name}
    elif scenario == "join":
        ev = events[0]
        t_told = ev.result if isinstance(ev.result, float) else ev.done_at
        rec["join_at_s"] = round(t_told, 3)
        served = sorted(r[0] + r[1] for r in recs if r[3] == "d" and 200 <= r[2] < 400)
        rec["recover_s"] = round(served[0] - t_told, 3) if served else None
        rec["first_traffic_s"] = rec["recover_s"]
        # Flood check: the newcomer's share in 0.5 s windows after its first
        # response, vs its fair share 1/4.
        peak = 0.0
        if served:
            start = served[0]
            w = start
            while w < duration - 0.5:
                s = loadgen.shares(recs, all_names, w, w + 0.5)["d"]
                peak = max(peak, s)
                w += 0.5
        rec["join_peak_share"] = round(peak, 4)
        rec["max_share_dev"] = round(100 * max(0.0, peak - 0.25), 2)
        after = loadgen.shares(recs, all_names, t_told + 2.0, duration)
        rec["shares_after_join"] = {k: round(v, 4) for k, v in after.items()}
    if scenario == "weighted":
        ctx.series[key] = {"shares": rec["shares"], "expected": rec["expected_shares"]}
    rec["config"] = config
    log(f"  -> {rec['requests']} req, {rec['errors']} errors, {rec['rps']} req/s, "
        f"p50 {rec['p50_ms']} p99 {rec['p99_ms']} p99.9 {rec['p999_ms']} ms"
        + (f", share dev {rec['max_share_dev']} pp" if rec["max_share_dev"] is not None else "")
        + (f", detect {rec['detect_s']} s" if rec["detect_s"] is not None else "")
        + (f", recover/first traffic {rec['recover_s']} s" if rec["recover_s"] is not None
           else ""))
    return rec


def empty_record(scenario: str, system: str, algorithm: str, note: str) -> dict:
    return {"suite": SUITE, "scenario": scenario, "system": system,
            "algorithm": NATIVE.get(system, {}).get(algorithm, algorithm),
            "algorithm_generic": algorithm, "requests": None, "errors": None,
            "p50_ms": None, "p99_ms": None, "p999_ms": None, "max_share_dev": None,
            "detect_s": None, "recover_s": None, "note": note}


# --------------------------------------------------------------------------
# reporting


def _f(v, spec: str = ".1f") -> str:
    return "–" if v is None else format(v, spec)


def best(records: List[dict], scenario: str, system: str, key: str) -> Optional[dict]:
    rows = [r for r in records if r["scenario"] == scenario and r["system"] == system
            and r.get(key) is not None]
    return min(rows, key=lambda r: r[key]) if rows else None


def verdicts(records: List[dict]) -> List[str]:
    out = []
    f = best(records, "degraded", "fulcrum", "p99_ms")
    others = [best(records, "degraded", s, "p99_ms") for s in ("nginx", "haproxy")]
    if f and all(others):
        ok = all(f["p99_ms"] < o["p99_ms"] for o in others)
        out.append(
            f"degraded: Fulcrum's best p99 ({f['algorithm']}) {f['p99_ms']:.1f} ms vs nginx "
            f"{others[0]['p99_ms']:.1f} ms ({others[0]['algorithm']}) and HAProxy "
            f"{others[1]['p99_ms']:.1f} ms ({others[1]['algorithm']}): "
            f"{'lower' if ok else 'NOT lower'}")
    kill = [r for r in records if r["scenario"] == "kill" and r.get("requests") is not None]
    if kill:
        fk = [r for r in kill if r["system"] == "fulcrum"]
        zero = all(r["errors"] == 0 for r in fk)
        fdet = min((r["detect_s"] for r in fk if r["detect_s"] is not None), default=None)
        odet = {s: min((r["detect_s"] for r in kill if r["system"] == s
                        and r["detect_s"] is not None), default=None)
                for s in ("nginx", "haproxy")}
        # The sources have ms (nginx, HAProxy) or µs (Fulcrum) resolution.
        strict = fdet is not None and all(v is None or fdet <= v for v in odet.values())
        within = fdet is not None and all(v is None or fdet <= v + 0.001 for v in odet.values())
        cmp_txt = ("no later" if strict else
                   "no later within the 1 ms resolution of the nginx / HAProxy timings"
                   if within else "LATER")
        fq = min((r["quiet_s"] for r in fk if r.get("quiet_s") is not None), default=None)
        oq = {s: min((r["quiet_s"] for r in kill if r["system"] == s
                      and r.get("quiet_s") is not None), default=None)
              for s in ("nginx", "haproxy")}
        q_ok = fq is not None and all(v is None or fq <= v + 0.001 for v in oq.values())
        q_txt = (f"; no request to it after: Fulcrum {_f(None if fq is None else fq, '.3f')} s, "
                 f"nginx {_f(None if oq['nginx'] is None else oq['nginx'], '.3f')} s, HAProxy "
                 f"{_f(None if oq['haproxy'] is None else oq['haproxy'], '.3f')} s "
                 f"({'no later' if q_ok else 'LATER'})")
        out.append(
            f"kill: Fulcrum failed requests {[r['errors'] for r in fk]} "
            f"({'zero' if zero else 'NOT zero'}); out of service after: Fulcrum "
            f"{_f(None if fdet is None else fdet * 1e3, '.1f')} ms, nginx "
            f"{_f(None if odet['nginx'] is None else odet['nginx'] * 1e3, '.1f')} ms, HAProxy "
            f"{_f(None if odet['haproxy'] is None else odet['haproxy'] * 1e3, '.1f')} ms "
            f"({cmp_txt}; best algorithm of each){q_txt}")
    return out


def markdown(result: dict) -> str:
    m, prm = result["machine"], result["params"]
    recs = result["records"]
    L = [
        "# Quality suite results",
        "",
        f"Generated by `bench/run quality{' --quick' if prm['quick'] else ''}` on "
        f"{m['date_utc']} (Fulcrum rev `{m['fulcrum_git_rev']}`). Closed loop: each case "
        "has a fixed number of clients with one keep-alive connection each, sending the "
        "next `GET /fast` as soon as the previous one is answered. Proxy pinned to CPU "
        f"{prm['proxy_cpu']} (one worker), backends (fulcrum-mock) and the load generator "
        f"to CPU {prm['load_cpu']}.",
        "",
    ]
    for sc in SCENARIOS:
        rows = [r for r in recs if r["scenario"] == sc]
        if not rows:
            continue
        L += [f"## {sc}", ""]
        if sc == "weighted":
            L += ["| System | Algorithm | Requests | Errors | share a / b / c (expected 50.0 / "
                  "33.3 / 16.7 %) | max share dev (pp) | p99 (ms) |", "|---|---|---:|---:|---|---:|---:|"]
            for r in rows:
                s = r.get("shares") or {}
                sh = " / ".join(_f(100 * s[k], ".1f") for k in ("a", "b", "c")) if s else "–"
                L.append(f"| {LABELS[r['system']]} | {r['algorithm']} | {_f(r['requests'], ',')} | "
                         f"{_f(r['errors'], 'd')} | {sh} | {_f(r['max_share_dev'], '.2f')} | "
                         f"{_f(r['p99_ms'])} |")
        elif sc in ("heterogeneous", "degraded"):
            L += ["| System | Algorithm | Requests | Errors | req/s | p50 (ms) | p99 (ms) | "
                  "p99.9 (ms) | share a / b / c (%) |", "|---|---|---:|---:|---:|---:|---:|---:|---|"]
            for r in rows:
                s = r.get("shares") or {}
                sh = " / ".join(_f(100 * s[k], ".1f") for k in ("a", "b", "c")) if s else "–"
                L.append(f"| {LABELS[r['system']]} | {r['algorithm']} | {_f(r['requests'], ',')} | "
                         f"{_f(r['errors'], 'd')} | {_f(r.get('rps'), ',.0f')} | {_f(r['p50_ms'])} | "
                         f"{_f(r['p99_ms'])} | {_f(r['p999_ms'])} | {sh} |")
        elif sc == "kill":
            L += ["| System | Algorithm | Requests | Failed | p99 (ms) | p99.9 (ms) | "
                  "out of service after (ms) | later attempts | no request to it after (s) | "
                  "serves again after restart (s) |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
            for r in rows:
                L.append(f"| {LABELS[r['system']]} | {r['algorithm']} | {_f(r['requests'], ',')} | "
                         f"{_f(r['errors'], 'd')} | {_f(r['p99_ms'])} | {_f(r['p999_ms'])} | "
                         f"{_f(None if r['detect_s'] is None else 1e3 * r['detect_s'], '.1f')} | "
                         f"{_f(r.get('late_attempts'), 'd')} | "
                         f"{_f(r.get('quiet_s'), '.3f')} | "
                         f"{_f(r['recover_s'], '.2f')} |")
        elif sc == "join":
            L += ["| System | Algorithm | Requests | Errors | p99 (ms) | first traffic (s) | "
                  "peak share in a 0.5 s window (fair 25 %) | shares after (a/b/c/d %) |",
                  "|---|---|---:|---:|---:|---:|---:|---|"]
            for r in rows:
                s = r.get("shares_after_join") or {}
                sh = " / ".join(_f(100 * s[k], ".1f") for k in ("a", "b", "c", "d")) if s else "–"
                L.append(f"| {LABELS[r['system']]} | {r['algorithm']} | {_f(r['requests'], ',')} | "
                         f"{_f(r['errors'], 'd')} | {_f(r['p99_ms'])} | {_f(r['recover_s'], '.2f')} | "
                         f"{_f(100 * r['join_peak_share'] if r.get('join_peak_share') is not None else None, '.1f')} | {sh} |")
        notes = [r for r in rows if r.get("note")]
        for r in notes:
            L.append(f"\n{LABELS[r['system']]} {r['algorithm']}: not measured: {r['note']}")
        L.append("")
    v = verdicts(recs)
    if v:
        L += ["## Checks", ""] + [f"* {x}" for x in v] + [""]
    L += [
        "Machine: {cpu_model}, {nproc} CPUs, {mem_gib} GiB, Linux {kernel}; {nginx}; "
        "{haproxy}. Background CPU load before the run: {background_cpu_busy_pct}%. "
        "Binaries: {binaries} (fulcrum built {fulcrum_binary_mtime_utc}).".format(
            **{"binaries": "?", "fulcrum_binary_mtime_utc": "?", **m}),
        "",
        "See docs/BENCHMARKS.md for what each scenario does and the exact configurations "
        "(also stored per case in bench/results/quality.json).",
        "",
    ]
    return "\n".join(L)


# --------------------------------------------------------------------------
# entry point


def run(args: argparse.Namespace) -> int:
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    bad = [s for s in scenarios if s not in SCENARIOS]
    if bad:
        raise BenchError(f"unknown scenario(s) {', '.join(bad)}; choose from {', '.join(SCENARIOS)}")
    systems = [s.strip() for s in args.quality_systems.split(",") if s.strip()]
    bad = [s for s in systems if s not in SYSTEM_ORDER]
    if bad:
        raise BenchError(f"unknown system(s) {', '.join(bad)}; choose from fulcrum,nginx,haproxy")
    tools = {"taskset": ["util-linux"]}
    if "nginx" in systems:
        tools["nginx"] = ["nginx-light", "nginx"]
    if "haproxy" in systems:
        tools["haproxy"] = ["haproxy"]
    ensure_tools(tools, allow_install=not args.no_install)
    prebuilt = prebuilt_binaries(args)
    bins, machine = build_and_describe(["fulcrum", "fulcrum-mock"], args.no_build, prebuilt)
    if not (bins / "fulcrum-mock").exists():
        raise BenchError(f"{bins / 'fulcrum-mock'} not found")
    note_background(machine)
    prm = Params(quick=bool(args.quick))
    tmp = Path(tempfile.mkdtemp(prefix="fulcrum-bench-quality-"))
    os.chmod(tmp, 0o755)
    log(f"work dir {tmp}")
    old_aff = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {args.load_cpu})  # the load generator runs in this process
    records: List[dict] = []
    series: Dict[str, dict] = {}
    ok = False
    t_start = time.monotonic()
    try:
        with ProcessRegistry(tmp) as registry:
            ctx = Ctx(args, tmp, bins, registry, prm, series,
                      fulcrum_exe=prebuilt.get("fulcrum"))
            for sc in scenarios:
                for system in SYSTEM_ORDER:
                    if system not in systems:
                        continue
                    full, quick = ALGORITHMS[sc][system]
                    for algo in (quick if prm.quick else full):
                        try:
                            records.append(run_case(ctx, sc, system, algo))
                        except SystemUnavailable as e:
                            log(f"SKIP {sc}/{system}/{algo}: {e}")
                            records.append(empty_record(sc, system, algo,
                                                        str(e).splitlines()[0]))
                        time.sleep(0.3)
        ok = all(r["requests"] is not None for r in records)
    finally:
        os.sched_setaffinity(0, old_aff)
        if args.keep_tmp or not ok:
            log(f"logs and configs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    elapsed = time.monotonic() - t_start
    result = {
        "suite": SUITE,
        "machine": machine,
        "params": {"quick": prm.quick, "proxy_cpu": args.proxy_cpu, "load_cpu": args.load_cpu,
                   "scenarios": scenarios, "systems": systems, "load": "closed loop",
                   "elapsed_s": round(elapsed, 1)},
        "records": records,
    }
    out = Path(args.out_dir)
    write_json(out / f"{SUITE}.json", result)
    md = markdown(result)
    charts_md = ""
    try:
        import charts
        charts_md = charts.quality_charts(result, series, out)
    except Exception as e:  # charts are a bonus; the numbers are written already
        log(f"WARNING: charts not drawn: {type(e).__name__}: {e}")
    write_text(out / f"{SUITE}.md", md + charts_md)
    print(md + charts_md)
    log(f"wrote {out / (SUITE + '.json')} and {out / (SUITE + '.md')} in {elapsed:.0f}s")
    if not ok:
        log("WARNING: some cases were not measured (see SKIP above); exit status 3")
        return 3
    return 0
