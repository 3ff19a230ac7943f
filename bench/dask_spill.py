#!/usr/bin/env python3
"""The same Dask workload spilling to farena and to distributed's default
(zict.File under each worker's local directory), in one run.

    python3 bench/dask_spill.py [--farenad build/release/daemon/farenad] [--size 768MiB]

For each spill target, in turn (--rounds times, alternating): a LocalCluster
of --workers processes, each keeping --target bytes in memory (by sizeof),
persists a random float64 matrix of --size bytes (incompressible, so every
spilled byte is written), then its sum with its transpose (every block moves
between workers), and sums that. Reported: wall time of the workload
(cluster start excluded), the workers' peak RSS (ru_maxrss, the largest
worker), farenad's peak RSS (VmHWM; its own process, started here), and
the sum, which must be the same for both.

Then, per target, a second cluster persists the matrix (spilled), and one
worker is killed with SIGKILL (its nanny told neither to restart it nor to
remove its directory, as when the nanny dies with it: a whole job killed,
the OOM killer, a crashed container; a surviving nanny cleans up itself): the files left in its local directory a second later and
under the cluster's local directory once the cluster closed, and for farena
the bytes farenad still holds once the worker's connection closed.

Only the RSS-driven memory monitor is off (spilling is by target alone, the
same in both); the spill code paths are distributed's own. Output: a
markdown table on stdout. Both targets write to the same file system: the
workers' local directories and farenad's scratch directory are both under
--dir (default $TMPDIR or /var/tmp).
"""

import argparse
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "client", "python"))

import dask  # noqa: E402
import dask.array as da  # noqa: E402
from dask.utils import format_bytes, parse_bytes  # noqa: E402
from distributed import Client, LocalCluster, wait  # noqa: E402

import farena  # noqa: E402
import farena.dask  # noqa: E402


def find_farenad(given):
    """The farenad to run: --farenad, else a build tree's, else PATH's."""
    if given:
        return given
    for build in ("release", "dev", "run"):
        path = os.path.join(HERE, "..", "build", build, "daemon", "farenad")
        if os.access(path, os.X_OK):
            return os.path.abspath(path)
    return shutil.which("farenad") or sys.exit("no farenad: pass --farenad")


class Farenad:
    """A private farenad on a temporary socket, scratch under base."""

    def __init__(self, exe, base):
        self.dir = tempfile.mkdtemp(prefix="farenad-", dir=base)
        self.sock = os.path.join(self.dir, "farenad.sock")
        self.scratch = os.path.join(self.dir, "scratch")
        os.mkdir(self.scratch)
        self.proc = subprocess.Popen([exe, "--socket", self.sock, "--dir", self.scratch,
                                      "--min-free", "0", "-q"])
        deadline = time.monotonic() + 10
        while True:
            try:
                farena.Client(self.sock, timeout=1).close()
                return
            except farena.Error:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    sys.exit("farenad did not start")
                time.sleep(0.02)

    def stat(self):
        with farena.Client(self.sock, timeout=10) as c:
            return c.stat()

    def hwm(self):
        """Peak RSS in bytes (VmHWM)."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return 0

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


def peak_rss():
    """This worker's peak RSS in bytes (run on the workers)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def worker_info(dask_worker):
    """pid and local directory (run on the workers)."""
    return os.getpid(), dask_worker.local_directory


def files_under(path):
    """(count, bytes) of the regular files under path."""
    n = size = 0
    for root, _, names in os.walk(path):
        for name in names:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            n += 1
            size += st.st_size
    return n, size


def cluster(args, mode, daemon, local):
    """A LocalCluster whose workers spill by target to farena or to disk."""
    limit = parse_bytes(args.memory_limit)
    target = parse_bytes(args.target)
    kw = dict(n_workers=args.workers, threads_per_worker=args.threads, processes=True,
              memory_limit=limit, dashboard_address=None, host="127.0.0.1",
              local_directory=local)
    if mode == "farena":
        kw["data"] = (farena.dask.SpillBuffer, {"target": target, "socket": daemon.sock})
    # distributed's default SpillBuffer takes target = memory_limit x this fraction.
    cfg = {"distributed.worker.memory.target": target / limit,
           "distributed.worker.memory.spill": False,
           "distributed.worker.memory.pause": False,
           "distributed.worker.memory.terminate": False}
    with dask.config.set(cfg):
        return LocalCluster(**kw)


def workload(args):
    """The matrix and its symmetric sum, as dask arrays."""
    n = int((parse_bytes(args.size) / 8) ** 0.5) // 1000 * 1000
    x = da.random.RandomState(args.seed).random((n, n), chunks=(1000, 1000))
    return n, x


def run_once(args, mode, daemon, base):
    """One timed run; returns a dict of measurements."""
    local = tempfile.mkdtemp(prefix="dask-%s-" % mode, dir=base)
    before = daemon.stat()
    c = cluster(args, mode, daemon, local)
    try:
        with Client(c) as client:
            client.wait_for_workers(args.workers)
            n, x = workload(args)
            t0 = time.perf_counter()
            x = x.persist()
            wait(x)
            y = (x + x.T).persist()
            wait(y)
            total = float(y.sum().compute())
            wall = time.perf_counter() - t0
            spilled = client.run(lambda dask_worker: dask_worker.data.spilled_total)
            rss = max(client.run(peak_rss).values())
            del x, y
    finally:
        c.close()
    after = daemon.stat()
    left = files_under(local)
    shutil.rmtree(local, ignore_errors=True)
    return {"wall": wall, "rss": rss, "sum": total, "n": n,
            "spilled": sum(s[1] for s in spilled.values()),
            "farena_written": after["bytes_written"] - before["bytes_written"],
            "left_after_close": left}


