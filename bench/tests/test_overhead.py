"""overhead.py: its proxies come from systems.py; --fulcrum-bin on the
command line (nothing is started)."""

import contextlib
import importlib.machinery
import importlib.util
import io
import sys
import tempfile
import unittest
from pathlib import Path

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
        self.assertFalse(a.no_build)

    def test_fulcrum_bin(self):
        a = parse("--quick", "--fulcrum-bin", "/opt/new/fulcrum", "--no-build")
        self.assertEqual((a.fulcrum_bin, a.quick, a.no_build), ("/opt/new/fulcrum", True, True))
        self.assertEqual(common.prebuilt_binaries(a), {"fulcrum": Path("/opt/new/fulcrum")})

    def test_fulcrum_bin_is_accepted_for_every_suite(self):
        for suite in ("websockets", "quality", "capacity", "all"):
            a = BENCH_RUN.parse_args([suite, "--fulcrum-bin", "/x"])
            self.assertEqual(a.fulcrum_bin, "/x")

    def test_help_documents_the_flag(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), self.assertRaises(SystemExit):
            BENCH_RUN.parse_args(["--help"])
        self.assertIn("--fulcrum-bin PATH", " ".join(out.getvalue().split()))


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

    def test_fulcrum_bin(self):
        ctx = self.ctx("--fulcrum-bin", "/new/fulcrum")
        self.assertEqual(overhead.make_proxy(ctx, "fulcrum").exe, Path("/new/fulcrum"))


if __name__ == "__main__":
    unittest.main()
