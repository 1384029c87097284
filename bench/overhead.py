"""The ``overhead`` suite: what does putting a proxy in front of a fast backend cost?

The same wrk load (HTTP/1.1 keep-alive, 64 connections, ``GET /fast``) is sent
to (1) the backend directly, (2) nginx, (3) HAProxy and (4) Fulcrum. For each
we record requests/s, p50/p99 latency and -- the fair comparison on a 2-core
machine -- the proxy's CPU time per request, from /proc/<pid>/stat
utime+stime of the proxy's whole process tree, read just before and just after
the measured wrk run.

Pinning: every proxy runs on ``--proxy-cpu`` (core 0) with one worker; the
backend and wrk share ``--load-cpu`` (core 1).

``--baseline-bin PATH`` adds a fifth system, ``fulcrum-baseline``: another
Fulcrum binary with the same config, pinning and load, measured in the same
run. With it every system is measured in two rounds by default
(``--rounds``), the second in the reverse order (A B B A), so that drift of
a shared host hits both binaries alike; the table pools the rounds. With
more than one round the report adds the paired statistic (``paired`` in
the JSON): each round's Fulcrum minus baseline CPU per request -- two
measurements adjacent in time, as the A B | B A order puts them --
summarised by their median and a seeded bootstrap 95 % confidence
interval, which a noisy round widens rather than shifts.

The proxies are configured and started by ``systems.py`` (plain proxying:
``failover=False``).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from common import (
    machine_busy_seconds,
    rusage_seconds,
    background_busy_pct,
    RESULTS_DIR,
    BenchError,
    build_and_describe,
    note_background,
    prebuilt_binaries,
    Proc,
    ProcessRegistry,
    SystemUnavailable,
    cpu_seconds_between,
    ensure_tools,
    free_port,
    log,
    run_wrk,
    tree_cpu_snapshot,
    wait_http_ok,
    wait_tcp,
    write_json,
    write_text,
)
from systems import SYSTEMS as PROXIES, Backend, Fulcrum, NginxStub, Pool, System, start_mock

SUITE = "overhead"
SYSTEMS = ["direct", "nginx", "haproxy", "fulcrum"]
BASELINE = "fulcrum-baseline"  # added by --baseline-bin
BENCH_PATH = "/fast"
READY_TIMEOUT_S = 20.0

# Top-level config that turns off what observes each request (metrics and
# the access log), for --baseline-observe off.
OBSERVE_OFF = "metrics:\n  enabled: false\naccess_log:\n  path: \"off\"\n"

LABELS = {
    "direct": "backend direct (no proxy)",
    "nginx": "nginx",
    "haproxy": "HAProxy",
    "fulcrum": "Fulcrum",
    BASELINE: "Fulcrum baseline",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of this suite (they are accepted by ``bench/run`` for every suite)."""
    g = p.add_argument_group("overhead suite")
    g.add_argument("--systems", default=",".join(SYSTEMS),
                   help="comma-separated subset of %s, run in that order (default: all; "
                        "%s is added after fulcrum with --baseline-bin, or where named)"
                        % (",".join(SYSTEMS), BASELINE))
    g.add_argument("--connections", type=int, default=64,
                   help="wrk connections (default: 64)")
    g.add_argument("--warmup", type=float, default=None,
                   help="warm-up seconds per system (default: 2, --quick: 1)")
    g.add_argument("--duration", type=float, default=None,
                   help="measured seconds per system (default: 15, --quick: 5)")
    g.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                   help="before each system, wait up to SECONDS for the machine to be "
                        "idle (<10%% busy), e.g. while other builds run (default: 0)")
    g.add_argument("--backend", choices=["mock", "nginx-stub"], default="mock",
                   help="backend: fulcrum-mock (default; the one to publish) or a "
                        "development stand-in nginx answering 200 'ok'")
    g.add_argument("--baseline-bin", metavar="PATH", default=None,
                   help="also measure the Fulcrum binary at PATH as system '%s' (same "
                        "config, pinning and load as 'fulcrum', in the same run, listed "
                        "after it), e.g. a build of main next to this branch's" % BASELINE)
    g.add_argument("--rounds", type=int, default=None, metavar="N",
                   help="measure every system N times, in reverse order every other round "
                        "(A B | B A), so that drift of the host hits all alike; results pool "
                        "the rounds (default: 1, 2 with --baseline-bin)")
    g.add_argument("--baseline-observe", choices=["on", "off"], default="on",
                   help="'off' runs %s with metrics and the access log turned off "
                        "(metrics: {enabled: false}, access_log: {path: off}); with "
                        "--baseline-bin set to the same binary as 'fulcrum' this measures "
                        "what observing each request costs (default: on)" % BASELINE)
    g.add_argument("--fulcrum-store", choices=["embedded", "redis"], default="embedded",
                   help="'redis' runs system 'fulcrum' with registry.store: redis against a "
                        "redis-server the suite starts on the load CPU (%s keeps the "
                        "embedded store); with --baseline-bin set to the same binary this "
                        "measures what sharing state through Redis costs (default: "
                        "embedded)" % BASELINE)


