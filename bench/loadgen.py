"""A small asyncio HTTP/1.1 load generator that knows who answered.

wrk is faster but cannot tell which instance served a request; the quality
and capacity suites need exactly that. This client speaks raw HTTP/1.1 over
asyncio streams (keep-alive, Content-Length and chunked bodies, SSE streams
read to the end) and records, for every request:

    (start time relative to the run start [s], latency [s], status, instance)

``status`` is the HTTP status, or 0 when the request failed at the transport
level (refused, reset, timeout, malformed answer); ``instance`` is the
``x-mock-instance`` response header set by fulcrum-mock (its ``--name``).

Load model: *closed loop* -- a fixed number of clients, each with its own
keep-alive connection, sending its next request as soon as the previous one
is answered (see docs/BENCHMARKS.md for why).

A request that fails on a *reused* keep-alive connection before a single
response byte arrives (the server closed the idle connection, e.g. nginx
reloading) is resent once on a fresh connection, as every HTTP client does
for idempotent requests; anything else counts as an error.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Dict, List, Optional, Sequence, Tuple

# (t_start_s, latency_s, status, instance)
Record = Tuple[float, float, int, str]


class HttpError(Exception):
    """Transport-level failure of one request."""


class _Stale(Exception):
    """The reused connection was closed before any response byte."""


class Connection:
    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: Optional[asyncio.StreamReader] = None
        self.writer: Optional[asyncio.StreamWriter] = None
        self.used = 0  # requests completed on the current TCP connection

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(
            self.host, self.port, limit=1 << 20)
        self.used = 0

    def close(self) -> None:
        if self.writer is not None:
            try:
                self.writer.close()
            except Exception:
                pass
        self.reader = self.writer = None

    async def request(self, method: str, path: str, body: bytes = b"",
                      headers: Optional[Dict[str, str]] = None) -> Tuple[int, str, int]:
        """Send one request and read the whole answer. Returns (status,
        instance, body bytes). Raises HttpError on transport failures."""
        for attempt in (0, 1):
            fresh = self.writer is None
            try:
                if fresh:
                    await self._open()
                return await self._exchange(method, path, body, headers, reused=not fresh)
            except _Stale:
                self.close()
                if attempt == 0:
                    continue
                raise HttpError("connection closed before the answer")
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    ValueError) as e:
                self.close()
                raise HttpError(f"{type(e).__name__}: {e}") from None
            except asyncio.CancelledError:
                self.close()
                raise
        raise HttpError("unreachable")

    async def _exchange(self, method, path, body, headers, reused):
        assert self.reader is not None and self.writer is not None
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        if body or method in ("POST", "PUT", "PATCH"):
            head.append(f"Content-Length: {len(body)}")
        for k, v in (headers or {}).items():
            head.append(f"{k}: {v}")
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        try:
            await self.writer.drain()
            raw = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError) as e:
            if reused and (not isinstance(e, asyncio.IncompleteReadError) or not e.partial):
                raise _Stale() from None
            raise
        lines = raw.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise ValueError(f"bad status line {lines[0][:60]!r}")
        status = int(parts[1])
        hdrs: Dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        n = 0
        r = self.reader
        close = hdrs.get("connection", "").lower() == "close" or parts[0] == "HTTP/1.0"
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            pass
        elif "chunked" in hdrs.get("transfer-encoding", "").lower():
            while True:
                size_line = await r.readuntil(b"\r\n")
                size = int(size_line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while (await r.readuntil(b"\r\n")) != b"\r\n":
                        pass  # trailers
                    break
                await r.readexactly(size + 2)
                n += size
        elif "content-length" in hdrs:
            size = int(hdrs["content-length"])
            if size:
                await r.readexactly(size)
            n = size
        else:
            data = await r.read()
            n = len(data)
            close = True
        self.used += 1
        if close:
            self.close()
        return status, hdrs.get("x-mock-instance", ""), n


async def timed(conn: Connection, method: str, path: str, body: bytes = b"",
                headers: Optional[Dict[str, str]] = None,
                timeout: float = 10.0) -> Tuple[int, str, float]:
    """One request with a deadline: (status or 0, instance, latency_s)."""
    t0 = time.perf_counter()
    try:
        status, inst, _ = await asyncio.wait_for(conn.request(method, path, body, headers),
                                                 timeout)
    except (HttpError, asyncio.TimeoutError):
        conn.close()
        status, inst = 0, ""
    return status, inst, time.perf_counter() - t0


@dataclass
class Event:
    """Something to do during a run, ``at`` seconds after its start (in a
    thread, so it may block), e.g. kill an instance."""

    at: float
    name: str
    action: Callable[[], object]
    done_at: Optional[float] = None  # filled in: when it finished (run-relative)
    started_at: Optional[float] = None
    result: object = None


async def _run_events(events: Sequence[Event], t0: float) -> None:
    for ev in sorted(events, key=lambda e: e.at):
        delay = ev.at - (time.perf_counter() - t0)
        if delay > 0:
            await asyncio.sleep(delay)
        ev.started_at = time.perf_counter() - t0
        ev.result = await asyncio.to_thread(ev.action)
        ev.done_at = time.perf_counter() - t0


def closed_loop(host: str, port: int, clients: int, duration: float,
                path: str = "/fast", method: str = "GET", body: bytes = b"",
                events: Sequence[Event] = (), timeout: float = 10.0,
                t0: Optional[float] = None) -> List[Record]:
    """``clients`` connections each sending back-to-back requests for
    ``duration`` seconds. Returns one record per request, in completion order.
    Times are relative to ``t0`` (a ``time.perf_counter()`` value; default: now)."""
    return asyncio.run(_closed_loop(host, port, clients, duration, path, method, body,
                                    events, timeout, t0))


async def _closed_loop(host, port, clients, duration, path, method, body, events, timeout, t0):
    records: List[Record] = []
    t0 = time.perf_counter() if t0 is None else t0
    end = t0 + duration

    async def client(i: int) -> None:
        # Spread the first requests over a few ms so the clients do not start in lock-step.
        await asyncio.sleep(0.002 * i)
        conn = Connection(host, port)
        try:
            while True:
                start = time.perf_counter()
                if start >= end:
                    break
                status, inst, lat = await timed(conn, method, path, body, timeout=timeout)
                records.append((start - t0, lat, status, inst))
                if status == 0:
                    await asyncio.sleep(0.001)  # no hot spin on a dead proxy
        finally:
            conn.close()

    ev_task = asyncio.create_task(_run_events(events, t0)) if events else None
    await asyncio.gather(*(client(i) for i in range(clients)))
    if ev_task is not None:
        await ev_task
    return records


# --------------------------------------------------------------------------
# statistics


def percentile(values: Sequence[float], q: float) -> Optional[float]:
    """Nearest-rank percentile (q in 0..100) of ``values``; None if empty."""
    if not values:
        return None
    s = sorted(values)
    # q * n / 100 in exact integer steps where possible: 99.9 / 100 * 1000
    # is 999.0000000000001 in floating point, whose ceil is one rank too far.
    k = max(0, min(len(s) - 1, math.ceil(round(q * len(s) / 100.0, 9)) - 1))
    return s[k]


def latency_summary(records: Sequence[Record], t_from: float = 0.0,
                    t_to: float = math.inf) -> dict:
    """requests, errors, rps and p50/p99/p99.9 (ms) of the records that started
    within [t_from, t_to)."""
    sel = [r for r in records if t_from <= r[0] < t_to]
    ok = [r[1] for r in sel if 200 <= r[2] < 400]
    errors = len(sel) - len(ok)
    span = (min(t_to, max((r[0] + r[1] for r in sel), default=t_from)) - t_from) if sel else 0
    ms = lambda v: None if v is None else round(v * 1e3, 3)  # noqa: E731
    return {
        "requests": len(sel),
        "errors": errors,
        "rps": round(len(ok) / span, 1) if span > 0 else None,
        "p50_ms": ms(percentile(ok, 50)),
        "p99_ms": ms(percentile(ok, 99)),
        "p999_ms": ms(percentile(ok, 99.9)),
        "max_ms": ms(max(ok) if ok else None),
    }


def shares(records: Sequence[Record], names: Sequence[str], t_from: float = 0.0,
           t_to: float = math.inf) -> Dict[str, float]:
    """Fraction of the successful requests served by each instance."""
    counts = {n: 0 for n in names}
    total = 0
    for r in records:
        if t_from <= r[0] < t_to and 200 <= r[2] < 400:
            total += 1
            if r[3] in counts:
                counts[r[3]] += 1
    return {n: (c / total if total else 0.0) for n, c in counts.items()}
