"""Shared helpers for Fulcrum's benchmark suites (Python 3 stdlib only).

Everything here is deliberately small and dependency-free:

* tool installation (apt-get) and the cargo build of the Rust binaries,
* free-port selection on loopback,
* a process registry that starts every child in its own process group and
  kills all of them on exit, error or Ctrl-C,
* readiness probes (stdout line, TCP/HTTP polling),
* CPU-time accounting from /proc/<pid>/stat (a process and its descendants),
* wrk invocation and ``--latency`` output parsing,
* machine description for result files.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

CLK_TCK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------
# logging


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    """A fatal problem for the whole run (missing tool, failed build...)."""


class SystemUnavailable(RuntimeError):
    """One system under test could not be run; the suite skips it."""


# --------------------------------------------------------------------------
# tools and builds


def ensure_tools(tools: Dict[str, List[str]], allow_install: bool = True) -> None:
    """Make sure each executable in ``tools`` exists.

    ``tools`` maps an executable name to a list of Debian package candidates,
    tried in order (e.g. ``{"nginx": ["nginx-light", "nginx"]}``).
    Runs ``apt-get update`` once, only if a first install attempt fails.
    """
    missing = {exe: pkgs for exe, pkgs in tools.items() if shutil.which(exe) is None}
    if not missing:
        return
    if not allow_install:
        raise BenchError(f"missing tools: {', '.join(missing)} (and --no-install given)")
    if shutil.which("apt-get") is None:
        raise BenchError(f"missing tools {', '.join(missing)} and no apt-get to install them")

    def try_install(pkgs: List[str]) -> bool:
        log(f"apt-get install -y {' '.join(pkgs)}")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        r = subprocess.run(["apt-get", "install", "-y", *pkgs], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            log(f"apt-get install failed: {r.stderr.strip().splitlines()[-1:] }")
        return r.returncode == 0

    updated = False
    for exe, candidates in missing.items():
        ok = False
        for attempt in range(2):
            for pkg in candidates:
                if try_install([pkg]) and shutil.which(exe):
                    ok = True
                    break
            if ok or updated:
                break
            log("running apt-get update once")
            subprocess.run(["apt-get", "update"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            updated = True
        if not ok:
            raise BenchError(f"could not install {exe} (tried packages: {', '.join(candidates)})")


def cargo_build(packages: Iterable[str]) -> bool:
    """``cargo build --release -p A -p B`` from the repo root.

    Returns True on success. If building everything together fails, each
    package is retried alone so that one broken crate does not prevent
    benchmarking the others (binaries left in target/release are used).
    """
    packages = list(packages)
    if shutil.which("cargo") is None:
        log("cargo not found; using existing binaries")
        return False

    def build(pkgs: List[str]) -> bool:
        cmd = ["cargo", "build", "--release"]
        for p in pkgs:
            cmd += ["-p", p]
        log("$ " + " ".join(cmd))
        r = subprocess.run(cmd, cwd=REPO_ROOT)
        return r.returncode == 0

    if build(packages):
        return True
    if len(packages) > 1:
        log("combined build failed; retrying packages one by one")
        for p in packages:
            if not build([p]):
                log(f"WARNING: cargo build of {p} failed; an existing binary is used if present")
    return False


def bin_dir() -> Path:
    target = os.environ.get("CARGO_TARGET_DIR")
    base = Path(target) if target else REPO_ROOT / "target"
    if not base.is_absolute():
        base = REPO_ROOT / base
    return base / "release"


# --------------------------------------------------------------------------
# ports and HTTP probes


def free_port() -> int:
    """A currently-free TCP port on 127.0.0.1 (bind to port 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port: int, path: str, timeout: float = 2.0) -> int:
    """Status code of ``GET http://127.0.0.1:port/path`` (raises OSError on failure)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def wait_http_ok(port: int, path: str, timeout: float, proc: Optional["Proc"] = None) -> None:
    """Poll until ``GET path`` answers 2xx; raise SystemUnavailable on timeout/exit."""
    deadline = time.monotonic() + timeout
    last = "no attempt"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemUnavailable(
                f"{proc.name} exited with code {proc.returncode} before becoming ready"
                + proc.log_tail())
        try:
            status = http_get(port, path, timeout=1.0)
            if 200 <= status < 300:
                return
            last = f"HTTP {status}"
        except OSError as e:
            last = f"{type(e).__name__}: {e}"
        time.sleep(0.1)
    name = proc.name if proc else f"port {port}"
    raise SystemUnavailable(f"{name}: GET {path} not 2xx after {timeout:.0f}s (last: {last})"
                            + (proc.log_tail() if proc else ""))


def wait_tcp(port: int, timeout: float, proc: "Proc") -> None:
    """Poll until 127.0.0.1:port accepts a connection (for a proxy whose only
    route is a WebSocket upgrade); raise SystemUnavailable on timeout/exit."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemUnavailable(f"{proc.name} exited with code {proc.returncode} before "
                                    "listening" + proc.log_tail())
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemUnavailable(f"{proc.name}: port {port} not accepting after {timeout:.0f}s"
                            + proc.log_tail())


