"""Python side of bench/direct.c: one-at-a-time Client.get and bulk
get_many_views of 10,000 x 64 B on a named arena, with direct reads.

usage: direct_py.py SOCKET NAME SECONDS  (FARENA_LIB and FARENA_PYTHON_DIR
set by farena-bench-direct). Prints "get RATE", "bulk RATE" (locations
packed once in a farena.Locs) and "bulk_list RATE" (a list converted on
every call), in items/s.
"""

import os
import random
import sys
import time

sys.path.insert(0, os.environ.get("FARENA_PYTHON_DIR", "."))

import farena  # noqa: E402


def main():
    sock, name, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    with farena.Client(sock) as c:
        arena = c.lookup(name)
        c.open(arena)  # held: read directly
        if not c.direct:
            sys.exit("direct reads are off")
        rng = random.Random(7)
        locs = [farena.Loc(0, 64 * i, 64) for i in range(10000)]
        picks = [locs[rng.randrange(10000)] for _ in range(10000)]
        get = c.get
        n, t0 = 0, time.monotonic()
        while True:
            for loc in picks[:1000]:
                get(arena, loc)
            n += 1000
            t = time.monotonic()
            if t - t0 >= seconds:
                break
        print("get %.0f" % (n / (t - t0)))
        # As C keeps its farena_loc array, the locations are packed once
        # (farena.Locs); "bulk_list" converts the list on every call.
        for label, arg in (("bulk", farena.Locs(picks)), ("bulk_list", picks)):
            n, t0 = 0, time.monotonic()
            while True:
                views = c.get_many_views(arena, arg)
                n += len(views)
                t = time.monotonic()
                if t - t0 >= seconds:
                    break
            print("%s %.0f" % (label, n / (t - t0)))


if __name__ == "__main__":
    main()
