"""quality.py: the per-scenario arithmetic of run_case (weighted share
deviation, kill detection / late attempts / quiet time / recovery, join flood
window), driven with fake backends, a fake proxy and scripted load records
(no process is started), plus the attempt poller, verdicts and Markdown."""

import sys
import time
import types
import unittest
from pathlib import Path
from unittest import mock

sys.dont_write_bytecode = True
from . import helpers  # noqa: E402,F401

import loadgen  # noqa: E402
import quality  # noqa: E402
from systems import Backend  # noqa: E402

WALL0 = 1_000_000.0  # fake time.time() at the start of the load
PERF0 = 500.0  # fake time.perf_counter() at the start of the load


class FakeTime:
    """Stands in for the ``time`` module inside quality.py."""

    @staticmethod
    def time():
        return WALL0

    @staticmethod
    def perf_counter():
        return PERF0

    @staticmethod
    def sleep(_s):
        pass

    @staticmethod
    def monotonic():
        return 0.0


class FakeSystem:
    """A proxy that starts nothing; what it reports is set per test."""

    name = "fake"
    attempt_times_wall = None  # nginx: access-log times (wall clock)
    out_of_service_wall = []  # Fulcrum / HAProxy: log times (wall clock)
    instances = []

    def __init__(self, registry, workdir, bins, cpu, pools, attempt_log=False, **kw):
        self.pools, self.attempt_log, self.kw = pools, attempt_log, kw
        self.port = 1
        FakeSystem.instances.append(self)

    def start(self):
        return self

    def stop(self):
        pass

    def check_alive(self):
        pass

    def config_text(self):
        return "fake config"

    def add_backend(self, pool, b):
        pass

    def attempt_times(self, b):
        return self.attempt_times_wall

    def out_of_service_times(self, b):
        return list(self.out_of_service_wall)


class FakePoller:
    """Replaces AttemptPoller: counter increases at the given perf_counter times."""

    increases = []
    created = []

    def __init__(self, system, backend):
        self.backend = backend
        FakePoller.created.append(self)

    def start(self):
        return self

    def stop(self):
        pass

    def attempt_times(self):
        return list(self.increases)


class RunCaseTestCase(unittest.TestCase):
    """Patches quality's collaborators; ``self.script(events, t0)`` fills in
    the events and returns the load records of the case."""

    def setUp(self):
        FakeSystem.attempt_times_wall = None
        FakeSystem.out_of_service_wall = []
        FakeSystem.instances = []
        FakePoller.increases = []
        FakePoller.created = []
        self.closed_loop_calls = []

        def start_backends(ctx, specs):
            bs = [Backend(s["name"], 30001 + i, s.get("weight", 1)) for i, s in enumerate(specs)]
            self.specs = specs
            return bs, {b.name: object() for b in bs}

        def closed_loop(host, port, clients, duration, events=(), t0=None, **kw):
            self.closed_loop_calls.append((clients, duration, t0))
            return self.script(list(events), t0)

        for target, attr, new in (
                (quality, "time", FakeTime), (quality, "log", lambda *a: None),
                (quality, "_start_backends", start_backends),
                (quality, "SYSTEMS", {"fulcrum": FakeSystem, "nginx": FakeSystem,
                                      "haproxy": FakeSystem}),
                (quality, "AttemptPoller", FakePoller),
                (loadgen, "closed_loop", closed_loop)):
            p = mock.patch.object(target, attr, new)
            p.start()
            self.addCleanup(p.stop)
        registry = types.SimpleNamespace(stop=lambda p: None)
        self.ctx = quality.Ctx(args=types.SimpleNamespace(proxy_cpu=0, load_cpu=1),
                               tmp=Path("/nonexistent"), bins=Path("/nonexistent"),
                               registry=registry, prm=quality.Params(quick=True), series={})

    def run_case(self, scenario, system, algorithm):
        return quality.run_case(self.ctx, scenario, system, algorithm)


def cycle(names, i):
    return names[i % len(names)]


