"""farena.SpillMapping against a private farenad: zict's own mapping checks,
and the design's promises (values leave the process, arenas are released
when their values die, dead space stays bounded, close releases all).

usage: test_python_spill.py FARENAD (environment: see pyharness.py); needs
Debian's python3-zict (and python3-pytest, which its checks import).
"""

import array
import logging
import os
import random
import sys
import unittest

import pyharness
from pyharness import farena

from zict.tests.utils_test import check_closing, check_mapping  # noqa: E402

KiB = 1 << 10
MiB = 1 << 20


class SpillMappingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon = pyharness.Daemon()

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()

    def mapping(self, **kw):
        m = farena.SpillMapping(self.daemon.sock, timeout=30, **kw)
        self.addCleanup(m.close)
        return m

    def assert_idle(self, connections=1):
        st = self.daemon.wait_idle(connections=connections)
        self.assertEqual((st["writers"], st["files"], st["arenas"], st["bytes_on_disk"]),
                         (0, 0, 0, 0), st)

    def assert_bound(self, m):
        st = m.stats()
        self.assertLessEqual(st["stored_bytes"], 2 * st["live_bytes"] + st["writer_bytes"], st)
        self.assertLessEqual(st["writer_bytes"],
                             max(m.segment_bytes, m.tail_bytes + m.own_arena_bytes), st)
        least = max(1, min(m.tail_bytes, m.own_arena_bytes))
        self.assertLessEqual(st["arenas"], 2 * st["live_bytes"] // least + 1, st)
        self.assertLessEqual(st["tail_bytes"], m.tail_bytes, st)

    def test_zict_check_mapping(self):
        m = self.mapping()
        check_mapping(m)
        check_closing(m)
        self.assertTrue(m.closed)
        self.assert_idle()

    def test_zict_checks_with_every_value_sealed(self):
        # No in-memory tail: every get of a fresh value seals an arena.
        m = self.mapping(tail_bytes=0, segment_bytes=64)
        check_mapping(m)
        self.assertGreater(m.stats()["seals"], 0)
        check_closing(m)
        self.assert_idle()

    def test_values_are_bytes_like(self):
        m = self.mapping()
        m["bytes"] = b"abc"
        m["bytearray"] = bytearray(b"def")
        m["memoryview"] = memoryview(b"xxghixx")[2:5]
        m["array"] = array.array("i", [1, 2, 3])
        m["frames"] = [b"jk", bytearray(b"l"), memoryview(b"mn")]
        m["tuple"] = (b"o", b"p")
        m["empty"] = b""
        expect = {"bytes": b"abc", "bytearray": b"def", "memoryview": b"ghi",
                  "array": array.array("i", [1, 2, 3]).tobytes(), "frames": b"jklmn",
                  "tuple": b"op", "empty": b""}
        self.assertEqual(dict(m.items()), expect)
        for v in m.values():
            self.assertIs(type(v), bytes)
        with self.assertRaises(TypeError):
            m["str"] = "not bytes"
        self.assertNotIn("str", m)

    def test_missing_keys(self):
        m = self.mapping()
        with self.assertRaises(KeyError):
            m["nope"]
        with self.assertRaises(KeyError):
            del m["nope"]
        self.assertIsNone(m.get("nope"))
        self.assertEqual(m.pop("nope", 7), 7)

    def test_values_leave_the_process(self):
        m = self.mapping(tail_bytes=64 * KiB, own_arena_bytes=2 * MiB)
        before = self.daemon.stat()["bytes_written"]
        blob = os.urandom(MiB)
        m["a"] = blob
        self.assertGreaterEqual(self.daemon.stat()["bytes_written"] - before, MiB)
        st = m.stats()
        self.assertEqual((st["tail_bytes"], st["writer_bytes"]), (0, MiB))  # no copy kept
        self.assertEqual(m["a"], blob)  # sealed to read it back
        self.assertEqual(m.stats()["seals"], 1)

    def test_large_values_get_an_arena_each(self):
        m = self.mapping()  # own_arena_bytes: 1 MiB
        m["small"] = b"s"
        big = os.urandom(MiB)
        m["big"] = big
        st = m.stats()
        self.assertEqual((st["arenas"], st["writer_bytes"], st["seals"]), (1, 1, 0))
        self.assertEqual(m["big"], big)
        self.assertEqual(m.stats()["seals"], 0)  # readable at once
        frames = [bytearray(b"w" * MiB), memoryview(b"_read-only view")[1:], b"", b"!"]
        m["frames"] = frames
        self.assertEqual(m["frames"], b"w" * MiB + b"read-only view!")
        self.assertEqual(self.daemon.stat()["arenas"], 2)
        del m["big"]  # released at once, nothing to compact
        st = m.stats()
        self.assertEqual((st["arenas"], st["dead_bytes"], st["compactions"]), (1, 0, 0))
        m["frames"] = b"small now"
        self.assertEqual(self.daemon.stat()["arenas"], 0)

    def test_small_recent_values_read_without_sealing(self):
        m = self.mapping(tail_bytes=4 * KiB)
        for i in range(10):
            m["k%d" % i] = b"v%d" % i
            self.assertEqual(m["k%d" % i], b"v%d" % i)
        st = m.stats()
        self.assertEqual(st["seals"], 0)
        self.assertEqual(st["arenas"], 0)
        m["big"] = bytes(8 * KiB)  # the writer passes tail_bytes: no more copies
        self.assertEqual(m.stats()["tail_bytes"], 0)
        self.assertEqual(m["k3"], b"v3")
        st = m.stats()
        self.assertEqual((st["seals"], st["arenas"], st["writer_bytes"]), (1, 1, 0))

    def test_dead_arenas_are_released(self):
        m = self.mapping(tail_bytes=0)
        for i in range(2):
            m["k%d" % i] = bytes([i]) * 1000
        self.assertEqual(m["k0"], bytes(1000))  # seals the two into one arena
        self.assertEqual(self.daemon.stat()["arenas"], 1)
        m["k0"] = b"new"  # overwritten: half the arena is dead, it stays
        self.assertEqual(self.daemon.stat()["arenas"], 1)
        self.assertEqual(m.stats()["dead_bytes"], 1000)
        m["k1"] = b"new"  # all of it dead: released, nothing copied
        st = self.daemon.stat()
        self.assertEqual((st["arenas"], st["writers"], st["bytes_on_disk"]), (0, 1, 6))
        self.assertEqual((m.stats()["stored_bytes"], m.stats()["compactions"]), (6, 0))
        for k in list(m):
            del m[k]  # the writer's values all die: it is released too
        self.assertEqual(self.daemon.stat()["writers"], 0)
        self.assertEqual(m.stats()["stored_bytes"], 0)

    def test_compaction_when_half_dead(self):
        m = self.mapping(tail_bytes=0)
        for i in range(10):
            m["k%d" % i] = bytes([i]) * 1000
        self.assertEqual(m["k9"], bytes([9]) * 1000)
        arena_bytes = self.daemon.stat()["bytes_on_disk"]
        self.assertEqual(arena_bytes, 10000)
        for i in range(5):
            del m["k%d" % i]
        self.assertEqual(m.stats()["compactions"], 0)  # exactly half dead: kept
        del m["k5"]
        st = m.stats()
        self.assertEqual(st["compactions"], 1)
        self.assertEqual((st["arenas"], st["stored_bytes"], st["dead_bytes"]), (0, 4000, 0))
        self.assertEqual(self.daemon.stat()["bytes_on_disk"], 4000)
        self.assertEqual({k: m[k] for k in m}, {"k%d" % i: bytes([i]) * 1000
                                                for i in range(6, 10)})

    def test_random_workload_keeps_the_bound(self):
        m = self.mapping(segment_bytes=64 * KiB, tail_bytes=4 * KiB, own_arena_bytes=5000)
        r = random.Random(13)
        ref = {}
        for _ in range(4000):
            k = "k%d" % r.randrange(200)
            op = r.random()
            if op < 0.55:
                v = r.randbytes(r.randrange(0, 6000))
                m[k] = v
                ref[k] = v
            elif op < 0.75:
                if k in ref:
                    del m[k]
                    del ref[k]
            else:
                self.assertEqual(m.get(k), ref.get(k))
            self.assert_bound(m)
        self.assertEqual(dict(m.items()), ref)
        self.assertGreater(m.stats()["compactions"], 0)
        st = m.stats()
        self.assertEqual(self.daemon.stat()["bytes_on_disk"], st["stored_bytes"])
        m.clear()
        self.assertEqual(len(m), 0)
        self.assert_idle(connections=2)  # cleared, still connected

    def test_large_values_in_pieces(self):
        m = self.mapping()
        blob = os.urandom(9 * MiB + 17)  # ten pieces
        m["big"] = memoryview(blob)
        m["after"] = b"tail"
        self.assertEqual(m["big"], blob)
        self.assertEqual(m["after"], b"tail")
        del m["big"]
        self.assertEqual(m.stats()["live_bytes"], 4)

    def test_clear_reads_nothing(self):
        m = self.mapping(tail_bytes=0)
        for i in range(50):
            m["k%d" % i] = b"x" * 100
        m["k0"]
        gets = self.daemon.stat()["requests"].get("get", 0)
        m.clear()
        self.assertEqual(self.daemon.stat()["requests"].get("get", 0), gets)
        self.assertEqual(list(m), [])
        self.assert_idle(connections=2)

    def test_close_releases_everything(self):
        with farena.SpillMapping(self.daemon.sock) as m:
            for i in range(100):
                m["k%d" % i] = os.urandom(3000)
            m["k1"]
            self.assertGreater(self.daemon.stat()["bytes_on_disk"], 0)
        self.assert_idle()
        self.assertTrue(m.closed)
        self.assertEqual(len(m), 0)
        self.assertNotIn("k1", m)
        with self.assertRaises(farena.ConnectionLostError):
            m["x"] = b"after close"
        m.close()  # idempotent

    def test_not_picklable(self):
        import pickle
        with self.assertRaises(TypeError):
            pickle.dumps(self.mapping())


class SpillMappingQuotaTest(unittest.TestCase):
    """A daemon with a 248 KiB scratch quota: failures keep the mapping whole."""

    @classmethod
    def setUpClass(cls):
        cls.daemon = pyharness.Daemon(["--max-bytes", str(248 * KiB)])

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()

    def test_failed_set_keeps_the_old_value(self):
        with farena.SpillMapping(self.daemon.sock) as m:
            m["k"] = b"old"
            with self.assertRaises(farena.NoSpaceError):
                m["k"] = bytes(300 * KiB)
            self.assertEqual(m["k"], b"old")
            self.assertEqual(len(m), 1)
            m["k"] = b"new"
            self.assertEqual(m["k"], b"new")
        self.assertEqual(self.daemon.wait_idle()["bytes_on_disk"], 0)

    def test_failed_large_set_leaves_nothing(self):
        with farena.SpillMapping(self.daemon.sock) as m:
            m["k"] = b"old"
            with self.assertRaises(farena.NoSpaceError):
                m["k"] = bytes(2 * MiB)  # its own arena: the writer is discarded
            self.assertEqual(m["k"], b"old")
            st = self.daemon.stat()
            self.assertEqual((st["writers"], st["arenas"], st["bytes_on_disk"]), (1, 0, 3))
        self.assertEqual(self.daemon.wait_idle()["bytes_on_disk"], 0)

    def test_failed_compaction_keeps_every_value(self):
        v = 16 * KiB
        with farena.SpillMapping(self.daemon.sock, segment_bytes=64 * KiB, tail_bytes=0) as m:
            for i in range(15):  # three sealed arenas of four, three in the writer
                m["k%d" % i] = bytes([i]) * v
            self.assertEqual(m.stats()["arenas"], 3)
            self.assertEqual(self.daemon.stat()["bytes_on_disk"], 15 * v)
            del m["k0"]
            del m["k1"]
            with self.assertLogs("farena", logging.WARNING) as logs:
                del m["k2"]  # 3/4 dead: compaction needs 16 KiB more than the quota
            self.assertIn("compaction", logs.output[0])
            st = m.stats()
            self.assertEqual((st["arenas"], st["compactions"]), (3, 0))
            self.assertEqual(m["k3"], bytes([3]) * v)
            self.assertEqual(sorted(m), sorted("k%d" % i for i in range(3, 15)))
            del m["k3"]  # the last value of that arena: released, space back
            self.assertEqual(m.stats()["arenas"], 2)
            self.assertEqual(self.daemon.stat()["bytes_on_disk"], 11 * v)
            m["k0"] = bytes(v)
            self.assertEqual(m["k0"], bytes(v))
        self.assertEqual(self.daemon.wait_idle()["bytes_on_disk"], 0)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]], verbosity=2)