# --------------------------------------------------------------------------
# context and the systems under test


def resolve_systems(args: argparse.Namespace) -> List[str]:
    """``--systems`` checked, with ``fulcrum-baseline`` put right after
    ``fulcrum`` (or last) when ``--baseline-bin`` is given."""
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    known = SYSTEMS + [BASELINE]
    unknown = [s for s in systems if s not in known]
    if unknown:
        raise BenchError(f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    if len(set(systems)) != len(systems):
        raise BenchError(f"a system is named twice in --systems {args.systems}")
    if BASELINE in systems and not args.baseline_bin:
        raise BenchError(f"system {BASELINE} needs --baseline-bin PATH")
    if args.baseline_bin and BASELINE not in systems:
        at = systems.index("fulcrum") + 1 if "fulcrum" in systems else len(systems)
        systems.insert(at, BASELINE)
    return systems


def resolve_rounds(args: argparse.Namespace) -> int:
    rounds = args.rounds if args.rounds is not None else (2 if args.baseline_bin else 1)
    if rounds < 1:
        raise BenchError("--rounds must be at least 1")
    return rounds


def schedule(systems: List[str], rounds: int) -> List[Tuple[int, str]]:
    """(round, system) in run order: the order is reversed every other round."""
    out = []
    for r in range(rounds):
        out += [(r, s) for s in (systems if r % 2 == 0 else systems[::-1])]
    return out


@dataclass
class Ctx:
    args: argparse.Namespace
    tmp: Path
    bins: Path
    registry: ProcessRegistry
    backend_port: int = 0
    redis_url: Optional[str] = None  # --fulcrum-store redis
    notes: Dict[str, object] = field(default_factory=dict)
    exes: Dict[str, Path] = field(default_factory=dict)  # prebuilt_binaries(args)

    @property
    def proxy_cpu(self) -> int:
        return self.args.proxy_cpu

    @property
    def load_cpu(self) -> int:
        return self.args.load_cpu


def start_backend(ctx: Ctx) -> Proc:
    """The one backend of the run, on the load CPU: fulcrum-mock (0 ms
    latency) or, for development, an nginx answering 200 "ok" itself."""
    if ctx.args.backend == "mock":
        port = free_port()
        proc = start_mock(ctx.registry, ctx.bins, "b0", port, ctx.load_cpu, latency=None)
        wait_http_ok(port, BENCH_PATH, READY_TIMEOUT_S, proc)
    else:
        stub = NginxStub(ctx.registry, ctx.tmp / "backend-nginx", ctx.load_cpu,
                         path=BENCH_PATH).start()
        proc, port = stub.proc, stub.port
    ctx.backend_port = port
    return proc


def start_redis(ctx: Ctx) -> Proc:
    """A throw-away redis-server (no persistence) on the load CPU, for
    ``--fulcrum-store redis``."""
    port = free_port()
    proc = ctx.registry.start("redis", ["redis-server", "--port", str(port),
                                        "--bind", "127.0.0.1", "--save", "",
                                        "--appendonly", "no", "--dir", str(ctx.tmp)],
                              cpu=ctx.load_cpu, cwd=ctx.tmp)
    wait_tcp(port, READY_TIMEOUT_S, proc)
    ctx.redis_url = f"redis://127.0.0.1:{port}"
    return proc


def make_proxy(ctx: Ctx, system: str) -> Optional[System]:
    """The proxy for ``system`` (None for direct): one pool with the backend,
    plain proxying, ready when ``GET /fast`` answers through it."""
    if system == "direct":
        return None
    pool = Pool("bench", "round_robin", [Backend("b0", ctx.backend_port)])
    kw: Dict[str, object] = {"failover": False, "ready_path": BENCH_PATH}
    cls = PROXIES.get(system, Fulcrum)
    if cls is Fulcrum:  # fulcrum and fulcrum-baseline: the same config
        kw.update(name=system, exe=ctx.exes.get(system), registry_enabled=True)
        if ctx.args.baseline_observe == "off":
            # What observing costs: this build with metrics and an access
            # log (to a file) against the baseline with both off.
            if system == BASELINE:
                kw.update(extra_top=OBSERVE_OFF)
            else:
                kw.update(access_log=True)
        if system != BASELINE and ctx.redis_url:
            kw.update(redis_url=ctx.redis_url)
    return cls(ctx.registry, ctx.tmp / system, ctx.bins, ctx.proxy_cpu, [pool], **kw)


REQUIRED_TOOLS = {
    "nginx": {"nginx": ["nginx-light", "nginx"]},
    "haproxy": {"haproxy": ["haproxy"]},
}


# --------------------------------------------------------------------------
# measuring one system


def empty_record(system: str, note: str) -> dict:
    return {"suite": SUITE, "system": system, "requests": None, "duration_s": None,
            "rps": None, "p50_ms": None, "p99_ms": None, "cpu_us_per_req": None,
            "errors": None, "backend_cpu_us_per_req": None, "note": note}


def measure(ctx: Ctx, system: str, backend: Proc, warmup_s: float, duration_s: float) -> dict:
    """One round of one system: start it, warm up, measure, stop it."""
    sysobj = make_proxy(ctx, system)
    proxy: Optional[Proc] = None
    try:
        if sysobj is None:
            port = ctx.backend_port
        else:
            proxy = sysobj.start().proc
            port = sysobj.port
            if system == "haproxy":
                ctx.notes["haproxy_maxconn"] = sysobj.maxconn
        url = f"http://127.0.0.1:{port}{BENCH_PATH}"
        wrk = dict(connections=ctx.args.connections, threads=1, cpu=ctx.load_cpu)

        log(f"{system}: warm-up {warmup_s:g}s")
        run_wrk(ctx.registry, url, warmup_s, name=f"wrk-warmup-{system}", **wrk)

        roots_proxy = [sysobj.pid] if sysobj else []
        before_proxy = tree_cpu_snapshot(roots_proxy)
        before_backend = tree_cpu_snapshot([backend.pid])
        before_machine = machine_busy_seconds()
        before_children = rusage_seconds(resource.RUSAGE_CHILDREN)  # wrk, once reaped
        before_self = rusage_seconds(resource.RUSAGE_SELF)
        log(f"{system}: measuring {duration_s:g}s")
        res = run_wrk(ctx.registry, url, duration_s, name=f"wrk-{system}", **wrk)
        after_proxy = tree_cpu_snapshot(roots_proxy)
        after_backend = tree_cpu_snapshot([backend.pid])
        machine_s = machine_busy_seconds() - before_machine
        wrk_s = rusage_seconds(resource.RUSAGE_CHILDREN) - before_children
        self_s = rusage_seconds(resource.RUSAGE_SELF) - before_self

        if backend.poll() is not None:
            raise BenchError(f"the backend died during the {system} run (exit status "
                             f"{backend.returncode})" + backend.log_tail())
        if proxy is not None and proxy.poll() is not None:
            raise SystemUnavailable(f"{system} died during the run (exit status "
                                    f"{proxy.returncode})" + proxy.log_tail())

        n = max(res.requests, 1)
        proxy_cpu_s = cpu_seconds_between(before_proxy, after_proxy)
        backend_cpu_s = cpu_seconds_between(before_backend, after_backend)
        # CPU used on the machine during the run by anything but the proxy,
        # the backend, wrk and this script (other jobs, kernel threads, irqs):
        # a noise indicator, in % of one CPU.
        other_s = machine_s - proxy_cpu_s - backend_cpu_s - wrk_s - self_s
        other_pct = max(0.0, 100.0 * other_s / res.duration_s)
        if other_pct > 15:
            log(f"WARNING {system}: {other_pct:.0f}% of a CPU was used by other processes "
                "during the run; this result is noisy")
        rec = {
            "suite": SUITE,
            "system": system,
            "requests": res.requests,
            "duration_s": round(res.duration_s, 3),
            "rps": round(res.rps, 1),
            "p50_ms": round(res.p50_ms, 4),
            "p99_ms": round(res.p99_ms, 4),
            "cpu_us_per_req": round(proxy_cpu_s * 1e6 / n, 2) if proxy else None,
            "errors": res.errors,
            "backend_cpu_us_per_req": round(backend_cpu_s * 1e6 / n, 2),
            "wrk_cpu_us_per_req": round(wrk_s * 1e6 / n, 2),
            "other_cpu_pct": round(other_pct, 1),
            "proxy_cpu_s": round(proxy_cpu_s, 2) if proxy else None,
            "proxy_pids": sorted(after_proxy) if proxy else [],
            "p75_ms": round(res.p75_ms, 4),
            "p90_ms": round(res.p90_ms, 4),
            "socket_errors": res.socket_errors,
            "non_2xx_3xx": res.non_2xx_3xx,
        }
        cpu = f"{rec['cpu_us_per_req']} us/req" if proxy else "n/a"
        log(f"{system}: {res.rps:,.0f} req/s, p50 {res.p50_ms:.3f} ms, p99 {res.p99_ms:.3f} ms, "
            f"proxy CPU {cpu}, backend CPU {rec['backend_cpu_us_per_req']} us/req, "
            f"errors {res.errors}")
        return rec
    finally:
        if sysobj is not None:
            sysobj.stop()


ROUND_KEYS = ("requests", "duration_s", "rps", "p50_ms", "p99_ms", "cpu_us_per_req",
              "backend_cpu_us_per_req", "errors", "other_cpu_pct")


def combine(recs: List[dict]) -> dict:
    """One record from the rounds of a system: sums of requests, time and
    errors; CPU per request weighted by requests (= total CPU / total
    requests); other CPU weighted by time; latency percentiles as the
    request-weighted mean of the rounds' (wrk gives no histogram to merge).
    The rounds themselves are kept under ``rounds``."""
    if len(recs) == 1:
        return recs[0]
    n = sum(r["requests"] for r in recs)
    dur = sum(r["duration_s"] for r in recs)

    def by_requests(key: str, nd: int) -> Optional[float]:
        if any(r.get(key) is None for r in recs):
            return None
        return round(sum(r[key] * r["requests"] for r in recs) / max(n, 1), nd)

    sock: Dict[str, int] = {}
    for r in recs:
        for k, v in r["socket_errors"].items():
            sock[k] = sock.get(k, 0) + v
    out = dict(recs[-1])  # suite, system, proxy_pids of the last round
    out.update({
        "requests": n,
        "duration_s": round(dur, 3),
        "rps": round(n / dur, 1) if dur else None,
        "p50_ms": by_requests("p50_ms", 4),
        "p99_ms": by_requests("p99_ms", 4),
        "p75_ms": by_requests("p75_ms", 4),
        "p90_ms": by_requests("p90_ms", 4),
        "cpu_us_per_req": by_requests("cpu_us_per_req", 2),
        "backend_cpu_us_per_req": by_requests("backend_cpu_us_per_req", 2),
        "wrk_cpu_us_per_req": by_requests("wrk_cpu_us_per_req", 2),
        "errors": sum(r["errors"] for r in recs),
        "other_cpu_pct": round(sum(r["other_cpu_pct"] * r["duration_s"] for r in recs)
                               / dur, 1) if dur else None,
        "proxy_cpu_s": (None if any(r["proxy_cpu_s"] is None for r in recs)
                        else round(sum(r["proxy_cpu_s"] for r in recs), 2)),
        "socket_errors": sock,
        "non_2xx_3xx": sum(r["non_2xx_3xx"] for r in recs),
        "percentiles": "request-weighted mean of the rounds' wrk percentiles",
        "rounds": [{k: r[k] for k in ROUND_KEYS} for r in recs],
    })
    return out


def measure_all(ctx: Ctx, systems: List[str], rounds: int, backend: Proc, warmup_s: float,
                duration_s: float) -> List[dict]:
    """Every system ``rounds`` times (see ``schedule``), one record each in
    ``systems`` order. A system that fails in any round is not measured."""
    done: Dict[str, List[dict]] = {s: [] for s in systems}
    skipped: Dict[str, str] = {}
    for rnd, system in schedule(systems, rounds):
        if system in skipped:
            continue
        if ctx.args.wait_quiet > 0:
            wait_quiet(ctx.args.wait_quiet)
        if rounds > 1:
            log(f"round {rnd + 1}/{rounds}: {system}")
        try:
            done[system].append(measure(ctx, system, backend, warmup_s, duration_s))
        except SystemUnavailable as e:
            log(f"SKIP {system}: {e}")
            skipped[system] = str(e).splitlines()[0]
        time.sleep(1.0)  # let sockets in TIME_WAIT and the CPU settle
    records = [empty_record(s, skipped[s]) if s in skipped else combine(done[s])
               for s in systems]
    if rounds > 1:
        for r in records:
            if r["requests"] is not None:
                log(f"{r['system']} ({rounds} rounds pooled): {r['rps']:,.0f} req/s, "
                    f"proxy CPU {r['cpu_us_per_req']} us/req (rounds: "
                    + ", ".join(str(x["cpu_us_per_req"]) for x in r["rounds"]) + ")")
    return records


# The paired statistic's bootstrap: resamples and seed (fixed, so that
# the same rounds always give the same interval).
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 12


def bootstrap_median_ci(xs: List[float], resamples: int = BOOTSTRAP_RESAMPLES,
                        seed: int = BOOTSTRAP_SEED, level: float = 0.95
                        ) -> Tuple[float, float]:
    """A percentile-bootstrap confidence interval for the median of ``xs``:
    the medians of ``resamples`` resamples (with replacement, from a
    ``random.Random(seed)``), cut at (1 - level) / 2 on each side."""
    if not xs:
        raise ValueError("no values")
    rng = random.Random(seed)
    n = len(xs)
    meds = sorted(statistics.median(rng.choices(xs, k=n)) for _ in range(resamples))
    tail = (1.0 - level) / 2.0
    lo = meds[int(tail * resamples)]
    hi = meds[min(resamples - 1, int((1.0 - tail) * resamples))]
    return lo, hi


def paired(a: dict, b: dict, resamples: int = BOOTSTRAP_RESAMPLES,
           seed: int = BOOTSTRAP_SEED) -> Optional[dict]:
    """``a`` minus ``b`` in proxy CPU per request, round by round: the two
    systems' measurements of one round are adjacent in time (A B | B A), so
    each difference sees nearly the same host. Their median, with a seeded
    bootstrap 95 % interval, is the figure a noisy host does not move much;
    the pooled difference (total CPU / total requests) is given alongside.
    None when either system lacks per-round CPU (one round, not measured)."""
    ra, rb = a.get("rounds"), b.get("rounds")
    if not ra or not rb or len(ra) != len(rb):
        return None
    diffs = [x["cpu_us_per_req"] - y["cpu_us_per_req"] for x, y in zip(ra, rb)
             if x.get("cpu_us_per_req") is not None and y.get("cpu_us_per_req") is not None]
    if not diffs:
        return None
    lo, hi = bootstrap_median_ci(diffs, resamples, seed)
    pooled = (None if a.get("cpu_us_per_req") is None or b.get("cpu_us_per_req") is None
              else round(a["cpu_us_per_req"] - b["cpu_us_per_req"], 2))
    return {
        "systems": [a["system"], b["system"]],
        "statistic": "median over rounds of (a - b) proxy CPU us/req, measured adjacent",
        "rounds": len(diffs),
        "median_diff_us_per_req": round(statistics.median(diffs), 2),
        "ci95_us_per_req": [round(lo, 2), round(hi, 2)],
        "bootstrap": {"resamples": resamples, "seed": seed, "method": "percentile"},
        "pooled_diff_us_per_req": pooled,
        "diffs_us_per_req": [round(d, 2) for d in diffs],
    }


def paired_of(records: List[dict]) -> Optional[dict]:
    """The paired statistic of Fulcrum against its baseline, when both were
    measured in more than one round."""
    by = {r["system"]: r for r in records if r.get("requests") is not None}
    if "fulcrum" not in by or BASELINE not in by:
        return None
    return paired(by["fulcrum"], by[BASELINE])


def wait_quiet(timeout_s: float, threshold_pct: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        busy = background_busy_pct(2.0)
        if busy < threshold_pct:
            return
        if time.monotonic() >= deadline:
            log(f"machine still {busy:.0f}% busy after waiting {timeout_s:g}s; going on")
            return
        log(f"machine {busy:.0f}% busy; waiting for it to be quiet")
        time.sleep(3.0)


# --------------------------------------------------------------------------
# reporting


def _fmt(v, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def command_line(prm: dict) -> str:
    cmd = "bench/run overhead" + (" --quick" if prm["quick"] else "")
    bins = prm.get("binaries", {})
    if "fulcrum" in bins:
        cmd += f" --fulcrum-bin {bins['fulcrum']}"
    if BASELINE in bins:
        cmd += f" --baseline-bin {bins[BASELINE]}"
    rounds = prm.get("rounds", 1)
    if prm.get("baseline_observe", "on") != "on":
        cmd += f" --baseline-observe {prm['baseline_observe']}"
    if prm.get("fulcrum_store", "embedded") != "embedded":
        cmd += f" --fulcrum-store {prm['fulcrum_store']}"
    if rounds != (2 if BASELINE in bins else 1):
        cmd += f" --rounds {rounds}"
    return cmd


def markdown(result: dict) -> str:
    m, prm = result["machine"], result["params"]
    rounds = prm.get("rounds", 1)
    per_system = (f"{prm['warmup_s']:g} s warm-up + {prm['duration_s']:g} s measured per system"
                  + (f" and round; {rounds} rounds, the order reversed every other round, "
                     "pooled (latency: request-weighted mean of the rounds)"
                     if rounds > 1 else ""))
    lines = [
        "# Overhead suite results",
        "",
        f"Generated by `{command_line(prm)}` on "
        f"{m['date_utc']} (Fulcrum rev `{m['fulcrum_git_rev']}`).",
        "",
        f"Load: wrk, 1 thread, {prm['connections']} keep-alive connections, `GET {BENCH_PATH}`, "
        f"{per_system}. "
        f"Proxies pinned to CPU {prm['proxy_cpu']} (1 worker); backend "
        f"({prm['backend']}) and wrk pinned to CPU {prm['load_cpu']}.",
        "",
        "| System | Requests | req/s | p50 (ms) | p99 (ms) | Proxy CPU (µs/req) "
        "| Backend CPU (µs/req) | Errors | Other CPU (%) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["records"]:
        label = LABELS.get(r["system"], r["system"])
        if r["requests"] is None:
            lines.append(f"| {label} | not measured: {r.get('note', '')} | | | | | | | |")
            continue
        lines.append(
            f"| {label} | {r['requests']:,} | {_fmt(r['rps'], ',.0f')} | "
            f"{_fmt(r['p50_ms'], '.3f')} | {_fmt(r['p99_ms'], '.3f')} | "
            f"{_fmt(r['cpu_us_per_req'], '.1f')} | {_fmt(r['backend_cpu_us_per_req'], '.1f')} | "
            f"{r['errors']} | {_fmt(r.get('other_cpu_pct'), '.0f')} |")
    lines += [
        "",
        "Machine: {cpu_model}, {nproc} CPUs, {mem_gib} GiB, Linux {kernel}; "
        "{nginx}; {haproxy}; {wrk}; {rustc}. Background CPU load before the run: "
        "{background_cpu_busy_pct}%.".format(**m),
        "",
        f"cargo build: {m.get('cargo_build', '?')}.",
        "",
    ]
    for name, path in prm.get("binaries", {}).items():
        sha = m.get(f"{name}_binary_sha256", "?")
        lines += [f"{LABELS.get(name, name)} binary: `{path}` (sha256 {sha[:16]}, built "
                  f"{m.get(f'{name}_binary_mtime_utc', '?')}).", ""]
    if rounds > 1:
        for r in result["records"]:
            if r["requests"] is not None and "rounds" in r:
                lines.append(f"* {LABELS.get(r['system'], r['system'])}, proxy CPU (µs/req) "
                             "per round: " + ", ".join(_fmt(x["cpu_us_per_req"], ".1f")
                                                      for x in r["rounds"]) + "; req/s: "
                             + ", ".join(_fmt(x["rps"], ",.0f") for x in r["rounds"]))
        lines.append("")
    pr = result.get("paired")
    if pr:
        a, b = (LABELS.get(x, x) for x in pr["systems"])
        lo, hi = pr["ci95_us_per_req"]
        lines += [
            f"**Paired by round** ({a} minus {b}, proxy CPU per request, the two "
            f"measured one after the other in each of {pr['rounds']} rounds): median "
            f"{pr['median_diff_us_per_req']:+.2f} µs/req, 95 % CI {lo:+.2f} to {hi:+.2f} "
            f"(percentile bootstrap, {pr['bootstrap']['resamples']:,} resamples, seed "
            f"{pr['bootstrap']['seed']}); pooled difference "
            f"{_fmt(pr['pooled_diff_us_per_req'], '+.2f')} µs/req.",
            "",
        ]
    lines += [
        "Proxy CPU = utime+stime of the proxy's process tree (/proc/<pid>/stat) over the "
        "measured run, divided by requests completed. Other CPU = CPU time used during the "
        "run by anything but the proxy, backend, wrk and the harness, in % of one CPU "
        "(a noise indicator: above ~15 % something else was running). "
        "See docs/BENCHMARKS.md.",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------
# entry point


def run(args: argparse.Namespace) -> int:
    systems = resolve_systems(args)
    rounds = resolve_rounds(args)
    warmup_s = args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0)
    duration_s = args.duration if args.duration is not None else (5.0 if args.quick else 15.0)

    tools = {"wrk": ["wrk"], "taskset": ["util-linux"]}
    for s in systems:
        tools.update(REQUIRED_TOOLS.get(s, {}))
    if args.backend == "nginx-stub":
        tools.update(REQUIRED_TOOLS["nginx"])
    if args.fulcrum_store == "redis":
        tools.update({"redis-server": ["redis-server"]})
    ensure_tools(tools, allow_install=not args.no_install)

    packages = ["fulcrum-mock"] if args.backend == "mock" else []
    if "fulcrum" in systems:
        packages.insert(0, "fulcrum")
    prebuilt = prebuilt_binaries(args)
    bins, machine = build_and_describe(packages, args.no_build, prebuilt)
    if args.backend == "mock" and not (bins / "fulcrum-mock").exists():
        raise BenchError(f"{bins / 'fulcrum-mock'} not found (cargo build --release -p "
                         "fulcrum-mock failed?); use --backend nginx-stub only for development")
    if args.wait_quiet > 0:
        wait_quiet(args.wait_quiet)
    note_background(machine)
    tmp = Path(tempfile.mkdtemp(prefix="fulcrum-bench-"))
    os.chmod(tmp, 0o755)  # nginx workers drop to 'nobody' when started as root
    log(f"work dir {tmp}")
    records: List[dict] = []
    notes: Dict[str, object] = {}
    ok = False
    try:
        with ProcessRegistry(tmp) as registry:
            ctx = Ctx(args=args, tmp=tmp, bins=bins, registry=registry, notes=notes,
                      exes=prebuilt)
            try:
                backend = start_backend(ctx)
            except SystemUnavailable as e:
                raise BenchError(f"the backend did not start: {e}") from None
            log(f"backend ({args.backend}) ready on 127.0.0.1:{ctx.backend_port}")
            if args.fulcrum_store == "redis":
                start_redis(ctx)
                log(f"redis-server ready at {ctx.redis_url} (store of 'fulcrum')")
            records = measure_all(ctx, systems, rounds, backend, warmup_s, duration_s)
        ok = all(r["requests"] is not None for r in records)
    finally:
        if args.keep_tmp or not ok:
            log(f"logs and configs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    result = {
        "suite": SUITE,
        "machine": machine,
        "params": {
            "quick": bool(args.quick),
            "warmup_s": warmup_s,
            "duration_s": duration_s,
            "connections": args.connections,
            "wrk_threads": 1,
            "path": BENCH_PATH,
            "proxy_cpu": args.proxy_cpu,
            "load_cpu": args.load_cpu,
            "backend": "fulcrum-mock --threads 1" if args.backend == "mock"
                       else "nginx stand-in (worker_processes 1)",
            "systems": systems,
            "rounds": rounds,
            "baseline_observe": args.baseline_observe,
            "fulcrum_store": args.fulcrum_store,
            "binaries": {k: str(v) for k, v in prebuilt.items()},
            **notes,
        },
        "records": records,
    }
    pr = paired_of(records)
    if pr:
        result["paired"] = pr
        log(f"paired by round ({pr['rounds']} rounds): fulcrum - baseline median "
            f"{pr['median_diff_us_per_req']:+.2f} us/req, 95% CI "
            f"{pr['ci95_us_per_req'][0]:+.2f} to {pr['ci95_us_per_req'][1]:+.2f}")
    out = Path(args.out_dir)
    write_json(out / f"{SUITE}.json", result)
    md = markdown(result)
    write_text(out / f"{SUITE}.md", md)
    print(md)
    log(f"wrote {out / (SUITE + '.json')} and {out / (SUITE + '.md')}")
    measured = [r for r in records if r["requests"] is not None]
    if len(measured) != len(records):
        log("WARNING: some systems were not measured (see SKIP above); exit status 3")
        return 3
    return 0


__all__ = ["add_arguments", "run", "SUITE", "RESULTS_DIR"]
