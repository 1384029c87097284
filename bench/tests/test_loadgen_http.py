"""loadgen's HTTP/1.1 client and closed loop against a tiny server on 127.0.0.1:0."""

import asyncio
import collections
import socket
import sys
import time
import unittest

sys.dont_write_bytecode = True
from . import helpers  # noqa: E402

import loadgen  # noqa: E402


def run(coro):
    return asyncio.run(coro)


async def closing(conn, coro):
    """Await ``coro``, then close ``conn`` inside the loop (and let the
    transport finish closing before asyncio.run closes the loop)."""
    try:
        return await coro
    finally:
        conn.close()
        await asyncio.sleep(0)


class ConnectionTest(unittest.TestCase):
    def setUp(self):
        self.srv = helpers.HttpServer().start()
        self.addCleanup(self.srv.stop)

    def requests(self, conn, paths, method="GET", body=b""):
        async def go():
            out = []
            try:
                for p in paths:
                    out.append(await conn.request(method, p, body))
            finally:
                conn.close()
            return out
        return run(go())

    def test_keep_alive_reuse_and_instance_header(self):
        conn = loadgen.Connection("127.0.0.1", self.srv.port)

        async def go():
            out = [await conn.request("GET", "/fast") for _ in range(5)]
            used = conn.used
            conn.close()
            return out, used
        out, used = run(go())
        self.assertEqual(out, [(200, "a", 2), (200, "b", 2), (200, "a", 2), (200, "b", 2),
                               (200, "a", 2)])
        self.assertEqual(used, 5)
        self.assertEqual(self.srv.connections, 1)
        # the request carries Host and no body headers for a GET
        hdrs = self.srv.requests[0][4]
        self.assertEqual(hdrs["host"], f"127.0.0.1:{self.srv.port}")
        self.assertNotIn("content-length", hdrs)

    def test_post_sends_content_length_and_extra_headers(self):
        conn = loadgen.Connection("127.0.0.1", self.srv.port)

        async def go():
            try:
                return await conn.request("POST", "/asr/echo", b"x" * 1000,
                                          {"Content-Type": "application/json"})
            finally:
                conn.close()
        self.assertEqual(run(go()), (200, "a", 1000))
        _, method, path, n, hdrs = self.srv.requests[0]
        self.assertEqual((method, path, n), ("POST", "/asr/echo", 1000))
        self.assertEqual(hdrs["content-length"], "1000")
        self.assertEqual(hdrs["content-type"], "application/json")
        # POST without a body still says Content-Length: 0
        conn2 = loadgen.Connection("127.0.0.1", self.srv.port)
        self.requests(conn2, ["/x"], method="POST")
        self.assertEqual(self.srv.requests[-1][4]["content-length"], "0")

    def test_chunked_body_is_consumed_and_connection_reused(self):
        conn = loadgen.Connection("127.0.0.1", self.srv.port)
        out = self.requests(conn, ["/chunked", "/fast", "/chunked"])
        self.assertEqual(out, [(200, "a", 11), (200, "b", 2), (200, "a", 11)])
        self.assertEqual(self.srv.connections, 1)

    def test_204_has_no_body(self):
        conn = loadgen.Connection("127.0.0.1", self.srv.port)
        out = self.requests(conn, ["/204", "/fast"])
        self.assertEqual(out, [(204, "a", 0), (200, "b", 2)])
        self.assertEqual(self.srv.connections, 1)

    def test_connection_close_and_read_to_eof(self):
        conn = loadgen.Connection("127.0.0.1", self.srv.port)

        async def go():
            a = await conn.request("GET", "/close")
            closed_after_a = conn.writer is None
            b = await conn.request("GET", "/eof")
            closed_after_b = conn.writer is None
            c = await conn.request("GET", "/fast")
            conn.close()
            return a, closed_after_a, b, closed_after_b, c
        a, ca, b, cb, c = run(go())
        self.assertEqual(a, (200, "a", 2))
        self.assertTrue(ca)
        self.assertEqual(b, (200, "b", len(b"until-eof")))
        self.assertTrue(cb)
        self.assertEqual(c, (200, "a", 2))
        self.assertEqual(self.srv.connections, 3)

    def test_stale_keep_alive_connection_is_retried_once(self):
        srv = helpers.HttpServer(close_after=3).start()
        self.addCleanup(srv.stop)
        conn = loadgen.Connection("127.0.0.1", srv.port)
        out = self.requests(conn, ["/fast"] * 10)
        self.assertEqual([o[0] for o in out], [200] * 10)
        self.assertEqual(len(srv.requests), 10)
        self.assertEqual(srv.connections, 4)  # 3 + 3 + 3 + 1 requests

    def test_closed_before_answer_is_an_error_after_one_retry(self):
        conn = loadgen.Connection("127.0.0.1", self.srv.port)

        async def go():
            first = await conn.request("GET", "/fast")
            try:
                await conn.request("GET", "/drop")
            except loadgen.HttpError as e:
                return first, str(e)
            finally:
                conn.close()
            return first, None
        first, err = run(go())
        self.assertEqual(first[0], 200)
        self.assertIsNotNone(err, "a request the server never answers must fail")
        # the reused connection failed, one fresh connection was tried, no more
        self.assertEqual(self.srv.connections, 2)

    def test_fresh_connection_closed_is_an_error(self):
        conn = loadgen.Connection("127.0.0.1", self.srv.port)
        with self.assertRaises(loadgen.HttpError):
            self.requests(conn, ["/drop"])
        self.assertEqual(self.srv.connections, 1)

    def test_malformed_status_line(self):
        conn = loadgen.Connection("127.0.0.1", self.srv.port)
        with self.assertRaises(loadgen.HttpError) as cm:
            self.requests(conn, ["/bad"])
        self.assertIn("bad status line", str(cm.exception))


