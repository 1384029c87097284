"""common.py: wrk output parsing, CPU accounting arithmetic, atomic writes,
the process registry / readiness probes (with tiny local children) and the
prebuilt binaries (--fulcrum-bin, --baseline-bin)."""

import hashlib
import http.server
import json
import os
import socket
import sys
import tempfile
import threading
import time
import types
import unittest
from pathlib import Path
from unittest import mock

sys.dont_write_bytecode = True
from . import helpers  # noqa: E402,F401

import common  # noqa: E402

WRK_OUTPUT = """\
Running 5s test @ http://127.0.0.1:8080/fast
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   652.31us  301.22us  12.34ms   89.12%
    Req/Sec    49.12k     3.21k   55.01k    70.00%
  Latency Distribution
     50%  598.00us
     75%  712.00us
     90%    0.90ms
     99%    1.85ms
  488123 requests in 5.00s, 55.12MB read
  Socket errors: connect 1, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 7
Requests/sec:  97612.34
Transfer/sec:     11.02MB
"""


class ParseTimeTest(unittest.TestCase):
    def test_units(self):
        self.assertAlmostEqual(common.parse_time_ms("598.00us"), 0.598)
        self.assertAlmostEqual(common.parse_time_ms("1.85ms"), 1.85)
        self.assertAlmostEqual(common.parse_time_ms("2.5s"), 2500.0)
        self.assertAlmostEqual(common.parse_time_ms("1.00m"), 60000.0)
        self.assertAlmostEqual(common.parse_time_ms("1h"), 3600e3)
        self.assertAlmostEqual(common.parse_time_ms("  0.90 ms "), 0.9)

    def test_rejects_garbage(self):
        for bad in ("", "ms", "1.5", "1.5 min", "-3ms", "1,5ms", "abc"):
            with self.assertRaises(ValueError, msg=bad):
                common.parse_time_ms(bad)


class ParseWrkTest(unittest.TestCase):
    def test_full_output(self):
        r = common.parse_wrk(WRK_OUTPUT)
        self.assertEqual(r.requests, 488123)
        self.assertAlmostEqual(r.duration_s, 5.0)
        self.assertAlmostEqual(r.rps, 97612.34)
        self.assertAlmostEqual(r.p50_ms, 0.598)
        self.assertAlmostEqual(r.p75_ms, 0.712)
        self.assertAlmostEqual(r.p90_ms, 0.90)
        self.assertAlmostEqual(r.p99_ms, 1.85)
        self.assertEqual(r.socket_errors, {"connect": 1, "read": 3, "write": 0, "timeout": 2})
        self.assertEqual(r.non_2xx_3xx, 7)
        self.assertEqual(r.errors, 13)
        self.assertEqual(r.raw, WRK_OUTPUT)

    def test_clean_run_and_missing_rps_line(self):
        text = "\n".join(line for line in WRK_OUTPUT.splitlines()
                         if not line.startswith(("  Socket errors", "  Non-2xx", "Requests/sec")))
        r = common.parse_wrk(text)
        self.assertEqual(r.socket_errors, {"connect": 0, "read": 0, "write": 0, "timeout": 0})
        self.assertEqual(r.non_2xx_3xx, 0)
        self.assertEqual(r.errors, 0)
        self.assertAlmostEqual(r.rps, 488123 / 5.0)  # computed from requests / duration

    def test_decimal_percent_labels(self):
        text = WRK_OUTPUT.replace("     99%", "     99.000%").replace("     50%", "     50.0%")
        r = common.parse_wrk(text)
        self.assertAlmostEqual(r.p99_ms, 1.85)
        self.assertAlmostEqual(r.p50_ms, 0.598)

    def test_latency_units_in_seconds(self):
        text = WRK_OUTPUT.replace("1.85ms", "1.20s").replace("488123 requests in 5.00s",
                                                              "10 requests in 1.00m")
        r = common.parse_wrk(text)
        self.assertAlmostEqual(r.p99_ms, 1200.0)
        self.assertAlmostEqual(r.duration_s, 60.0)

    def test_unrecognised_output(self):
        with self.assertRaises(ValueError):
            common.parse_wrk("unable to connect to 127.0.0.1:8080 Connection refused\n")
        # a missing percentile is an error, not a silent zero
        with self.assertRaises(ValueError):
            common.parse_wrk(WRK_OUTPUT.replace("     90%    0.90ms\n", ""))


