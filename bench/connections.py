#!/usr/bin/env python3
"""Idle and stalled peers against a real gateway process (issue #11, findings 3-5).

    bench/connections.py --fulcrum target/release/fulcrum [--out bench/results/connections.json]

Three scenarios, each on a fresh gateway on loopback in front of `fulcrum mock`:

* zero-byte: 10,000 connections that never send a byte; when is each closed?
  (`timeouts.client_header` is 10 s, the default.)
* stalled-readers: `timeouts.idle: 5s`, an instance with `max_concurrent: 2`
  and `queue.max: 0`; two callers ask for a long fast stream and never read.
  How long are the slots held, and what do other callers get meanwhile?
* admin-stall: the gateway under `ulimit -n 1024`; 2,000 admin connections
  send half a request head and stall; proxy requests (4 at a time) run
  before and during the stall: status counts and latency.

Standard library only.
"""

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mock(fulcrum):
    port = free_port()
    p = subprocess.Popen(
        [fulcrum, "mock", "--listen", f"127.0.0.1:{port}", "--name", "m"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_http(f"http://127.0.0.1:{port}/health")
    return p, port


def start_gateway(fulcrum, yaml, fds=None):
    port, admin = free_port(), free_port()
    d = tempfile.mkdtemp(prefix="fulcrum-conn-")
    path = os.path.join(d, "f.yaml")
    with open(path, "w") as f:
        f.write(f"listen: 127.0.0.1:{port}\n" + yaml.replace("ADMIN", f"127.0.0.1:{admin}"))
    log = open(os.path.join(d, "stderr.log"), "w")
    cmd = f"exec '{fulcrum}' serve -c '{path}' --threads 2"
    if fds:
        cmd = f"ulimit -n {fds} && {cmd}"
    p = subprocess.Popen(["sh", "-c", cmd], stdout=subprocess.DEVNULL, stderr=log)
    wait_http(f"http://127.0.0.1:{admin}/readyz")
    return p, port, admin, os.path.join(d, "stderr.log")


def wait_http(url, within=15):
    end = time.time() + within
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except Exception:
            if time.time() > end:
                raise SystemExit(f"{url} never answered")
            time.sleep(0.05)


def in_flight(admin):
    doc = json.load(urllib.request.urlopen(f"http://127.0.0.1:{admin}/api/v1/pools", timeout=5))
    return sum(i["in_flight"] for p in doc["pools"] for i in p["instances"])


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else None


async def zero_byte(fulcrum, n):
    mock, mport = start_mock(fulcrum)
    gw, port, admin, _ = start_gateway(
        fulcrum,
        "admin: { listen: ADMIN }\nregistry: { enabled: false }\n"
        f"pools: {{ p: {{ instances: [ {{ endpoint: \"http://127.0.0.1:{mport}\" }} ] }} }}\n"
        "routes: [ { path_prefix: /, pool: p } ]\n",
    )
    try:
        closed = []
        connected = 0

        async def one():
            nonlocal connected
            t = time.monotonic()
            try:
                r, w = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                return
            connected += 1
            try:
                await asyncio.wait_for(r.read(), 60)
                closed.append(time.monotonic() - t)
            except (asyncio.TimeoutError, OSError):
                pass
            w.close()

        t0 = time.monotonic()
        await asyncio.gather(*(one() for _ in range(n)))
        wall = time.monotonic() - t0
        # The gateway still serves afterwards.
        ok = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).status
        return {
            "connections": n,
            "connected": connected,
            "closed_by_gateway": len(closed),
            "closed_after_s": {
                "min": round(min(closed), 3) if closed else None,
                "p50": round(pct(closed, 0.5), 3) if closed else None,
                "max": round(max(closed), 3) if closed else None,
            },
            "wall_s": round(wall, 2),
            "status_after": ok,
        }
    finally:
        gw.kill()
        mock.kill()


async def stalled_readers(fulcrum):
    mock, mport = start_mock(fulcrum)
    gw, port, admin, _ = start_gateway(
        fulcrum,
        "admin: { listen: ADMIN }\nregistry: { enabled: false }\ntimeouts: { idle: 5s }\n"
        f"pools: {{ p: {{ queue: {{ max: 0 }}, instances: [ {{ endpoint: \"http://127.0.0.1:{mport}\", max_concurrent: 2 }} ] }} }}\n"
        "routes: [ { path_prefix: /, pool: p } ]\n",
    )
    try:
        socks = []
        for _ in range(2):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", port))
            s.sendall(b"GET /sse?events=1000000&interval_ms=0 HTTP/1.1\r\nHost: t\r\n\r\n")
            socks.append(s)
        t0 = time.monotonic()
        while in_flight(admin) < 2:
            time.sleep(0.01)
        held_at = time.monotonic()
        statuses = {}
        released = None
        while time.monotonic() - held_at < 60:
            try:
                st = urllib.request.urlopen(f"http://127.0.0.1:{port}/sse?events=1", timeout=5).status
            except urllib.error.HTTPError as e:
                st = e.code
            statuses[st] = statuses.get(st, 0) + 1
            if in_flight(admin) == 0:
                released = time.monotonic() - held_at
                break
            time.sleep(0.1)
        closed = 0
        for s in socks:
            s.settimeout(10)
            try:
                while s.recv(1 << 16):
                    pass
                closed += 1
            except OSError:
                closed += 1
        after = urllib.request.urlopen(f"http://127.0.0.1:{port}/sse?events=3", timeout=5).status
        return {
            "idle_timeout_s": 5,
            "slots_taken_after_s": round(held_at - t0, 3),
            "released_after_s": round(released, 3) if released is not None else None,
            "other_callers_meanwhile": statuses,
            "stalled_connections_closed": closed,
            "status_after": after,
        }
    finally:
        gw.kill()
        mock.kill()


async def proxy_load(port, seconds, conc=4):
    lat, codes = [], {}
    end = time.monotonic() + seconds
    loop = asyncio.get_running_loop()

    def one():
        t = time.monotonic()
        try:
            st = urllib.request.urlopen(f"http://127.0.0.1:{port}/x", timeout=5).status
        except urllib.error.HTTPError as e:
            st = e.code
        except Exception as e:
            st = type(e).__name__
        return st, time.monotonic() - t

    async def worker():
        while time.monotonic() < end:
            st, d = await loop.run_in_executor(None, one)
            codes[st] = codes.get(st, 0) + 1
            lat.append(d)

    await asyncio.gather(*(worker() for _ in range(conc)))
    return {
        "requests": len(lat),
        "status": {str(k): v for k, v in codes.items()},
        "p50_ms": round(1000 * pct(lat, 0.5), 2),
        "p99_ms": round(1000 * pct(lat, 0.99), 2),
        "max_ms": round(1000 * max(lat), 2),
    }


async def admin_stall(fulcrum, n):
    mock, mport = start_mock(fulcrum)
    gw, port, admin, log = start_gateway(
        fulcrum,
        "admin: { listen: ADMIN }\nregistry: { enabled: false }\n"
        f"pools: {{ p: {{ instances: [ {{ endpoint: \"http://127.0.0.1:{mport}\" }} ] }} }}\n"
        "routes: [ { path_prefix: /, pool: p } ]\n",
        fds=1024,
    )
    try:
        before = await proxy_load(port, 3)
        writers, closed = [], []

        async def stall():
            # Connects beyond admin.max_connections + the backlog wait for
            # SYN retransmits; each is held until the gateway closes it.
            try:
                r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", admin), 20)
                t = time.monotonic()
                w.write(b"GET /api/v1/pools HTTP/1.1\r\n")
                await w.drain()
                writers.append(w)
                await asyncio.wait_for(r.read(), 30)
                closed.append(time.monotonic() - t)
            except (OSError, asyncio.TimeoutError):
                pass

        stalls = asyncio.gather(*(stall() for _ in range(n)))
        during = await proxy_load(port, 15)
        await stalls
        for w in writers:
            w.close()
        with open(log) as f:
            accept_errors = sum(1 for line in f if "accept failed" in line)
        return {
            "fd_limit": 1024,
            "stalled_admin_connections": n,
            "admin_connections_established": len(writers),
            "admin_closed_by_gateway": len(closed),
            "admin_closed_after_s": {
                "min": round(min(closed), 3) if closed else None,
                "max": round(max(closed), 3) if closed else None,
            },
            "proxy_before": before,
            "proxy_during": during,
            "accept_failed_log_lines": accept_errors,
        }
    finally:
        gw.kill()
        mock.kill()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fulcrum", default="target/release/fulcrum")
    ap.add_argument("--connections", type=int, default=10_000)
    ap.add_argument("--admin-connections", type=int, default=2_000)
    ap.add_argument("--out")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    res = {
        "zero_byte": await zero_byte(a.fulcrum, a.connections),
        "stalled_readers": await stalled_readers(a.fulcrum),
        "admin_stall": await admin_stall(a.fulcrum, a.admin_connections),
    }
    text = json.dumps(res, indent=2)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