class TimedTest(unittest.TestCase):
    def test_timeout_gives_status_0(self):
        with helpers.HttpServer() as srv:
            conn = loadgen.Connection("127.0.0.1", srv.port)
            status, inst, lat = run(closing(conn, loadgen.timed(conn, "GET", "/slow",
                                                                timeout=0.2)))
            self.assertEqual((status, inst), (0, ""))
            self.assertGreaterEqual(lat, 0.19)
            self.assertLess(lat, 0.9)
            self.assertIsNone(conn.writer)  # the connection is dropped

    def test_refused_connection_gives_status_0(self):
        with socket.socket() as s:  # a port nobody listens on (bound, not listening)
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            conn = loadgen.Connection("127.0.0.1", port)
            status, inst, lat = run(closing(conn, loadgen.timed(conn, "GET", "/", timeout=2)))
        self.assertEqual((status, inst), (0, ""))
        self.assertLess(lat, 1.0)

    def test_status_passed_through(self):
        with helpers.HttpServer() as srv:
            conn = loadgen.Connection("127.0.0.1", srv.port)
            status, inst, _ = run(closing(conn, loadgen.timed(conn, "GET", "/status/503")))
        self.assertEqual((status, inst), (503, "a"))


class ClosedLoopTest(unittest.TestCase):
    def test_records_attribution_and_keep_alive(self):
        with helpers.HttpServer() as srv:
            t0 = time.perf_counter()
            recs = loadgen.closed_loop("127.0.0.1", srv.port, clients=3, duration=0.6, t0=t0)
            elapsed = time.perf_counter() - t0
            n_server = len(srv.requests)
            conns = srv.connections
        self.assertGreater(len(recs), 30)
        self.assertLess(elapsed, 2.0)
        # one record per answered request, all successful, one connection per client
        self.assertEqual(len(recs), n_server)
        self.assertEqual(conns, 3)
        self.assertEqual({r[2] for r in recs}, {200})
        count = collections.Counter(r[3] for r in recs)
        self.assertEqual(set(count), {"a", "b"})
        self.assertLessEqual(abs(count["a"] - count["b"]), 1)  # the server alternates
        for t, lat, _, _ in recs:
            self.assertGreaterEqual(t, 0.0)
            self.assertLess(t, 0.6)  # no request starts after the end
            self.assertGreater(lat, 0.0)
        # records are in completion order
        ends = [r[0] + r[1] for r in recs]
        self.assertTrue(all(b >= a - 1e-3 for a, b in zip(ends, ends[1:])))

    def test_errors_recorded_and_events_run(self):
        with helpers.HttpServer(status=503) as srv:
            seen = []
            ev = loadgen.Event(0.1, "mark", lambda: seen.append(1) or 42)
            recs = loadgen.closed_loop("127.0.0.1", srv.port, clients=2, duration=0.3,
                                       events=[ev])
        self.assertTrue(recs)
        self.assertEqual({r[2] for r in recs}, {503})
        self.assertEqual(seen, [1])
        self.assertEqual(ev.result, 42)
        self.assertGreaterEqual(ev.started_at, 0.1)
        self.assertGreaterEqual(ev.done_at, ev.started_at)
        s = loadgen.latency_summary(recs)
        self.assertEqual(s["errors"], len(recs))
        self.assertIsNone(s["p50_ms"])

    def test_dead_port_gives_status_0_records_without_hot_spin(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            recs = loadgen.closed_loop("127.0.0.1", port, clients=1, duration=0.2)
        self.assertTrue(recs)
        self.assertEqual({(r[2], r[3]) for r in recs}, {(0, "")})
        # 1 ms pause after each failure: at most ~200 attempts in 0.2 s
        self.assertLess(len(recs), 250)


if __name__ == "__main__":
    unittest.main()
