"""systems.py: the nginx / HAProxy / Fulcrum config writers (failover, plain
and WebSocket set-ups), start / readiness / stop with a fake registry, and
the log and stats parsers used by the quality suite (kill scenario)."""

import calendar
import sys
import tempfile
import types
import unittest
from pathlib import Path
from unittest import mock

sys.dont_write_bytecode = True
from . import helpers  # noqa: E402,F401

import systems  # noqa: E402
from systems import Backend, Pool  # noqa: E402


def three(weights=(3, 2, 1), max_conc=None):
    return [Backend(n, 20001 + i, w, max_conc) for i, (n, w) in enumerate(zip("abc", weights))]


class SystemTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.dir = Path(self.tmp.name)

    def make(self, cls, pools, **kw):
        # registry and binaries are not used until start()
        return cls(None, self.dir / cls.name, Path("/nonexistent"), 0, pools, **kw)


class BackendPoolTest(unittest.TestCase):
    def test_addresses(self):
        b = Backend("a", 1234)
        self.assertEqual((b.addr, b.url, b.weight, b.max_conc),
                         ("127.0.0.1:1234", "http://127.0.0.1:1234", 1, None))

    def test_mock_cmd(self):
        cmd = systems.mock_cmd(Path("/bin"), "a", 5000)
        self.assertEqual(cmd, ["/bin/fulcrum-mock", "--listen", "127.0.0.1:5000", "--threads",
                               "1", "--name", "a", "--latency", "10ms"])
        cmd = systems.mock_cmd(Path("/bin"), "asr0", 5001, latency="80ms", latency_max="120ms",
                               capacity=4)
        self.assertEqual(cmd[-4:], ["--latency-max", "120ms", "--capacity", "4"])
        self.assertIn("80ms", cmd)
        # the mock's own default latency (0 ms), as overhead and websockets run it
        self.assertEqual(systems.mock_cmd(Path("/bin"), "b0", 5002, latency=None),
                         ["/bin/fulcrum-mock", "--listen", "127.0.0.1:5002", "--threads", "1",
                          "--name", "b0"])

    def test_nginx_temp_paths(self):
        text = systems.nginx_temp_paths(Path("/w"))
        for x in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            self.assertIn(f"    {x}_temp_path /w/{x};", text)