class WeightedTest(RunCaseTestCase):
    def script(self, events, t0):
        self.assertEqual(events, [])
        self.assertEqual(t0, PERF0)
        recs = [(0.1, 0.01, 0, "")]  # a warm-up failure: counted in errors only
        recs += [(0.2 + i * 0.001, 0.01, 200, "a") for i in range(50)]  # warm-up, all "a"
        pattern = ["a"] * 5 + ["b"] * 3 + ["c"] * 2  # 50 / 30 / 20 %
        recs += [(0.5 + i * 0.003, 0.01, 200, cycle(pattern, i)) for i in range(1000)]
        return recs

    def test_share_deviation(self):
        r = self.run_case("weighted", "fulcrum", "weighted_round_robin")
        self.assertEqual([s["weight"] for s in self.specs], [3, 2, 1])
        self.assertEqual(self.closed_loop_calls, [(12, 4, PERF0)])
        self.assertEqual(r["requests"], 1000)  # after the 0.5 s warm-up
        self.assertEqual(r["errors"], 1)  # over the whole run
        self.assertEqual(r["shares"], {"a": 0.5, "b": 0.3, "c": 0.2})
        self.assertEqual(r["expected_shares"], {"a": 0.5, "b": 0.3333, "c": 0.1667})
        # max(|0.5-0.5|, |0.3-1/3|, |0.2-1/6|) = 1/30 -> 3.33 percentage points
        self.assertEqual(r["max_share_dev"], 3.33)
        self.assertIsNone(r["detect_s"])
        self.assertEqual(r["config"], "fake config")
        self.assertEqual(self.ctx.series["weighted/fulcrum/weighted_round_robin"],
                         {"shares": r["shares"], "expected": r["expected_shares"]})

    def test_native_algorithm_names(self):
        r = self.run_case("weighted", "nginx", "weighted_round_robin")
        self.assertEqual(r["algorithm"], "round_robin (weights)")
        self.assertEqual(r["algorithm_generic"], "weighted_round_robin")
        self.assertFalse(FakeSystem.instances[-1].attempt_log)


    def test_fulcrum_bin_reaches_fulcrum_only(self):
        self.run_case("weighted", "fulcrum", "weighted_round_robin")
        self.assertNotIn("exe", FakeSystem.instances[-1].kw)  # target/release/fulcrum
        self.ctx.fulcrum_exe = Path("/opt/fulcrum")
        self.run_case("weighted", "fulcrum", "weighted_round_robin")
        self.assertEqual(FakeSystem.instances[-1].kw["exe"], Path("/opt/fulcrum"))
        self.run_case("weighted", "haproxy", "weighted_round_robin")
        self.assertNotIn("exe", FakeSystem.instances[-1].kw)


