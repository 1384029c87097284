"""capacity.py: the fleet's proxy (--fulcrum-bin), the SLO search (with a
fake load level), one real load level against a tiny loopback server (think
time shortened), and the Markdown."""

import math
import sys
import types
import unittest
from pathlib import Path
from unittest import mock

sys.dont_write_bytecode = True
from . import helpers  # noqa: E402

import capacity  # noqa: E402


class FakeFleet:
    port = 4242

    def __init__(self):
        self.checks = 0

    def check_alive(self):
        self.checks += 1


class StartFleetTest(unittest.TestCase):
    """start_fleet: the proxy from systems.SYSTEMS, Fulcrum's binary from
    --fulcrum-bin when given."""

    def start(self, system, **args):
        made = []

        class FakeProxy:
            def __init__(self, registry, workdir, bins, cpu, pools, **kw):
                self.pools, self.kw = pools, kw
                made.append(self)

            def start(self):
                return self

        fake_systems = {"fulcrum": FakeProxy, "nginx": FakeProxy, "haproxy": FakeProxy}
        ns = types.SimpleNamespace(load_cpu=1, proxy_cpu=0, **args)
        with mock.patch.object(capacity, "start_mock", lambda *a, **k: object()), \
                mock.patch.object(capacity, "SYSTEMS", fake_systems):
            capacity.start_fleet(None, Path("/tmp/x"), Path("/release"), ns, system, 1, "t")
        return made[0]

    def test_fulcrum_bin(self):
        self.assertIsNone(self.start("fulcrum", fulcrum_bin=None).kw["exe"])
        self.assertEqual(self.start("fulcrum", fulcrum_bin="/opt/f").kw["exe"], Path("/opt/f"))
        self.assertNotIn("exe", self.start("nginx", fulcrum_bin="/opt/f").kw)
        s = self.start("haproxy")
        self.assertEqual([p.name for p in s.pools], ["asr", "llm", "tts"])
        self.assertTrue(s.kw["streaming"])