class NginxTest(SystemTestCase):
    def test_upstream_passive_health_and_retries(self):
        s = self.make(systems.Nginx, [Pool("bench", "weighted_round_robin", three())])
        text = s._render()
        for b in three():
            self.assertIn(f"server {b.addr} weight={b.weight} max_fails=1 fail_timeout=2s;", text)
        self.assertIn("upstream bench {", text)
        self.assertIn("proxy_next_upstream error timeout http_502 http_503 http_504 "
                      "non_idempotent;", text)
        self.assertIn("proxy_next_upstream_tries 3;", text)
        self.assertIn("proxy_connect_timeout 1s;", text)
        self.assertIn("keepalive 64;", text)
        self.assertIn('proxy_set_header Connection "";', text)
        self.assertIn("proxy_http_version 1.1;", text)
        self.assertIn(f"listen 127.0.0.1:{s.port};", text)
        self.assertIn("location / {", text)
        self.assertIn("proxy_pass http://bench;", text)
        self.assertIn("worker_processes 1;", text)
        self.assertIn("daemon off;", text)
        self.assertIn("access_log off;", text)
        self.assertNotIn("least_conn", text)
        self.assertNotIn("proxy_buffering off", text)
        self.assertEqual(text.count("{"), text.count("}"))

    def test_least_conn_streaming_strip_and_attempt_log(self):
        pools = [Pool("asr", "least_connections", three((1, 1, 1)), route="/asr/", strip=True),
                 Pool("llm", "round_robin", [Backend("l0", 20010)], route="/llm/", strip=True)]
        s = self.make(systems.Nginx, pools, streaming=True, attempt_log=True)
        text = s._render()
        self.assertEqual(text.count("least_conn;"), 1)
        self.assertIn("location /asr/ {", text)
        self.assertIn("proxy_pass http://asr/;", text)  # trailing slash strips the prefix
        self.assertIn("proxy_pass http://llm/;", text)
        self.assertEqual(text.count("proxy_buffering off;"), 2)
        self.assertIn("log_format attempts '$msec $request_time \"$upstream_addr\" "
                      "\"$upstream_response_time\" $status';", text)
        self.assertIn(f"access_log {s.dir}/access.log attempts;", text)
        self.assertEqual(text.count("{"), text.count("}"))
        self.assertEqual(s.probe_path(), "/asr/__mock/stats")

    def test_attempt_times_from_access_log(self):
        c = Backend("c", 20003)
        s = self.make(systems.Nginx, [Pool("bench", "round_robin", three())], attempt_log=True)
        self.assertIsNone(s.attempt_times(c))  # no log yet
        lines = [
            # one try on a, fine
            '1700000000.100 0.010 "127.0.0.1:20001" "0.010" 200',
            # c failed (1 ms), then b answered (9 ms): start = .500 - .010 = .490
            '1700000000.500 0.010 "127.0.0.1:20003, 127.0.0.1:20002" "0.001, 0.009" 200',
            # two tries on c in one request, the second without a time
            '1700000001.000 0.200 "127.0.0.1:20003, 127.0.0.1:20003" "0.100, -" 502',
            "garbage line",
            "",
        ]
        (s.dir / "access.log").write_text("\n".join(lines) + "\n")
        times = s.attempt_times(c)
        self.assertEqual(len(times), 3)
        self.assertAlmostEqual(times[0], 1700000000.491, places=6)
        self.assertAlmostEqual(times[1], 1700000000.900, places=6)
        self.assertAlmostEqual(times[2], 1700000000.900, places=6)  # "-" adds nothing
        a = s.attempt_times(Backend("a", 20001))
        self.assertEqual(len(a), 1)
        self.assertAlmostEqual(a[0], 1700000000.100, places=6)
        self.assertEqual(s.attempt_times(Backend("x", 20009)), [])


