"""Shared pieces of the harness tests: sys.path set-up and tiny loopback servers.

Importing this module puts bench/ first on sys.path, so that ``import common``,
``import loadgen``... load the harness modules (and ``import websockets`` loads
bench/websockets.py, as in bench/run, not the PyPI package).

The servers run an asyncio loop in a daemon thread, listen on 127.0.0.1:0 and
are stopped (connections closed, loop closed) by ``stop()``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import sys
import threading
from typing import Dict, List, Optional, Tuple

sys.dont_write_bytecode = True
BENCH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if BENCH_DIR not in sys.path:
    sys.path.insert(0, BENCH_DIR)


class LoopServer:
    """An asyncio TCP server on 127.0.0.1:0 in its own thread."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self._ready = threading.Event()
        self.port = 0
        self.connections = 0  # accepted so far
        self._writers = set()
        self._tasks = set()
        self._error: Optional[BaseException] = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.server = self.loop.run_until_complete(
                asyncio.start_server(self._accept, "127.0.0.1", 0))
            self.port = self.server.sockets[0].getsockname()[1]
        except BaseException as e:  # pragma: no cover - reported by start()
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()

    async def _accept(self, reader, writer) -> None:
        self.connections += 1
        self._writers.add(writer)
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            await self.handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            self._tasks.discard(task)
            try:
                writer.close()
            except Exception:
                pass

    async def handle(self, reader, writer) -> None:  # overridden
        raise NotImplementedError

    def start(self) -> "LoopServer":
        self.thread.start()
        if not self._ready.wait(5) or self._error is not None:
            raise RuntimeError(f"test server did not start: {self._error}")
        return self

    def stop(self) -> None:
        async def shutdown():
            self.server.close()
            for w in list(self._writers):
                w.close()
            tasks = [t for t in self._tasks if not t.done()]
            if tasks:
                await asyncio.wait(tasks, timeout=1.0)
            for t in tasks:
                t.cancel()
            await asyncio.sleep(0)

        if self.thread.is_alive():
            asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(5)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
        self.loop.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _head(status: int, headers: List[Tuple[str, str]]) -> bytes:
    reason = {200: "OK", 204: "No Content", 500: "Internal Server Error",
              503: "Service Unavailable"}.get(status, "X")
    lines = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class HttpServer(LoopServer):
    """A minimal HTTP/1.1 keep-alive server.

    Every response carries ``x-mock-instance``, cycling through ``instances``
    (one global counter: a, b, a, b...). Paths:

    * ``/chunked``  -- chunked body "hello world" (11 bytes) with a trailer;
    * ``/close``    -- ``Connection: close``, then the server closes;
    * ``/eof``      -- no length: the body ends when the server closes;
    * ``/204``      -- 204 without a body;
    * ``/slow``     -- answers after 1 s;
    * ``/drop``     -- closes the connection without answering;
    * ``/bad``      -- a malformed status line;
    * ``/status/N`` -- status N;
    * ``/asr/echo`` -- echoes the request body;
    * ``/llm/...``  -- chunked "data: ..." events;
    * anything else -- 200 "ok".

    ``close_after``: close each connection (no ``Connection: close`` header)
    right after its N-th answer, like a proxy ending idle keep-alive
    connections. ``status``: when not 200, the status of every answer
    (except for the paths above that shape the connection).
    """

    def __init__(self, instances=("a", "b"), close_after: Optional[int] = None,
                 status: int = 200):
        super().__init__()
        self.instances = list(instances)
        self.close_after = close_after
        self.status = status
        self.counter = 0
        # (connection number, method, path, body length, headers)
        self.requests: List[Tuple[int, str, str, int, Dict[str, str]]] = []

    async def handle(self, reader, writer) -> None:
        conn_no = self.connections
        answered = 0
        while True:
            try:
                raw = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            lines = raw.decode("latin-1").split("\r\n")
            method, path, _version = lines[0].split(" ", 2)
            hdrs: Dict[str, str] = {}
            for line in lines[1:]:
                if line:
                    k, _, v = line.partition(":")
                    hdrs[k.strip().lower()] = v.strip()
            n = int(hdrs.get("content-length") or 0)
            body = await reader.readexactly(n) if n else b""
            if path == "/drop":
                return
            self.requests.append((conn_no, method, path, len(body), hdrs))
            inst = self.instances[self.counter % len(self.instances)]
            self.counter += 1
            base = [("x-mock-instance", inst)]
            close = False
            if path == "/slow":
                await asyncio.sleep(1.0)
            special = self.status == 200 or path in ("/close", "/eof", "/drop", "/bad")
            if not special:
                path = "/"  # a failing server answers every other path with its status
            if path == "/chunked" or path.startswith("/llm/"):
                chunks = ([b"hello", b" world"] if path == "/chunked"
                          else [b"data: %d\n\n" % i for i in range(3)])
                out = _head(200, base + [("Transfer-Encoding", "chunked")])
                for c in chunks:
                    out += b"%x\r\n%s\r\n" % (len(c), c)
                out += b"0\r\nx-trailer: 1\r\n\r\n"
            elif path == "/close":
                out = _head(200, base + [("Connection", "close"), ("Content-Length", "2")]) + b"ok"
                close = True
            elif path == "/eof":
                out = _head(200, base) + b"until-eof"
                close = True
            elif path == "/204":
                out = _head(204, base)
            elif path == "/bad":
                out = b"garbage\r\n\r\n"
                close = True
            elif path == "/asr/echo":
                out = _head(200, base + [("Content-Length", str(len(body)))]) + body
            else:
                status = int(path.split("/")[2]) if path.startswith("/status/") else self.status
                out = _head(status, base + [("Content-Length", "2")]) + b"ok"
            writer.write(out)
            await writer.drain()
            answered += 1
            if close or (self.close_after and answered >= self.close_after):
                return


WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class WsEchoServer(LoopServer):
    """WebSocket echo server: answers the Upgrade, then echoes text frames.

    ``mode``: "ok", "bad-accept" (wrong Sec-WebSocket-Accept), "200" (no
    upgrade), "close" (101, then closes the connection at once).
    """

    def __init__(self, mode: str = "ok"):
        super().__init__()
        self.mode = mode
        self.frames: List[bytes] = []  # unmasked payloads received

    async def handle(self, reader, writer) -> None:
        raw = await reader.readuntil(b"\r\n\r\n")
        hdrs = {}
        for line in raw.decode("latin-1").split("\r\n")[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        if self.mode == "200":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            return
        key = hdrs.get("sec-websocket-key", "")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        if self.mode == "bad-accept":
            accept = base64.b64encode(b"x" * 20).decode()
        writer.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n").encode())
        await writer.drain()
        if self.mode == "close":
            return
        while True:
            b0, b1 = await reader.readexactly(2)
            n = b1 & 0x7F
            if n == 126:
                n = int.from_bytes(await reader.readexactly(2), "big")
            mask = await reader.readexactly(4) if b1 & 0x80 else b"\0\0\0\0"
            data = await reader.readexactly(n)
            payload = bytes(c ^ mask[i % 4] for i, c in enumerate(data))
            self.frames.append(payload)
            writer.write(bytes([0x81, len(payload)]) + payload)
            await writer.drain()