class CpuAccountingTest(unittest.TestCase):
    def test_cpu_seconds_between(self):
        tck = common.CLK_TCK
        before = {1: 100, 2: 50, 3: 7}
        after = {1: 100 + 2 * tck, 2: 50 + tck, 4: tck}  # 3 vanished, 4 is new
        self.assertAlmostEqual(common.cpu_seconds_between(before, after), 4.0)
        self.assertEqual(common.cpu_seconds_between({}, {}), 0.0)

    def test_own_process_readings(self):
        pid = os.getpid()
        self.assertIn(pid, common.process_tree(pid))
        t = common.proc_cpu_ticks(pid)
        self.assertIsInstance(t, int)
        self.assertGreaterEqual(t, 0)
        snap = common.tree_cpu_snapshot([pid])
        self.assertIn(pid, snap)
        self.assertIsNone(common.proc_cpu_ticks(2 ** 22 + 12345))  # no such pid


class WriteTest(unittest.TestCase):
    def test_write_json_and_text_are_atomic_and_create_dirs(self):
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "sub" / "r.json"
            common.write_json(p, {"a": [1, 2], "b": None})
            self.assertEqual(json.loads(p.read_text()), {"a": [1, 2], "b": None})
            self.assertTrue(p.read_text().endswith("\n"))
            t = Path(d) / "other" / "r.md"
            common.write_text(t, "# x\n")
            self.assertEqual(t.read_text(), "# x\n")
            left = sorted(str(x.relative_to(d)) for x in Path(d).rglob("*") if x.is_file())
            self.assertEqual(left, ["other/r.md", "sub/r.json"])  # no .tmp left behind


class ProcessRegistryTest(unittest.TestCase):
    def setUp(self):
        patcher = mock.patch.object(common, "log")
        patcher.start()
        self.addCleanup(patcher.stop)
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.dir = Path(self.tmp.name)

    @staticmethod
    def close_stdout(p):
        # the registry's reader thread leaves the pipe open at EOF
        deadline = time.monotonic() + 2
        while not p.stdout_closed and time.monotonic() < deadline:
            time.sleep(0.01)
        p.popen.stdout.close()

    def test_wait_for_line_and_stop_kills_the_group(self):
        code = ("import subprocess, sys, time; "
                "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); "
                "print('child', child.pid, flush=True); "
                "print('listening on http://127.0.0.1:4242', flush=True); time.sleep(30)")
        with common.ProcessRegistry(self.dir) as reg:
            p = reg.start("t", [sys.executable, "-c", code], capture_stdout=True)
            self.addCleanup(self.close_stdout, p)
            m = p.wait_for_line(r"listening on http://127\.0\.0\.1:(\d+)\b", 5)
            self.assertEqual(m.group(1), "4242")
            child = int(p.wait_for_line(r"^child (\d+)", 1).group(1))
            self.assertEqual(len(p.lines), len(p.line_times))
            self.assertIn("listening on", (self.dir / "t.log").read_text())
            with self.assertRaises(common.SystemUnavailable):
                p.wait_for_line("never printed", 0.2)
        # leaving the registry killed the whole process group, the child included
        self.assertIsNotNone(p.poll())
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                break
            # a zombie not yet reaped by init still answers kill(0): check its state
            try:
                with open(f"/proc/{child}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        break
            except OSError:
                break
            time.sleep(0.02)
        else:
            self.fail("the grandchild survived the registry")

    def test_wait_for_line_reports_early_exit(self):
        with common.ProcessRegistry(self.dir) as reg:
            p = reg.start("quits", [sys.executable, "-c", "print('bye'); raise SystemExit(3)"],
                          capture_stdout=True)
            self.addCleanup(self.close_stdout, p)
            with self.assertRaises(common.SystemUnavailable) as cm:
                p.wait_for_line("ready", 5)
            self.assertIn("exited with code 3", str(cm.exception))


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/ok" else 503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


class HttpProbeTest(unittest.TestCase):
    def test_http_get_and_wait_http_ok(self):
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
        th = threading.Thread(target=srv.serve_forever, daemon=True)
        th.start()
        try:
            port = srv.server_address[1]
            self.assertEqual(common.http_get(port, "/ok"), 200)
            self.assertEqual(common.http_get(port, "/nope"), 503)
            common.wait_http_ok(port, "/ok", 2.0)
            with self.assertRaises(common.SystemUnavailable) as cm:
                common.wait_http_ok(port, "/nope", 0.3)
            self.assertIn("HTTP 503", str(cm.exception))
        finally:
            srv.shutdown()
            srv.server_close()
            th.join(5)

    def test_free_port_is_bindable(self):
        port = common.free_port()
        self.assertGreater(port, 0)
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))

    def test_wait_tcp(self):
        alive = types.SimpleNamespace(name="p", poll=lambda: None, log_tail=lambda: "")
        with socket.socket() as ls:
            ls.bind(("127.0.0.1", 0))
            ls.listen(1)
            common.wait_tcp(ls.getsockname()[1], 2.0, alive)
        port = common.free_port()  # nothing listens there
        with self.assertRaises(common.SystemUnavailable) as cm:
            common.wait_tcp(port, 0.3, alive)
        self.assertIn(f"port {port} not accepting", str(cm.exception))
        dead = types.SimpleNamespace(name="p", poll=lambda: 1, returncode=1,
                                     log_tail=lambda: "")
        with self.assertRaises(common.SystemUnavailable) as cm:
            common.wait_tcp(port, 2.0, dead)
        self.assertIn("exited with code 1", str(cm.exception))