class HAProxyTest(SystemTestCase):
    def test_checks_retries_and_algorithms(self):
        s = self.make(systems.HAProxy, [Pool("bench", "least_connections", three())])
        text = s._render()
        for b in three():
            self.assertIn(f"    server {b.name} {b.addr} weight {b.weight} check inter 1s "
                          "fall 2 rise 2 observe layer4 error-limit 1 on-error mark-down", text)
        self.assertIn("balance leastconn", text)
        self.assertIn("retry-on all-retryable-errors", text)
        self.assertIn("retries 3", text)
        self.assertIn("option redispatch 1", text)
        self.assertIn("timeout connect 1s", text)
        self.assertIn("option httpchk GET /health", text)
        self.assertIn("http-reuse always", text)
        self.assertIn("nbthread 1", text)
        self.assertIn(f"bind 127.0.0.1:{s.port}", text)
        self.assertIn("default_backend bench", text)
        self.assertIn(f"stats socket {s.dir}/haproxy.sock mode 600 level admin", text)
        self.assertIn("maxconn 10000", text)
        self.assertNotIn("use_backend", text)
        self.assertNotIn(" maxconn 4", text)

    def test_routes_strip_and_server_maxconn(self):
        pools = [Pool("asr", "round_robin", three((1, 1, 1), max_conc=4), route="/asr/",
                      strip=True),
                 Pool("tts", "weighted_round_robin", [Backend("t0", 20020)], route="/tts/")]
        s = self.make(systems.HAProxy, pools)
        s.maxconn = 4242
        text = s._render()
        self.assertIn("    use_backend asr if { path_beg /asr/ }", text)
        self.assertIn("    use_backend tts if { path_beg /tts/ }", text)
        self.assertIn("    http-request replace-path /asr/(.*) /\\1", text)
        self.assertEqual(text.count("replace-path"), 1)
        self.assertEqual(text.count(" maxconn 4 check"), 3)
        self.assertEqual(text.count("balance roundrobin"), 2)
        self.assertIn("default_backend asr", text)  # no "/" route: the first pool
        self.assertIn("maxconn 4242", text)

    def test_out_of_service_times_from_down_lines(self):
        s = self.make(systems.HAProxy, [Pool("bench", "round_robin", three())])
        lines = ["[NOTICE] haproxy started",
                 "[WARNING] (12) : Server bench/c is DOWN, reason: Layer4 connection problem",
                 "[WARNING] (12) : Server bench/cc is DOWN, reason: x",
                 "[WARNING] (12) : Server bench/c is UP, reason: Layer4 check passed",
                 "[WARNING] (12) : Server bench/c is DOWN, reason: Layer4 timeout"]
        s.stopped_proc = types.SimpleNamespace(lines=lines, line_times=[1.0, 2.0, 3.0, 4.0, 5.0])
        self.assertEqual(s.out_of_service_times(Backend("c", 20003)), [2.0, 5.0])
        self.assertEqual(s.out_of_service_times(Backend("a", 20001)), [])
        s.stopped_proc = None
        self.assertEqual(s.out_of_service_times(Backend("c", 20003)), [])

    def test_stat_and_attempts(self):
        s = self.make(systems.HAProxy, [Pool("bench", "round_robin", three())])
        csv = ("# pxname,svname,qcur,stot,econ,wretr,status,\n"
               "fe,FRONTEND,,100,,,OPEN,\n"
               "bench,a,0,10,0,1,UP,\n"
               "bench,c,0,5,2,3,DOWN,\n"
               "bench,b,0,7,,,UP,\n"
               "bench,BACKEND,0,22,2,4,UP,\n\n")
        with mock.patch.object(s, "cli", return_value=csv):
            st = s.stat()
            self.assertEqual(st["bench/c"]["status"], "DOWN")
            self.assertEqual(s.attempts(Backend("a", 1)), 11)
            self.assertEqual(s.attempts(Backend("c", 1)), 10)  # stot + econ + wretr
            self.assertEqual(s.attempts(Backend("b", 1)), 7)  # empty columns count 0
            self.assertIsNone(s.attempts(Backend("zz", 1)))
        with mock.patch.object(s, "cli", return_value="Unknown command\n"):
            self.assertEqual(s.stat(), {})