class KillTest(RunCaseTestCase):
    # quick run: kill event at 2.5 s, restart at 5.5 s, 10 s of load
    T_KILL = 2.51  # time.time() just before the SIGKILL, run-relative

    def script(self, events, t0):
        ev_kill, ev_restart = events
        self.assertEqual((ev_kill.name, ev_kill.at), ("kill", 2.5))
        self.assertEqual((ev_restart.name, ev_restart.at), ("restart", 5.5))
        ev_kill.started_at, ev_kill.result, ev_kill.done_at = 2.5, WALL0 + self.T_KILL, 2.52
        ev_restart.started_at, ev_restart.done_at = 5.5, 5.6
        recs = [(0.5 + i * 0.01, 0.005, 200, cycle("abc", i)) for i in range(200)]  # to 2.49
        recs.append((1.0, 0.01, 0, ""))  # an error long before the kill
        recs.append((2.45, 0.002, 502, ""))  # around the kill (>= t_kill - 0.1)
        recs.append((3.0, 0.002, 0, ""))
        recs += [(2.6 + i * 0.01, 0.005, 200, cycle("ab", i)) for i in range(300)]
        recs.append((5.7, 0.01, 200, "c"))  # first answer of the restarted c
        recs.append((5.8, 0.01, 200, "c"))
        recs.append((5.4, 0.01, 200, "c"))  # before the restart: ignored for recovery
        return recs

    def check_common(self, r):
        self.assertAlmostEqual(r["kill_at_s"], 2.51)
        self.assertAlmostEqual(r["restart_at_s"], 5.6)
        self.assertAlmostEqual(r["recover_s"], 0.11)  # 5.7 + 0.01 - 5.6
        self.assertEqual(r["errors"], 3)
        self.assertEqual(r["errors_around_kill"], 2)
        series = self.ctx.series[f"kill/{r['system']}/{r['algorithm_generic']}"]
        self.assertAlmostEqual(series["kill"], 2.51, places=6)
        self.assertEqual((series["restart"], series["victim"]), (5.6, "c"))
        self.assertEqual(len(series["records"]), 506)
        self.assertEqual(series["records"][0], (0.5, 5.0, 200, "a"))  # latency in ms

    def test_nginx_burst_then_trial_requests(self):
        FakeSystem.attempt_times_wall = [WALL0 + t for t in (
            1.0,  # before the kill: outside the window
            2.52, 2.55, 2.60,  # the burst right after the kill
            4.6, 5.0,  # nginx's trials after fail_timeout (>= 0.5 s gap)
            6.0)]  # after the restart began: outside the window
        r = self.run_case("kill", "nginx", "round_robin")
        self.assertTrue(FakeSystem.instances[-1].attempt_log)  # access log switched on
        self.assertEqual(FakePoller.created, [])  # nginx: no polling
        self.assertAlmostEqual(r["detect_s"], 0.09, places=4)  # 2.60 - 2.51
        self.assertEqual(r["late_attempts"], 2)
        self.assertAlmostEqual(r["quiet_s"], 2.49, places=4)  # 5.0 - 2.51
        self.assertIn("access log", r["detect_source"])
        self.assertIn("access log", r["attempt_source"])
        self.check_common(r)

    def test_nginx_without_attempts_after_the_kill(self):
        FakeSystem.attempt_times_wall = [WALL0 + 1.0]
        r = self.run_case("kill", "nginx", "least_connections")
        self.assertEqual(r["detect_s"], 0.0)  # nothing after the kill: out at once
        self.assertEqual(r["late_attempts"], 0)
        self.assertEqual(r["quiet_s"], 0.0)

    def test_fulcrum_log_time_and_polled_attempts(self):
        FakeSystem.out_of_service_wall = [
            WALL0 + 0.5,  # more than 1 s before the kill: an older event, ignored
            WALL0 + 2.53, WALL0 + 2.7]
        FakePoller.increases = [PERF0 + t for t in (2.0, 2.52, 2.55, 3.0, 4.0, 5.6)]
        r = self.run_case("kill", "fulcrum", "least_connections")
        self.assertEqual(len(FakePoller.created), 1)
        self.assertEqual(FakePoller.created[0].backend.name, "c")  # the victim is polled
        self.assertAlmostEqual(r["detect_s"], 0.02, places=4)  # first log line after the kill
        self.assertIn("Fulcrum log", r["detect_source"])
        self.assertEqual(r["late_attempts"], 2)  # 3.0 and 4.0 (> t_out + 0.1)
        self.assertAlmostEqual(r["quiet_s"], 1.49, places=4)  # 4.0 - 2.51
        self.assertIn("polled", r["attempt_source"])
        self.check_common(r)

    def test_haproxy_falls_back_to_the_last_counter_increase(self):
        FakePoller.increases = [PERF0 + t for t in (2.52, 2.8)]
        with mock.patch("systems.haproxy_maxconn", return_value=10000):
            r = self.run_case("kill", "haproxy", "round_robin")
        self.assertEqual(r["algorithm"], "roundrobin")
        self.assertAlmostEqual(r["detect_s"], 0.29, places=4)  # 2.8 - 2.51
        self.assertIn("last increase", r["detect_source"])
        self.assertEqual(r["late_attempts"], 0)
        self.assertAlmostEqual(r["quiet_s"], 0.29, places=4)

    def test_detection_before_the_kill_time_is_clamped(self):
        FakeSystem.out_of_service_wall = [WALL0 + 2.3]  # within 1 s before: kept
        r = self.run_case("kill", "fulcrum", "round_robin")
        self.assertEqual(r["detect_s"], 0.0)
        self.assertEqual(r["quiet_s"], 0.0)

    def test_nothing_known(self):
        r = self.run_case("kill", "fulcrum", "response_time")
        self.assertIsNone(r["detect_s"])
        self.assertIsNone(r["quiet_s"])
        self.assertEqual(r["late_attempts"], 0)


