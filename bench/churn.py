#!/usr/bin/env python3
"""Churn: instances killed and restarted under load (issue #11, finding 2).

Three ``fulcrum-mock`` processes behind a release ``fulcrum``; 32 clients
POST back to back for 60 s while, every few seconds, one instance (in
turn) is killed with SIGKILL and started again on the same port a moment
later, so there is always at least two instances alive. The pool has the
issue's retry settings::

    retry: { tries: 3, on: [error, timeout, http_502, http_503], non_idempotent: true }

and otherwise the gateway's defaults (``passive: { max_fails: 2,
fail_timeout: 30s }``, default ``max_ejection_percent``, probes every 30 s,
7.5 s when not settled), unless ``--health-interval`` is given.

Reported (stdout, and ``bench/results/churn[-LABEL].{json,md}``):

* requests, failed requests (any status but 200, or no answer within the
  client's 10 s) and their statuses; a 503 can only be the gateway's (the
  mocks never answer 503 here), i.e. a pool refused while instances were
  alive;
* from the admin API, polled every 200 ms: the most instances ejected at
  once, the time every instance was ejected, and how long each ejection
  lasted after its instance was back;
* the gateway's log lines for ejections and for ejections ended by a probe.

Usage::

    bench/churn.py [--duration 60] [--clients 32] [--period 4] [--down 1]
                   [--fulcrum-bin PATH] [--label NAME] [--no-build]

It exits 1 when the issue's bar is not met (≥ 0.1 % failed, or any 503).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))

import common  # noqa: E402
import loadgen  # noqa: E402
from systems import http_json, mock_cmd  # noqa: E402

NAMES = ["a", "b", "c"]
RETRY = "{ tries: 3, on: [error, timeout, http_502, http_503], non_idempotent: true }"
BODY = b'{"image_url":"http://cam/1.jpg","task":"detect"}'


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=60.0, help="seconds of load (60)")
    p.add_argument("--clients", type=int, default=32, help="concurrent clients (32)")
    p.add_argument("--period", type=float, default=4.0,
                   help="seconds between kills; the instances are killed in turn (4)")
    p.add_argument("--down", type=float, default=1.0,
                   help="seconds an instance stays dead before it is restarted (1)")
    p.add_argument("--latency", default="10ms", help="each mock's processing time (10ms)")
    p.add_argument("--health-interval", default=None,
                   help="health_check.interval (default: the gateway's, 30s)")
    p.add_argument("--threads", type=int, default=None, help="gateway worker threads")
    p.add_argument("--fulcrum-bin", default=None,
                   help="fulcrum binary (default: target/release/fulcrum, built first)")
    p.add_argument("--no-build", action="store_true", help="build nothing")
    p.add_argument("--label", default="", help="suffix of the result files")
    p.add_argument("--out-dir", default=str(common.RESULTS_DIR))
    p.add_argument("--keep-tmp", action="store_true")
    return p.parse_args(argv)


def config(port: int, admin: int, mocks: Dict[str, int], health_interval: Optional[str],
           workdir: Path) -> str:
    insts = "\n".join(f'      - {{ endpoint: "http://127.0.0.1:{p}" }}' for p in mocks.values())
    health = f"health_check:\n  interval: {health_interval}\n" if health_interval else ""
    return f"""\
listen: 127.0.0.1:{port}
admin:
  listen: 127.0.0.1:{admin}
registry:
  enabled: false
  path: {workdir}/registry
{health}pools:
  infer:
    algorithm: round_robin
    retry: {RETRY}
    instances:
{insts}
routes:
  - {{ path_prefix: /, pool: infer }}