class FulcrumTest(SystemTestCase):
    def test_config(self):
        pools = [Pool("bench", "least_connections", three(max_conc=4))]
        s = self.make(systems.Fulcrum, pools)
        text = s._render()
        self.assertIn(f"listen: 127.0.0.1:{s.port}\n", text)
        self.assertIn(f"admin:\n  listen: 127.0.0.1:{s.admin}\n", text)
        self.assertNotEqual(s.port, s.admin)
        self.assertIn("registry:\n  enabled: false\n", text)
        self.assertIn("health_check:\n  interval: 1s\n  timeout: 500ms\n  path: /health\n"
                      "  failure_threshold: 2\n  recovery_threshold: 2\n", text)
        self.assertIn("passive:\n  max_fails: 1\n  fail_timeout: 2s\n", text)
        self.assertIn("timeouts:\n  connect: 1s\n", text)
        self.assertIn("  bench:\n    algorithm: least_connections\n", text)
        self.assertIn("    retry: { tries: 3, on: [error, timeout, http_502, http_503, "
                      "http_504] }\n", text)
        for b in three(max_conc=4):
            self.assertIn(f'      - {{ endpoint: "{b.url}", weight: {b.weight}, '
                          'max_concurrent: 4 }', text)
        self.assertIn("  - { path_prefix: /, pool: bench, strip_prefix: false }", text)
        self.assertNotIn("\t", text)

    def test_registry_empty_pool_extra_and_interval(self):
        pools = [Pool("asr", "least_calls", [], route="/asr/", strip=True)]
        s = self.make(systems.Fulcrum, pools, registry_enabled=True,
                      extra_pool="    queue: { max: 10, timeout: 3s }\n", health_interval="250ms")
        text = s._render()
        self.assertIn(f"registry:\n  enabled: true\n  path: {s.dir}/registry\n", text)
        self.assertIn("  interval: 250ms\n", text)
        self.assertIn("    queue: { max: 10, timeout: 3s }\n    instances:\n      []\n", text)
        self.assertIn("  - { path_prefix: /asr/, pool: asr, strip_prefix: true }", text)

    def test_out_of_service_times_from_log(self):
        s = self.make(systems.Fulcrum, [Pool("bench", "round_robin", three())])
        log = s.dir / "fulcrum.log"
        c = "http://127.0.0.1:20003"
        log.write_text("\n".join([
            "2024-01-01T00:00:00.250000Z  INFO listening on 127.0.0.1:1",
            f"2024-01-01T00:00:01.500000Z  WARN instance ejected after repeated failures "
            f"pool=bench instance={c}/ failure=connect ejected_for_ms=2000",
            # another instance whose URL starts with the same characters
            f"2024-01-01T00:00:01.600000Z  WARN instance ejected after repeated failures "
            f"pool=bench instance={c}9/ failure=connect ejected_for_ms=2000",
            f"2024-01-01T00:00:02Z  WARN instance is down: failed 2 probes instance={c} "
            "reason=connect refused",
            f"2024-01-01T00:00:03.000001Z  INFO instance is up instance={c}/",
            "",
        ]))
        s.stopped_proc = types.SimpleNamespace(log_path=log)
        base = calendar.timegm((2024, 1, 1, 0, 0, 0, 0, 0, 0))
        times = s.out_of_service_times(Backend("c", 20003))
        self.assertEqual(len(times), 2)
        self.assertAlmostEqual(times[0], base + 1.5, places=6)
        self.assertAlmostEqual(times[1], base + 2.0, places=6)
        self.assertEqual(s.out_of_service_times(Backend("a", 20001)), [])
        s.stopped_proc = types.SimpleNamespace(log_path=s.dir / "missing.log")
        self.assertEqual(s.out_of_service_times(Backend("c", 20003)), [])

    def test_attempts_from_admin_api(self):
        s = self.make(systems.Fulcrum, [Pool("bench", "round_robin", three())])
        doc = {"instances": [
            {"stats": {"endpoint": "http://127.0.0.1:20003/", "requests": 17}},
            {"stats": {"endpoint": "http://127.0.0.1:20001", "requests": 3}},
        ]}
        with mock.patch.object(systems, "http_json", return_value=(200, doc)) as hj:
            self.assertEqual(s.attempts(Backend("c", 20003)), 17)
            self.assertEqual(s.attempts(Backend("a", 20001)), 3)
            self.assertIsNone(s.attempts(Backend("b", 20002)))
        hj.assert_called_with("GET", s.admin, "/api/v1/instances")


def one(port=20001):
    return [Pool("bench", "round_robin", [Backend("b0", port)])]


def ws_pool():
    return [Pool("ws", "least_connections", [Backend("a", 20001), Backend("b", 20002)],
                 route="/ws")]


