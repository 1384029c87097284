"""loadgen.percentile / latency_summary / shares: the statistics every suite reports."""

import sys
import unittest

sys.dont_write_bytecode = True
from . import helpers  # noqa: E402,F401  (puts bench/ on sys.path)

import loadgen  # noqa: E402


class PercentileTest(unittest.TestCase):
    def test_empty_is_none(self):
        self.assertIsNone(loadgen.percentile([], 50))
        self.assertIsNone(loadgen.percentile((), 99.9))

    def test_single_value(self):
        for q in (0, 1, 50, 99, 99.9, 100):
            self.assertEqual(loadgen.percentile([7.5], q), 7.5)

    def test_nearest_rank_on_1_to_100(self):
        values = list(range(100, 0, -1))  # unsorted input: 100..1
        self.assertEqual(loadgen.percentile(values, 50), 50)
        self.assertEqual(loadgen.percentile(values, 90), 90)
        self.assertEqual(loadgen.percentile(values, 99), 99)
        self.assertEqual(loadgen.percentile(values, 99.9), 100)  # rank ceil(99.9) = 100
        self.assertEqual(loadgen.percentile(values, 100), 100)
        self.assertEqual(loadgen.percentile(values, 0), 1)  # clamped to the first

    def test_nearest_rank_small_sets(self):
        # nearest rank = ceil(q/100 * n): n=4, p50 -> rank 2, p75 -> rank 3, p76 -> rank 4
        v = [40, 10, 30, 20]
        self.assertEqual(loadgen.percentile(v, 50), 20)
        self.assertEqual(loadgen.percentile(v, 75), 30)
        self.assertEqual(loadgen.percentile(v, 76), 40)
        self.assertEqual(loadgen.percentile(v, 25), 10)
        self.assertEqual(loadgen.percentile(v, 26), 20)
        thousand = list(range(1, 1001))
        self.assertEqual(loadgen.percentile(thousand, 99), 990)
        self.assertEqual(loadgen.percentile(list(range(1, 1002)), 99.9), 1000)
        # 99.9 / 100 * 1000 is 999.0000000000001 in floating point: the rank
        # must still be the 999th, not the maximum.
        self.assertEqual(loadgen.percentile(thousand, 99.9), 999)
        self.assertEqual(loadgen.percentile(list(range(1, 10001)), 99.9), 9990)

    def test_does_not_modify_input(self):
        v = [3, 1, 2]
        loadgen.percentile(v, 50)
        self.assertEqual(v, [3, 1, 2])

    def test_infinity_sorts_last(self):
        # capacity.run_level counts failed turns as infinitely slow
        v = [0.1, 0.2, float("inf"), 0.3]
        self.assertEqual(loadgen.percentile(v, 75), 0.3)
        self.assertEqual(loadgen.percentile(v, 95), float("inf"))


def rec(t, lat, status=200, inst="a"):
    return (t, lat, status, inst)


class LatencySummaryTest(unittest.TestCase):
    def test_empty(self):
        s = loadgen.latency_summary([])
        self.assertEqual(s, {"requests": 0, "errors": 0, "rps": None, "p50_ms": None,
                             "p99_ms": None, "p999_ms": None, "max_ms": None})

    def test_counts_errors_and_latencies_of_successes_only(self):
        recs = [rec(0.0, 0.010), rec(0.1, 0.020), rec(0.2, 0.030, 302),
                rec(0.3, 5.0, 0, ""), rec(0.4, 4.0, 503), rec(0.5, 0.040, 404)]
        s = loadgen.latency_summary(recs)
        self.assertEqual(s["requests"], 6)
        # 0 (transport failure), 503 and 404 are errors; 2xx and 3xx are not
        self.assertEqual(s["errors"], 3)
        self.assertEqual(s["p50_ms"], 20.0)
        self.assertEqual(s["max_ms"], 30.0)  # the slow failures do not count
        self.assertEqual(s["p99_ms"], 30.0)

    def test_window_is_half_open_on_start_time(self):
        recs = [rec(0.4999, 0.001), rec(0.5, 0.002), rec(1.0, 0.003), rec(1.5, 0.004)]
        s = loadgen.latency_summary(recs, 0.5, 1.5)
        self.assertEqual(s["requests"], 2)
        self.assertEqual(s["p50_ms"], 2.0)
        self.assertEqual(s["max_ms"], 3.0)

    def test_rps_over_the_span_of_the_window(self):
        # 100 requests starting every 10 ms from t=1.0, 5 ms each: last ends at 1.995
        recs = [rec(1.0 + i * 0.01, 0.005) for i in range(100)]
        s = loadgen.latency_summary(recs, 1.0, 3.0)
        self.assertEqual(s["requests"], 100)
        self.assertAlmostEqual(s["rps"], round(100 / 0.995, 1))
        # the span is capped at t_to even if the last request ends later
        s2 = loadgen.latency_summary([rec(0.0, 10.0), rec(0.5, 10.0)], 0.0, 2.0)
        self.assertEqual(s2["rps"], 1.0)

    def test_rounding_to_microseconds(self):
        s = loadgen.latency_summary([rec(0.0, 0.0123456789)])
        self.assertEqual(s["p50_ms"], 12.346)
        self.assertEqual(s["p999_ms"], 12.346)


class SharesTest(unittest.TestCase):
    def test_fractions_of_successes(self):
        recs = ([rec(1.0, 0.01, 200, "a")] * 3 + [rec(1.0, 0.01, 200, "b")] * 2
                + [rec(1.0, 0.01, 200, "c")] + [rec(1.0, 0.01, 0, "")] * 10
                + [rec(1.0, 0.01, 502, "c")] * 5)
        sh = loadgen.shares(recs, ["a", "b", "c"])
        self.assertAlmostEqual(sh["a"], 0.5)
        self.assertAlmostEqual(sh["b"], 2 / 6)
        self.assertAlmostEqual(sh["c"], 1 / 6)

    def test_window_and_names(self):
        recs = [rec(0.1, 0.01, 200, "a"), rec(0.6, 0.01, 200, "b"), rec(0.7, 0.01, 200, "d"),
                rec(1.0, 0.01, 200, "a")]
        sh = loadgen.shares(recs, ["a", "b", "c"], 0.5, 1.0)
        # "d" is not among the names but still counts in the total
        self.assertEqual(sh, {"a": 0.0, "b": 0.5, "c": 0.0})

    def test_no_success_gives_zeros(self):
        self.assertEqual(loadgen.shares([], ["a", "b"]), {"a": 0.0, "b": 0.0})
        self.assertEqual(loadgen.shares([rec(0, 1, 0, "")], ["a"]), {"a": 0.0})


if __name__ == "__main__":
    unittest.main()
