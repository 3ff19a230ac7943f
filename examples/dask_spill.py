#!/usr/bin/env python3
"""Dask workers spilling to farenad: a computation on data several times the
workers' memory, with its result checked.

    scripts/run.sh &                       # or the user service: a farenad on the default socket
    python3 examples/dask_spill.py         # --help for sizes

A LocalCluster of --workers processes, each with --memory-limit, holds an
int64 matrix of about --factor times their memory together (persisted, so it
stays on the workers), adds it to its transpose (which moves every block
between workers) and sums the result. Every worker keeps --target bytes in
memory and spills the rest to farenad through farena.dask.SpillBuffer. The
sum has a closed form, and a few elements are checked one by one.

Needs Debian's python3-distributed (and python3-numpy), the farena package
(pip install --no-build-isolation client/python, or cmake --install) and a
running farenad ($FARENA_SOCKET, else the default path).
"""

import argparse
import sys
import time

import dask
import dask.array as da
from dask.utils import format_bytes, parse_bytes
from distributed import Client, LocalCluster, wait

import farena
import farena.dask


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--memory-limit", default="512MiB", help="per worker (default 512MiB)")
    ap.add_argument("--target", default=None,
                    help="bytes a worker keeps in memory (default: an eighth of the limit)")
    ap.add_argument("--factor", type=float, default=3.0,
                    help="data size / total worker memory (default 3)")
    ap.add_argument("--socket", default=None, help="farenad's socket (default: $FARENA_SOCKET "
                    "or the default path)")
    args = ap.parse_args()

    limit = parse_bytes(args.memory_limit)
    target = parse_bytes(args.target) if args.target else limit // 8
    # An n x n int64 matrix of factor x the workers' memory, in 1000 x 1000 blocks.
    n = int((args.factor * args.workers * limit / 8) ** 0.5) // 1000 * 1000 or 1000

    with farena.Client(args.socket, timeout=10) as fc:
        before = fc.stat()
        version = fc.server()["version"]
    print("farenad %s, pid %d; data %s (%d x %d int64) on %d workers of %s, target %s"
          % (version, before["pid"], format_bytes(n * n * 8), n, n,
             args.workers, format_bytes(limit), format_bytes(target)))

    # Spilling by target only; the RSS-driven monitor stays on for pausing.
    with dask.config.set({"distributed.worker.memory.spill": False}):
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                          memory_limit=limit, dashboard_address=None,
                          data=(farena.dask.SpillBuffer,
                                {"target": target, "socket": args.socket})) as cluster, \
                Client(cluster) as client:
            t0 = time.perf_counter()
            # x[i, j] = i * n + j, made block by block on the workers.
            x = da.fromfunction(lambda i, j: i * n + j, shape=(n, n), chunks=(1000, 1000),
                                dtype="int64").persist()
            wait(x)
            z = (x + x.T).persist()
            wait(z)
            del x
            total = int(z.sum().compute())
            samples = [(0, 0), (1, 2), (n - 1, 0), (n // 2, n // 3), (n - 1, n - 1)]
            values = [int(z[i, j].compute()) for i, j in samples]
            spilled = client.run(lambda dask_worker: tuple(dask_worker.data.spilled_total))
            del z
            elapsed = time.perf_counter() - t0

    nn = n * n
    expect = nn * (nn - 1)  # sum of x + x.T = 2 * sum(range(n * n))
    ok = total == expect and all(v == i * n + j + j * n + i for (i, j), v in zip(samples, values))
    with farena.Client(args.socket, timeout=10) as fc:
        # The workers' connections close as their processes exit.
        deadline = time.monotonic() + 10
        while True:
            after = fc.stat()
            if after["bytes_on_disk"] <= before["bytes_on_disk"] or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    print("sum %d (expected %d): %s in %.1f s" % (total, expect, "ok" if ok else "WRONG", elapsed))
    for who, (mem, disk) in sorted(spilled.items()):
        print("  %s holds %s spilled (%s serialised)" % (who, format_bytes(mem), format_bytes(disk)))
    print("farenad: %s written, %s read; %s still stored after the cluster closed"
          % (format_bytes(after["bytes_written"] - before["bytes_written"]),
             format_bytes(after["bytes_read"] - before["bytes_read"]),
             format_bytes(after["bytes_on_disk"] - before["bytes_on_disk"])))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
