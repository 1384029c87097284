"""websockets.py (the suite, not the PyPI package): handshake key, frame
encoding, the client worker against a local WebSocket echo server, the
worker's JSON-lines protocol, the small arithmetic helpers, and the proxies
and backends it takes from systems.py."""

import os
import socket
import sys
import tempfile
import time
import types
import unittest
from pathlib import Path
from unittest import mock

sys.dont_write_bytecode = True
from . import helpers  # noqa: E402

import systems  # noqa: E402
import websockets as ws  # noqa: E402  (bench/websockets.py)


class ImportTest(unittest.TestCase):
    def test_is_the_bench_module(self):
        self.assertEqual(os.path.dirname(os.path.abspath(ws.__file__)), helpers.BENCH_DIR)


class HandshakeKeyTest(unittest.TestCase):
    def test_rfc6455_example(self):
        # RFC 6455 section 1.3
        self.assertEqual(ws.accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
                         "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")


def unmask(frame):
    return bytes(b ^ frame[2 + i % 4] for i, b in enumerate(frame[6:]))


class FrameTest(unittest.TestCase):
    def test_masked_text_frame(self):
        f = ws.masked_text_frame("héllo")
        payload = "héllo".encode()
        self.assertEqual(f[0], 0x81)  # FIN + text
        self.assertEqual(f[1], 0x80 | len(payload))  # MASK bit + 7-bit length
        self.assertEqual(len(f), 2 + 4 + len(payload))
        self.assertEqual(unmask(f), payload)

    def test_masks_are_random(self):
        a, b = ws.masked_text_frame("x" * 20), ws.masked_text_frame("x" * 20)
        self.assertNotEqual(a[2:6], b[2:6])
        self.assertEqual(unmask(a), unmask(b))

    def test_limits(self):
        self.assertEqual(unmask(ws.masked_text_frame("")), b"")
        self.assertEqual(len(unmask(ws.masked_text_frame("y" * 125))), 125)
        with self.assertRaises(ValueError):
            ws.masked_text_frame("z" * 126)


class ArithmeticTest(unittest.TestCase):
    def test_split(self):
        self.assertEqual(ws.split(10, 3), [4, 3, 3])
        self.assertEqual(ws.split(9900, 2), [4950, 4950])
        self.assertEqual(ws.split(2, 4), [1, 1, 0, 0])
        self.assertEqual(ws.split(0, 2), [0, 0])
        for total, parts in ((7, 7), (100, 6), (9901, 2)):
            s = ws.split(total, parts)
            self.assertEqual(sum(s), total)
            self.assertLessEqual(max(s) - min(s), 1)

    def test_per_conn(self):
        self.assertEqual(ws.per_conn(1000, 1100, 100), 1024)  # KiB -> bytes per socket
        self.assertEqual(ws.per_conn(1000, 1000, 100), 0)
        self.assertEqual(ws.per_conn(1000, 990, 10), -1024)
        self.assertIsNone(ws.per_conn(None, 10, 1))
        self.assertIsNone(ws.per_conn(10, None, 1))
        self.assertIsNone(ws.per_conn(10, 20, 0))

    def test_nginx_worker_connections(self):
        # 2 connections per socket, 16/15 of that, + 100
        self.assertEqual(ws.nginx_worker_connections(9900), 21222)  # ceil(19801 * 16 / 15) + 100
        self.assertEqual(ws.nginx_worker_connections(0), 102)
        for n in (1, 20, 2000, 9900):
            wc = ws.nginx_worker_connections(n)
            self.assertGreaterEqual(wc - wc / 16, 2 * n + 1)  # 1/16 free at full load

    def test_tree_memory_of_this_process(self):
        m = ws.tree_memory(os.getpid())
        self.assertGreater(m["rss_kib"], 1000)
        self.assertEqual(m["processes"][0]["pid"], os.getpid())
        self.assertGreater(m["fds"], 0)
        # no children: the "workers" sums are over nothing
        if len(m["processes"]) == 1:
            self.assertIsNone(m["workers_rss_kib"])


