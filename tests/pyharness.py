"""Shared helpers of the Python suites (test_python*.py): the import path of
the farena package and a private farenad on a temporary socket.

The suites run as `python3 test_python_X.py FARENAD` with FARENA_PYTHON_DIR
naming the directory that holds the farena package (default: the source
tree's client/python) and LD_LIBRARY_PATH the directory of the libfarena.so.1
under test (the dynamic loader is the first place the package looks, so
this build's library wins over any installed one; FARENA_LIB names it too,
and the suites check that it is the one loaded).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

FARENAD = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("FARENAD", "farenad")
PYTHON_DIR = os.environ.get(
    "FARENA_PYTHON_DIR",
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "client", "python"))
sys.path.insert(0, PYTHON_DIR)

import farena  # noqa: E402


class Daemon:
    """A private farenad on a temporary socket, stopped (by pid) with stop().

    dir is its temporary directory, sock its socket, scratch its scratch
    directory; extra command-line options go in args."""

    def __init__(self, args=()):
        self.dir = tempfile.mkdtemp(prefix="farena-py-")
        self.sock = os.path.join(self.dir, "farenad.sock")
        self.scratch = os.path.join(self.dir, "scratch")
        os.mkdir(self.scratch)
        self.log = open(os.path.join(self.dir, "farenad.log"), "wb")
        self.proc = subprocess.Popen(
            [FARENAD, "--socket", self.sock, "--dir", self.scratch, "--min-free", "0"]
            + list(args), stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            try:
                farena.Client(self.sock, timeout=1).close()
                return
            except farena.Error:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("farenad did not start")
                time.sleep(0.02)

    def stat(self):
        """The daemon's counters, through a connection of its own."""
        with farena.Client(self.sock, timeout=10) as c:
            return c.stat()

    def wait_idle(self, timeout=20, connections=1):
        """Waits until nothing is stored and at most `connections` are open
        (counting the one that asks); returns the last stat (check it: this
        does not raise on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.stat()
            idle = (st["connections"] <= connections and st["writers"] == 0 and st["files"] == 0
                    and st["arenas"] == 0 and st["bytes_on_disk"] == 0)
            if idle or time.monotonic() > deadline:
                return st
            time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, 9)
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