"""


class Mocks:
    """The three mock processes, each restartable on its port."""

    def __init__(self, registry: common.ProcessRegistry, bins: Path, latency: str):
        self.registry, self.bins, self.latency = registry, bins, latency
        self.ports = {n: common.free_port() for n in NAMES}
        self.procs: Dict[str, common.Proc] = {}
        self.alive = {n: False for n in NAMES}
        self.lock = threading.Lock()
        self.starts = {n: 0 for n in NAMES}

    def start(self, name: str) -> float:
        port = self.ports[name]
        self.starts[name] += 1
        proc = self.registry.start(f"mock-{name}-{self.starts[name]}",
                                   mock_cmd(self.bins, name, port, latency=self.latency),
                                   capture_stdout=True)
        proc.wait_for_line(r"listening on http://127\.0\.0\.1:%d\b" % port, 10)
        with self.lock:
            self.procs[name], self.alive[name] = proc, True
        return time.time()

    def kill(self, name: str) -> float:
        with self.lock:
            proc, self.alive[name] = self.procs[name], False
        t = time.time()
        os.killpg(proc.pid, signal.SIGKILL)
        proc.popen.wait()
        return t


class Poller(threading.Thread):
    """Polls the admin API every 200 ms: which instances are ejected."""

    def __init__(self, admin: int, mocks: Mocks):
        super().__init__(daemon=True)
        self.admin, self.mocks = admin, mocks
        self.samples: List[dict] = []  # {t, ejected: [names], alive: [names]}
        self.stop = threading.Event()
        self.by_port = {str(p): n for n, p in mocks.ports.items()}

    def run(self) -> None:
        while not self.stop.is_set():
            t = time.time()
            try:
                st, doc = http_json("GET", self.admin, "/api/v1/pools", timeout=2)
            except OSError:
                st, doc = 0, None
            if st == 200:
                ejected = []
                for pool in doc if isinstance(doc, list) else doc.get("pools", []):
                    for inst in pool.get("instances", []):
                        s = inst.get("stats", inst)
                        if s.get("ejected"):
                            port = s.get("endpoint", "").rsplit(":", 1)[-1]
                            ejected.append(self.by_port.get(port, port))
                with self.mocks.lock:
                    alive = [n for n, a in self.mocks.alive.items() if a]
                self.samples.append({"t": t, "ejected": sorted(ejected), "alive": alive})
            self.stop.wait(0.2)


def ejection_after_return(samples: List[dict], back_at: Dict[str, List[float]]) -> List[float]:
    """For each restart, how long (s) its instance was still seen ejected
    after it was back (0 when it was not ejected at its return)."""
    out = []
    for name, times in back_at.items():
        for t_back in times:
            last = None
            for s in samples:
                if s["t"] < t_back:
                    continue
                if name in s["ejected"]:
                    last = s["t"]
                else:
                    break
            out.append(round((last - t_back) if last else 0.0, 2))
    return out


def run(args) -> int:
    prebuilt = {"fulcrum": Path(args.fulcrum_bin).resolve()} if args.fulcrum_bin else {}
    bins, machine = common.build_and_describe(["fulcrum", "fulcrum-mock"], args.no_build,
                                              prebuilt)
    fulcrum = prebuilt.get("fulcrum", bins / "fulcrum")
    common.note_background(machine)
    tmp = Path(tempfile.mkdtemp(prefix="fulcrum-churn-"))
    out_dir = Path(args.out_dir)
    suffix = f"-{args.label}" if args.label else ""
    with common.ProcessRegistry(tmp) as reg:
        mocks = Mocks(reg, bins, args.latency)
        for n in NAMES:
            mocks.start(n)
        port, admin = common.free_port(), common.free_port()
        conf = tmp / "fulcrum.yaml"
        conf.write_text(config(port, admin, mocks.ports, args.health_interval, tmp))
        cmd = [str(fulcrum), "serve", "-c", str(conf)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        gw = reg.start("fulcrum", cmd, cwd=tmp)
        common.wait_http_ok(admin, "/readyz", 20, gw)
        common.wait_http_ok(port, "/fast", 20, gw)

        # Kill one instance every `period` s, in turn, from 2 s in; each is
        # back `down` s later.
        events, back_at = [], {n: [] for n in NAMES}
        t, k = 2.0, 0
        while t + args.down < args.duration - 1.0:
            name = NAMES[k % len(NAMES)]
            events.append(loadgen.Event(t, f"kill {name}", lambda n=name: mocks.kill(n)))
            events.append(loadgen.Event(t + args.down, f"restart {name}",
                                        lambda n=name: back_at[n].append(mocks.start(n))))
            t, k = t + args.period, k + 1
        poller = Poller(admin, mocks)
        poller.start()
        common.log(f"{args.clients} clients POST for {args.duration:.0f} s; "
                   f"{k} kills, one every {args.period} s, each instance back after "
                   f"{args.down} s")
        wall0 = time.time()
        records = loadgen.closed_loop("127.0.0.1", port, args.clients, args.duration,
                                      path="/infer", method="POST", body=BODY,
                                      events=events, timeout=10.0)
        poller.stop.set()
        poller.join()
        log_text = gw.log_path.read_text(errors="replace")
        pools = http_json("GET", admin, "/api/v1/pools")[1]

    total = len(records)
    failed = [r for r in records if r[2] != 200]
    statuses: Dict[str, int] = {}
    for r in failed:
        statuses[str(r[2])] = statuses.get(str(r[2]), 0) + 1
    samples = poller.samples
    max_ejected = max((len(s["ejected"]) for s in samples), default=0)
    all_ejected = [s for s in samples if len(s["ejected"]) == len(NAMES)]
    summary = loadgen.latency_summary(records)
    result = {
        "suite": "churn",
        "label": args.label,
        "config": {
            "clients": args.clients, "duration_s": args.duration, "period_s": args.period,
            "down_s": args.down, "latency": args.latency, "retry": RETRY,
            "health_interval": args.health_interval or "default (30s)",
            "passive": "default (max_fails 2, fail_timeout 30s, max_ejection_percent default)",
            "fulcrum": str(fulcrum),
        },
        "kills": len([e for e in events if e.name.startswith("kill")]),
        "requests": total,
        "failed": len(failed),
        "failed_pct": round(100.0 * len(failed) / total, 4) if total else None,
        "failed_by_status": statuses,
        "gateway_503": statuses.get("503", 0),
        "latency": summary,
        "max_instances_ejected_at_once": max_ejected,
        "samples": len(samples),
        "seconds_with_every_instance_ejected": round(0.2 * len(all_ejected), 1),
        "ejected_after_return_s": ejection_after_return(samples, back_at),
        "log_ejections": len(re.findall(r"instance ejected after repeated failures", log_text)),
        "log_ejections_ended_by_probe": len(re.findall(r"passive ejection ended", log_text)),
        "log_marked_down": len(re.findall(r"instance is down", log_text)),
        "final_instance_stats": pools,
        "machine": machine,
        "wall_start": wall0,
    }
    after = result["ejected_after_return_s"]
    result["ejected_after_return_max_s"] = max(after, default=0.0)
    ok = total > 0 and len(failed) * 1000 < total and result["gateway_503"] == 0
    result["meets_bar"] = ok
    common.write_json(out_dir / f"churn{suffix}.json", result)
    md = render(result)
    common.write_text(out_dir / f"churn{suffix}.md", md)
    print(md)
    if not args.keep_tmp:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        common.log(f"configs and logs kept in {tmp}")
    return 0 if ok else 1


def render(r: dict) -> str:
    c = r["config"]
    lat = r["latency"]
    after = r["ejected_after_return_s"]
    return f"""\