class SearchTest(unittest.TestCase):
    """``p95(n)`` gives the turn p95 (ms) at n devices; SLO 800 ms."""

    def setUp(self):
        p = mock.patch.object(capacity, "log", lambda *a: None)
        p.start()
        self.addCleanup(p.stop)
        self.calls = []

    def search(self, p95, start, max_probes=9, slo=800.0):
        def run_level(port, n, warm_s, measure_s, seed=1, events=capacity.LLM_EVENTS):
            self.assertEqual((port, warm_s, measure_s, seed, events),
                             (4242, 3.0, 8.0, n, capacity.LLM_EVENTS))
            self.calls.append(n)
            return {"devices": n, "turns": 10 * n, "failed_turns": 0, "p50_ms": 1.0,
                    "p95_ms": p95(n), "turns_per_s": n / 3}

        # Guard against a search that never ends: its loops test len(probes)
        # on every turn, so a module-level len() that gives up after many
        # calls turns a hang into an error.
        spins = [0]

        def guarded_len(x):
            spins[0] += 1
            if spins[0] > 10_000:
                raise RuntimeError("capacity.search does not terminate")
            return len(x)

        fleet = FakeFleet()
        with mock.patch.object(capacity, "run_level", run_level), \
                mock.patch.object(capacity, "len", guarded_len, create=True):
            best, probes = capacity.search(fleet, slo, start, 3.0, 8.0, "test", max_probes)
        self.assertEqual(fleet.checks, len(self.calls))  # the proxy is checked after each level
        self.assertEqual(len(self.calls), len(set(self.calls)), "a level was measured twice")
        self.assertLessEqual(len(self.calls), max_probes)
        self.assertEqual([p["devices"] for p in probes], sorted(self.calls))
        return best, probes

    def test_observe_is_read_after_every_level(self):
        seen = []

        def observe():
            seen.append(len(self.calls))
            return {"learned_limits": {"llm": [len(self.calls)]}}

        def run_level(port, n, warm_s, measure_s, seed=1, events=capacity.LLM_EVENTS):
            self.assertEqual(events, (1, 19))
            self.calls.append(n)
            return {"devices": n, "turns": 1, "failed_turns": 0, "p50_ms": 1.0,
                    "p95_ms": 10.0 * n, "turns_per_s": 1.0}
        with mock.patch.object(capacity, "run_level", run_level):
            _, probes = capacity.search(FakeFleet(), 800.0, 70, 3.0, 8.0, "t", 20, observe,
                                        (1, 19))
        self.assertEqual(seen, list(range(1, len(self.calls) + 1)))
        by_n = {p["devices"]: p for p in probes}
        for i, n in enumerate(self.calls):
            self.assertEqual(by_n[n]["learned_limits"], {"llm": [i + 1]})

    def test_learned_limits_from_the_admin_api(self):
        doc = [{"name": "llm", "instances": [{"learned_limit": 4}, {"learned_limit": None}]}]
        with mock.patch.object(capacity, "http_json", return_value=(200, doc)) as h:
            self.assertEqual(capacity.learned_limits(9), {"llm": [4, None]})
        h.assert_called_once_with("GET", 9, "/api/v1/pools")
        with mock.patch.object(capacity, "http_json", return_value=(503, None)):
            with self.assertRaises(capacity.BenchError):
                capacity.learned_limits(9)

    def test_steps_up_then_bisects_to_the_knee(self):
        best, _ = self.search(lambda n: 10.0 * n, start=40, max_probes=20)  # passes below 80
        self.assertEqual(best, 79)
        # ~12 % steps from 40 until the first failure, then bisection
        self.assertEqual(self.calls[:7], [40, 45, 50, 56, 63, 71, 80])
        self.assertEqual(self.calls[7:], [75, 77, 78, 79])

    def test_probe_budget(self):
        best, probes = self.search(lambda n: 10.0 * n, start=40, max_probes=9)
        self.assertEqual(len(probes), 9)
        self.assertEqual(best, 77)  # bisection cut short: 77 passed, 80 failed

    def test_steps_down_when_the_start_fails(self):
        best, _ = self.search(lambda n: 10.0 * n, start=200, max_probes=30)
        self.assertEqual(best, 79)
        self.assertEqual(self.calls[:3], [200, 179, 160])

    def test_slo_is_strict(self):
        best, _ = self.search(lambda n: 800.0 if n >= 10 else 100.0, start=5, max_probes=30)
        self.assertEqual(best, 9)  # p95 == SLO is over it

    def test_small_counts_step_by_one(self):
        best, _ = self.search(lambda n: 10.0 * n, start=2, max_probes=30, slo=35.0)
        self.assertEqual(best, 3)
        self.assertEqual(self.calls[:3], [2, 3, 4])

    def test_everything_fails_from_two(self):
        best, probes = self.search(lambda n: math.inf, start=2, max_probes=9)
        self.assertIsNone(best)
        self.assertEqual(self.calls, [2, 1])  # down to one device, then stop

    def test_everything_fails_within_the_budget(self):
        best, probes = self.search(lambda n: math.inf, start=100, max_probes=5)
        self.assertIsNone(best)
        self.assertEqual(self.calls, [100, 89, 79, 71, 63])

    # Stepping down always makes progress (round(4 / 1.12) is 4 again: the
    # search used to spin on it forever).
    def test_everything_fails_steps_down_to_one(self):
        best, probes = self.search(lambda n: math.inf, start=10, max_probes=20)
        self.assertIsNone(best)
        self.assertEqual(self.calls[-3:], [3, 2, 1])

    def test_everything_passes_within_the_budget(self):
        best, probes = self.search(lambda n: 1.0, start=10, max_probes=4)
        self.assertEqual(self.calls, [10, 11, 12, 13])
        self.assertEqual(best, 13)  # the largest level tried

    def test_not_monotonic_near_the_knee(self):
        # 45 fails once (noise) although 46..79 would pass: the answer stays
        # below the smallest failing count
        best, _ = self.search(lambda n: 900.0 if n == 45 or n >= 80 else 100.0, start=40,
                              max_probes=20)
        self.assertEqual(best, 44)

    def test_start_below_one(self):
        best, _ = self.search(lambda n: 10.0 * n, start=0, max_probes=20, slo=25.0)
        self.assertEqual(self.calls[0], 1)
        self.assertEqual(best, 2)