class NginxFrameTest(SystemTestCase):
    def test_frame(self):
        text = systems.nginx_conf(Path("/w"), "    server { listen 127.0.0.1:1; }")
        self.assertTrue(text.startswith("worker_processes 1;\ndaemon off;\n"))
        self.assertIn("pid /w/nginx.pid;", text)
        self.assertIn("error_log /w/error.log warn;", text)
        self.assertIn("events { worker_connections 4096; }", text)
        self.assertIn("    access_log off;", text)
        self.assertIn("    keepalive_requests 1000000;", text)
        self.assertIn(systems.nginx_temp_paths(Path("/w")), text)
        self.assertIn("    server { listen 127.0.0.1:1; }\n}\n", text)
        self.assertNotIn("worker_rlimit_nofile", text)
        text = systems.nginx_conf(Path("/w"), "", worker_connections=21222, rlimit_nofile=20000)
        self.assertIn("worker_processes 1;\nworker_rlimit_nofile 20000;\ndaemon off;", text)
        self.assertIn("events { worker_connections 21222; }", text)

    def test_stub_backend(self):
        s = systems.NginxStub(None, self.dir / "stub", 1)
        text = s._render()
        self.assertIn(f"listen 127.0.0.1:{s.port};", text)
        self.assertIn('location /fast { default_type text/plain; return 200 "ok"; }', text)
        self.assertNotIn("upstream", text)
        self.assertEqual(text.count("{"), text.count("}"))
        self.assertEqual((s.name, s.cpu, s.ready_path, s.failover), ("nginx-stub", 1, "/fast",
                                                                      False))


class PlainModeTest(SystemTestCase):
    """failover=False: the overhead suite's plain proxying."""

    def test_nginx(self):
        s = self.make(systems.Nginx, one(), failover=False)
        text = s._render()
        self.assertIn("    upstream bench {\n        server 127.0.0.1:20001 weight=1;\n"
                      "        keepalive 64;\n        keepalive_requests 1000000;\n    }", text)
        self.assertIn("        location / {\n            proxy_pass http://bench;\n"
                      "            proxy_http_version 1.1;\n"
                      '            proxy_set_header Connection "";\n        }', text)
        for absent in ("max_fails", "proxy_next_upstream", "proxy_connect_timeout",
                       "proxy_read_timeout", "least_conn", "map $http_upgrade", "Upgrade"):
            self.assertNotIn(absent, text)
        self.assertEqual(text.count("{"), text.count("}"))

    def test_haproxy(self):
        s = self.make(systems.HAProxy, one(), failover=False)
        text = s._render()
        self.assertIn("    server b0 127.0.0.1:20001 weight 1\n", text)
        self.assertIn("defaults\n    mode http\n    option http-keep-alive\n"
                      "    timeout connect 5s\n    timeout client 30s\n"
                      "    timeout server 30s\n\nfrontend fe", text)
        self.assertIn("    http-reuse always\n", text)
        self.assertIn("nbthread 1", text)
        self.assertIn("default_backend bench", text)
        for absent in ("check", "httpchk", "retries", "retry-on", "redispatch", "timeout queue"):
            self.assertNotIn(absent, text)

    def test_fulcrum(self):
        s = self.make(systems.Fulcrum, one(), failover=False, registry_enabled=True)
        text = s._render()
        self.assertIn(f"registry:\n  enabled: true\n  path: {s.dir}/registry\n"
                      "health_check:\n  interval: 60s\n"
                      'access_log:\n  path: "off"\npools:\n', text)
        self.assertIn("  bench:\n    algorithm: round_robin\n    instances:\n"
                      '      - { endpoint: "http://127.0.0.1:20001", weight: 1 }\n', text)
        for absent in ("passive", "retry", "timeouts", "failure_threshold", "idle"):
            self.assertNotIn(absent, text)

    def test_fulcrum_health_interval_default_follows_failover(self):
        self.assertEqual(self.make(systems.Fulcrum, one()).health_interval, "1s")
        self.assertEqual(self.make(systems.Fulcrum, one(), failover=False).health_interval,
                         "60s")
        self.assertEqual(self.make(systems.Fulcrum, one(), failover=False,
                                   health_interval="5s").health_interval, "5s")