class JoinTest(RunCaseTestCase):
    # quick run: 8 s of load; d is told to join at 2.6 s
    flood = True

    def script(self, events, t0):
        (ev,) = events
        self.assertEqual((ev.name, ev.at), ("join", 2.5))
        ev.result, ev.started_at, ev.done_at = 2.6, 2.5, 2.62
        recs = []
        for i in range(50, 800):  # one request every 10 ms from 0.5 s to 7.99 s
            t = i / 100
            if i < 300:
                inst = cycle("abc", i)
            elif i < 400 and self.flood:
                inst = "d"  # the newcomer gets everything for 1 s
            else:
                inst = cycle("abcd", i)
            recs.append((t, 0.001, 200, inst))
        return recs

    def test_flood_window(self):
        r = self.run_case("join", "fulcrum", "least_calls")
        self.assertEqual(FakeSystem.instances[-1].kw, {"registry_enabled": True})
        self.assertEqual(r["join_at_s"], 2.6)
        self.assertAlmostEqual(r["recover_s"], 0.401)  # first d answer ends at 3.001
        self.assertEqual(r["first_traffic_s"], r["recover_s"])
        self.assertEqual(r["join_peak_share"], 1.0)
        self.assertEqual(r["max_share_dev"], 75.0)  # 100 * (1.0 - 0.25)
        self.assertEqual(r["shares_after_join"], {"a": 0.25, "b": 0.25, "c": 0.25, "d": 0.25})
        self.assertEqual(set(r["shares"]), {"a", "b", "c", "d"})

    def test_fair_newcomer(self):
        self.flood = False
        r = self.run_case("join", "nginx", "round_robin")
        self.assertEqual(FakeSystem.instances[-1].kw, {})
        self.assertAlmostEqual(r["recover_s"], 0.431)  # first d: i = 303 -> 3.031 s
        # 0.5 s windows of 50 requests: d gets 12 or 13 of them
        self.assertEqual(r["join_peak_share"], 0.26)
        self.assertEqual(r["max_share_dev"], 1.0)

    def test_newcomer_never_served(self):
        with mock.patch.object(self, "script", lambda events, t0: (
                setattr(events[0], "result", None) or setattr(events[0], "done_at", 3.0)
                or [(i / 100, 0.001, 200, cycle("abc", i)) for i in range(50, 800)])):
            r = self.run_case("join", "nginx", "round_robin")
        self.assertEqual(r["join_at_s"], 3.0)  # falls back to when the event finished
        self.assertIsNone(r["recover_s"])
        self.assertEqual(r["join_peak_share"], 0.0)
        self.assertEqual(r["max_share_dev"], 0.0)
        self.assertEqual(r["shares_after_join"]["d"], 0.0)


class AttemptPollerTest(unittest.TestCase):
    def test_times_of_increases(self):
        p = quality.AttemptPoller(system=None, backend=None)
        p.samples = [(1.0, 5), (1.05, 5), (1.10, 7), (1.15, 7), (1.20, 8), (1.25, 3), (1.3, 4)]
        self.assertEqual(p.attempt_times(), [1.10, 1.20, 1.3])
        p.samples = []
        self.assertEqual(p.attempt_times(), [])

    def test_polls_in_a_thread(self):
        counts = iter(range(1000))
        sysobj = types.SimpleNamespace(attempts=lambda b: next(counts))
        p = quality.AttemptPoller(sysobj, Backend("c", 1)).start()
        time.sleep(0.2)
        p.stop()
        self.assertGreaterEqual(len(p.samples), 2)
        self.assertEqual([n for _, n in p.samples], list(range(len(p.samples))))


def krec(system, algo, errors=0, detect=None, quiet=None):
    return {"scenario": "kill", "system": system, "algorithm": algo, "requests": 100,
            "errors": errors, "detect_s": detect, "quiet_s": quiet}


def drec(system, algo, p99):
    return {"scenario": "degraded", "system": system, "algorithm": algo, "p99_ms": p99}


