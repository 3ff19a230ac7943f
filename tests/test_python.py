"""The farena package's binding (farena.Client) against a private farenad.

usage: test_python.py FARENAD (environment: see pyharness.py).
"""

import array
import os
import pickle
import pydoc
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import pyharness
from pyharness import Daemon, farena


class FarenaTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon()

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()

    def client(self):
        c = farena.Client(self.daemon.sock, timeout=10)
        self.addCleanup(c.close)
        return c

    def assert_in_child(self, check):
        """Runs check() in a forked child, which exits 0 only if it returns
        True (any exception fails), and asserts that it did."""
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                status = 0 if check() else 1
            finally:
                os._exit(status)
        _, ws = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(ws), 0)

    def assert_fork_error(self, call):
        """call() in a forked child raises farena.ForkError."""
        def check():
            try:
                call()
            except farena.ForkError:
                return True
            return False
        self.assert_in_child(check)

    def test_usage(self):
        with farena.Client(self.daemon.sock) as c:
            w = c.writer_new(0)
            self.assertEqual(c.writer_len(w), 0)
            l1 = c.push(w, b"hello")
            l2 = c.push(w, " world")  # str goes in as UTF-8
            self.assertEqual(l1, farena.Loc(0, 0, 5))
            self.assertEqual(l2, (0, 5, 6))
            arena = c.into_arena(w)
            self.assertEqual(c.get(arena, l1), b"hello")
            self.assertEqual(c.get_str(arena, l2), " world")
            buf = bytearray(b">")
            c.get_into(arena, l1, buf)
            self.assertEqual(buf, b">hello")
        with self.assertRaises(farena.ConnectionLostError):
            c.stat()

    def test_builder_and_arena_new(self):
        c = self.client()
        w0 = c.writer_new(0)
        loc0 = c.push(w0, b"data0")
        f0 = c.finish(w0)
        w1 = c.writer_new(1)
        loc1 = c.push(w1, b"data1")
        f1 = c.finish(w1)
        arena = c.build([f1, f0])
        self.assertEqual(c.get_many(arena, [loc1, loc0]), [b"data1", b"data0"])
        with self.assertRaises(farena.IndexMismatchError):
            c.arena_new([f1, f0])
        low = c.arena_new([f0, f1])
        self.assertEqual(c.get(low, loc1), b"data1")
        self.assertEqual(c.arena_files(low), c.arena_files(arena))
        info = c.arena_info(low)
        self.assertEqual(info, {"files": 2, "bytes": 10, "refs": 1, "name": None})

    def test_batches(self):
        c = self.client()
        w = c.writer_new(0)
        items = [b"item%d" % i for i in range(100000)] + [b"", bytes(range(256)) * 4096]
        locs = c.push_many(w, items)
        self.assertEqual(len(locs), len(items))
        arena = c.into_arena(w)
        self.assertEqual(c.get_many(arena, locs), items)
        self.assertEqual(c.push_many(c.writer_new(0), []), [])
        self.assertEqual(c.get_many(arena, []), [])

    def test_errors(self):
        c = self.client()
        with self.assertRaises(farena.NoSuchNameError) as cm:
            c.lookup("nobody-here")
        e = cm.exception
        self.assertIsInstance(e, farena.FarenaError)
        self.assertEqual(e.code, -4)
        self.assertEqual(e.name, "FARENA_ENOSUCHNAME")
        self.assertIn("nobody-here", e.message)
        w = c.writer_new(0)
        bad = c.push(w, b"\xff\xfe")
        arena = c.into_arena(w)
        with self.assertRaises(farena.Utf8Error):
            c.get_str(arena, bad)
        self.assertEqual(c.get(arena, bad), b"\xff\xfe")
        with self.assertRaises(farena.OutOfBoundsError):
            c.get(arena, (0, 100, 1))
        with self.assertRaises(farena.NoSuchHandleError):
            c.get(999999, (0, 0, 0))
        with self.assertRaises(farena.EmptyError):
            c.build([])
        with self.assertRaises(ValueError):
            c.name(arena, "")
        with self.assertRaises(farena.ConnectError):
            farena.Client(os.path.join(self.daemon.dir, "none.sock"))
        self.assertTrue(farena.strerror(-4))

    def test_names_and_references(self):
        a = self.client()
        b = self.client()
        w = a.writer_new(0)
        loc = a.push(w, b"shared between connections")
        arena = a.into_arena(w)
        a.name(arena, "py-shared")
        a.open(arena)
        self.assertEqual(a.arena_info(arena)["refs"], 3)
        a.release(arena)
        a.release(arena)
        a.close()
        found = b.lookup("py-shared")
        self.assertEqual(found, arena)
        self.assertEqual(b.get(found, loc), b"shared between connections")
        self.assertEqual(b.arena_info(found)["name"], "py-shared")
        b.unname("py-shared")
        with self.assertRaises(farena.NoSuchHandleError):
            b.arena_info(found)

    def test_fork(self):
        c = self.client()
        w = c.writer_new(0)
        loc = c.push(w, b"parent data")
        arena = c.into_arena(w)
        c.name(arena, "py-fork")
        def check():
            try:
                c.stat()
            except farena.ForkError:
                with farena.Client(self.daemon.sock, timeout=10) as own:
                    return own.get(own.lookup("py-fork"), loc) == b"parent data"
            return False
        self.assert_in_child(check)
        self.assertEqual(c.stat()["names"] >= 1, True)  # the parent's client still works
        c.unname("py-fork")

    def test_out_of_range_ints_refused(self):
        # ctypes truncates ints silently: without checks, file index 65536
        # would read file 0, and handle 2**64 + a would release arena a.
        c = self.client()
        w = c.writer_new(0)
        loc = c.push(w, b"abcdef")
        arena = c.into_arena(w)
        for bad in [(65536, 0, 3), (-1, 0, 3), (0, 2**32 + 1, 2), (0, -1, 2), (0, 0, 2**32),
                    (0, 0, -1)]:
            with self.assertRaises(ValueError, msg=repr(bad)):
                c.get(arena, bad)
            with self.assertRaises(ValueError, msg=repr(bad)):
                c.get_many(arena, [loc, bad])
        for bad in [-1, 2**64, 2**64 + arena]:
            for call in (c.release, c.open, c.arena_info, c.arena_files):
                with self.assertRaises(ValueError, msg="%s(%d)" % (call.__name__, bad)):
                    call(bad)
            with self.assertRaises(ValueError):
                c.push(bad, b"x")
            with self.assertRaises(ValueError):
                c.build([bad])
            with self.assertRaises(ValueError):
                c.name(bad, "py-range")
        with self.assertRaises(ValueError):
            c.push_many(2**64 + 1, [b"x"])
        for bad in [65536, -1]:
            with self.assertRaises(ValueError):
                c.writer_new(bad)
        with self.assertRaises(ValueError):
            c.set_timeout(-1)
        with self.assertRaises(ValueError):
            farena.Client(self.daemon.sock, timeout=-1)
        # Large timeouts are clamped, never wrapped into a negative int.
        c.set_timeout(10**12)
        self.assertEqual(c.arena_info(arena)["refs"], 1)
        self.assertEqual(c.get(arena, loc), b"abcdef")

    def test_arena_context_manager(self):
        c = self.client()
        w = c.writer_new(0)
        loc = c.push(w, b"scoped")
        with c.into_arena(w) as arena:
            self.assertIsInstance(arena, int)
            self.assertEqual(repr(arena), "Arena(%d)" % arena)
            self.assertEqual(pickle.loads(pickle.dumps(arena)), int(arena))
            self.assertEqual(c.get(arena, loc), b"scoped")
            c.name(arena, "py-scoped")
            with c.opened(c.lookup("py-scoped")) as again:
                self.assertEqual(c.arena_info(again)["refs"], 3)
            self.assertEqual(c.arena_info(arena)["refs"], 2)
        self.assertEqual(c.arena_info(arena)["refs"], 1)  # the name's
        arena.release()  # once only: a second release does nothing
        self.assertEqual(c.arena_info(arena)["refs"], 1)
        c.unname("py-scoped")
        with self.assertRaises(farena.NoSuchHandleError):
            c.arena_info(arena)
        # Released explicitly inside the block, or after close: no error.
        w = c.writer_new(0)
        c.push(w, b"x")
        with c.into_arena(w) as other:
            c.release(other)
        w = c.writer_new(0)
        c.push(w, b"x")
        d = farena.Client(self.daemon.sock)
        w2 = d.writer_new(0)
        d.push(w2, b"y")
        with d.into_arena(w2):
            d.close()

    def test_bytes_like_everywhere(self):
        c = self.client()
        w = c.writer_new(0)
        items = [b"b", bytearray(b"ba"), memoryview(b"mvx")[:2], array.array("B", [1, 2]),
                 "str"]
        locs = c.push_many(w, items)
        one = c.push(w, memoryview(bytearray(b"single")))
        arena = c.into_arena(w)
        self.assertEqual(c.get_many(arena, locs), [b"b", b"ba", b"mv", b"\x01\x02", b"str"])
        self.assertEqual(c.get(arena, one), b"single")
        c.name(arena, b"py-bytes-name")
        self.assertEqual(c.lookup(bytearray(b"py-bytes-name")), arena)
        c.unname("py-bytes-name")
        buf = bytearray()
        c.get_into(arena, one, buf)
        self.assertEqual(memoryview(buf).tobytes(), b"single")
    def _arena_of(self, c, n=300, files=3):
        """An arena of n payloads over files files; returns (arena, locs, payloads)."""
        ws = [c.writer_new(i) for i in range(files)]
        payloads = [bytes((i * 7 + k) % 256 for k in range(i % 97)) for i in range(n)]
        locs = [c.push(ws[i % files], p) for i, p in enumerate(payloads)]
        arena = c.build([c.finish(w) for w in ws])
        return arena, locs, payloads

    def test_direct_reads_and_views(self):
        c = self.client()
        self.assertEqual(c.direct, os.environ.get("FARENA_DIRECT") != "0")
        arena, locs, payloads = self._arena_of(c)
        off = farena.Client(self.daemon.sock, timeout=10, direct=False)
        self.addCleanup(off.close)
        self.assertFalse(off.direct)
        off.open(arena)
        for loc, p in zip(locs, payloads):
            self.assertEqual(c.get(arena, loc), p)
            self.assertEqual(off.get(arena, loc), p)
        views = c.get_many_views(arena, locs)
        self.assertEqual([bytes(v) for v in views], payloads)
        self.assertTrue(all(isinstance(v, memoryview) for v in views))
        # Any iterable of triples; a generator too.
        views = c.get_many_views(arena, ((x.file_index, x.offset, x.len) for x in locs[:5]))
        self.assertEqual([bytes(v) for v in views], payloads[:5])
        self.assertEqual(c.get_many_views(arena, []), [])
        # Locations converted once, read many times.
        packed = farena.Locs(locs)
        self.assertEqual(len(packed), len(locs))
        self.assertEqual(packed[3], locs[3])
        self.assertEqual(packed[-1], locs[-1])
        for _ in range(2):
            self.assertEqual([bytes(v) for v in c.get_many_views(arena, packed)], payloads)
        self.assertEqual(c.get_many(arena, packed), payloads)
        self.assertEqual(len(farena.Locs([])), 0)
        self.assertEqual([bytes(v) for v in off.get_many_views(arena, locs)], payloads)
        for bad in [(65536, 0, 1), (-1, 0, 1), (0, 2**32, 1), (0, 0, -1)]:
            with self.assertRaises(ValueError, msg=repr(bad)):
                c.get_many_views(arena, [locs[0], bad])
        # The same errors and messages both ways.
        for cl in (c, off):
            with self.assertRaises(farena.OutOfBoundsError) as e:
                cl.get_many_views(arena, [locs[0], (7, 0, 1)])
            self.assertEqual(e.exception.message, "item 1: file index 7 is not in the arena "
                             "(3 files)")
            with self.assertRaises(farena.OutOfBoundsError) as e:
                cl.get(arena, (0, 1 << 20, 1))
            self.assertIn("is past the end of file 0", e.exception.message)
        # A forked child never reads through the parent's descriptors.
        self.assert_fork_error(lambda: c.get(arena, locs[1]))
        # Released by both: gone, whatever c learnt of its files.
        self.assertEqual(c.get(arena, locs[1]), payloads[1])
        off.release(arena)
        c.release(arena)
        with self.assertRaises(farena.NoSuchHandleError):
            c.get(arena, locs[1])

    def test_descriptor_budget(self):
        # One descriptor for an arena of three files: every read is right,
        # the files past the budget go through the daemon.
        c = farena.Client(self.daemon.sock, timeout=10, max_fds=1)
        self.addCleanup(c.close)
        arena, locs, payloads = self._arena_of(c, n=60, files=3)
        for loc, p in zip(locs, payloads):
            self.assertEqual(c.get(arena, loc), p)
        self.assertEqual(c.get_many(arena, locs), payloads)
        with self.assertRaises(ValueError):
            farena.Client(self.daemon.sock, max_fds=-1)

    def test_reader_threads(self):
        c = self.client()
        arena, locs, payloads = self._arena_of(c, n=500, files=4)
        reader = c.reader(arena)
        self.addCleanup(reader.close)
        c.release(arena)  # the reader holds its own reference
        errors = []

        def work(seed):
            try:
                for k in range(300):
                    i = (seed * 131 + k * 17) % len(locs)
                    if reader.get(locs[i]) != payloads[i]:
                        errors.append(("get", i))
                    if k % 20 == 0:
                        got = reader.get_many_views(locs[i:i + 40])
                        if [bytes(v) for v in got] != payloads[i:i + 40]:
                            errors.append(("many", i))
                try:
                    reader.get((0, 1 << 30, 1))
                    errors.append("no error")
                except farena.OutOfBoundsError:
                    pass
            except Exception as e:  # reported below
                errors.append(repr(e))

        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(reader.get_many(locs[:3]), payloads[:3])
        self.assertEqual([bytes(v) for v in reader.get_many_views(farena.Locs(locs))], payloads)
        self.assertEqual(reader.get_str(locs[0]), "")
        self.assert_fork_error(lambda: reader.get(locs[1]))
        reader.close()
        with self.assertRaises(farena.ConnectionLostError):
            reader.get(locs[0])
        with self.assertRaises(farena.NoSuchHandleError):
            c.reader(123456)

    def test_server_and_stat(self):
        c = self.client()
        info = c.server()
        self.assertEqual(info["server"], "farenad")
        self.assertEqual(info["protocol"], 1)
        self.assertEqual(c.limits()["max_batch"], 65536)
        self.assertEqual(c.hello()["version"], info["version"])
        st = c.stat()
        self.assertEqual(st["pid"], self.daemon.proc.pid)
        self.assertGreaterEqual(st["requests"]["hello"], 2)
        c.set_timeout(5)
        c.set_timeout(None)
        self.assertEqual(farena.version(), "0.1.0")