class RunLevelTest(unittest.TestCase):
    """One real load level: devices loop ASR POST -> LLM stream -> TTS POST
    against a local server; the think time is cut to 20-40 ms."""

    def run_level(self, status, **kw):
        with helpers.HttpServer(instances=("x",), status=status) as srv, \
                mock.patch.object(capacity, "THINK_S", (0.02, 0.04)):
            r = capacity.run_level(srv.port, 3, 0.1, 0.5, seed=7, **kw)
            reqs = list(srv.requests)
        return r, reqs

    def test_successful_turns(self):
        r, reqs = self.run_level(200)
        self.assertEqual(r["devices"], 3)
        self.assertGreater(r["turns"], 5)
        self.assertEqual(r["failed_turns"], 0)
        self.assertLess(r["p95_ms"], 1000.0)  # finite; loopback turns take a few ms
        self.assertLessEqual(r["p50_ms"], r["p95_ms"])
        self.assertEqual(r["turns_per_s"], round(r["turns"] / 0.5, 2))
        # every turn is the three stages in order, on each device's connection
        by_conn = {}
        for conn, method, path, n, hdrs in reqs:
            by_conn.setdefault(conn, []).append((method, path, n))
        self.assertEqual(len(by_conn), 3)  # one keep-alive connection per device
        for seq in by_conn.values():
            self.assertEqual(len(seq) % 3, 0)
            for i in range(0, len(seq), 3):
                self.assertEqual(seq[i], ("POST", "/asr/echo", len(capacity.ASR_BODY)))
                self.assertEqual(seq[i + 1], ("GET", capacity.LLM_PATH.format(events=10), 0))
                self.assertEqual(seq[i + 2], ("POST", "/tts/synthesize", len(capacity.TTS_BODY)))
        self.assertEqual(len(capacity.ASR_BODY), 16384)

    def test_llm_answers_of_varying_length(self):
        _r, reqs = self.run_level(200, events=(1, 3))
        llm = [q[2] for q in reqs if q[2].startswith("/llm/")]
        self.assertGreater(len(llm), 10)
        lengths = {p.split("events=")[1].split("&")[0] for p in llm}
        self.assertEqual(lengths, {"1", "2", "3"})

    def test_llm_events_option(self):
        self.assertEqual(capacity.parse_events("10"), (10, 10))
        self.assertEqual(capacity.parse_events(" 1-19 "), (1, 19))
        for bad in ("", "x", "0", "5-2", "1-x", "-3", "10-"):
            with self.assertRaises(capacity.BenchError, msg=bad):
                capacity.parse_events(bad)

    def test_llm_capacities_option(self):
        self.assertIsNone(capacity.parse_capacities(None, [1, 4]))
        self.assertEqual(capacity.parse_capacities("2,4,6,4", [4]), [2, 4, 6, 4])
        for bad, stages in (("2,4", [4]), ("2,4,6,4", [1, 4]), ("0,4,4,4", [4]),
                            ("a,b", [2]), ("", [4])):
            with self.assertRaises(capacity.BenchError, msg=bad):
                capacity.parse_capacities(bad, stages)

    def test_failed_turns_count_as_infinitely_slow(self):
        r, reqs = self.run_level(500)
        self.assertGreater(r["turns"], 0)
        self.assertEqual(r["failed_turns"], r["turns"])
        self.assertEqual(r["p95_ms"], math.inf)
        self.assertIsNone(r["p50_ms"])
        # a failing stage ends the turn: only the ASR upload was sent
        self.assertEqual({q[2] for q in reqs}, {"/asr/echo"})