class VerdictsTest(unittest.TestCase):
    def test_best_picks_the_minimum_and_skips_none(self):
        recs = [drec("fulcrum", "x", 30.0), drec("fulcrum", "y", 12.0),
                drec("fulcrum", "z", None), drec("nginx", "rr", 5.0)]
        self.assertEqual(quality.best(recs, "degraded", "fulcrum", "p99_ms")["algorithm"], "y")
        self.assertIsNone(quality.best(recs, "degraded", "haproxy", "p99_ms"))
        self.assertIsNone(quality.best(recs, "kill", "fulcrum", "p99_ms"))

    def test_degraded(self):
        base = [drec("nginx", "rr", 30.0), drec("haproxy", "rr", 25.0)]
        (v,) = quality.verdicts(base + [drec("fulcrum", "lc", 12.0)])
        self.assertTrue(v.startswith("degraded:"))
        self.assertTrue(v.endswith(": lower"), v)
        (v,) = quality.verdicts(base + [drec("fulcrum", "lc", 26.0)])
        self.assertTrue(v.endswith("NOT lower"), v)
        self.assertEqual(quality.verdicts(base), [])  # no Fulcrum row, no verdict

    def test_kill_comparisons(self):
        others = [krec("nginx", "rr", 5, 0.0105, 2.0), krec("haproxy", "rr", 2, 0.05, 1.0)]

        def verdict(fk):
            (v,) = quality.verdicts(others + fk)
            return v

        v = verdict([krec("fulcrum", "lc", 0, 0.010, 0.5), krec("fulcrum", "rt", 0, 0.2, 0.6)])
        self.assertIn("failed requests [0, 0] (zero)", v)
        self.assertIn("Fulcrum 10.0 ms, nginx 10.5 ms, HAProxy 50.0 ms (no later;", v)
        self.assertIn("no request to it after: Fulcrum 0.500 s, nginx 2.000 s, HAProxy "
                      "1.000 s (no later)", v)
        v = verdict([krec("fulcrum", "lc", 0, 0.0112, 1.0005)])
        self.assertIn("(no later within the 1 ms resolution", v)
        self.assertIn("(no later)", v)  # quiet 1.0005 <= 1.0 + 0.001
        v = verdict([krec("fulcrum", "lc", 1, 0.02, 1.5)])
        self.assertIn("(NOT zero)", v)
        self.assertIn("(LATER; best algorithm of each)", v)
        self.assertTrue(v.endswith("(LATER)"), v)
        v = verdict([krec("fulcrum", "lc", 0, None, None)])
        self.assertIn("Fulcrum – ms", v)
        self.assertIn("(LATER;", v)  # unknown detection is not "no later"

    def test_kill_rows_not_measured_are_ignored(self):
        rows = [dict(krec("fulcrum", "lc"), requests=None)]
        self.assertEqual(quality.verdicts(rows), [])


MACHINE = {"date_utc": "2024-01-01T00:00:00Z", "fulcrum_git_rev": "abc", "cpu_model": "cpu",
           "nproc": 2, "mem_gib": 4.0, "kernel": "6", "nginx": "nginx/1", "haproxy": "HAProxy 2",
           "background_cpu_busy_pct": 1.0}


class MarkdownTest(RunCaseTestCase):
    def script(self, events, t0):
        return KillTest.script(self, events, t0) if events and events[0].name == "kill" \
            else WeightedTest.script(self, events, t0)

    T_KILL = KillTest.T_KILL

    def test_tables_from_real_records(self):
        FakeSystem.attempt_times_wall = [WALL0 + 2.55]
        recs = [self.run_case("weighted", "fulcrum", "weighted_round_robin"),
                self.run_case("kill", "nginx", "round_robin"),
                quality.empty_record("kill", "haproxy", "least_connections", "haproxy missing")]
        md = quality.markdown({"machine": MACHINE, "records": recs,
                               "params": {"quick": True, "proxy_cpu": 0, "load_cpu": 1}})
        self.assertIn("`bench/run quality --quick`", md)
        self.assertIn("## weighted", md)
        self.assertIn("| Fulcrum | weighted_round_robin | 1,000 | 1 | 50.0 / 30.0 / 20.0 | 3.33 |",
                      md)
        self.assertIn("## kill", md)
        self.assertIn("| nginx | round_robin |", md)
        self.assertIn("HAProxy leastconn: not measured: haproxy missing", md)
        self.assertIn("## Checks", md)
        self.assertNotIn("## join", md)

    def test_empty_record(self):
        r = quality.empty_record("join", "nginx", "least_connections", "why")
        self.assertEqual(r["algorithm"], "least_conn")
        self.assertIsNone(r["requests"])
        self.assertEqual(r["note"], "why")


class DynamicWeightsNameTest(unittest.TestCase):
    def test_the_suffix_turns_dynamic_weights_on(self):
        self.assertEqual(quality.split_dw("weighted_round_robin+dw2s"),
                         ("weighted_round_robin", quality.DW_POOL))
        self.assertIn("dynamic_weights: { interval: 2s }", quality.DW_POOL)
        self.assertEqual(quality.split_dw("least_calls"), ("least_calls", ""))


class TablesTest(unittest.TestCase):
    def test_every_scenario_and_system_has_algorithms(self):
        self.assertEqual(set(quality.ALGORITHMS), set(quality.SCENARIOS))
        for sc, per in quality.ALGORITHMS.items():
            self.assertEqual(set(per), set(quality.SYSTEM_ORDER), sc)
            for system, (full, quick) in per.items():
                self.assertTrue(quick, (sc, system))
                self.assertTrue(set(quick) <= set(full), (sc, system))
                if system != "fulcrum":  # nginx/HAProxy only know the generic names
                    for a in full:
                        self.assertIn(a, quality.NATIVE[system], (sc, system, a))


if __name__ == "__main__":
    unittest.main()