class PackageTest(unittest.TestCase):
    """The package as the ecosystem expects it (no daemon needed)."""

    def test_loads_the_library_under_test(self):
        want = os.environ.get("FARENA_LIB")
        if not want:
            self.skipTest("FARENA_LIB not set")
        self.assertTrue(os.path.samefile(farena.library_path, want),
                        "%s is not %s" % (farena.library_path, want))

    def run_import(self, env_changes):
        """Imports farena from the source tree in a fresh python3 without
        LD_LIBRARY_PATH; returns (exit status, output)."""
        env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "FARENA_LIB")}
        env.update(env_changes)
        env["PYTHONPATH"] = pyharness.PYTHON_DIR
        out = subprocess.run([sys.executable, "-c", "import farena; print(farena.library_path)"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             timeout=60, cwd=tempfile.gettempdir())
        return out.returncode, out.stdout.decode().strip()

    def loader_finds_one(self):
        """Whether the dynamic loader alone finds a libfarena.so.1 (installed
        system-wide), which then comes first."""
        code = "import ctypes\ntry:\n ctypes.CDLL('libfarena.so.1')\nexcept OSError:\n exit(1)"
        env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
        return subprocess.run([sys.executable, "-c", code], env=env, timeout=60).returncode == 0

    def test_farena_lib_is_the_last_resort(self):
        want = os.environ.get("FARENA_LIB")
        if not want or self.loader_finds_one():
            self.skipTest("FARENA_LIB not set, or a libfarena.so.1 is installed")
        rc, out = self.run_import({"FARENA_LIB": want})
        self.assertEqual(rc, 0, out)
        self.assertTrue(os.path.samefile(out, want), out)
        rc, out = self.run_import({})
        self.assertNotEqual(rc, 0)
        self.assertIn("libfarena not found", out)
        self.assertIn("FARENA_LIB", out)

    def test_one_exception_base(self):
        self.assertIs(farena.FarenaError, farena.Error)
        for name in farena.__all__:
            obj = getattr(farena, name)
            if isinstance(obj, type) and issubclass(obj, Exception):
                self.assertTrue(issubclass(obj, farena.Error), name)
        self.assertTrue(issubclass(farena.NoSpaceError, farena.Error))

    def test_documented(self):
        text = pydoc.render_doc(farena, renderer=pydoc.plaintext)
        for word in ("SpillMapping", "libfarena.so.1", "LD_LIBRARY_PATH", "FARENA_LIB"):
            self.assertIn(word, text)
        for cls in (farena.Client, farena.Arena, farena.SpillMapping):
            for name, member in vars(cls).items():
                if callable(member) and not name.startswith("_"):
                    self.assertTrue(member.__doc__, "%s.%s" % (cls.__name__, name))
        stub = os.path.join(os.path.dirname(farena.__file__), "__init__.pyi")
        with open(stub) as f:
            hints = f.read()
        for name, member in vars(farena.Client).items():
            if callable(member) and not name.startswith("_"):
                self.assertIn("def %s(" % name, hints, name)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]], verbosity=2)