class MarkdownTest(unittest.TestCase):
    def test_table_and_ratio(self):
        m = {"date_utc": "d", "fulcrum_git_rev": "r", "cpu_model": "c", "nproc": 2,
             "mem_gib": 1, "kernel": "k", "nginx": "n", "haproxy": "h",
             "background_cpu_busy_pct": 0}
        recs = [
            {"system": "fulcrum", "instances_per_stage": 1, "algorithm": "lc", "devices": 40,
             "p95_ms": 700.0, "turns_per_s": 12.0, "probes": [
                 {"devices": 40, "p95_ms": 700.0}, {"devices": 45, "p95_ms": None}]},
            {"system": "fulcrum", "instances_per_stage": 4, "algorithm": "lc", "devices": 150,
             "p95_ms": 790.0, "turns_per_s": 45.0, "ratio": 3.75,
             "probes": [{"devices": 150, "p95_ms": 790.0}]},
            {"system": "nginx", "instances_per_stage": 4, "algorithm": "least_conn",
             "devices": None, "probes": [], "note": "missing"},
        ]
        md = capacity.markdown({"machine": m, "records": recs, "ratio": 3.75,
                                "params": {"quick": False, "slo_ms": 800.0, "warm_s": 5.0,
                                           "measure_s": 30.0,
                                           "unloaded_turn_p50_ms": 390.0}})
        self.assertIn("| Fulcrum | 4 | lc | 150 | 790.0 | 45.0 | 3.75 |", md)
        self.assertIn("| nginx | 4 | least_conn | – | – | – | – |", md)
        self.assertIn("* Fulcrum, 1 per stage: 40: 700, 45: –", md)
        self.assertIn("**Scaling 1 -> 4 instances per stage behind Fulcrum: 3.75x**", md)
        self.assertIn("target >= 3.6x: met", md)
        md2 = capacity.markdown({"machine": m, "records": [], "ratio": 3.0,
                                 "params": {"quick": True, "slo_ms": 800.0, "warm_s": 3.0,
                                            "measure_s": 8.0}})
        self.assertIn("NOT met", md2)
        self.assertIn("`bench/run capacity --quick`", md2)

    def test_limit_rows_and_flags(self):
        m = {"date_utc": "d", "fulcrum_git_rev": "r", "cpu_model": "c", "nproc": 2,
             "mem_gib": 1, "kernel": "k", "nginx": "n", "haproxy": "h",
             "background_cpu_busy_pct": 0}
        recs = [
            {"system": "fulcrum", "instances_per_stage": 4, "limit": lim,
             "algorithm": capacity.limit_label(lim), "devices": n, "p95_ms": 790.0,
             "turns_per_s": 45.0, "probes": [{"devices": n, "p95_ms": 790.0}]}
            for lim, n in (("4", 250), ("auto", 251), ("none", 240))
        ]
        md = capacity.markdown({"machine": m, "records": recs, "ratio": None,
                                "params": {"quick": False, "slo_ms": 800.0, "warm_s": 5.0,
                                           "measure_s": 30.0,
                                           "fulcrum_limits": ["4", "auto", "none"],
                                           "instances_per_stage": [4],
                                           "llm_events": [1, 19]}})
        self.assertIn("`bench/run capacity --fulcrum-limits 4,auto,none --capacity-stages 4 "
                      "--llm-events 1-19`", md)
        self.assertIn("1-19 (uniform per turn) events 20 ms apart", md)
        self.assertIn("| Fulcrum | 4 | least_connections + max_concurrent auto (learned) + queue "
                      "| 251 |", md)
        self.assertIn("| Fulcrum | 4 | least_connections, no limit (queues in the instances) "
                      "| 240 |", md)
        self.assertIn("* Fulcrum, 4 per stage, max_concurrent none: 240: 790", md)
        self.assertNotIn("Limits learned", md)
        recs[1]["probes"][0]["learned_limits"] = {"asr": [4, 5], "llm": [4, None]}
        md = capacity.markdown({"machine": m, "records": recs, "ratio": None,
                                "params": {"quick": False, "slo_ms": 800.0, "warm_s": 5.0,
                                           "measure_s": 30.0}})
        self.assertIn("Limits learned", md)
        self.assertIn("* 251 devices: asr 4/5; llm 4/–", md)
        self.assertIn("Every mock instance processes 4 requests", md)
        md = capacity.markdown({"machine": m, "records": recs, "ratio": None,
                                "params": {"quick": False, "slo_ms": 800.0, "warm_s": 5.0,
                                           "measure_s": 30.0, "instances_per_stage": [4],
                                           "llm_capacities": [2, 4, 6, 4]}})
        self.assertIn("--capacity-stages 4 --llm-capacities 2,4,6,4`", md)
        self.assertIn("The LLM mocks process 2/4/6/4 requests at a time (FIFO beyond), "
                      "the others 4. SLO", md)


if __name__ == "__main__":
    unittest.main()