class WebSocketModeTest(SystemTestCase):
    """websocket=True: the websockets suite's set-up."""

    def test_nginx(self):
        s = self.make(systems.Nginx, ws_pool(), failover=False, websocket=True,
                      worker_connections=4368, rlimit_nofile=20000)
        text = s._render()
        self.assertIn("worker_rlimit_nofile 20000;", text)
        self.assertIn("events { worker_connections 4368; }", text)
        self.assertIn("    map $http_upgrade $connection_upgrade {\n        default upgrade;\n"
                      "        ''      close;\n    }", text)
        self.assertIn("    upstream ws {\n        least_conn;\n"
                      "        server 127.0.0.1:20001 weight=1;\n"
                      "        server 127.0.0.1:20002 weight=1;\n    }", text)
        for line in ("location /ws {", "proxy_pass http://ws;", "proxy_http_version 1.1;",
                     "proxy_set_header Upgrade $http_upgrade;",
                     "proxy_set_header Connection $connection_upgrade;",
                     "proxy_set_header Host $host;", "proxy_read_timeout 10m;",
                     "proxy_send_timeout 10m;"):
            self.assertIn(line, text)
        # upgraded connections are never reused: no upstream keep-alive
        self.assertNotIn("keepalive 64", text)
        self.assertNotIn('Connection ""', text)
        self.assertEqual(text.count("proxy_read_timeout"), 1)
        self.assertEqual(text.count("{"), text.count("}"))

    def test_nginx_with_failover_keeps_one_read_timeout(self):
        text = self.make(systems.Nginx, ws_pool(), websocket=True)._render()
        self.assertEqual(text.count("proxy_read_timeout"), 1)
        self.assertIn("proxy_read_timeout 10m;", text)
        self.assertIn("proxy_next_upstream_tries 3;", text)

    def test_fulcrum(self):
        s = self.make(systems.Fulcrum, ws_pool(), failover=False, websocket=True,
                      registry_enabled=True)
        text = s._render()
        self.assertIn("  ws:\n    algorithm: least_connections\n"
                      "    timeouts: { idle: 10m }\n    instances:\n", text)
        self.assertIn("  - { path_prefix: /ws, pool: ws, strip_prefix: false }", text)
        self.assertIn("health_check:\n  interval: 60s\n", text)


class FakeRegistry:
    def __init__(self):
        self.started, self.stopped = [], []

    def start(self, name, cmd, cpu=None, capture_stdout=False, cwd=None):
        proc = types.SimpleNamespace(name=name, pid=4242, cmd=cmd, cpu=cpu, cwd=cwd,
                                     capture_stdout=capture_stdout)
        self.started.append(proc)
        return proc

    def stop(self, proc):
        self.stopped.append(proc)


