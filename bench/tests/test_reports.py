"""overhead.py's Markdown and charts.py (case picking, paths; the PNGs are
drawn into a temporary directory only when matplotlib is already installed,
never installing it)."""

import importlib.util
import sys
import tempfile
import unittest
from pathlib import Path

sys.dont_write_bytecode = True
from . import helpers  # noqa: E402,F401

import charts  # noqa: E402
import common  # noqa: E402
import overhead  # noqa: E402

HAVE_MPL = importlib.util.find_spec("matplotlib") is not None


class OverheadMarkdownTest(unittest.TestCase):
    def test_table(self):
        m = {"date_utc": "d", "fulcrum_git_rev": "r", "cpu_model": "c", "nproc": 2,
             "mem_gib": 1, "kernel": "k", "nginx": "n", "haproxy": "h", "wrk": "w",
             "rustc": "rc", "background_cpu_busy_pct": 0, "cargo_build": "ok"}
        prm = {"quick": False, "connections": 64, "warmup_s": 2.0, "duration_s": 15.0,
               "proxy_cpu": 0, "load_cpu": 1, "backend": "fulcrum-mock --threads 1"}
        recs = [
            {"system": "direct", "requests": 1234567, "rps": 82304.4, "p50_ms": 0.7,
             "p99_ms": 1.5, "cpu_us_per_req": None, "backend_cpu_us_per_req": 9.87,
             "errors": 0, "other_cpu_pct": 3.2},
            {"system": "fulcrum", "requests": 1000, "rps": 66.6, "p50_ms": 0.12345,
             "p99_ms": 2.0, "cpu_us_per_req": 11.04, "backend_cpu_us_per_req": 10.0,
             "errors": 2},
            overhead.empty_record("haproxy", "haproxy missing"),
        ]
        md = overhead.markdown({"machine": m, "params": prm, "records": recs})
        self.assertIn("`bench/run overhead`", md)
        self.assertIn("| backend direct (no proxy) | 1,234,567 | 82,304 | 0.700 | 1.500 | – | "
                      "9.9 | 0 | 3 |", md)
        self.assertIn("| Fulcrum | 1,000 | 67 | 0.123 | 2.000 | 11.0 | 10.0 | 2 | – |", md)
        self.assertIn("| HAProxy | not measured: haproxy missing |", md)
        self.assertIn("1 thread, 64 keep-alive connections", md)


def kill_series(victim="c"):
    recs = [(i * 0.01, 10.0 + (i % 7), 200 if i != 300 else 0, "abc"[i % 3])
            for i in range(1000)]
    return {"records": recs, "kill": 2.5, "restart": 5.5, "victim": victim}


class ChartsPureTest(unittest.TestCase):
    def test_pick_kill_cases(self):
        series = {"weighted/fulcrum/random": {}, "kill/nginx/round_robin": {"n": 1},
                  "kill/fulcrum/least_connections": {"f": 1},
                  "kill/fulcrum/response_time": {"f": 2}, "kill/haproxy/round_robin": {"h": 1}}
        picked = charts._pick_kill_cases(series)
        self.assertEqual([(s, a) for s, a, _ in picked],
                         [("fulcrum", "least_connections"), ("nginx", "round_robin"),
                          ("haproxy", "round_robin")])
        self.assertEqual(picked[0][2], {"f": 1})

    def test_paths(self):
        self.assertEqual(charts._rel(common.REPO_ROOT / "docs" / "x.png"), "docs/x.png")
        self.assertEqual(charts._rel(Path("/elsewhere/x.png")), "/elsewhere/x.png")
        with tempfile.TemporaryDirectory() as d:
            # results outside bench/results: the charts go next to them
            self.assertEqual(charts.img_dir(Path(d)), Path(d))


@unittest.skipUnless(HAVE_MPL, "matplotlib not installed (charts are optional)")
class ChartsDrawTest(unittest.TestCase):
    def test_quality_and_capacity_charts(self):
        recs = [
            {"scenario": "kill", "system": "fulcrum", "algorithm": "least_connections",
             "algorithm_generic": "least_connections", "p99_ms": 20.0, "errors": 0,
             "recover_s": 0.5},
            {"scenario": "weighted", "system": "fulcrum", "algorithm": "weighted_round_robin",
             "shares": {"a": 0.5, "b": 0.33, "c": 0.17}, "max_share_dev": 0.4,
             "expected_shares": {"a": 0.5, "b": 0.3333, "c": 0.1667}},
            {"scenario": "degraded", "system": "nginx", "algorithm": "least_conn",
             "p99_ms": 210.0, "p999_ms": 230.0, "rps": 900.0},
        ]
        with tempfile.TemporaryDirectory() as d:
            out = Path(d)
            md = charts.quality_charts({"records": recs},
                                       {"kill/fulcrum/least_connections": kill_series()}, out)
            for name in ("quality-kill.png", "quality-weighted-shares.png",
                         "quality-degraded-p99.png"):
                self.assertTrue((out / name).stat().st_size > 1000, name)
                self.assertIn(name, md)
            self.assertFalse((out / "quality-heterogeneous-p99.png").exists())  # no rows
            self.assertTrue(md.startswith("## Charts"))
            cap = {"params": {"slo_ms": 800.0, "unloaded_turn_p50_ms": 390.0},
                   "records": [{"system": "fulcrum", "instances_per_stage": 1, "devices": 40},
                               {"system": "fulcrum", "instances_per_stage": 4, "devices": 150}],
                   "curves": {"fulcrum/1": [(40, 700.0), (45, 900.0)],
                              "fulcrum/4": [(150, 790.0), (168, 1200.0)]}}
            md = charts.capacity_charts(cap, out)
            self.assertIn("capacity-devices-p95.png", md)
            self.assertTrue((out / "capacity-devices-p95.png").stat().st_size > 1000)
            self.assertEqual(charts.capacity_charts(dict(cap, curves={}), out), "")


if __name__ == "__main__":
    unittest.main()
