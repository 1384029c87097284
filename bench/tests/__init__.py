"""Unit tests of the benchmark harness (stdlib unittest, loopback only).

Run from the repository root:

    python3 -B -m unittest discover -s bench/tests -t . -v

bench/ is not a package: every test module puts bench/ at the front of
sys.path (see helpers.py) and imports the harness modules by their plain
names, as bench/run does. Bytecode caching is switched off here, before any
test module or harness module is imported, so that no __pycache__ appears
next to the harness (only this file's own, without -B).
"""

import sys

sys.dont_write_bytecode = True