# --------------------------------------------------------------------------
# processes


@dataclass
class Proc:
    """A child started in its own session/process group."""

    name: str
    popen: subprocess.Popen
    log_path: Path
    lines: List[str] = field(default_factory=list)
    line_times: List[float] = field(default_factory=list)  # time.time() each line arrived
    stdout_closed: bool = False
    _line_event: threading.Condition = field(default_factory=threading.Condition)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> Optional[int]:
        return self.popen.returncode

    def poll(self) -> Optional[int]:
        return self.popen.poll()

    def log_tail(self, n: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        if not text:
            return ""
        return "\n    --- last lines of {} ---\n    {}".format(
            self.log_path.name, "\n    ".join(text[-n:]))

    def wait_for_line(self, pattern: str, timeout: float) -> re.Match:
        """Wait until a stdout line matches ``pattern`` (requires capture_stdout)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._line_event:
            while True:
                for line in self.lines[seen:]:
                    m = rx.search(line)
                    if m:
                        return m
                seen = len(self.lines)
                if self.stdout_closed and self.poll() is not None:
                    raise SystemUnavailable(
                        f"{self.name} exited with code {self.returncode} before printing "
                        f"/{pattern}/" + self.log_tail())
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SystemUnavailable(
                        f"{self.name}: no stdout line matching /{pattern}/ within {timeout:.0f}s"
                        + self.log_tail())
                self._line_event.wait(min(remaining, 0.2))


class ProcessRegistry:
    """Starts children in new sessions; ``stop_all`` kills every process group.

    Use as a context manager: everything started through it is terminated on
    normal exit, exceptions and KeyboardInterrupt.
    """

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.procs: List[Proc] = []

    def __enter__(self) -> "ProcessRegistry":
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()

    def start(self, name: str, cmd: List[str], cpu: Optional[int] = None,
              capture_stdout: bool = False, cwd: Optional[Path] = None) -> Proc:
        if cpu is not None:
            cmd = ["taskset", "-c", str(cpu), *cmd]
        log_path = self.log_dir / f"{name}.log"
        logf = open(log_path, "ab", buffering=0)
        log(f"start {name}: {' '.join(cmd)}")
        popen = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture_stdout else logf,
            stderr=logf,
            cwd=cwd,
            start_new_session=True,  # own process group: killpg reaches workers
        )
        proc = Proc(name=name, popen=popen, log_path=log_path)
        self.procs.append(proc)
        if capture_stdout:
            threading.Thread(target=self._pump, args=(proc, logf), daemon=True).start()
        else:
            logf.close()
        return proc

    @staticmethod
    def _pump(proc: Proc, logf) -> None:
        """Drain the child's stdout into its log file and the line buffer."""
        assert proc.popen.stdout is not None
        try:
            for raw in proc.popen.stdout:
                try:
                    logf.write(raw)
                except (OSError, ValueError):
                    pass
                with proc._line_event:
                    proc.lines.append(raw.decode(errors="replace").rstrip("\n"))
                    proc.line_times.append(time.time())
                    proc._line_event.notify_all()
        finally:
            with proc._line_event:
                proc.stdout_closed = True
                proc._line_event.notify_all()
            try:
                logf.close()
            except OSError:
                pass

    def stop(self, proc: Proc, timeout: float = 5.0) -> None:
        """SIGTERM the process group, then SIGKILL it if it lingers."""
        if proc not in self.procs:
            return
        self.procs.remove(proc)
        pgid = proc.pid  # start_new_session => pgid == pid
        if proc.poll() is None:
            _killpg(pgid, signal.SIGTERM)
            try:
                proc.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                log(f"{proc.name} did not stop on SIGTERM; SIGKILL")
                _killpg(pgid, signal.SIGKILL)
                proc.popen.wait(5)
        # Workers may outlive the leader briefly (e.g. nginx): make sure the
        # group is gone.
        _killpg(pgid, signal.SIGKILL)

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs)):
            try:
                self.stop(proc)
            except Exception as e:  # keep stopping the others
                log(f"error stopping {proc.name}: {e}")


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def install_signal_handlers() -> None:
    """Turn SIGINT/SIGTERM/SIGHUP into KeyboardInterrupt so ``finally`` blocks
    run (SIGINT explicitly too: it is ignored by default in background jobs)."""

    def handler(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


# --------------------------------------------------------------------------
# CPU accounting


def _children(pid: int) -> List[int]:
    kids: List[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids.extend(int(x) for x in f.read().split())
        except OSError:
            pass
    return kids


def process_tree(pid: int) -> List[int]:
    """``pid`` and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        if p in out:
            continue
        out.append(p)
        todo.extend(_children(p))
    return out


def proc_cpu_ticks(pid: int) -> Optional[int]:
    """utime+stime (clock ticks) of one process, all its threads included."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    # Field 2 (comm) is parenthesised and may contain spaces or ')':
    # split after the *last* ')'. The rest starts at field 3 (state).
    rest = data[data.rindex(")") + 2:].split()
    utime, stime = int(rest[14 - 3]), int(rest[15 - 3])
    return utime + stime


def tree_cpu_snapshot(pids: Iterable[int]) -> Dict[int, int]:
    """{pid: ticks} for the given roots and all their descendants."""
    snap: Dict[int, int] = {}
    for root in pids:
        for p in process_tree(root):
            t = proc_cpu_ticks(p)
            if t is not None:
                snap[p] = t
    return snap


def cpu_seconds_between(before: Dict[int, int], after: Dict[int, int]) -> float:
    """CPU seconds consumed between two snapshots.

    A pid present only in ``after`` (started during the window) counts fully;
    one that vanished during the window is lost (not expected here).
    """
    ticks = 0
    for pid, t in after.items():
        ticks += t - before.get(pid, 0)
    return ticks / CLK_TCK


# --------------------------------------------------------------------------
# wrk

_UNITS_TIME = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}  # -> ms


def parse_time_ms(text: str) -> float:
    m = re.fullmatch(r"\s*([0-9.]+)\s*(us|ms|s|m|h)\s*", text)
    if not m:
        raise ValueError(f"cannot parse wrk time {text!r}")
    return float(m.group(1)) * _UNITS_TIME[m.group(2)]


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    socket_errors: Dict[str, int]
    non_2xx_3xx: int
    raw: str

    @property
    def errors(self) -> int:
        return sum(self.socket_errors.values()) + self.non_2xx_3xx


def parse_wrk(output: str) -> WrkResult:
    """Parse ``wrk --latency`` output (wrk 4.x)."""
    pct: Dict[int, float] = {}
    for m in re.finditer(r"^\s*(50|75|90|99)(?:\.0+)?%\s+([0-9.]+\s*(?:us|ms|s|m|h))\s*$",
                         output, re.M):
        pct[int(m.group(1))] = parse_time_ms(m.group(2))
    m = re.search(r"^\s*(\d+) requests in ([0-9.]+\s*(?:us|ms|s|m|h)),", output, re.M)
    if not m or len(pct) != 4:
        raise ValueError("unrecognised wrk output:\n" + output)
    requests = int(m.group(1))
    duration_s = parse_time_ms(m.group(2)) / 1e3
    m_rps = re.search(r"^Requests/sec:\s+([0-9.]+)", output, re.M)
    rps = float(m_rps.group(1)) if m_rps else requests / duration_s
    sock = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if m:
        sock = dict(zip(sock, map(int, m.groups())))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    non2xx = int(m.group(1)) if m else 0
    return WrkResult(requests, duration_s, rps, pct[50], pct[75], pct[90], pct[99],
                     sock, non2xx, output)


def run_wrk(registry: ProcessRegistry, url: str, duration_s: float, connections: int,
            threads: int, cpu: Optional[int], name: str = "wrk") -> WrkResult:
    """Run wrk to completion (as a registered child, so Ctrl-C kills it)."""
    dur = f"{max(1, int(round(duration_s)))}s"
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{dur}", "--latency", url]
    proc = registry.start(name, cmd, cpu=cpu)
    try:
        rc = proc.popen.wait(timeout=duration_s + 60)
    except subprocess.TimeoutExpired:
        raise SystemUnavailable(f"wrk did not finish within {duration_s + 60:.0f}s") from None
    finally:
        registry.stop(proc)
    output = proc.log_path.read_text(errors="replace")
    proc.log_path.unlink(missing_ok=True)  # fresh log for the next run
    if rc != 0:
        raise SystemUnavailable(f"wrk exited with {rc}:\n{output}")
    return parse_wrk(output)


# --------------------------------------------------------------------------
# machine description


def _cmd_output(cmd: List[str]) -> str:
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    return r.stdout.strip()


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_rev() -> str:
    rev = _cmd_output(["git", "-C", str(REPO_ROOT), "rev-parse", "--short=12", "HEAD"])
    if not re.fullmatch(r"[0-9a-f]{7,40}", rev):
        return "uncommitted"
    # Dirty if anything that goes into the binaries differs from HEAD
    # (untracked source files included).
    dirty = _cmd_output(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--",
                         "crates", "Cargo.toml", "Cargo.lock"])
    return rev + ("-dirty" if dirty and dirty != "unavailable" else "")