class ProxiesTest(unittest.TestCase):
    """The proxies come from systems.py (WebSocket set-up), the echo
    backends from systems.start_mock."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.dir = Path(self.tmp.name)

    def ctx(self, **kw):
        args = types.SimpleNamespace(proxy_cpu=0, load_cpu=1)
        return ws.Ctx(args=args, tmp=self.dir, bins=Path("/release"), registry=None,
                      sockets=2000, nofile_hard=20000, **kw)

    def backends(self):
        return [systems.Backend("a", 20001), systems.Backend("b", 20002)]

    def test_nginx(self):
        s = ws.make_proxy(self.ctx(), "nginx", self.backends())
        self.assertIsInstance(s, systems.Nginx)
        self.assertEqual((s.cpu, s.failover, s.websocket), (0, False, True))
        self.assertEqual(s.worker_connections, ws.nginx_worker_connections(2000))
        self.assertEqual(s.rlimit_nofile, 20000)
        text = s._render()
        self.assertIn("location /ws {", text)
        self.assertIn("least_conn;", text)
        self.assertIn("proxy_set_header Upgrade $http_upgrade;", text)
        self.assertIn("server 127.0.0.1:20002", text)

    def test_fulcrum_with_and_without_fulcrum_bin(self):
        s = ws.make_proxy(self.ctx(), "fulcrum", self.backends())
        self.assertIsInstance(s, systems.Fulcrum)
        self.assertEqual(s.exe, Path("/release/fulcrum"))
        self.assertEqual((s.cpu, s.failover, s.websocket), (0, False, True))
        text = s._render()
        self.assertIn("timeouts: { idle: 10m }", text)
        self.assertIn("path_prefix: /ws, pool: ws", text)
        s = ws.make_proxy(self.ctx(fulcrum_exe=Path("/opt/fulcrum")), "fulcrum",
                          self.backends())
        self.assertEqual(s.exe, Path("/opt/fulcrum"))

    def test_backends_are_mocks_on_the_load_cpu(self):
        calls = []

        def start_mock(registry, bins, name, port, cpu, **kw):
            calls.append((name, cpu, kw))
            return name

        with mock.patch.object(ws, "start_mock", start_mock):
            procs, backends = ws.start_backends(self.ctx())
        self.assertEqual(procs, ["a", "b"])
        self.assertEqual(calls, [("a", 1, {"latency": None}), ("b", 1, {"latency": None})])
        self.assertEqual([b.name for b in backends], ["a", "b"])
        self.assertEqual(len({b.port for b in backends}), 2)


class MarkdownTest(unittest.TestCase):
    def test_command_names_the_fulcrum_binary(self):
        m = {"date_utc": "d", "fulcrum_git_rev": "r", "cpu_model": "c", "nproc": 2,
             "mem_gib": 1, "kernel": "k", "nginx": "n", "rustc": "rc",
             "background_cpu_busy_pct": 0, "cargo_build": "ok"}
        prm = {"quick": True, "sockets_requested": ws.QUICK_SOCKETS, "concurrency": 200,
               "client_processes": 1, "settle_s": 3.0, "echo_sample": 100, "proxy_cpu": 0,
               "load_cpu": 1, "nofile_limit": 20000, "bin_dir": "/release", "fulcrum_bin": None}
        md = ws.markdown({"machine": m, "params": prm, "records": []})
        self.assertIn("Generated by `bench/run websockets --quick` on", md)
        self.assertIn("binaries from `/release` (fulcrum built ?)", md)
        prm["fulcrum_bin"] = "/opt/fulcrum"
        md = ws.markdown({"machine": m, "params": prm, "records": []})
        self.assertIn("Generated by `bench/run websockets --quick --fulcrum-bin /opt/fulcrum` on",
                      md)
        self.assertIn("binaries from `/release`, fulcrum from `/opt/fulcrum`", md)


class ClientWorkerTest(unittest.TestCase):
    def setUp(self):
        self.w = ws.ClientWorker()
        self.addCleanup(self.w.loop.close)
        self.addCleanup(self.w.handle, {"cmd": "close"})

    def server(self, mode="ok"):
        srv = helpers.WsEchoServer(mode).start()
        self.addCleanup(srv.stop)
        return srv

    def open(self, port, count, concurrency=3):
        return self.w.handle({"cmd": "open", "port": port, "count": count,
                              "concurrency": concurrency, "timeout": 2.0, "deadline": 5.0})

    def test_open_echo_check_close(self):
        srv = self.server()
        r = self.open(srv.port, 7)
        self.assertEqual((r["opened"], r["failures"], r["errors"], r["held"]), (7, 0, {}, 7))
        self.assertEqual(srv.connections, 7)
        e = self.w.handle({"cmd": "echo", "sample": 3, "timeout": 2.0, "tag": "t"})
        self.assertEqual(e, {"checked": 3, "ok": 3, "errors": {}})
        self.assertEqual(len(srv.frames), 3)
        self.assertTrue(all(f.startswith(b"fulcrum-bench t ") for f in srv.frames))
        # sample >= n: every socket
        e = self.w.handle({"cmd": "echo", "sample": 50, "timeout": 2.0, "tag": "u"})
        self.assertEqual(e["checked"], 7)
        self.assertEqual(e["ok"], 7)
        self.assertEqual(self.w.handle({"cmd": "check"}),
                         {"open": 7, "closed": 0, "unexpected_data": 0})
        # more sockets on top of those held
        r = self.open(srv.port, 2)
        self.assertEqual((r["opened"], r["held"]), (2, 9))
        self.assertEqual(self.w.handle({"cmd": "close"}), {"closed": 9})
        self.assertEqual(self.w.handle({"cmd": "echo", "sample": 5, "timeout": 1, "tag": ""}),
                         {"checked": 0, "ok": 0, "errors": {}})

    def test_echo_sample_is_spread(self):
        srv = self.server()
        self.open(srv.port, 10, concurrency=10)
        self.w.handle({"cmd": "echo", "sample": 4, "timeout": 2.0, "tag": "s"})
        idx = sorted(int(f.rsplit(b" ", 1)[1]) for f in srv.frames)
        self.assertEqual(idx, [0, 2, 5, 7])  # int(i * 10 / 4)

    def test_wrong_accept_key(self):
        srv = self.server("bad-accept")
        r = self.open(srv.port, 3)
        self.assertEqual((r["opened"], r["failures"]), (0, 3))
        self.assertEqual(r["errors"], {"wrong Sec-WebSocket-Accept": 3})

    def test_no_upgrade(self):
        srv = self.server("200")
        r = self.open(srv.port, 2)
        self.assertEqual(r["opened"], 0)
        self.assertEqual(r["errors"], {"status 200 OK": 2})

    def test_closed_by_peer_is_seen_by_check(self):
        srv = self.server("close")
        r = self.open(srv.port, 4)
        self.assertEqual(r["opened"], 4)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            c = self.w.handle({"cmd": "check"})
            if c["closed"] == 4:
                break
            time.sleep(0.02)
        self.assertEqual(c, {"open": 0, "closed": 4, "unexpected_data": 0})
        e = self.w.handle({"cmd": "echo", "sample": 4, "timeout": 1.0, "tag": "x"})
        self.assertEqual(e["ok"], 0)
        self.assertEqual(e["checked"], 4)

    def test_connection_refused(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            r = self.open(s.getsockname()[1], 2)
        self.assertEqual(r["opened"], 0)
        self.assertEqual(sum(r["errors"].values()), 2)
        self.assertTrue(all(k.startswith("connect") for k in r["errors"]), r["errors"])

    def test_unknown_command(self):
        with self.assertRaises(ValueError):
            self.w.handle({"cmd": "nope"})


class WorkerProcessTest(unittest.TestCase):
    """``python3 websockets.py --worker`` through ClientPool (JSON lines)."""

    def test_pool_round_trip(self):
        srv = helpers.WsEchoServer().start()
        self.addCleanup(srv.stop)
        with tempfile.TemporaryDirectory() as d, mock.patch.object(ws, "log"):
            pool = ws.ClientPool(2, None, Path(d))
            procs = list(pool.procs)
            try:
                opened = pool.all([{"cmd": "open", "port": srv.port, "count": c,
                                    "concurrency": 5, "timeout": 2.0}
                                   for c in ws.split(5, 2)])
                self.assertEqual([o["opened"] for o in opened], [3, 2])
                echo = pool.broadcast({"cmd": "echo", "sample": 1, "timeout": 2.0, "tag": "p"})
                self.assertEqual([e["ok"] for e in echo], [1, 1])
                checks = pool.broadcast({"cmd": "check"})
                self.assertEqual(sum(c["open"] for c in checks), 5)
                self.assertEqual(pool.broadcast({"cmd": "close"}),
                                 [{"closed": 3}, {"closed": 2}])
                # a worker's error answer becomes a BenchError (last: the
                # other worker's answer is left unread, as in a failing run)
                with self.assertRaises(ws.BenchError) as cm:
                    pool.broadcast({"cmd": "nope"})
                self.assertIn("unknown command 'nope'", str(cm.exception))
            finally:
                pool.stop()
                for p in procs:  # stop() leaves the pipes to the garbage collector
                    p.stdin.close()
                    p.stdout.close()
            self.assertEqual(pool.procs, [])
            self.assertEqual([p.returncode for p in procs], [0, 0])  # exited on "exit"
        self.assertEqual(srv.connections, 5)


class MarkdownTest(unittest.TestCase):
    def test_table(self):
        m = {"date_utc": "d", "fulcrum_git_rev": "r", "cpu_model": "c", "nproc": 2,
             "mem_gib": 1, "kernel": "k", "nginx": "n", "rustc": "rc",
             "background_cpu_busy_pct": 0, "cargo_build": "ok"}
        rec = {"system": "fulcrum", "processes": "1 process", "sockets": 2000,
               "rss_baseline_kib": 5000, "rss_after_kib": 9000, "per_conn_bytes": 2048,
               "pss_per_conn_bytes": None, "open_seconds": 1.234, "failures": 0,
               "echo_ok": 100, "echo_checked": 100, "still_open_after_reading": 2000,
               "proxy_fds_after": 4010, "backend_fds_after": [1000, 1000], "errors": {}}
        prm = {"quick": True, "sockets_requested": 2000, "concurrency": 200,
               "client_processes": 1, "settle_s": 3.0, "echo_sample": 100, "proxy_cpu": 0,
               "load_cpu": 1, "nofile_limit": 20000, "bin_dir": "/b"}
        md = ws.markdown({"machine": m, "params": prm,
                          "records": [rec, ws.empty_record("nginx", "nginx missing")]})
        self.assertIn("`bench/run websockets --quick`", md)
        self.assertIn("| Fulcrum | 1 process | 2,000 | 5,000 | 9,000 | 2,048 | – | 1.23 | 0 |", md)
        self.assertIn("| nginx | not measured: nginx missing |", md)
        md = ws.markdown({"machine": m, "params": dict(prm, sockets_requested=500),
                          "records": []})
        self.assertIn("`bench/run websockets --quick --sockets 500`", md)


if __name__ == "__main__":
    unittest.main()