def kill_once(args, mode, daemon, base):
    """Persist (spilled), SIGKILL one worker, count what it left."""
    local = tempfile.mkdtemp(prefix="dask-kill-%s-" % mode, dir=base)
    c = cluster(args, mode, daemon, local)
    try:
        with Client(c) as client:
            client.wait_for_workers(args.workers)
            _, x = workload(args)
            x = x.persist()
            wait(x)
            info = client.run(worker_info)
            addr = sorted(info)[0]
            pid, wdir = info[addr]
            share = 0
            if mode == "farena":
                share = client.run(lambda dask_worker: dask_worker.data.mapping.stats()[
                    "stored_bytes"], workers=[addr])[addr]
            st = daemon.stat()
            held, conns = st["bytes_on_disk"], st["connections"]
            before = files_under(wdir)
            # As if the nanny died with its worker (the whole job SIGKILLed,
            # the OOM killer, a crashed container): a surviving nanny removes
            # a dead worker's directory itself and starts a new worker, which
            # purges stale directories of the same base.
            for nanny in c.workers.values():
                if nanny.worker_address == addr:
                    nanny.close_gracefully()
                    if nanny.process is not None:
                        nanny.process.worker_dir = None
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.005)
            # farenad drops what the worker held when its connection closes;
            # measured at once, before the lost blocks are recomputed.
            after = held
            while mode == "farena" and time.monotonic() < deadline:
                st = daemon.stat()
                if st["connections"] < conns:
                    after = st["bytes_on_disk"]
                    break
                time.sleep(0.002)
            time.sleep(1.0)
            left = files_under(wdir)
            del x
    finally:
        c.close()
    after_close = files_under(local)
    shutil.rmtree(local, ignore_errors=True)
    return {"files_before": before, "files_left": left, "farena_held_before": held,
            "farena_held_after": after, "farena_share": share, "after_close": after_close}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--farenad", default=None)
    ap.add_argument("--dir", default=os.environ.get("TMPDIR", "/var/tmp"),
                    help="where workers' local directories and farenad's scratch go")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--memory-limit", default="2GiB", help="per worker")
    ap.add_argument("--target", default="128MiB", help="bytes a worker keeps in memory")
    ap.add_argument("--size", default="768MiB", help="bytes of the matrix")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    exe = find_farenad(args.farenad)
    daemon = Farenad(exe, args.dir)
    os.environ["FARENA_SOCKET"] = daemon.sock
    os.environ["PYTHONPATH"] = os.pathsep.join([os.path.join(HERE, "..", "client", "python")]
                                               + [p for p in sys.path[1:] if p])
    results = {"farena": [], "default": []}
    try:
        for _ in range(args.rounds):
            for mode in ("farena", "default"):
                results[mode].append(run_once(args, mode, daemon, args.dir))
        kills = {mode: kill_once(args, mode, daemon, args.dir) for mode in ("farena", "default")}
        daemon_hwm = daemon.hwm()
    finally:
        daemon.stop()

    r0 = results["farena"][0]
    print("Dask spill: %d workers x %d thread(s), memory_limit %s, target %s, matrix %d x %d "
          "float64 (%s) persisted twice; %d round(s); farenad %s; dir %s; distributed %s"
          % (args.workers, args.threads, args.memory_limit, args.target, r0["n"], r0["n"],
             format_bytes(r0["n"] ** 2 * 8), args.rounds, exe, args.dir,
             __import__("distributed").__version__))
    print()
    print("| spill to | wall (median) | workers' peak RSS (max) | spilled at end | "
          "farenad peak RSS | files left by a SIGKILLed worker | bytes left | "
          "files left after the cluster closed |")
    print("|---|---|---|---|---|---|---|---|")
    for mode in ("farena", "default"):
        rs = results[mode]
        walls = sorted(r["wall"] for r in rs)
        k = kills[mode]
        extra = format_bytes(daemon_hwm) if mode == "farena" else "—"
        if mode == "farena":
            left_bytes = "%s (farenad held %s, the killed worker's %s of it; %s after its " \
                "disconnect)" % (format_bytes(k["files_left"][1]),
                                 format_bytes(k["farena_held_before"]),
                                 format_bytes(k["farena_share"]),
                                 format_bytes(k["farena_held_after"]))
        else:
            left_bytes = format_bytes(k["files_left"][1])
        print("| %s | %.2f s | %s | %s | %s | %d (of %d before the kill) | %s | %d (%s) |"
              % ("farena (farena.dask.SpillBuffer)" if mode == "farena"
                 else "local disk (distributed default, zict.File)",
                 walls[len(walls) // 2], format_bytes(max(r["rss"] for r in rs)),
                 format_bytes(max(r["spilled"] for r in rs)), extra,
                 k["files_left"][0], k["files_before"][0], left_bytes,
                 k["after_close"][0], format_bytes(k["after_close"][1])))
    sums = {r["sum"] for rs in results.values() for r in rs}
    print()
    print("Every run's sum: %s (%s)" % (", ".join(repr(s) for s in sorted(sums)),
                                        "identical" if len(sums) == 1 else "DIFFERENT"))
    print("Per round wall times: farena %s; default %s" % (
        ", ".join("%.2f" % r["wall"] for r in results["farena"]),
        ", ".join("%.2f" % r["wall"] for r in results["default"])))
    return 0 if len(sums) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