class BinariesTest(unittest.TestCase):
    """--fulcrum-bin / --baseline-bin: prebuilt binaries, not built, described."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.dir = Path(self.tmp.name)
        for target, attr, new in ((common, "machine_info", lambda: {"m": 1}),
                                  (common, "bin_dir", lambda: self.dir / "release")):
            p = mock.patch.object(common, attr, new)
            p.start()
            self.addCleanup(p.stop)
        (self.dir / "release").mkdir()
        (self.dir / "release" / "fulcrum-mock").write_bytes(b"mock")

    def exe(self, name, data=b"bin"):
        path = self.dir / name
        path.write_bytes(data)
        path.chmod(0o755)
        return path

    def test_prebuilt_binaries_from_args(self):
        ns = types.SimpleNamespace
        self.assertEqual(common.prebuilt_binaries(ns()), {})
        self.assertEqual(common.prebuilt_binaries(ns(fulcrum_bin=None, baseline_bin=None)), {})
        old = os.getcwd()
        os.chdir(self.dir)
        try:
            got = common.prebuilt_binaries(ns(fulcrum_bin="a/fulcrum", baseline_bin="/x/b"))
        finally:
            os.chdir(old)
        self.assertEqual(got, {"fulcrum": self.dir.resolve() / "a" / "fulcrum",
                               "fulcrum-baseline": Path("/x/b")})

    def test_prebuilt_fulcrum_is_not_built_and_is_described(self):
        fb, base = self.exe("fulcrum", b"new"), self.exe("old-fulcrum", b"old")
        with mock.patch.object(common, "cargo_build", return_value=True) as cb:
            bins, m = common.build_and_describe(["fulcrum", "fulcrum-mock"], False,
                                                {"fulcrum": fb, "fulcrum-baseline": base})
        cb.assert_called_once_with(["fulcrum-mock"])
        self.assertEqual(bins, self.dir / "release")
        self.assertEqual(m["cargo_build"], "ok")
        self.assertEqual(m["fulcrum_binary"], str(fb))
        self.assertEqual(m["fulcrum-baseline_binary"], str(base))
        self.assertEqual(m["fulcrum_binary_sha256"], hashlib.sha256(b"new").hexdigest())
        self.assertEqual(m["fulcrum-baseline_binary_sha256"], hashlib.sha256(b"old").hexdigest())
        self.assertEqual(m["fulcrum-mock_binary_sha256"], hashlib.sha256(b"mock").hexdigest())
        self.assertIn("fulcrum-baseline_binary_mtime_utc", m)
        self.assertNotIn("fulcrum-mock_binary", m)  # built, not given

    def test_no_build_still_wins_and_nothing_to_build(self):
        fb = self.exe("fulcrum")
        with mock.patch.object(common, "cargo_build") as cb:
            _, m = common.build_and_describe(["fulcrum", "fulcrum-mock"], True, {"fulcrum": fb})
            self.assertEqual(m["cargo_build"], "skipped (--no-build)")
            _, m = common.build_and_describe(["fulcrum"], False, {"fulcrum": fb})
            self.assertEqual(m["cargo_build"], "skipped (nothing to build)")
            _, m = common.build_and_describe(["fulcrum", "fulcrum-mock"], True)
            self.assertEqual(m["cargo_build"], "skipped (--no-build)")
            self.assertNotIn("fulcrum_binary", m)
        cb.assert_not_called()

    def test_missing_or_not_executable_binary_is_fatal(self):
        plain = self.dir / "not-executable"
        plain.write_bytes(b"x")
        plain.chmod(0o644)
        for path in (self.dir / "missing", plain, self.dir):
            with self.subTest(path=path), mock.patch.object(common, "cargo_build") as cb:
                with self.assertRaises(common.BenchError):
                    common.build_and_describe(["fulcrum"], False, {"fulcrum": path})
                cb.assert_not_called()


if __name__ == "__main__":
    unittest.main()
