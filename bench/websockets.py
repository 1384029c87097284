"""The ``websockets`` suite: what does an idle WebSocket cost the proxy holding it?

N WebSockets are opened through the proxy to two ``fulcrum-mock`` instances
(which echo frames on ``/ws``) and left idle. The proxy's resident memory
(VmRSS from /proc/<pid>/status, summed over its process tree; Pss from
/proc/<pid>/smaps_rollup) is read after a warm-up of a few sockets (the
baseline) and again once the N sockets are open and memory has settled:

    per-connection bytes = (RSS after - RSS baseline) / N

The same is done, in the same run and with fresh processes each time, for
nginx (one worker) and Fulcrum (``--threads 1``), configured and started by
``systems.py`` (``websocket=True``, plain proxying: ``failover=False``).

The client is Python asyncio on raw non-blocking sockets, run in one or more
worker processes (``python3 websockets.py --worker``, driven over stdin /
stdout with JSON lines), so that no process needs more file descriptors than
its limit. Each socket does the HTTP/1.1 Upgrade handshake by hand (random
Sec-WebSocket-Key, Sec-WebSocket-Accept checked); a sample of sockets sends a
masked text frame and must get the same text back (end-to-end tunnel check),
and after the memory reading every socket is checked to be still open.

File descriptors: a proxy holding N tunnelled sockets needs about 2N of them
(caller side + instance side). RLIMIT_NOFILE is raised to its hard limit in
this process (children inherit it); with a hard limit of 20,000 one proxy
process can hold at most ~9,990 sockets, hence the default N = 9,900.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import math
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

SUITE = "websockets"
SYSTEMS = ["nginx", "fulcrum"]
WS_PATH = "/ws"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
FULL_SOCKETS = 9900
QUICK_SOCKETS = 2000
WARMUP_SOCKETS = 20
# Per-socket handshake / echo timeout, and the limit for a whole open batch.
SOCKET_TIMEOUT_S = 15.0
OPEN_DEADLINE_S = 180.0
# File descriptors a client worker keeps for itself (stdio, epoll, ...).
WORKER_FD_RESERVE = 64
# Sockets per client worker process at most (well below any fd limit here).
WORKER_MAX_SOCKETS = 8000

LABELS = {"nginx": "nginx", "fulcrum": "Fulcrum"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of this suite (accepted by ``bench/run`` for every suite)."""
    g = p.add_argument_group("websockets suite")
    g.add_argument("--sockets", type=int, default=None, metavar="N",
                   help="idle WebSockets held through each proxy (default: %d, --quick: %d)"
                        % (FULL_SOCKETS, QUICK_SOCKETS))
    g.add_argument("--ws-systems", default=",".join(SYSTEMS),
                   help="comma-separated subset of %s, run in that order (default: all)"
                        % ",".join(SYSTEMS))
    g.add_argument("--ws-concurrency", type=int, default=200,
                   help="WebSocket handshakes in flight at once, all client processes "
                        "together (default: 200; keeps the accept queues from overflowing)")
    g.add_argument("--ws-settle", type=float, default=None, metavar="SECONDS",
                   help="wait after opening the sockets before reading memory "
                        "(default: 5, --quick: 3)")
    g.add_argument("--ws-echo-sample", type=int, default=None, metavar="K",
                   help="sockets (spread evenly) that send a frame and check its echo "
                        "(default: 200, --quick: 100; 0 = none, larger than N = all)")


# --------------------------------------------------------------------------
# WebSocket client (runs in worker processes)


class WsFailure(Exception):
    """One socket failed; the message is the reason, counted by kind."""


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def masked_text_frame(text: str) -> bytes:
    payload = text.encode()
    if len(payload) >= 126:
        raise ValueError("short frames only")
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + body


async def _recv_exact(loop, s: socket.socket, n: int, buf: bytearray) -> bytes:
    while len(buf) < n:
        chunk = await loop.sock_recv(s, 4096)
        if not chunk:
            raise WsFailure("closed by peer")
        buf += chunk
    out = bytes(buf[:n])
    del buf[:n]
    return out