def prebuilt_binaries(args) -> Dict[str, Path]:
    """Binaries given on the command line instead of built ones, by system
    name: ``--fulcrum-bin`` (every suite) -> "fulcrum", ``--baseline-bin``
    (overhead) -> "fulcrum-baseline". Paths are made absolute (Fulcrum is
    started in its work directory)."""
    out: Dict[str, Path] = {}
    for name, attr in (("fulcrum", "fulcrum_bin"), ("fulcrum-baseline", "baseline_bin")):
        value = getattr(args, attr, None)
        if value:
            out[name] = Path(value).expanduser().resolve()
    return out


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_and_describe(packages: List[str], no_build: bool,
                       prebuilt: Optional[Dict[str, Path]] = None) -> Tuple[Path, dict]:
    """The start of every suite: ``cargo build --release`` of ``packages``
    (unless ``no_build`` or nothing to build), then the binary folder and
    the machine description with the build outcome and each binary's
    modification time and SHA-256.

    ``prebuilt`` (see ``prebuilt_binaries``): binaries used as they are; a
    package of the same name is not built, and each must exist."""
    prebuilt = prebuilt or {}
    for name, path in prebuilt.items():
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise BenchError(f"{name} binary {path} does not exist or is not executable")
    packages = [p for p in packages if p not in prebuilt]
    if no_build:
        build = "skipped (--no-build)"
    elif packages:
        build = "ok" if cargo_build(packages) else "FAILED (existing binaries used)"
    else:
        build = "skipped (nothing to build)"
    bins = bin_dir()
    machine = machine_info()
    machine["cargo_build"] = build
    machine["binaries"] = str(bins)
    described = {exe: bins / exe for exe in ("fulcrum", "fulcrum-mock")}
    described.update(prebuilt)
    for exe, path in described.items():
        if path.exists():
            if exe in prebuilt:
                machine[f"{exe}_binary"] = str(path)
            machine[f"{exe}_binary_mtime_utc"] = time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime(path.stat().st_mtime))
            machine[f"{exe}_binary_sha256"] = file_sha256(path)
    return bins, machine


