"""churn.py: the gateway config it writes (the issue's retry settings, the
gateway's passive defaults), how long an instance stayed ejected after it
came back, and the Markdown."""

import sys
import unittest
from pathlib import Path

sys.dont_write_bytecode = True
from . import helpers  # noqa: E402,F401

import churn  # noqa: E402


class ConfigTest(unittest.TestCase):
    def test_one_pool_with_the_issues_retry_and_default_passive(self):
        text = churn.config(8080, 9090, {"a": 1, "b": 2, "c": 3}, None, Path("/tmp/x"))
        self.assertIn("listen: 127.0.0.1:8080", text)
        self.assertIn("listen: 127.0.0.1:9090", text)
        self.assertIn("retry: { tries: 3, on: [error, timeout, http_502, http_503], "
                      "non_idempotent: true }", text)
        for port in (1, 2, 3):
            self.assertIn(f'endpoint: "http://127.0.0.1:{port}"', text)
        self.assertNotIn("passive", text, "the gateway's defaults")
        self.assertNotIn("health_check", text)
        with_probes = churn.config(1, 2, {"a": 3}, "5s", Path("/tmp/x"))
        self.assertIn("health_check:\n  interval: 5s\n", with_probes)


class EjectedAfterReturnTest(unittest.TestCase):
    def test_counts_from_the_return_to_the_last_sample_still_ejected(self):
        samples = [
            {"t": 10.0, "ejected": ["a"]},
            {"t": 11.0, "ejected": ["a"]},
            {"t": 12.0, "ejected": ["a", "b"]},
            {"t": 13.0, "ejected": []},
            {"t": 14.0, "ejected": ["a"]},
        ]
        after = churn.ejection_after_return(samples, {"a": [10.5], "b": [11.5], "c": [12.5]})
        self.assertEqual(after, [1.5, 0.5, 0.0])

    def test_no_samples_after_the_return_is_zero(self):
        self.assertEqual(churn.ejection_after_return([], {"a": [1.0]}), [0.0])


class RenderTest(unittest.TestCase):
    def test_the_table_says_whether_the_bar_is_met(self):
        r = {
            "label": "x", "kills": 2, "requests": 1000, "failed": 1, "failed_pct": 0.1,
            "failed_by_status": {"503": 1}, "gateway_503": 1,
            "latency": {"p50_ms": 1, "p99_ms": 2, "max_ms": 3},
            "max_instances_ejected_at_once": 1, "seconds_with_every_instance_ejected": 0.0,
            "ejected_after_return_s": [0.5], "ejected_after_return_max_s": 0.5,
            "log_ejections": 1, "log_ejections_ended_by_probe": 1, "log_marked_down": 0,
            "meets_bar": False, "machine": {},
            "config": {"clients": 32, "duration_s": 60, "period_s": 4, "down_s": 1,
                       "latency": "10ms", "retry": churn.RETRY, "health_interval": "30s",
                       "passive": "default", "fulcrum": "f"},
        }
        md = churn.render(r)
        self.assertIn("# Churn — x", md)
        self.assertIn("| failed | 1 (0.1 %) {\"503\": 1} |", md)
        self.assertIn("NOT met", md)


if __name__ == "__main__":
    unittest.main()