class StartStopTest(SystemTestCase):
    """start(): command, pinning, name; readiness; stop(); pid."""

    def setUp(self):
        super().setUp()
        self.reg = FakeRegistry()
        self.waits = []
        for name in ("wait_http_ok", "wait_tcp"):
            p = mock.patch.object(systems, name, side_effect=lambda *a, n=name:
                                  self.waits.append((n,) + a[:2]))
            p.start()
            self.addCleanup(p.stop)

    def test_nginx_pinned_ready_path_pid_and_stop(self):
        s = systems.Nginx(self.reg, self.dir / "nginx", Path("/b"), 3, one(), failover=False,
                          ready_path="/fast")
        self.assertIs(s.start(), s)
        proc = self.reg.started[0]
        self.assertEqual(proc.name, "nginx")
        self.assertEqual(proc.cpu, 3)
        self.assertEqual(proc.cmd, ["nginx", "-c", str(s.dir / "nginx.conf"), "-p", str(s.dir),
                                    "-e", str(s.dir / "error.log")])
        self.assertEqual((s.dir / "nginx.conf").read_text(), s._render())
        self.assertEqual(self.waits, [("wait_http_ok", s.port, "/fast")])
        self.assertEqual(s.pid, 4242)
        s.stop()
        self.assertEqual(self.reg.stopped, [proc])
        self.assertIs(s.stopped_proc, proc)
        self.assertIsNone(s.proc)

    def test_default_readiness_is_the_probe_path_and_websocket_is_tcp(self):
        s = systems.Nginx(self.reg, self.dir / "n1", Path("/b"), 0, one()).start()
        self.assertEqual(self.waits[-1], ("wait_http_ok", s.port, "/__mock/stats"))
        s = systems.Nginx(self.reg, self.dir / "n2", Path("/b"), 0, ws_pool(),
                          websocket=True).start()
        self.assertEqual(self.waits[-1][:2], ("wait_tcp", s.port))

    def test_haproxy_maxconn_fitted_at_start(self):
        s = systems.HAProxy(self.reg, self.dir / "h", Path("/b"), 0, one(), failover=False,
                            ready_path="/fast")
        with mock.patch.object(systems, "haproxy_maxconn", return_value=3000) as hm:
            s.start()
        hm.assert_called_once_with(10000)
        self.assertEqual(s.maxconn, 3000)
        self.assertIn("maxconn 3000", (s.dir / "haproxy.cfg").read_text())
        self.assertEqual(self.reg.started[0].cmd[-1], str(s.dir / "haproxy.cfg"))
        self.assertTrue(self.reg.started[0].capture_stdout)

    def test_fulcrum_exe_and_name(self):
        exe = self.dir / "other-fulcrum"
        exe.write_text("")
        s = systems.Fulcrum(self.reg, self.dir / "fb", Path("/b"), 0, one(), failover=False,
                            ready_path="/fast", exe=exe, name="fulcrum-baseline")
        s.start()
        proc = self.reg.started[0]
        self.assertEqual(proc.name, "fulcrum-baseline")
        self.assertEqual(proc.cmd, [str(exe), "serve", "-c", str(s.dir / "fulcrum.yaml"),
                                    "--threads", "1"])
        self.assertEqual(proc.cwd, s.dir)
        self.assertEqual(self.waits, [("wait_http_ok", s.admin, "/readyz"),
                                      ("wait_http_ok", s.port, "/fast")])
        self.assertEqual(systems.Fulcrum.name, "fulcrum")  # the class keeps its name

    def test_fulcrum_default_exe_and_missing_binary(self):
        s = systems.Fulcrum(self.reg, self.dir / "f", self.dir / "bins", 0, one())
        self.assertEqual(s.exe, self.dir / "bins" / "fulcrum")
        with self.assertRaises(systems.SystemUnavailable):
            s.start()
        self.assertEqual(self.reg.started, [])


class HAProxyMaxconnTest(unittest.TestCase):
    def test_raises_the_limit_or_fits_maxconn(self):
        inf = systems.resource.RLIM_INFINITY
        with mock.patch.object(systems.resource, "getrlimit", return_value=(1024, inf)), \
                mock.patch.object(systems.resource, "setrlimit") as sr:
            self.assertEqual(systems.haproxy_maxconn(10000), 10000)
            sr.assert_called_once_with(systems.resource.RLIMIT_NOFILE, (20100, inf))
        with mock.patch.object(systems.resource, "getrlimit", return_value=(1024, 4096)), \
                mock.patch.object(systems.resource, "setrlimit", side_effect=ValueError), \
                mock.patch.object(systems, "log"):
            self.assertEqual(systems.haproxy_maxconn(10000), (4096 - 100) // 2)
        with mock.patch.object(systems.resource, "getrlimit", return_value=(30000, 30000)), \
                mock.patch.object(systems.resource, "setrlimit") as sr:
            self.assertEqual(systems.haproxy_maxconn(10000), 10000)
            sr.assert_not_called()


class SystemsTableTest(unittest.TestCase):
    def test_names(self):
        self.assertEqual(set(systems.SYSTEMS), {"fulcrum", "nginx", "haproxy"})
        for name, cls in systems.SYSTEMS.items():
            self.assertEqual(cls.name, name)
        # every generic algorithm the quality suite gives nginx/HAProxy is mapped
        for cls in (systems.Nginx, systems.HAProxy):
            for algo in ("round_robin", "weighted_round_robin", "least_connections"):
                self.assertIn(algo, cls.ALGO)


if __name__ == "__main__":
    unittest.main()