def note_background(machine: dict) -> None:
    """Records how busy the machine is before a run, warning above 10 %."""
    busy = background_busy_pct()
    machine["background_cpu_busy_pct"] = busy
    if busy > 10:
        log(f"WARNING: the machine is already {busy:.0f}% busy before the benchmark starts "
            "(another build or load?); results will be noisy")


def machine_info() -> dict:
    def first_line(cmd: List[str]) -> str:
        out = _cmd_output(cmd)
        return out.splitlines()[0].strip() if out else "unavailable"

    mem_gib = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "cpu_model": cpu_model(),
        "nproc": os.cpu_count(),
        "mem_gib": mem_gib,
        "kernel": platform.release(),
        "nginx": first_line(["nginx", "-v"]),
        "haproxy": first_line(["haproxy", "-v"]),
        "wrk": first_line(["wrk", "-v"]),
        "rustc": first_line(["rustc", "-V"]),
        "fulcrum_git_rev": git_rev(),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _cpu_times() -> List[int]:
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    return [int(x) for x in fields]


def machine_busy_seconds() -> float:
    """CPU seconds spent non-idle since boot, all CPUs together (/proc/stat)."""
    t = _cpu_times()
    # user nice system idle iowait irq softirq steal: all but idle/iowait/steal
    return (sum(t[:8]) - t[3] - t[4] - t[7]) / CLK_TCK


def rusage_seconds(who: int) -> float:
    """utime+stime of RUSAGE_SELF or RUSAGE_CHILDREN (reaped children)."""
    ru = resource.getrusage(who)
    return ru.ru_utime + ru.ru_stime


def background_busy_pct(interval: float = 1.0) -> float:
    """Machine-wide CPU busy % (of all CPUs) over ``interval`` seconds.

    Taken before a suite starts anything: a high value means something else
    (e.g. a compiler) is running and the results will be noisy.
    """
    a = _cpu_times()
    time.sleep(interval)
    b = _cpu_times()
    d = [y - x for x, y in zip(a, b)]
    total = sum(d[:8])  # user nice system idle iowait irq softirq steal
    idle = d[3] + d[4]
    return round(100.0 * (total - idle) / total, 1) if total else 0.0


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    tmp.replace(path)


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