async def _read_head(loop, s: socket.socket, buf: bytearray) -> bytes:
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = bytes(buf[:end])
            del buf[:end + 4]
            return head
        if len(buf) > 16384:
            raise WsFailure("response head too large")
        chunk = await loop.sock_recv(s, 4096)
        if not chunk:
            raise WsFailure("closed during handshake")
        buf += chunk


async def ws_handshake(loop, port: int, timeout: float) -> tuple:
    """Connect, upgrade, check the 101 answer; returns (socket, leftover bytes)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        try:
            await asyncio.wait_for(loop.sock_connect(s, ("127.0.0.1", port)), timeout)
        except asyncio.TimeoutError:
            raise WsFailure("connect timeout") from None
        except OSError as e:
            raise WsFailure(f"connect: {e.strerror or e}") from None
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET {WS_PATH} HTTP/1.1\r\n"
               f"Host: 127.0.0.1:{port}\r\n"
               "Upgrade: websocket\r\n"
               "Connection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\n"
               "\r\n").encode()
        buf = bytearray()
        try:
            await asyncio.wait_for(loop.sock_sendall(s, req), timeout)
            head = await asyncio.wait_for(_read_head(loop, s, buf), timeout)
        except asyncio.TimeoutError:
            raise WsFailure("handshake timeout") from None
        except OSError as e:
            raise WsFailure(f"handshake: {e.strerror or e}") from None
        lines = head.decode("latin-1").split("\r\n")
        status = lines[0].split(" ", 2)
        if len(status) < 2 or status[1] != "101":
            raise WsFailure(f"status {' '.join(status[1:])[:40]}")
        headers: Dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("upgrade", "").lower() != "websocket":
            raise WsFailure("101 without Upgrade: websocket")
        if headers.get("sec-websocket-accept") != accept_key(key):
            raise WsFailure("wrong Sec-WebSocket-Accept")
        return s, buf
    except BaseException:
        s.close()
        raise


async def ws_echo(loop, s: socket.socket, buf: bytearray, text: str, timeout: float) -> None:
    """Send a masked text frame; the echo must come back unmasked and identical."""
    async def roundtrip():
        await loop.sock_sendall(s, masked_text_frame(text))
        b0, b1 = await _recv_exact(loop, s, 2, buf)
        if b0 != 0x81:
            raise WsFailure(f"echo: unexpected frame byte 0x{b0:02x}")
        if b1 & 0x80:
            raise WsFailure("echo: server frame is masked")
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(await _recv_exact(loop, s, 2, buf), "big")
        elif n == 127:
            n = int.from_bytes(await _recv_exact(loop, s, 8, buf), "big")
        payload = await _recv_exact(loop, s, n, buf)
        if payload != text.encode():
            raise WsFailure("echo: payload differs")

    try:
        await asyncio.wait_for(roundtrip(), timeout)
    except asyncio.TimeoutError:
        raise WsFailure("echo timeout") from None
    except OSError as e:
        raise WsFailure(f"echo: {e.strerror or e}") from None


class ClientWorker:
    """State of one worker process: its open sockets and their read buffers."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.socks: List[socket.socket] = []
        self.bufs: List[bytearray] = []

    def handle(self, cmd: dict) -> dict:
        op = cmd["cmd"]
        if op == "open":
            return self.loop.run_until_complete(
                self.open(cmd["port"], cmd["count"], cmd["concurrency"], cmd["timeout"],
                          cmd.get("deadline", OPEN_DEADLINE_S)))
        if op == "echo":
            return self.loop.run_until_complete(
                self.echo(cmd["sample"], cmd["timeout"], cmd.get("tag", "")))
        if op == "check":
            return self.check()
        if op == "close":
            n = len(self.socks)
            for s in self.socks:
                s.close()
            self.socks, self.bufs = [], []
            return {"closed": n}
        raise ValueError(f"unknown command {op!r}")

    async def open(self, port: int, count: int, concurrency: int, timeout: float,
                   deadline: float) -> dict:
        """Open ``count`` sockets, ``concurrency`` handshakes at a time, each
        within ``timeout``; whatever is not open after ``deadline`` fails."""
        sem = asyncio.Semaphore(max(1, concurrency))
        errors: Dict[str, int] = {}

        async def one():
            async with sem:
                try:
                    s, buf = await asyncio.wait_for(ws_handshake(self.loop, port, timeout),
                                                    timeout)
                except asyncio.TimeoutError:
                    errors["handshake timeout"] = errors.get("handshake timeout", 0) + 1
                    return
                except WsFailure as e:
                    errors[str(e)] = errors.get(str(e), 0) + 1
                    return
                self.socks.append(s)
                self.bufs.append(buf)

        held_before = len(self.socks)
        t0 = time.monotonic()
        try:
            await asyncio.wait_for(asyncio.gather(*(one() for _ in range(count))), deadline)
        except asyncio.TimeoutError:
            pass  # the unfinished handshakes were cancelled (their sockets closed)
        opened = len(self.socks) - held_before
        missing = count - opened - sum(errors.values())
        if missing > 0:
            errors["not open within the deadline"] = missing
        return {"opened": opened, "failures": count - opened, "errors": errors,
                "seconds": round(time.monotonic() - t0, 3), "held": len(self.socks)}

    async def echo(self, sample: int, timeout: float, tag: str) -> dict:
        n = len(self.socks)
        if sample <= 0 or n == 0:
            return {"checked": 0, "ok": 0, "errors": {}}
        if sample >= n:
            idx = list(range(n))
        else:
            step = n / sample
            idx = sorted({min(n - 1, int(i * step)) for i in range(sample)})
        errors: Dict[str, int] = {}

        async def one(i: int):
            try:
                await ws_echo(self.loop, self.socks[i], self.bufs[i], f"fulcrum-bench {tag} {i}",
                              timeout)
            except WsFailure as e:
                errors[str(e)] = errors.get(str(e), 0) + 1

        sem = asyncio.Semaphore(100)

        async def limited(i: int):
            async with sem:
                await one(i)

        await asyncio.gather(*(limited(i) for i in idx))
        return {"checked": len(idx), "ok": len(idx) - sum(errors.values()), "errors": errors}

    def check(self) -> dict:
        """Which sockets are still open? (non-blocking peek: b'' = closed by peer)."""
        still_open = closed = pending = 0
        for s in self.socks:
            try:
                data = s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                still_open += 1
                continue
            except OSError:
                closed += 1
                continue
            if data:
                pending += 1  # open, but something unexpected arrived
                still_open += 1
            else:
                closed += 1
        return {"open": still_open, "closed": closed, "unexpected_data": pending}