# Churn{(' — ' + r['label']) if r['label'] else ''}

{c['clients']} clients POSTing for {c['duration_s']:.0f} s to 3 mock instances
({c['latency']} each) behind Fulcrum (`{c['fulcrum']}`), one instance killed
(SIGKILL) every {c['period_s']} s in turn and restarted {c['down_s']} s later;
`retry: {c['retry']}`; health interval {c['health_interval']}; passive
{c['passive']}. Binary sha256 {str(r['machine'].get('fulcrum_binary_sha256'))[:12]};
harness at git revision {r['machine'].get('fulcrum_git_rev')}; machine busy
{r['machine'].get('background_cpu_busy_pct')} % before the run.

| | |
|---|---|
| kills | {r['kills']} |
| requests | {r['requests']:,} |
| failed | {r['failed']:,} ({r['failed_pct']} %) {json.dumps(r['failed_by_status'])} |
| gateway 503s | {r['gateway_503']:,} |
| latency of successes p50 / p99 / max | {lat['p50_ms']} / {lat['p99_ms']} / {lat['max_ms']} ms |
| most instances ejected at once | {r['max_instances_ejected_at_once']} of 3 |
| time with every instance ejected | {r['seconds_with_every_instance_ejected']} s |
| still ejected after being back (per restart, s) | {after} (max {r['ejected_after_return_max_s']}) |
| log: ejections / ended by a probe / marked down | {r['log_ejections']} / {r['log_ejections_ended_by_probe']} / {r['log_marked_down']} |
| bar: < 0.1 % failed and no 503 | {'met' if r['meets_bar'] else 'NOT met'} |
"""


def main(argv=None) -> int:
    common.install_signal_handlers()
    return run(parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
