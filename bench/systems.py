"""Backends and proxies for every suite (overhead, websockets, quality, capacity).

* ``start_mock``: one ``fulcrum-mock`` instance (single-threaded runtime).
* ``Nginx`` / ``HAProxy`` / ``Fulcrum``: write a config for a set of pools,
  start the proxy pinned to one CPU with one worker, wait until it answers,
  stop it, give the pid whose process tree is measured (CPU, RSS), change
  membership (join) the way each system's users would, and count the
  attempts each proxy makes on one instance (for the kill scenario).
* ``NginxStub``: an nginx answering ``200 "ok"`` itself (overhead's
  development stand-in backend).

Two switches shape every config:

* ``failover=True`` (quality, capacity): active health checks, passive
  ejection, retries on another instance and short connect timeouts, as each
  system's users would set them up for failing instances. ``False``
  (overhead, websockets): plain proxying with each system's defaults (no
  checks or retries configured; Fulcrum probes every 60 s).
* ``websocket=True`` (websockets): the upgrade is passed through and idle
  tunnels are kept 10 minutes; readiness is "accepts connections", since the
  only route answers upgrades.

Pool description shared by the three writers::

    Pool(name, algorithm, backends=[Backend(name, port, weight, max_conc)],
         route="/" (path prefix), strip=False)

``algorithm`` is a *generic* name: ``round_robin``, ``weighted_round_robin``,
``least_connections`` (nginx ``least_conn``, HAProxy ``leastconn``) or, for
Fulcrum only, any Fulcrum algorithm name.
"""

from __future__ import annotations

import calendar
import http.client
import json
import os
import re
import resource
import signal
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from common import (
    Proc,
    ProcessRegistry,
    SystemUnavailable,
    free_port,
    log,
    wait_http_ok,
    wait_tcp,
)

READY_TIMEOUT_S = 20.0


@dataclass
class Backend:
    name: str
    port: int
    weight: int = 1
    max_conc: Optional[int] = None  # proxy-side concurrency limit, if the scenario uses one

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Pool:
    name: str
    algorithm: str
    backends: List[Backend]
    route: str = "/"
    strip: bool = False


# --------------------------------------------------------------------------
# the mock backends


def mock_cmd(bins: Path, name: str, port: int, latency: Optional[str] = "10ms",
             latency_max: Optional[str] = None, capacity: Optional[int] = None) -> List[str]:
    """``latency=None``: the mock's default (0 ms), as overhead and websockets use."""
    cmd = [str(bins / "fulcrum-mock"), "--listen", f"127.0.0.1:{port}", "--threads", "1",
           "--name", name]
    if latency:
        cmd += ["--latency", latency]
    if latency_max:
        cmd += ["--latency-max", latency_max]
    if capacity:
        cmd += ["--capacity", str(capacity)]
    return cmd


def start_mock(registry: ProcessRegistry, bins: Path, name: str, port: int, cpu: int,
               **kw) -> Proc:
    exe = bins / "fulcrum-mock"
    if not exe.exists():
        raise SystemUnavailable(f"{exe} not found (build fulcrum-mock first)")
    proc = registry.start(f"mock-{name}-{port}", mock_cmd(bins, name, port, **kw), cpu=cpu,
                          capture_stdout=True)
    proc.wait_for_line(r"listening on http://127\.0\.0\.1:%d\b" % port, READY_TIMEOUT_S)
    return proc