def worker_main() -> int:
    """``python3 websockets.py --worker``: JSON commands on stdin, answers on stdout."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
    w = ClientWorker()
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        cmd = json.loads(line)
        if cmd["cmd"] == "exit":
            break
        try:
            out = w.handle(cmd)
        except Exception as e:  # report, keep serving
            out = {"error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()
    for s in w.socks:
        s.close()
    return 0


# --------------------------------------------------------------------------
# harness side (imports common only here so the worker starts fast)


if __name__ != "__main__":
    from common import (
        BenchError,
        build_and_describe,
        prebuilt_binaries,
        Proc,
        ProcessRegistry,
        SystemUnavailable,
        ensure_tools,
        free_port,
        background_busy_pct,
        log,
        process_tree,
        write_json,
        write_text,
    )
    from systems import Backend, Fulcrum, Nginx, Pool, System, start_mock


class ClientPool:
    """The client worker processes (each in its own session, killed on stop)."""

    def __init__(self, n_procs: int, cpu: Optional[int], log_dir: Path):
        self.procs: List[subprocess.Popen] = []
        cmd = [sys.executable, "-B", str(Path(__file__).resolve()), "--worker"]
        if cpu is not None:
            cmd = ["taskset", "-c", str(cpu), *cmd]
        for i in range(n_procs):
            errf = open(log_dir / f"ws-client-{i}.log", "ab")
            self.procs.append(subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errf,
                text=True, bufsize=1, start_new_session=True))
            errf.close()
        log(f"started {n_procs} WebSocket client process(es): "
            + ", ".join(str(p.pid) for p in self.procs))

    def _send(self, p: subprocess.Popen, cmd: dict) -> None:
        assert p.stdin is not None
        p.stdin.write(json.dumps(cmd) + "\n")
        p.stdin.flush()

    def _recv(self, p: subprocess.Popen) -> dict:
        assert p.stdout is not None
        line = p.stdout.readline()
        if not line:
            raise BenchError(f"WebSocket client process {p.pid} exited (status {p.poll()})")
        out = json.loads(line)
        if "error" in out:
            raise BenchError(f"WebSocket client process {p.pid}: {out['error']}")
        return out

    def all(self, cmds: List[dict]) -> List[dict]:
        """Send one command to each worker (all at once), collect the answers."""
        for p, c in zip(self.procs, cmds):
            self._send(p, c)
        return [self._recv(p) for p in self.procs]

    def broadcast(self, cmd: dict) -> List[dict]:
        return self.all([cmd] * len(self.procs))

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                try:
                    self._send(p, {"cmd": "exit"})
                except (BrokenPipeError, OSError):
                    pass
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, 9)
                except (ProcessLookupError, PermissionError):
                    pass
                p.wait(5)
        self.procs = []


def split(total: int, parts: int) -> List[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


# --------------------------------------------------------------------------
# memory readings


def _status_kib(pid: int) -> Dict[str, int]:
    out: Dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "RssAnon", "RssFile", "Threads"):
                    out[key] = int(rest.split()[0])
    except OSError:
        pass
    return out


def _pss_kib(pid: int) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _fd_count(pid: int) -> Optional[int]:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def tree_memory(root: int) -> Dict[str, object]:
    """VmRSS / RssAnon / Pss (KiB) and fds of ``root`` and its descendants,
    summed; ``workers_*`` are the same sums without ``root`` (nginx's
    workers without the master)."""
    procs = []
    for pid in process_tree(root):
        st = _status_kib(pid)
        if "VmRSS" not in st:
            continue
        procs.append({"pid": pid, "rss_kib": st["VmRSS"], "rss_anon_kib": st.get("RssAnon"),
                      "pss_kib": _pss_kib(pid), "threads": st.get("Threads"),
                      "fds": _fd_count(pid)})

    def total(key: str, rows) -> Optional[int]:
        vals = [r[key] for r in rows]
        return None if not vals or any(v is None for v in vals) else sum(vals)

    workers = [r for r in procs if r["pid"] != root]
    return {
        "rss_kib": total("rss_kib", procs),
        "rss_anon_kib": total("rss_anon_kib", procs),
        "pss_kib": total("pss_kib", procs),
        "fds": total("fds", procs),
        "workers_rss_kib": total("rss_kib", workers),
        "workers_pss_kib": total("pss_kib", workers),
        "processes": procs,
    }


# --------------------------------------------------------------------------
# the systems under test


@dataclass
class Ctx:
    args: argparse.Namespace
    tmp: Path
    bins: Path
    registry: ProcessRegistry
    sockets: int
    nofile_hard: int
    fulcrum_exe: Optional[Path] = None  # --fulcrum-bin


def start_backends(ctx: Ctx) -> Tuple[List[Proc], List[Backend]]:
    """The two WebSocket echo instances (fulcrum-mock) on the load CPU."""
    procs, backends = [], []
    for name in ("a", "b"):
        port = free_port()
        procs.append(start_mock(ctx.registry, ctx.bins, name, port, ctx.args.load_cpu,
                                latency=None))
        backends.append(Backend(name, port))
    return procs, backends


def nginx_worker_connections(n: int) -> int:
    """Every tunnelled socket is two nginx connections (caller + upstream).
    nginx starts closing connections still waiting for their request head
    ("worker_connections are not enough, reusing connections") as soon as
    fewer than 1/16 of worker_connections are free, so it gets 16/15 of what
    it holds, plus slack. This may exceed RLIMIT_NOFILE (nginx only warns):
    the connection slots are preallocated structures, the fds actually used
    stay at ~2N."""
    return math.ceil((2 * n + 1) * 16 / 15) + 100


def make_proxy(ctx: Ctx, system: str, backends: List[Backend]) -> System:
    """The proxy for ``system``: ``WS_PATH`` balanced (least connections)
    over ``backends``, upgrades passed through, idle tunnels kept 10 min,
    ready when its port accepts."""
    pool = Pool("ws", "least_connections", backends, route=WS_PATH)
    where = (ctx.registry, ctx.tmp / system, ctx.bins, ctx.args.proxy_cpu, [pool])
    if system == "nginx":
        return Nginx(*where, failover=False, websocket=True,
                     worker_connections=nginx_worker_connections(ctx.sockets),
                     rlimit_nofile=ctx.nofile_hard)
    return Fulcrum(*where, failover=False, websocket=True, registry_enabled=True,
                   exe=ctx.fulcrum_exe)


WORKERS_NOTE = {"nginx": "1 master + 1 worker (worker_processes 1)",
                "fulcrum": "1 process, --threads 1 (current-thread runtime)"}


# --------------------------------------------------------------------------
# measuring one system


def empty_record(system: str, note: str) -> dict:
    return {"suite": SUITE, "system": system, "sockets": None, "rss_baseline_kib": None,
            "rss_after_kib": None, "per_conn_bytes": None, "open_seconds": None,
            "failures": None, "note": note}


def per_conn(before: Optional[int], after: Optional[int], n: int) -> Optional[int]:
    if before is None or after is None or n <= 0:
        return None
    return int(round((after - before) * 1024 / n))


def measure(ctx: Ctx, system: str, clients: ClientPool, settle_s: float,
            echo_sample: int) -> dict:
    n = ctx.sockets
    timeout = SOCKET_TIMEOUT_S
    conc = split(max(len(clients.procs), ctx.args.ws_concurrency), len(clients.procs))
    backends: List[Proc] = []
    sysobj: Optional[System] = None
    try:
        backends, pool = start_backends(ctx)
        sysobj = make_proxy(ctx, system, pool)
        proxy = sysobj.start().proc
        port = sysobj.port

        # warm-up: a few sockets through every code path, then closed
        warm = clients.all([{"cmd": "open", "port": port, "count": c, "concurrency": 10,
                             "timeout": timeout} for c in split(WARMUP_SOCKETS, len(clients.procs))])
        echo = clients.broadcast({"cmd": "echo", "sample": WARMUP_SOCKETS, "timeout": timeout,
                                  "tag": "warm-up"})
        clients.broadcast({"cmd": "close"})
        warm_fail = sum(w["failures"] for w in warm)
        echo_fail = sum(e["checked"] - e["ok"] for e in echo)
        if warm_fail or echo_fail:
            errs = {k: v for r in warm + echo for k, v in r["errors"].items()}
            raise SystemUnavailable(f"{system}: warm-up failed ({warm_fail} handshakes, "
                                    f"{echo_fail} echoes): {errs}" + proxy.log_tail())
        time.sleep(1.0)
        base = tree_memory(sysobj.pid)
        log(f"{system}: baseline RSS {base['rss_kib']:,} KiB (Pss {base['pss_kib']}) "
            f"after {WARMUP_SOCKETS} warm-up sockets")

        log(f"{system}: opening {n:,} WebSockets ({len(clients.procs)} client process(es), "
            f"{sum(conc)} handshakes in flight at most)")
        t0 = time.monotonic()
        opened = clients.all([{"cmd": "open", "port": port, "count": c, "concurrency": k,
                               "timeout": timeout}
                              for c, k in zip(split(n, len(clients.procs)), conc)])
        open_s = time.monotonic() - t0
        failures = sum(o["failures"] for o in opened)
        errors: Dict[str, int] = {}
        for o in opened:
            for k, v in o["errors"].items():
                errors[k] = errors.get(k, 0) + v
        held = sum(o["held"] for o in opened)
        log(f"{system}: {held:,} open in {open_s:.2f}s, {failures} failed"
            + (f" {errors}" if errors else ""))

        echo = clients.all([{"cmd": "echo", "sample": k, "timeout": timeout, "tag": system}
                            for k in split(echo_sample, len(clients.procs))])
        echo_checked = sum(e["checked"] for e in echo)
        echo_ok = sum(e["ok"] for e in echo)
        for e in echo:
            for k, v in e["errors"].items():
                errors[k] = errors.get(k, 0) + v
        log(f"{system}: echo checked on {echo_checked} sockets, {echo_ok} ok")

        time.sleep(settle_s)
        after = tree_memory(sysobj.pid)
        backend_fds = [_fd_count(b.pid) for b in backends]
        checks = clients.broadcast({"cmd": "check"})
        still_open = sum(c["open"] for c in checks)
        closed = sum(c["closed"] for c in checks)
        if proxy.poll() is not None:
            raise SystemUnavailable(f"{system} died while holding the sockets (exit status "
                                    f"{proxy.returncode})" + proxy.log_tail())
        for b in backends:
            if b.poll() is not None:
                raise BenchError(f"backend {b.name} died (exit status {b.returncode})"
                                 + b.log_tail())
        if closed:
            errors["closed before the memory reading was done"] = closed
        total_failures = failures + (echo_checked - echo_ok) + closed
        # per-connection cost is divided by the sockets actually held
        held_now = still_open
        rec = {
            "suite": SUITE,
            "system": system,
            "sockets": held_now,
            "sockets_requested": n,
            "rss_baseline_kib": base["rss_kib"],
            "rss_after_kib": after["rss_kib"],
            "per_conn_bytes": per_conn(base["rss_kib"], after["rss_kib"], held_now),
            "pss_baseline_kib": base["pss_kib"],
            "pss_after_kib": after["pss_kib"],
            "pss_per_conn_bytes": per_conn(base["pss_kib"], after["pss_kib"], held_now),
            "rss_anon_baseline_kib": base["rss_anon_kib"],
            "rss_anon_after_kib": after["rss_anon_kib"],
            "open_seconds": round(open_s, 3),
            "failures": total_failures,
            "handshake_failures": failures,
            "echo_checked": echo_checked,
            "echo_ok": echo_ok,
            "still_open_after_reading": still_open,
            "closed_early": closed,
            "errors": errors,
            "proxy_fds_after": after["fds"],
            # open fds of each backend (~ sockets it holds; shows the balancing)
            "backend_fds_after": backend_fds,
            "processes": WORKERS_NOTE[system],
            "proxy_processes_after": after["processes"],
        }
        if system == "nginx":
            rec["worker_rss_baseline_kib"] = base["workers_rss_kib"]
            rec["worker_rss_after_kib"] = after["workers_rss_kib"]
            rec["worker_per_conn_bytes"] = per_conn(base["workers_rss_kib"],
                                                    after["workers_rss_kib"], held_now)
        log(f"{system}: RSS {base['rss_kib']:,} -> {after['rss_kib']:,} KiB = "
            f"{rec['per_conn_bytes']} B/socket (Pss {rec['pss_per_conn_bytes']} B/socket); "
            f"{still_open:,} still open, {closed} closed, fds {after['fds']} "
            f"(backends {backend_fds})")
        return rec
    finally:
        try:
            clients.broadcast({"cmd": "close"})
        except BenchError as e:
            log(f"closing client sockets: {e}")
        if sysobj is not None:
            sysobj.stop()
        for b in backends:
            ctx.registry.stop(b)


# --------------------------------------------------------------------------
# reporting


def _fmt(v, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def markdown(result: dict) -> str:
    m, prm = result["machine"], result["params"]
    cmd = "bench/run websockets" + (" --quick" if prm["quick"] else "")
    if prm["sockets_requested"] != (QUICK_SOCKETS if prm["quick"] else FULL_SOCKETS):
        cmd += f" --sockets {prm['sockets_requested']}"
    if prm.get("fulcrum_bin"):
        cmd += f" --fulcrum-bin {prm['fulcrum_bin']}"
    lines = [
        "# WebSockets suite results",
        "",
        f"Generated by `{cmd}` on {m['date_utc']} (Fulcrum rev `{m['fulcrum_git_rev']}`).",
        "",
        f"{prm['sockets_requested']:,} idle WebSockets opened through each proxy to two "
        f"`fulcrum-mock` instances (echo on `{WS_PATH}`), at most {prm['concurrency']} "
        f"handshakes in flight, {prm['client_processes']} client process(es); memory read "
        f"after {WARMUP_SOCKETS} warm-up sockets (baseline) and {prm['settle_s']:g} s after "
        f"the last socket opened. Echo checked on {prm['echo_sample']} sockets per system. "
        f"Proxies pinned to CPU {prm['proxy_cpu']}, backends and clients to CPU "
        f"{prm['load_cpu']}. RLIMIT_NOFILE {prm['nofile_limit']:,} per process.",
        "",
        "| System | Processes | Sockets held | RSS baseline (KiB) | RSS with sockets (KiB) "
        "| RSS per socket (bytes) | Pss per socket (bytes) | Open time (s) | Failures |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["records"]:
        label = LABELS.get(r["system"], r["system"])
        if r["sockets"] is None:
            lines.append(f"| {label} | not measured: {r.get('note', '')} | | | | | | | |")
            continue
        lines.append(
            f"| {label} | {r['processes']} | {r['sockets']:,} | {r['rss_baseline_kib']:,} | "
            f"{r['rss_after_kib']:,} | {_fmt(r['per_conn_bytes'], ',')} | "
            f"{_fmt(r['pss_per_conn_bytes'], ',')} | {r['open_seconds']:.2f} | "
            f"{r['failures']} |")
        if r["system"] == "nginx" and r.get("worker_rss_after_kib") is not None:
            lines.append(
                f"| nginx worker only | 1 worker | {r['sockets']:,} | "
                f"{r['worker_rss_baseline_kib']:,} | {r['worker_rss_after_kib']:,} | "
                f"{_fmt(r['worker_per_conn_bytes'], ',')} | | | |")
    lines += [""]
    for r in result["records"]:
        if r["sockets"] is None:
            continue
        lines.append(
            f"* {LABELS.get(r['system'], r['system'])}: echo {r['echo_ok']}/{r['echo_checked']} "
            f"ok, {r['still_open_after_reading']:,} still open after the reading, "
            f"{r['proxy_fds_after']:,} fds open in the proxy, "
            f"{' / '.join(format(x, ',') for x in r['backend_fds_after'])} in the two backends"
            + (f"; errors {r['errors']}" if r["errors"] else "") + ".")
    lines += [
        "",
        "Machine: {cpu_model}, {nproc} CPUs, {mem_gib} GiB, Linux {kernel}; "
        "{nginx}; {rustc}. Background CPU load before the run: "
        "{background_cpu_busy_pct}%.".format(**m),
        "",
        f"cargo build: {m.get('cargo_build', '?')}; binaries from `{prm['bin_dir']}`"
        + (f", fulcrum from `{prm['fulcrum_bin']}`" if prm.get("fulcrum_bin") else "")
        + f" (fulcrum built {m.get('fulcrum_binary_mtime_utc', '?')}).",
        "",
        "RSS = VmRSS from /proc/<pid>/status summed over the proxy's process tree (nginx: "
        "master + worker); Pss from /proc/<pid>/smaps_rollup. Per socket = (RSS with "
        "sockets - RSS baseline) / sockets held. Kernel socket buffers are not in RSS. "
        "See docs/BENCHMARKS.md.",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------
# entry point


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def run(args: argparse.Namespace) -> int:
    systems = [s.strip() for s in args.ws_systems.split(",") if s.strip()]
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown:
        raise BenchError(f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(SYSTEMS)}")
    n = args.sockets if args.sockets is not None else (QUICK_SOCKETS if args.quick else FULL_SOCKETS)
    if n < 1:
        raise BenchError("--sockets must be at least 1")
    settle_s = args.ws_settle if args.ws_settle is not None else (3.0 if args.quick else 5.0)
    echo_sample = (args.ws_echo_sample if args.ws_echo_sample is not None
                   else (100 if args.quick else 200))
    echo_sample = max(0, min(echo_sample, n))

    hard = raise_nofile()  # children (proxies, backends, clients) inherit it
    proxy_capacity = (hard - 20) // 2
    if n > proxy_capacity:
        log(f"WARNING: {n:,} sockets need about {2 * n:,} file descriptors in the proxy, "
            f"more than RLIMIT_NOFILE ({hard:,}) allows; expect failures")
    lo, hi = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    ports = hi - lo + 1
    if 2 * n > ports:
        log(f"WARNING: {2 * n:,} loopback connections (client->proxy, proxy->backend) but only "
            f"{ports:,} ephemeral ports ({lo}-{hi})")
    per_worker = max(1, min(WORKER_MAX_SOCKETS, hard - WORKER_FD_RESERVE))
    n_clients = max(1, math.ceil(n / per_worker))

    tools = {"taskset": ["util-linux"]}
    if "nginx" in systems:
        tools["nginx"] = ["nginx-light", "nginx"]
    ensure_tools(tools, allow_install=not args.no_install)

    packages = ["fulcrum-mock"] + (["fulcrum"] if "fulcrum" in systems else [])
    prebuilt = prebuilt_binaries(args)
    bins, machine = build_and_describe(packages, args.no_build, prebuilt)
    if not (bins / "fulcrum-mock").exists():
        raise BenchError(f"{bins / 'fulcrum-mock'} not found "
                         "(cargo build --release -p fulcrum-mock failed?)")

    # memory is what is measured; CPU load from other jobs only slows the
    # opening (open_seconds), but it is recorded all the same
    machine["background_cpu_busy_pct"] = background_busy_pct()
    tmp = Path(tempfile.mkdtemp(prefix="fulcrum-bench-ws-"))
    os.chmod(tmp, 0o755)  # nginx workers drop to 'nobody' when started as root
    log(f"work dir {tmp}; {n:,} sockets per system; RLIMIT_NOFILE {hard:,}; "
        f"ephemeral ports {lo}-{hi}")
    records: List[dict] = []
    ok = False
    clients: Optional[ClientPool] = None
    try:
        with ProcessRegistry(tmp) as registry:
            clients = ClientPool(n_clients, args.load_cpu, tmp)
            ctx = Ctx(args=args, tmp=tmp, bins=bins, registry=registry, sockets=n,
                      nofile_hard=hard, fulcrum_exe=prebuilt.get("fulcrum"))
            for system in systems:
                try:
                    records.append(measure(ctx, system, clients, settle_s, echo_sample))
                except SystemUnavailable as e:
                    log(f"SKIP {system}: {e}")
                    records.append(empty_record(system, str(e).splitlines()[0]))
                time.sleep(1.0)
        ok = all(r["sockets"] is not None and r["failures"] == 0 for r in records)
    finally:
        if clients is not None:
            clients.stop()
        if args.keep_tmp or not ok:
            log(f"logs and configs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    result = {
        "suite": SUITE,
        "machine": machine,
        "params": {
            "quick": bool(args.quick),
            "sockets_requested": n,
            "concurrency": max(n_clients, args.ws_concurrency),
            "client_processes": n_clients,
            "warmup_sockets": WARMUP_SOCKETS,
            "settle_s": settle_s,
            "echo_sample": echo_sample,
            "proxy_cpu": args.proxy_cpu,
            "load_cpu": args.load_cpu,
            "nofile_limit": hard,
            "ephemeral_ports": f"{lo}-{hi}",
            "bin_dir": str(bins),
            "fulcrum_bin": str(prebuilt["fulcrum"]) if "fulcrum" in prebuilt else None,
            "backend": "2 x fulcrum-mock --threads 1 (WebSocket echo on /ws)",
            "nginx_worker_connections": nginx_worker_connections(n),
            "systems": systems,
        },
        "records": records,
    }
    out = Path(args.out_dir)
    write_json(out / f"{SUITE}.json", result)
    md = markdown(result)
    write_text(out / f"{SUITE}.md", md)
    print(md)
    log(f"wrote {out / (SUITE + '.json')} and {out / (SUITE + '.md')}")
    if any(r["sockets"] is None for r in records):
        log("WARNING: some systems were not measured (see SKIP above); exit status 3")
        return 3
    if any(r["failures"] for r in records):
        log("WARNING: some sockets failed (see errors above); exit status 3")
        return 3
    return 0


__all__ = ["add_arguments", "run", "SUITE"]


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        sys.exit(worker_main())
    print("usage: bench/run websockets [--quick]  (this file is a suite of bench/run)",
          file=sys.stderr)
    sys.exit(2)
