"""overhead.py: its proxies come from systems.py; --fulcrum-bin and
--baseline-bin on the command line; the baseline system, the A B | B A
rounds and their pooling, up to the results written (nothing is started:
the measurement itself is replaced)."""

import contextlib
import importlib.machinery
import importlib.util
import io
import json
import sys
import tempfile
import types
import unittest
from pathlib import Path
from unittest import mock

sys.dont_write_bytecode = True
from . import helpers  # noqa: E402

import common  # noqa: E402
import overhead  # noqa: E402
import systems  # noqa: E402


def load_bench_run():
    """bench/run (a script without .py) as a module, for its parse_args."""
    path = str(Path(helpers.BENCH_DIR) / "run")
    loader = importlib.machinery.SourceFileLoader("bench_run", path)
    spec = importlib.util.spec_from_loader("bench_run", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


BENCH_RUN = load_bench_run()


def parse(*argv):
    return BENCH_RUN.parse_args(["overhead", *argv])


class ArgumentsTest(unittest.TestCase):
    def test_defaults(self):
        a = parse()
        self.assertIsNone(a.fulcrum_bin)
        self.assertIsNone(a.baseline_bin)
        self.assertIsNone(a.rounds)
        self.assertFalse(a.no_build)

    def test_binaries_and_rounds(self):
        a = parse("--quick", "--fulcrum-bin", "/opt/new/fulcrum", "--baseline-bin",
                  "/opt/old/fulcrum", "--rounds", "4", "--no-build")
        self.assertEqual((a.fulcrum_bin, a.baseline_bin, a.rounds, a.quick, a.no_build),
                         ("/opt/new/fulcrum", "/opt/old/fulcrum", 4, True, True))
        self.assertEqual(common.prebuilt_binaries(a),
                         {"fulcrum": Path("/opt/new/fulcrum"),
                          "fulcrum-baseline": Path("/opt/old/fulcrum")})

    def test_fulcrum_bin_is_accepted_for_every_suite(self):
        for suite in ("websockets", "quality", "capacity", "all"):
            a = BENCH_RUN.parse_args([suite, "--fulcrum-bin", "/x"])
            self.assertEqual(a.fulcrum_bin, "/x")

    def test_help_documents_both_flags(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), self.assertRaises(SystemExit):
            BENCH_RUN.parse_args(["--help"])
        text = " ".join(out.getvalue().split())
        self.assertIn("--fulcrum-bin PATH", text)
        self.assertIn("--baseline-bin PATH", text)
        self.assertIn("fulcrum-baseline", text)
        self.assertIn("--rounds N", text)


class SystemsAndRoundsTest(unittest.TestCase):
    def test_baseline_goes_right_after_fulcrum(self):
        self.assertEqual(overhead.resolve_systems(parse()),
                         ["direct", "nginx", "haproxy", "fulcrum"])
        self.assertEqual(overhead.resolve_systems(parse("--baseline-bin", "/b")),
                         ["direct", "nginx", "haproxy", "fulcrum", "fulcrum-baseline"])
        self.assertEqual(overhead.resolve_systems(parse("--baseline-bin", "/b", "--systems",
                                                        "fulcrum,direct")),
                         ["fulcrum", "fulcrum-baseline", "direct"])
        self.assertEqual(overhead.resolve_systems(parse("--baseline-bin", "/b", "--systems",
                                                        "direct")),
                         ["direct", "fulcrum-baseline"])
        self.assertEqual(overhead.resolve_systems(parse("--baseline-bin", "/b", "--systems",
                                                        "fulcrum-baseline,fulcrum")),
                         ["fulcrum-baseline", "fulcrum"])

    def test_bad_systems(self):
        for argv in (("--systems", "fulcrum,envoy"), ("--systems", "fulcrum-baseline"),
                     ("--systems", "nginx,nginx")):
            with self.subTest(argv=argv), self.assertRaises(common.BenchError):
                overhead.resolve_systems(parse(*argv))

    def test_rounds(self):
        self.assertEqual(overhead.resolve_rounds(parse()), 1)
        self.assertEqual(overhead.resolve_rounds(parse("--baseline-bin", "/b")), 2)
        self.assertEqual(overhead.resolve_rounds(parse("--baseline-bin", "/b", "--rounds", "1")),
                         1)
        self.assertEqual(overhead.resolve_rounds(parse("--rounds", "3")), 3)
        with self.assertRaises(common.BenchError):
            overhead.resolve_rounds(parse("--rounds", "0"))

    def test_schedule_reverses_every_other_round(self):
        self.assertEqual(overhead.schedule(["a", "b"], 1), [(0, "a"), (0, "b")])
        self.assertEqual(overhead.schedule(["a", "b", "c"], 3),
                         [(0, "a"), (0, "b"), (0, "c"), (1, "c"), (1, "b"), (1, "a"),
                          (2, "a"), (2, "b"), (2, "c")])


class MakeProxyTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.dir = Path(self.tmp.name)

    def ctx(self, *argv):
        args = parse("--proxy-cpu", "1", "--load-cpu", "0", *argv)
        return overhead.Ctx(args=args, tmp=self.dir, bins=Path("/release"), registry=None,
                            backend_port=20005, exes=common.prebuilt_binaries(args))

    def test_direct_has_no_proxy(self):
        self.assertIsNone(overhead.make_proxy(self.ctx(), "direct"))

    def test_proxies_from_systems_py(self):
        ctx = self.ctx()
        for name, cls in (("nginx", systems.Nginx), ("haproxy", systems.HAProxy),
                          ("fulcrum", systems.Fulcrum)):
            s = overhead.make_proxy(ctx, name)
            self.assertIs(type(s), cls)
            self.assertEqual((s.name, s.cpu, s.failover, s.websocket, s.ready_path),
                             (name, 1, False, False, "/fast"))
            self.assertEqual(s.dir, self.dir / name)
            self.assertEqual([b.port for b in s.pools[0].backends], [20005])
            self.assertIn("127.0.0.1:20005", s._render())
        self.assertEqual(overhead.make_proxy(ctx, "fulcrum").exe, Path("/release/fulcrum"))

    def test_fulcrum_bin_and_the_baseline_share_the_config(self):
        ctx = self.ctx("--fulcrum-bin", "/new/fulcrum", "--baseline-bin", "/old/fulcrum")
        f = overhead.make_proxy(ctx, "fulcrum")
        b = overhead.make_proxy(ctx, "fulcrum-baseline")
        self.assertEqual((f.exe, b.exe), (Path("/new/fulcrum"), Path("/old/fulcrum")))
        self.assertEqual((f.name, b.name), ("fulcrum", "fulcrum-baseline"))
        self.assertEqual((b.cpu, b.failover, b.ready_path), (f.cpu, f.failover, f.ready_path))

        def normalised(s):
            return (s._render().replace(str(s.port), "PORT").replace(str(s.admin), "ADMIN")
                    .replace(str(s.dir), "DIR"))
        self.assertEqual(normalised(f), normalised(b))
        self.assertNotEqual(f.dir, b.dir)

    def test_baseline_observe_off_turns_off_metrics_and_the_access_log_only_there(self):
        same = "/release/fulcrum"
        ctx = self.ctx("--fulcrum-bin", same, "--baseline-bin", same, "--baseline-observe", "off")
        f = overhead.make_proxy(ctx, "fulcrum")
        b = overhead.make_proxy(ctx, "fulcrum-baseline")
        self.assertEqual(f.exe, b.exe)
        on = f._render()
        self.assertIn(f"access_log:\n  path: {f.dir}/access.log\n", on)
        self.assertNotIn("metrics", on)  # on by default
        off = b._render()
        self.assertIn("metrics:\n  enabled: false\n", off)
        self.assertIn('access_log:\n  path: "off"\n', off)
        self.assertEqual(off.count("access_log:"), 1)

    def test_fulcrum_store_redis_only_for_fulcrum(self):
        same = "/release/fulcrum"
        ctx = self.ctx("--fulcrum-bin", same, "--baseline-bin", same, "--fulcrum-store", "redis")
        ctx.redis_url = "redis://127.0.0.1:6390"
        f = overhead.make_proxy(ctx, "fulcrum")
        b = overhead.make_proxy(ctx, "fulcrum-baseline")
        self.assertIn("  store: redis\n  redis_url: redis://127.0.0.1:6390\n", f._render())
        self.assertNotIn("redis", b._render())
        self.assertEqual(overhead.command_line({"quick": False, "binaries": {}, "rounds": 1,
                                                "fulcrum_store": "redis"}).count(
            "--fulcrum-store redis"), 1)

    def test_without_the_option_fulcrum_logs_no_access_like_nginx(self):
        ctx = self.ctx()
        f = overhead.make_proxy(ctx, "fulcrum")
        self.assertIn('access_log:\n  path: "off"\n', f._render())
        self.assertIn("access_log off;", overhead.make_proxy(ctx, "nginx")._render())


def rec(system, requests, duration, cpu, p50, p99, other=1.0, errors=0, **kw):
    r = {"suite": "overhead", "system": system, "requests": requests, "duration_s": duration,
         "rps": round(requests / duration, 1), "p50_ms": p50, "p99_ms": p99, "p75_ms": p50,
         "p90_ms": p99, "cpu_us_per_req": cpu, "errors": errors,
         "backend_cpu_us_per_req": 10.0, "wrk_cpu_us_per_req": 5.0, "other_cpu_pct": other,
         "proxy_cpu_s": None if cpu is None else round(cpu * requests / 1e6, 2),
         "proxy_pids": [1], "socket_errors": {"connect": 0, "read": errors, "write": 0,
                                              "timeout": 0},
         "non_2xx_3xx": 0}
    r.update(kw)
    return r


class CombineTest(unittest.TestCase):
    def test_one_round_is_left_as_it_is(self):
        r = rec("nginx", 1000, 5.0, 12.0, 0.5, 1.0)
        self.assertIs(overhead.combine([r]), r)

    def test_rounds_are_pooled(self):
        a = rec("fulcrum", 100_000, 5.0, 10.0, 0.4, 1.0, other=2.0, errors=1)
        b = rec("fulcrum", 300_000, 5.0, 14.0, 0.8, 2.0, other=4.0, errors=2)
        c = overhead.combine([a, b])
        self.assertEqual((c["system"], c["requests"], c["duration_s"], c["rps"]),
                         ("fulcrum", 400_000, 10.0, 40_000.0))
        self.assertEqual(c["cpu_us_per_req"], 13.0)  # (10 x 1 + 14 x 3) / 4
        self.assertEqual(c["p50_ms"], 0.7)
        self.assertEqual(c["p99_ms"], 1.75)
        self.assertEqual(c["backend_cpu_us_per_req"], 10.0)
        self.assertEqual(c["other_cpu_pct"], 3.0)  # weighted by time
        self.assertEqual(c["errors"], 3)
        self.assertEqual(c["socket_errors"]["read"], 3)
        self.assertEqual(c["proxy_cpu_s"], 5.2)
        self.assertEqual([x["cpu_us_per_req"] for x in c["rounds"]], [10.0, 14.0])
        self.assertIn("percentiles", c)

    def test_direct_has_no_proxy_cpu(self):
        c = overhead.combine([rec("direct", 10, 1.0, None, 0.1, 0.2),
                              rec("direct", 30, 1.0, None, 0.1, 0.2)])
        self.assertIsNone(c["cpu_us_per_req"])
        self.assertIsNone(c["proxy_cpu_s"])


class PairedTest(unittest.TestCase):
    """The paired statistic: each round's difference, their median and a
    seeded bootstrap interval around it."""

    @staticmethod
    def rounds(system, cpus):
        recs = [rec(system, 1000, 1.0, c, 0.1, 0.2) for c in cpus]
        return overhead.combine(recs)

    def test_median_of_the_round_differences(self):
        a = self.rounds("fulcrum", [30.0, 31.0, 29.0, 50.0, 30.5])
        b = self.rounds("fulcrum-baseline", [29.0, 29.5, 28.0, 27.0, 29.5])
        p = overhead.paired(a, b)
        self.assertEqual(p["diffs_us_per_req"], [1.0, 1.5, 1.0, 23.0, 1.0])
        # the one noisy round moves the pooled difference, not the median
        self.assertEqual(p["median_diff_us_per_req"], 1.0)
        self.assertEqual(p["pooled_diff_us_per_req"], 5.5)
        self.assertEqual(p["rounds"], 5)
        lo, hi = p["ci95_us_per_req"]
        self.assertTrue(1.0 <= lo <= p["median_diff_us_per_req"] <= hi, p)
        self.assertEqual(p["bootstrap"]["seed"], overhead.BOOTSTRAP_SEED)

    def test_the_interval_is_seeded_and_covers_the_median(self):
        xs = [0.3 * i - 2.0 for i in range(40)]
        self.assertEqual(overhead.bootstrap_median_ci(xs, 2000, 7),
                         overhead.bootstrap_median_ci(xs, 2000, 7))
        lo, hi = overhead.bootstrap_median_ci(xs, 2000, 7)
        med = sorted(xs)[19] / 2 + sorted(xs)[20] / 2
        self.assertTrue(lo < med < hi, (lo, med, hi))
        self.assertTrue(min(xs) < lo and hi < max(xs), (lo, hi))
        # identical differences: no spread at all
        self.assertEqual(overhead.bootstrap_median_ci([1.5] * 9, 500, 1), (1.5, 1.5))

    def test_none_without_rounds_or_a_baseline(self):
        one = rec("fulcrum", 1000, 1.0, 30.0, 0.1, 0.2)
        base = self.rounds("fulcrum-baseline", [29.0, 28.0])
        self.assertIsNone(overhead.paired(one, base))
        self.assertIsNone(overhead.paired_of([self.rounds("fulcrum", [1.0, 2.0])]))
        both = [self.rounds("fulcrum", [31.0, 30.0]), base]
        self.assertEqual(overhead.paired_of(both)["median_diff_us_per_req"], 2.0)


class MeasureAllTest(unittest.TestCase):
    def setUp(self):
        for attr, new in (("log", lambda *a: None),
                          ("time", types.SimpleNamespace(sleep=lambda s: None))):
            p = mock.patch.object(overhead, attr, new)
            p.start()
            self.addCleanup(p.stop)
        self.calls = []

    def fake_measure(self, fail=()):
        def measure(ctx, system, backend, warmup_s, duration_s):
            self.calls.append(system)
            n = len(self.calls)
            if (system, self.calls.count(system)) in fail:
                raise common.SystemUnavailable(f"{system} died\nlog tail")
            return rec(system, 1000 * n, 1.0, float(n), 0.1, 0.2)
        return measure

    def test_abba_and_records_in_system_order(self):
        ctx = types.SimpleNamespace(args=parse("--baseline-bin", "/b"))
        order = ["direct", "fulcrum", "fulcrum-baseline"]
        with mock.patch.object(overhead, "measure", self.fake_measure()):
            recs = overhead.measure_all(ctx, order, 2, None, 1.0, 5.0)
        self.assertEqual(self.calls, order + order[::-1])
        self.assertEqual([r["system"] for r in recs], order)
        base = recs[2]
        self.assertEqual(len(base["rounds"]), 2)
        self.assertEqual(base["requests"], 3000 + 4000)  # the 3rd and 4th runs

    def test_a_failed_round_skips_the_system(self):
        ctx = types.SimpleNamespace(args=parse())
        with mock.patch.object(overhead, "measure",
                               self.fake_measure(fail={("nginx", 2)})):
            recs = overhead.measure_all(ctx, ["nginx", "fulcrum"], 3, None, 1.0, 5.0)
        self.assertEqual(self.calls, ["nginx", "fulcrum", "fulcrum", "nginx", "fulcrum"])
        self.assertIsNone(recs[0]["requests"])
        self.assertEqual(recs[0]["note"], "nginx died")
        self.assertEqual(len(recs[1]["rounds"]), 3)


MACHINE = {"date_utc": "d", "fulcrum_git_rev": "r", "cpu_model": "c", "nproc": 2,
           "mem_gib": 1, "kernel": "k", "nginx": "n", "haproxy": "h", "wrk": "w",
           "rustc": "rc", "background_cpu_busy_pct": 0, "cargo_build": "ok",
           "fulcrum_binary_sha256": "ab" * 32, "fulcrum-baseline_binary_sha256": "cd" * 32,
           "fulcrum_binary_mtime_utc": "t1", "fulcrum-baseline_binary_mtime_utc": "t2"}


class RunWithBaselineTest(unittest.TestCase):
    """run() end to end with the processes replaced: the baseline is measured
    like the others and reported in the JSON and the table."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.dir = Path(self.tmp.name)
        bins = self.dir / "release"
        bins.mkdir()
        (bins / "fulcrum-mock").write_text("")
        self.built = []

        def build_and_describe(packages, no_build, prebuilt=None):
            self.built.append((list(packages), no_build, dict(prebuilt or {})))
            return bins, dict(MACHINE)

        def start_backend(ctx):
            ctx.backend_port = 20009
            return object()

        self.started = []

        def measure(ctx, system, backend, warmup_s, duration_s):
            s = overhead.make_proxy(ctx, system)
            self.started.append((system, s and s.exe if isinstance(s, systems.Fulcrum)
                                 else None, warmup_s, duration_s))
            cpu = {"direct": None, "nginx": 12.0, "haproxy": 11.0, "fulcrum": 9.0,
                   "fulcrum-baseline": 10.0}[system]
            return rec(system, 50_000, 5.0, cpu, 0.5, 1.5)

        for attr, new in (("ensure_tools", lambda *a, **k: None),
                          ("build_and_describe", build_and_describe),
                          ("note_background", lambda m: None),
                          ("start_backend", start_backend), ("measure", measure),
                          ("log", lambda *a: None),
                          ("time", types.SimpleNamespace(sleep=lambda s: None))):
            p = mock.patch.object(overhead, attr, new)
            p.start()
            self.addCleanup(p.stop)

    def run_overhead(self, *argv):
        args = parse("--quick", "--out-dir", str(self.dir / "out"), *argv)
        with contextlib.redirect_stdout(io.StringIO()) as out:
            rc = overhead.run(args)
        doc = json.loads((self.dir / "out" / "overhead.json").read_text())
        return rc, doc, out.getvalue()

    def test_baseline_in_results(self):
        rc, doc, md = self.run_overhead("--fulcrum-bin", "/new/fulcrum",
                                        "--baseline-bin", "/old/fulcrum")
        self.assertEqual(rc, 0)
        # fulcrum is not built (prebuilt); the mock still is
        self.assertEqual(self.built, [(["fulcrum", "fulcrum-mock"], False,
                                       {"fulcrum": Path("/new/fulcrum"),
                                        "fulcrum-baseline": Path("/old/fulcrum")})])
        names = ["direct", "nginx", "haproxy", "fulcrum", "fulcrum-baseline"]
        self.assertEqual([r["system"] for r in doc["records"]], names)
        self.assertEqual([s for s, *_ in self.started], names + names[::-1])
        exes = {s: exe for s, exe, *_ in self.started if exe}
        self.assertEqual(exes, {"fulcrum": Path("/new/fulcrum"),
                                "fulcrum-baseline": Path("/old/fulcrum")})
        self.assertTrue(all(w == 1.0 and d == 5.0 for *_, w, d in self.started))
        base = doc["records"][4]
        self.assertEqual((base["requests"], base["cpu_us_per_req"], len(base["rounds"])),
                         (100_000, 10.0, 2))
        prm = doc["params"]
        self.assertEqual(prm["systems"], names)
        self.assertEqual(prm["rounds"], 2)
        self.assertEqual(prm["binaries"], {"fulcrum": "/new/fulcrum",
                                           "fulcrum-baseline": "/old/fulcrum"})
        for fragment in (
                "Generated by `bench/run overhead --quick --fulcrum-bin /new/fulcrum "
                "--baseline-bin /old/fulcrum`",
                "| Fulcrum baseline | 100,000 | 10,000 | 0.500 | 1.500 | 10.0 | 10.0 | 0 | 1 |",
                "| Fulcrum | 100,000 | 10,000 | 0.500 | 1.500 | 9.0 |",
                "2 rounds, the order reversed every other round",
                "Fulcrum baseline binary: `/old/fulcrum` (sha256 cdcdcdcdcdcdcdcd",
                "* Fulcrum baseline, proxy CPU (µs/req) per round: 10.0, 10.0",
                "**Paired by round** (Fulcrum minus Fulcrum baseline, proxy CPU per "
                "request, the two measured one after the other in each of 2 rounds): "
                "median -1.00 µs/req, 95 % CI -1.00 to -1.00"):
            self.assertIn(fragment, md)
        self.assertEqual(doc["paired"]["median_diff_us_per_req"], -1.0)
        self.assertEqual(doc["paired"]["diffs_us_per_req"], [-1.0, -1.0])
        self.assertTrue((self.dir / "out" / "overhead.md").exists())

    def test_without_baseline_one_round_and_fulcrum_built(self):
        rc, doc, md = self.run_overhead("--no-build")
        self.assertEqual(rc, 0)
        self.assertEqual(self.built, [(["fulcrum", "fulcrum-mock"], True, {})])
        self.assertEqual([r["system"] for r in doc["records"]],
                         ["direct", "nginx", "haproxy", "fulcrum"])
        self.assertEqual(len(self.started), 4)
        self.assertNotIn("rounds", doc["records"][3])
        self.assertEqual(doc["params"]["rounds"], 1)
        self.assertEqual(doc["params"]["binaries"], {})
        self.assertEqual(self.started[3][1], Path(self.dir / "release" / "fulcrum"))
        self.assertIn("Generated by `bench/run overhead --quick`", md)
        self.assertNotIn("rounds", md)
        self.assertNotIn("paired", doc)
        self.assertNotIn("Paired", md)


if __name__ == "__main__":
    unittest.main()
