"""farena.dask.SpillBuffer in a real LocalCluster against a private farenad.

usage: test_python_dask.py FARENAD (environment: see pyharness.py). Two
worker processes each keep 1 MiB in memory and hold 8 MiB of a persisted
array, so most of it is spilled to farena; the results must be exact, the
daemon's counters must show the spilled bytes, nothing may land in the
workers' local directories, and nothing may stay stored after the cluster
closes. Bounded: the cluster has 60 s to start and every step a timeout.
"""

import os
import subprocess
import sys
import unittest

import pyharness
from pyharness import farena

import dask  # noqa: E402
import dask.array as da  # noqa: E402
from distributed import Client, LocalCluster, wait  # noqa: E402

import farena.dask  # noqa: E402

TARGET = 1 << 20  # bytes each worker keeps in memory
CHUNK = 32768  # int64 elements: 256 KiB a chunk
CHUNKS = 64  # 16 MiB in all, 8 MiB a worker


def worker_report(dask_worker):
    """What a worker's data says about spilling (run on the workers)."""
    data = dask_worker.data
    files = []
    for root, _, names in os.walk(dask_worker.local_directory):
        files += [os.path.join(root, n) for n in names]
    return {"type": type(data).__module__ + "." + type(data).__name__,
            "spilled": tuple(data.spilled_total), "metrics": data.get_metrics(),
            "in_memory": len(data.fast), "spilled_keys": len(data.slow),
            "mapping": data.mapping.stats(), "files": files}


class DaskSpillTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon = pyharness.Daemon()

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()

    def test_local_cluster_spills_to_farena(self):
        env = {"FARENA_SOCKET": self.daemon.sock,
               "PYTHONPATH": os.pathsep.join([pyharness.PYTHON_DIR] + sys.path[1:])}
        os.environ.update(env)
        # Spill by target only: the RSS-driven monitor would make the test
        # depend on the machine's memory state.
        with dask.config.set({"distributed.worker.memory.spill": False,
                              "distributed.worker.memory.pause": False,
                              "distributed.worker.memory.terminate": False,
                              "distributed.scheduler.work-stealing": False}):
            cluster = LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, memory_limit="2GiB",
                dashboard_address=None, host="127.0.0.1",
                data=(farena.dask.SpillBuffer, {"target": TARGET, "socket": self.daemon.sock}))
            try:
                with Client(cluster, timeout=60) as client:
                    n = CHUNK * CHUNKS
                    x = da.arange(n, chunks=CHUNK, dtype="int64")
                    y = (x * 3 + 1).persist()
                    client.wait_for_workers(2, timeout=60)
                    wait(y, timeout=60)

                    reports = client.run(worker_report)
                    self.assertEqual(len(reports), 2)
                    spilled = spilled_keys = spilled_mem = 0
                    for who, r in reports.items():
                        self.assertEqual(r["type"], "farena.dask.SpillBuffer", who)
                        self.assertGreater(r["spilled_keys"], 0, who)
                        self.assertGreater(r["spilled"][1], 0, who)
                        self.assertEqual(r["metrics"]["disk_count"], r["spilled_keys"], who)
                        self.assertLessEqual(r["metrics"]["memory_bytes"], TARGET, who)
                        self.assertEqual(r["mapping"]["keys"], r["spilled_keys"], who)
                        self.assertEqual(r["files"], [], who)  # nothing on the local disk
                        spilled += r["spilled"][1]
                        spilled_mem += r["spilled"][0]
                        spilled_keys += r["spilled_keys"]
                    # All but the 4 chunks a worker keeps (pickled sizes may be
                    # smaller: distributed compresses frames).
                    self.assertGreaterEqual(spilled_keys, CHUNKS - 8)
                    self.assertGreaterEqual(spilled_mem, (CHUNKS - 8) * CHUNK * 8)
                    st = self.daemon.stat()
                    self.assertGreaterEqual(st["bytes_written"], spilled)
                    self.assertGreaterEqual(st["connections"], 3)  # 2 workers + this one

                    # Exact results through reading the spilled chunks back.
                    total = int(y.sum().compute(timeout=60))
                    self.assertEqual(total, 3 * n * (n - 1) // 2 + n)
                    part = y[CHUNK * 5 + 7:CHUNK * 40 + 3].compute(timeout=60)
                    self.assertEqual(part[0], 3 * (CHUNK * 5 + 7) + 1)
                    self.assertEqual(len(part), CHUNK * 35 - 4)
                    self.assertEqual(int(part[-1]), 3 * (CHUNK * 40 + 2) + 1)
                    reads = sum(r["metrics"]["disk_read_count_total"]
                                for r in client.run(worker_report).values())
                    self.assertGreater(reads, 0)
                    # Read back from farena: through the daemon (bytes_read),
                    # or directly from the arena's files, which the daemon
                    # handed over with arena_fds.
                    st = self.daemon.stat()
                    self.assertGreater(st["bytes_read"] + st["requests"]["arena_fds"], 0)
                    del y
            finally:
                cluster.close(timeout=30)
        st = self.daemon.wait_idle(timeout=30)
        self.assertEqual((st["connections"], st["writers"], st["files"], st["arenas"],
                          st["bytes_on_disk"]), (1, 0, 0, 0, 0), st)
        self.assertEqual(os.listdir(self.daemon.scratch), [])

    def test_example_runs(self):
        # examples/dask_spill.py, small: 8 MB of data, 1 MiB kept per worker.
        example = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples",
                               "dask_spill.py")
        env = dict(os.environ, FARENA_SOCKET=self.daemon.sock, PYTHONPATH=os.pathsep.join(
            [pyharness.PYTHON_DIR] + sys.path[1:]))
        out = subprocess.run([sys.executable, example, "--memory-limit", "300MiB", "--target",
                              "1MiB", "--factor", "0.02"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=90)
        text = out.stdout.decode("utf-8", "replace")
        self.assertEqual(out.returncode, 0, text)
        self.assertIn("ok in", text)
        self.assertIn("0 B still stored after the cluster closed", text)


class SpillBufferTest(unittest.TestCase):
    """farena.dask.SpillBuffer on its own, against a daemon with a 1 MiB quota."""

    @classmethod
    def setUpClass(cls):
        cls.daemon = pyharness.Daemon(["--max-bytes", "1M"])

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()

    def test_spills_and_keeps_what_cannot_spill(self):
        import numpy as np
        buf = farena.dask.SpillBuffer(target=300_000, socket=self.daemon.sock)
        self.addCleanup(buf.close)
        a = [np.random.default_rng(i).random(25_000) for i in range(8)]  # 200 kB each
        for i, v in enumerate(a[:4]):
            buf["a%d" % i] = v
        self.assertEqual(len(buf.fast), 1)
        self.assertEqual(len(buf.slow), 3)
        self.assertGreaterEqual(buf.spilled_total[1], 3 * 200_000)
        self.assertEqual(buf.get_metrics()["disk_count"], 3)
        self.assertGreater(self.daemon.stat()["bytes_on_disk"], 3 * 200_000)
        # The quota is full after five: the sixth spill fails, is logged, and
        # the value stays in memory (as distributed does for a full disk).
        with self.assertLogs("distributed.spill", "ERROR"):
            for i, v in enumerate(a[4:], 4):
                buf["a%d" % i] = v
        self.assertIn("a7", buf.fast)
        self.assertGreater(len(buf.fast), 1)
        self.assertEqual(len(buf), 8)
        for k in list(buf.fast):  # in memory: reading them spills nothing
            self.assertTrue(np.array_equal(buf[k], a[int(k[1:])]), k)
        # A spilled one comes back exact (the quota is freed first: reading
        # moves it to memory, which may evict another, as distributed does).
        spilled = next(iter(buf.slow))
        for k in list(buf.fast):
            del buf[k]
        self.assertTrue(np.array_equal(buf[spilled], a[int(spilled[1:])]))
        for k in list(buf):
            del buf[k]
        self.assertEqual(buf.spilled_total, (0, 0))
        buf.close()
        st = self.daemon.wait_idle()
        self.assertEqual((st["arenas"], st["writers"], st["bytes_on_disk"]), (0, 0, 0))


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]], verbosity=2)