def mock_control(port: int, doc: dict) -> None:
    body = json.dumps(doc).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("POST", "/__mock/control", body, {"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            raise RuntimeError(f"mock control on {port}: HTTP {r.status}")
    finally:
        conn.close()


def http_json(method: str, port: int, path: str, doc=None, timeout: float = 5.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        body = json.dumps(doc).encode() if doc is not None else None
        conn.request(method, path, body, {"Content-Type": "application/json"} if body else {})
        r = conn.getresponse()
        data = r.read()
        return r.status, (json.loads(data) if data else None)
    finally:
        conn.close()


def nginx_temp_paths(d: Path) -> str:
    return "\n".join(f"    {x}_temp_path {d}/{x};"
                     for x in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))


def nginx_conf(d: Path, http: str, access: str = "access_log off;",
               worker_connections: int = 4096, rlimit_nofile: Optional[int] = None) -> str:
    """The frame of every nginx config here: one worker in the foreground,
    pid, error log and temp paths in ``d``; ``http`` is the rest of the
    http block (upstreams, server).

    keepalive_requests: nginx 1.22 closes a keep-alive connection after 1000
    requests by default (client side; upstreams set their own). HAProxy and
    Fulcrum do not, so it is raised to keep comparisons about proxying, not
    reconnecting."""
    rlimit = f"worker_rlimit_nofile {rlimit_nofile};\n" if rlimit_nofile else ""
    return f"""\
worker_processes 1;
{rlimit}daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections {worker_connections}; }}
http {{
    {access}
{nginx_temp_paths(d)}
    keepalive_requests 1000000;
{http}
}}
"""


def haproxy_maxconn(wanted: int = 10000) -> int:
    """HAProxy needs ~2 fds per connection and refuses to start if it cannot
    raise RLIMIT_NOFILE that far. Raise our limit (inherited by children) when
    we may (root); otherwise lower maxconn to fit (far above what is used)."""
    need = 2 * wanted + 100
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, need))
            return wanted
        except (ValueError, OSError):
            fit = max(1000, (hard - 100) // 2)
            log(f"haproxy: RLIMIT_NOFILE hard limit {hard} < {need}; maxconn {fit}")
            return fit
    if soft != resource.RLIM_INFINITY and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    return wanted


# --------------------------------------------------------------------------
# proxies


class System:
    """A proxy under test, pinned to ``cpu`` with one worker. Subclasses
    write their config and start it.

    ``failover`` / ``websocket``: see the module docstring. ``ready_path``:
    what must answer 2xx through the proxy before it counts as started
    (default: ``probe_path()``). ``name``: the name in logs and results (to
    run two of the same kind side by side, e.g. "fulcrum-baseline")."""

    name = "?"
    label = "?"

    def __init__(self, registry: ProcessRegistry, workdir: Path, bins: Path, cpu: int,
                 pools: List[Pool], streaming: bool = False, attempt_log: bool = False,
                 failover: bool = True, websocket: bool = False,
                 ready_path: Optional[str] = None, name: Optional[str] = None):
        self.registry, self.bins, self.cpu = registry, bins, cpu
        self.pools = pools
        self.streaming = streaming
        self.attempt_log = attempt_log
        self.failover = failover
        self.websocket = websocket
        self.ready_path = ready_path
        if name:
            self.name = name
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: Optional[Proc] = None
        self.stopped_proc: Optional[Proc] = None

    def start(self) -> "System":
        raise NotImplementedError

    @property
    def pid(self) -> int:
        """The started process: the root of the tree whose CPU and memory are
        measured (nginx: the master, its worker is a child)."""
        assert self.proc is not None, f"{self.name} is not running"
        return self.proc.pid

    def wait_ready(self) -> None:
        assert self.proc is not None
        if self.websocket:
            wait_tcp(self.port, READY_TIMEOUT_S, self.proc)
        else:
            wait_http_ok(self.port, self.ready_path or self.probe_path(), READY_TIMEOUT_S,
                         self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            self.registry.stop(self.proc)
            self.stopped_proc, self.proc = self.proc, None

    def add_backend(self, pool: str, b: Backend) -> None:
        """Bring a new instance into ``pool`` the way this system's users would."""
        raise NotImplementedError

    def attempts(self, b: Backend) -> Optional[int]:
        """Cumulative attempts (tries, including failed ones) made on ``b``,
        or None if only available after the run (see ``attempt_times``)."""
        return None

    def attempt_times(self, b: Backend) -> Optional[List[float]]:
        """Wall-clock times of every attempt on ``b`` (from a log), if available."""
        return None

    def out_of_service_times(self, b: Backend) -> List[float]:
        return []

    def probe_path(self) -> str:
        """A path through the first pool that the mock answers at once."""
        route = self.pools[0].route
        return route.rstrip("/") + "/__mock/stats"

    def config_text(self) -> str:
        return self.conf.read_text()

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise SystemUnavailable(f"{self.name} died (exit status {self.proc.returncode})"
                                    + self.proc.log_tail())


class Nginx(System):
    name, label = "nginx", "nginx"
    ALGO = {"round_robin": "", "weighted_round_robin": "", "least_connections": "least_conn;"}
    # Passive health (nginx OSS has no active checks): 1 failure takes a server
    # out for fail_timeout; after that one live request tries it again.
    MAX_FAILS, FAIL_TIMEOUT = 1, "2s"

    def __init__(self, *a, worker_connections: int = 4096,
                 rlimit_nofile: Optional[int] = None, **kw):
        super().__init__(*a, **kw)
        self.worker_connections = worker_connections
        self.rlimit_nofile = rlimit_nofile

    def _server(self, b: Backend) -> str:
        health = (f" max_fails={self.MAX_FAILS} fail_timeout={self.FAIL_TIMEOUT}"
                  if self.failover else "")
        return f"        server {b.addr} weight={b.weight}{health};"

    def _location(self, p: Pool) -> str:
        target = f"http://{p.name}/" if p.strip else f"http://{p.name}"
        lines = [f"proxy_pass {target};", "proxy_http_version 1.1;"]
        if self.websocket:
            lines += ["proxy_set_header Upgrade $http_upgrade;",
                      "proxy_set_header Connection $connection_upgrade;",
                      "proxy_set_header Host $host;"]
        else:
            lines.append('proxy_set_header Connection "";')  # upstream keep-alive
        if self.failover:
            lines += ["proxy_next_upstream error timeout http_502 http_503 http_504 "
                      "non_idempotent;", "proxy_next_upstream_tries 3;",
                      "proxy_connect_timeout 1s;"]
        if self.websocket:
            lines += ["proxy_read_timeout 10m;", "proxy_send_timeout 10m;"]
        elif self.failover:
            lines.append("proxy_read_timeout 60s;")
        if self.streaming:
            lines.append("proxy_buffering off;")
        body = "\n".join(f"            {x}" for x in lines)
        return f"        location {p.route} {{\n{body}\n        }}"

    def _render(self) -> str:
        parts = []
        if self.websocket:
            parts.append("""\
    map $http_upgrade $connection_upgrade {
        default upgrade;
        ''      close;
    }""")
        for p in self.pools:
            algo = self.ALGO[p.algorithm]
            lines = ([f"        {algo}"] if algo else []) + [self._server(b) for b in p.backends]
            if not self.websocket:  # an upgraded connection is never reused
                lines += ["        keepalive 64;", "        keepalive_requests 1000000;"]
            parts.append(f"    upstream {p.name} {{\n" + "\n".join(lines) + "\n    }")
        locs = "\n".join(self._location(p) for p in self.pools)
        parts.append(f"    server {{\n        listen 127.0.0.1:{self.port};\n{locs}\n    }}")
        access = (f'log_format attempts \'$msec $request_time "$upstream_addr" "$upstream_response_time" $status\';\n'
                  f'    access_log {self.dir}/access.log attempts;') if self.attempt_log \
            else "access_log off;"
        return nginx_conf(self.dir, "\n".join(parts), access=access,
                          worker_connections=self.worker_connections,
                          rlimit_nofile=self.rlimit_nofile)

    def start(self) -> "Nginx":
        self.conf = self.dir / "nginx.conf"
        self.conf.write_text(self._render())
        self.proc = self.registry.start(
            self.name, ["nginx", "-c", str(self.conf), "-p", str(self.dir),
                        "-e", str(self.dir / "error.log")], cpu=self.cpu)
        self.wait_ready()
        return self

    def add_backend(self, pool: str, b: Backend) -> None:
        # nginx OSS: edit the upstream block and reload (SIGHUP to the master):
        # a new worker starts with the new config, the old one finishes its
        # requests and exits.
        next(p for p in self.pools if p.name == pool).backends.append(b)
        self.conf.write_text(self._render())
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGHUP)

    def attempt_times(self, b: Backend) -> Optional[List[float]]:
        out: List[float] = []
        try:
            text = (self.dir / "access.log").read_text()
        except OSError:
            return None
        for line in text.splitlines():
            # $msec is when the request ended, $msec - $request_time when it
            # began; try k ended at the start + the times of tries 0..k
            # ($upstream_response_time lists them, ms resolution). The time
            # returned per try on ``b`` is when nginx saw it fail (or end).
            m = re.match(r'([0-9.]+) ([0-9.]+) "([^"]*)" "([^"]*)"', line)
            if not m:
                continue
            addrs = [a.strip() for a in m.group(3).split(",")]
            durs = [d.strip() for d in m.group(4).split(",")]
            t = float(m.group(1)) - float(m.group(2))
            for i, a in enumerate(addrs):
                try:
                    t += float(durs[i])
                except (IndexError, ValueError):
                    pass
                if a == b.addr:
                    out.append(t)
        return out


class NginxStub(Nginx):
    """An nginx answering ``GET path`` with ``200 "ok"`` itself: overhead's
    development stand-in backend (no pools)."""

    name, label = "nginx-stub", "nginx stand-in backend"

    def __init__(self, registry: ProcessRegistry, workdir: Path, cpu: int, path: str = "/fast",
                 **kw):
        super().__init__(registry, workdir, Path("/nonexistent"), cpu, [], failover=False,
                         ready_path=path, **kw)
        self.path = path

    def _render(self) -> str:
        return nginx_conf(self.dir, f"""\
    server {{
        listen 127.0.0.1:{self.port};
        location {self.path} {{ default_type text/plain; return 200 "ok"; }}
    }}""")


class HAProxy(System):
    name, label = "haproxy", "HAProxy"
    ALGO = {"round_robin": "roundrobin", "weighted_round_robin": "roundrobin",
            "least_connections": "leastconn"}
    # wanted; start() lowers it to what RLIMIT_NOFILE allows (haproxy_maxconn)
    maxconn = 10000
    CHECK = "check inter 1s fall 2 rise 2 observe layer4 error-limit 1 on-error mark-down"

    def _server(self, b: Backend) -> str:
        mc = f" maxconn {b.max_conc}" if b.max_conc else ""
        check = f" {self.CHECK}" if self.failover else ""
        return f"    server {b.name} {b.addr} weight {b.weight}{mc}{check}"

    def _defaults(self) -> str:
        if not self.failover:
            return """\
    timeout connect 5s
    timeout client 30s
    timeout server 30s"""
        return """\
    timeout connect 1s
    timeout client 60s
    timeout server 60s
    timeout queue 30s
    timeout check 500ms
    retries 3
    option redispatch 1
    retry-on all-retryable-errors"""

    def _render(self) -> str:
        fe_rules, backends = [], []
        for p in self.pools:
            if p.route != "/":
                fe_rules.append(f"    use_backend {p.name} if {{ path_beg {p.route} }}")
            strip = (f"    http-request replace-path {p.route}(.*) /\\1\n" if p.strip else "")
            servers = "\n".join(self._server(b) for b in p.backends)
            chk = "    option httpchk GET /health\n" if self.failover else ""
            backends.append(f"""\
backend {p.name}
    balance {self.ALGO[p.algorithm]}
    http-reuse always
{chk}{strip}{servers}
""")
        default = next((p.name for p in self.pools if p.route == "/"), self.pools[0].name)
        fe = "\n".join(fe_rules)
        bes = "\n".join(backends)
        return f"""\
global
    nbthread 1
    maxconn {self.maxconn}
    stats socket {self.dir}/haproxy.sock mode 600 level admin

defaults
    mode http
    option http-keep-alive
{self._defaults()}

frontend fe
    bind 127.0.0.1:{self.port}
{fe}
    default_backend {default}

{bes}"""

    def start(self) -> "HAProxy":
        self.maxconn = haproxy_maxconn(self.maxconn)
        self.conf = self.dir / "haproxy.cfg"
        self.conf.write_text(self._render())
        # stderr through stdout so that the harness timestamps each line as it
        # arrives ("Server X is DOWN" has no timestamp of its own with -db);
        # exec: the pid is haproxy's own.
        self.proc = self.registry.start(
            self.name, ["sh", "-c", 'exec haproxy -f "$0" -db 2>&1', str(self.conf)],
            cpu=self.cpu, capture_stdout=True)
        self.wait_ready()
        return self

    def cli(self, cmd: str) -> str:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect(str(self.dir / "haproxy.sock"))
            s.sendall(cmd.encode() + b"\n")
            chunks = []
            while True:
                d = s.recv(65536)
                if not d:
                    break
                chunks.append(d)
            return b"".join(chunks).decode(errors="replace")
        finally:
            s.close()

    def add_backend(self, pool: str, b: Backend) -> None:
        # HAProxy's runtime API adds a server without a reload (dynamic
        # servers, HAProxy >= 2.4); it starts in maintenance, so enable it
        # and its health checks. Keyword order as in the static config.
        out = self.cli(f"add server {pool}/{b.name} {b.addr} weight {b.weight} {self.CHECK}")
        if "New server registered" not in out:
            raise RuntimeError(f"haproxy add server failed: {out.strip()}")
        self.cli(f"enable health {pool}/{b.name}")
        self.cli(f"enable server {pool}/{b.name}")
        next(p for p in self.pools if p.name == pool).backends.append(b)

    def stat(self) -> Dict[str, Dict[str, str]]:
        text = self.cli("show stat")
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if not lines or not lines[0].startswith("# "):
            return {}
        cols = lines[0][2:].split(",")
        out = {}
        for ln in lines[1:]:
            row = dict(zip(cols, ln.split(",")))
            out[f"{row.get('pxname')}/{row.get('svname')}"] = row
        return out

    def out_of_service_times(self, b: Backend) -> List[float]:
        """Wall-clock times at which HAProxy took ``b`` out (DOWN lines)."""
        proc = self.proc or self.stopped_proc
        if proc is None:
            return []
        rx = re.compile(r"Server [^/ ]+/%s is DOWN" % re.escape(b.name))
        return [t for line, t in zip(proc.lines, proc.line_times) if rx.search(line)]

    def attempts(self, b: Backend) -> Optional[int]:
        for key, row in self.stat().items():
            if key.endswith("/" + b.name):
                # sessions assigned (stot) + connection errors (econ) + retries (wretr)
                return sum(int(row.get(c) or 0) for c in ("stot", "econ", "wretr"))
        return None


class Fulcrum(System):
    """``exe``: the binary (default ``bins/fulcrum``; ``--fulcrum-bin``,
    ``--baseline-bin``). ``health_interval`` default: 1s with failover, 60s
    without."""

    name, label = "fulcrum", "Fulcrum"

    def __init__(self, *a, registry_enabled: bool = False, extra_pool: str = "",
                 health_interval: Optional[str] = None, exe: Optional[Path] = None,
                 extra_top: str = "", access_log: bool = False,
                 redis_url: Optional[str] = None, **kw):
        super().__init__(*a, **kw)
        self.extra_top = extra_top
        # `registry.store: redis` at this URL (None: the embedded store).
        self.redis_url = redis_url
        # Off by default, like the nginx configurations here (`access_log
        # off;`), so that the suites compare like with like; on, it goes to
        # access.log in the system's folder.
        self.access_log = access_log
        self.admin = free_port()
        self.registry_enabled = registry_enabled
        self.extra_pool = extra_pool
        self.health_interval = health_interval or ("1s" if self.failover else "60s")
        self.exe = Path(exe) if exe else self.bins / "fulcrum"

    def _render(self) -> str:
        pools, routes = [], []
        for p in self.pools:
            insts = []
            for b in p.backends:
                mc = f", max_concurrent: {b.max_conc}" if b.max_conc else ""
                insts.append(f'      - {{ endpoint: "{b.url}", weight: {b.weight}{mc} }}')
            insts_s = "\n".join(insts) if insts else "      []"
            retry = ("    retry: { tries: 3, on: [error, timeout, http_502, http_503, http_504] }\n"
                     if self.failover else "")
            idle = "    timeouts: { idle: 10m }\n" if self.websocket else ""
            pools.append(f"""\
  {p.name}:
    algorithm: {p.algorithm}
{retry}{idle}{self.extra_pool}    instances:
{insts_s}""")
            routes.append(f"  - {{ path_prefix: {p.route}, pool: {p.name}, "
                          f"strip_prefix: {'true' if p.strip else 'false'} }}")
        pools_s, routes_s = "\n".join(pools), "\n".join(routes)
        reg = (f"registry:\n  enabled: true\n  path: {self.dir}/registry\n"
               if self.registry_enabled else "registry:\n  enabled: false\n")
        if self.registry_enabled and self.redis_url:
            reg += f"  store: redis\n  redis_url: {self.redis_url}\n"
        health = f"health_check:\n  interval: {self.health_interval}\n"
        if self.failover:
            health += """\
  timeout: 500ms
  path: /health
  failure_threshold: 2
  recovery_threshold: 2
passive:
  max_fails: 1
  fail_timeout: 2s
timeouts:
  connect: 1s
"""
        return f"""\
listen: 127.0.0.1:{self.port}
admin:
  listen: 127.0.0.1:{self.admin}
{reg}{health}{self._access_log()}{self.extra_top}pools:
{pools_s}
routes:
{routes_s}
"""

    def _access_log(self) -> str:
        if "access_log:" in self.extra_top:
            return ""
        if self.access_log:
            return f"access_log:\n  path: {self.dir}/access.log\n"
        return "access_log:\n  path: \"off\"\n"

    def start(self) -> "Fulcrum":
        if not self.exe.exists():
            raise SystemUnavailable(f"{self.exe} does not exist (not built yet?)")
        self.conf = self.dir / "fulcrum.yaml"
        self.conf.write_text(self._render())
        self.proc = self.registry.start(
            self.name, [str(self.exe), "serve", "-c", str(self.conf), "--threads", "1"],
            cpu=self.cpu, cwd=self.dir)
        wait_http_ok(self.admin, "/readyz", READY_TIMEOUT_S, self.proc)
        if self.pools[0].backends:
            self.wait_ready()
        return self

    def add_backend(self, pool: str, b: Backend) -> None:
        # The instance registers itself through the registry API (the
        # video-analysis platform's), naming the pool as its task type.
        st, doc = http_json("POST", self.admin, "/api/v1/ai_analysis/register", {
            "service_id": b.name, "name": b.name, "task_types": [pool],
            "endpoint": b.url, "version": "1.0.0", "health_path": "/health"})
        if st != 200:
            raise RuntimeError(f"fulcrum register failed: HTTP {st} {doc}")
        next(p for p in self.pools if p.name == pool).backends.append(b)

    def instance_stats(self) -> Dict[str, dict]:
        st, doc = http_json("GET", self.admin, "/api/v1/instances")
        out = {}
        for row in (doc or {}).get("instances", []):
            s = row.get("stats", {})
            out[s.get("endpoint", "").rstrip("/")] = s
        return out

    def out_of_service_times(self, b: Backend) -> List[float]:
        """Wall-clock times (from Fulcrum's own log, µs) at which ``b`` was
        ejected (passive) or marked down (probes)."""
        out = []
        try:
            proc = self.proc or self.stopped_proc
            text = proc.log_path.read_text(errors="replace") if proc else ""
        except OSError:
            return out
        for line in text.splitlines():
            if re.search(r"instance=%s/?(\s|$)" % re.escape(b.url), line) \
                    and ("ejected" in line or "is down" in line):
                m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z", line)
                if m:
                    base = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
                    out.append(base + float(m.group(2) or 0))
        return out

    def attempts(self, b: Backend) -> Optional[int]:
        s = self.instance_stats().get(b.url)
        return None if s is None else int(s.get("requests", 0))


SYSTEMS = {"fulcrum": Fulcrum, "nginx": Nginx, "haproxy": HAProxy}
