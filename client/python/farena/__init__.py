"""farena: the Python client of farenad, a thin ctypes layer over libfarena.

farenad is a scratch spill store shared between processes on one machine:
payloads go to anonymous files on disk and are read back by location. This
package mirrors the C library (and through it the Rust crate farena 0.3):
bytes in, bytes out, handles as ints, failures as farena.Error. An int
outside its C type's range (a file index above 65535, a negative offset, a
handle of 2**64 or more) raises ValueError before anything is sent.

    import farena

    with farena.Client() as c:               # $FARENA_SOCKET or the default path
        w = c.writer_new(0)
        hello = c.push(w, b"hello")
        world = c.push(w, b" world")
        with c.into_arena(w) as arena:       # released when the block ends
            assert c.get(arena, hello) == b"hello"
            assert c.get_many(arena, [hello, world]) == [b"hello", b" world"]

    with farena.SpillMapping() as m:         # a dict of bytes kept in farenad
        m["x"] = b"spilled"
        assert m["x"] == b"spilled"

What is here:

- Client: one connection; every method of the protocol (writer_new, push,
  push_many, finish, into_arena, build, arena_new, get, get_many, ...).
- Arena: the int handle of an arena this connection holds, returned by
  into_arena, build, arena_new and Client.opened; ``with`` releases it.
- Loc: a location (file_index, offset, len).
- SpillMapping: a MutableMapping[str, bytes] whose values live in farenad
  (see farena.spill); farena.dask.SpillBuffer spills Dask workers to it.
- Error: the base of every exception raised for a failed call; each
  FARENA_E... code has its own subclass (NoSuchNameError, NoSpaceError, ...).

Payload arguments accept any bytes-like object (bytes, bytearray,
memoryview, array, numpy buffers: anything with the buffer protocol) and str
(sent as UTF-8); payloads come back as bytes.

The shared library libfarena.so.1 is loaded from, in order: (1) the
dynamic loader's search (LD_LIBRARY_PATH, the ld.so cache, the system
directories); (2) next to this package: its own directory, the directory
that holds it, and the library directory `cmake --install` recorded
relative to it; (3) $FARENA_LIB, a path. To force one particular build,
put its directory in LD_LIBRARY_PATH. library_path names the file that was
loaded. Standard library only.

A Client is not thread-safe: use one per thread, or serialise calls. A
Reader (Client.reader(arena)) is: any number of threads read one arena
through it at once. After os.fork() a Client or Reader belongs to the
parent; the child must open its own.

Arenas a Client holds (built by it, or opened) are read directly from their
files by libfarena (see farena.h, "Direct reads"): Client(direct=False) or
FARENA_DIRECT=0 turns that off. get_many_views() reads many locations in
one library call and returns memoryviews into one buffer (a Locs converts
the locations once for repeated calls).
"""

import array
import ctypes
import ctypes.util
import itertools
import operator
import os
import sys
import weakref
from collections import namedtuple

__all__ = ["Client", "Arena", "Reader", "Loc", "Locs", "Error", "FarenaError", "SpillMapping",
           "version", "strerror", "library_path"]

Loc = namedtuple("Loc", ["file_index", "offset", "len"])
Loc.__doc__ = "Where a payload lives in an arena: file index, byte offset, length."


class _CLoc(ctypes.Structure):
    _fields_ = [("file_index", ctypes.c_uint16), ("offset", ctypes.c_uint32),
                ("len", ctypes.c_uint32)]


class _CBuf(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("len", ctypes.c_size_t), ("cap", ctypes.c_size_t)]


class _CBufBytes(ctypes.Structure):
    """The same memory as a _CBuf, with data typed so that slicing it gives
    bytes in one step (faster than ctypes.string_at)."""
    _fields_ = [("data", ctypes.POINTER(ctypes.c_char)), ("len", ctypes.c_size_t),
                ("cap", ctypes.c_size_t)]


class _CIovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


_LIMIT_NAMES = ["max_message", "max_batch", "max_depth", "max_objects", "max_name", "file_max",
                "max_clients", "max_writers", "max_handles", "max_bytes", "min_free"]


class _CConnectOptions(ctypes.Structure):
    _fields_ = [("size", ctypes.c_size_t), ("timeout_ms", ctypes.c_int),
                ("direct", ctypes.c_int), ("max_fds", ctypes.c_uint)]


class _CLimits(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in _LIMIT_NAMES]


class _CServerInfo(ctypes.Structure):
    _fields_ = [("server", ctypes.c_char * 32), ("version", ctypes.c_char * 32),
                ("protocol", ctypes.c_uint32), ("limits", _CLimits)]


class _CArenaInfo(ctypes.Structure):
    _fields_ = [("files", ctypes.c_uint64), ("bytes", ctypes.c_uint64),
                ("refs", ctypes.c_uint64), ("has_name", ctypes.c_int),
                ("name", ctypes.c_char * 256)]


_STAT_METHODS = 32
_STAT_NAMES = ["pid", "uptime_ms", "connections", "connections_total", "writers", "files",
               "arenas", "names", "bytes_on_disk", "bytes_written", "bytes_read",
               "requests_total", "errors_total"]


class _CStat(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in _STAT_NAMES] + [
        ("requests", ctypes.c_uint64 * _STAT_METHODS),
        ("errors", ctypes.c_uint64 * _STAT_METHODS)]


_SONAME = "libfarena.so.1"


def _loaded_path(fallback):
    """The file the dynamic loader mapped for libfarena (from
    /proc/self/maps), else fallback."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split(None, 5)[-1].strip()
                if os.path.basename(path).startswith("libfarena.so"):
                    return path
    except OSError:
        pass
    return fallback


def _candidates():
    """The paths tried after the dynamic loader (see the module's docstring)."""
    here = os.path.dirname(os.path.abspath(__file__))
    out = [os.path.join(here, _SONAME), os.path.join(os.path.dirname(here), _SONAME)]
    try:
        from . import _install  # written by `cmake --install`
        out.append(os.path.normpath(os.path.join(here, _install.LIBDIR, _SONAME)))
    except ImportError:
        pass
    env = os.environ.get("FARENA_LIB")
    if env:
        out.append(env)
    return out


def _load_library():
    """Loads libfarena: the dynamic loader, then next to this package, then
    $FARENA_LIB. Returns (the CDLL, the path of the file loaded)."""
    errors = []
    try:
        lib = ctypes.CDLL(_SONAME)
        return lib, _loaded_path(_SONAME)
    except OSError as e:
        errors.append(str(e))
    for path in _candidates():
        if os.path.exists(path):
            try:
                return ctypes.CDLL(path), os.path.abspath(path)
            except OSError as e:
                errors.append(str(e))
    raise ImportError("libfarena not found (%s): install it where the dynamic linker finds it "
                      "(and run ldconfig), put its directory in LD_LIBRARY_PATH, or set "
                      "FARENA_LIB to the path of libfarena.so.1" % "; ".join(errors))


_lib, library_path = _load_library()

_P = ctypes.c_void_p
_H = ctypes.c_uint64
_HP = ctypes.POINTER(ctypes.c_uint64)
_I = ctypes.c_int
_SZ = ctypes.c_size_t
_BUFP = ctypes.POINTER(_CBuf)

for _name, _res, _args in [
    ("farena_version_string", ctypes.c_char_p, []),
    ("farena_strerror", ctypes.c_char_p, [_I]),
    ("farena_errname", ctypes.c_char_p, [_I]),
    ("farena_method_name", ctypes.c_char_p, [ctypes.c_uint]),
    ("farena_connect_ex", _I, [ctypes.c_char_p, _I, ctypes.POINTER(_P), ctypes.c_char_p, _SZ]),
    ("farena_close", None, [_P]),
    ("farena_errmsg", ctypes.c_char_p, [_P]),
    ("farena_set_timeout", _I, [_P, _I]),
    ("farena_server", _I, [_P, ctypes.POINTER(_CServerInfo)]),
    ("farena_hello", _I, [_P, ctypes.POINTER(_CServerInfo)]),
    ("farena_writer_new", _I, [_P, ctypes.c_uint16, _HP]),
    ("farena_push", _I, [_P, _H, ctypes.c_void_p, _SZ, ctypes.POINTER(_CLoc)]),
    ("farena_push_many", _I, [_P, _H, ctypes.POINTER(_CIovec), _SZ, ctypes.POINTER(_CLoc)]),
    ("farena_writer_len", _I, [_P, _H, _HP]),
    ("farena_finish", _I, [_P, _H, _HP]),
    ("farena_into_arena", _I, [_P, _H, _HP]),
    ("farena_build", _I, [_P, _HP, _SZ, _HP]),
    ("farena_arena_new", _I, [_P, _HP, _SZ, _HP]),
    ("farena_get_into", _I, [_P, _H, _CLoc, _BUFP]),
    ("farena_get_str_into", _I, [_P, _H, _CLoc, _BUFP]),
    ("farena_get_many_into", _I, [_P, _H, ctypes.POINTER(_CLoc), _SZ, _BUFP]),
    ("farena_arena_info", _I, [_P, _H, ctypes.POINTER(_CArenaInfo)]),
    ("farena_arena_files", _I, [_P, _H, _HP, _SZ, ctypes.POINTER(_SZ)]),
    ("farena_open", _I, [_P, _H]),
    ("farena_release", _I, [_P, _H]),
    ("farena_name", _I, [_P, _H, ctypes.c_char_p]),
    ("farena_lookup", _I, [_P, ctypes.c_char_p, _HP]),
    ("farena_unname", _I, [_P, ctypes.c_char_p]),
    ("farena_stat", _I, [_P, ctypes.POINTER(_CStat)]),
    ("farena_buf_clear", None, [_BUFP]),
    ("farena_buf_free", None, [_BUFP]),
    ("farena_connect_opts", _I, [ctypes.c_char_p, ctypes.POINTER(_CConnectOptions),
                                 ctypes.POINTER(_P), ctypes.c_char_p, _SZ]),
    ("farena_direct", _I, [_P]),
    ("farena_direct_file", _I, [_P, _H, ctypes.c_uint16, ctypes.POINTER(ctypes.c_int),
                                ctypes.POINTER(ctypes.c_uint64)]),
    ("farena_reader_open", _I, [_P, _H, ctypes.POINTER(_P)]),
    ("farena_reader_close", None, [_P]),
    ("farena_reader_file", _I, [_P, ctypes.c_uint16, ctypes.POINTER(ctypes.c_int),
                                ctypes.POINTER(ctypes.c_uint64)]),
    ("farena_reader_get_into", _I, [_P, _CLoc, _BUFP]),
    ("farena_reader_get_str_into", _I, [_P, _CLoc, _BUFP]),
    ("farena_reader_get_many_into", _I, [_P, ctypes.POINTER(_CLoc), _SZ, _BUFP]),
]:
    _fn = getattr(_lib, _name)
    _fn.restype = _res
    _fn.argtypes = _args


_get_into = _lib.farena_get_into
_pread = os.pread

# Every open Client and Reader, so that a forked child drops what they
# learnt of the parent's descriptors (its calls then fail with ForkError, as
# libfarena's).
_clients = weakref.WeakSet()


def _forget_descriptors_after_fork():
    for c in list(_clients):
        c._files = {}


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_descriptors_after_fork)


def version():
    """Returns libfarena's version string, e.g. "0.1.0"."""
    return _lib.farena_version_string().decode()


def strerror(code):
    """Returns the description of a FARENA_E... code (a negative int)."""
    return _lib.farena_strerror(code).decode()


class Error(Exception):
    """A libfarena call failed: the base of every farena exception.

    code is the negative FARENA_E... int, name its symbol (e.g.
    "FARENA_ENOSUCHNAME"), message the details (the daemon's message or the
    OS reason). Each code raises its own subclass (NoSuchNameError, ...), so
    callers may catch either.
    """

    def __init__(self, code, message=""):
        self.code = code
        raw = _lib.farena_errname(code)
        self.name = raw.decode() if raw else "FARENA_E(%d)" % code
        self.message = message or strerror(code)
        super().__init__("%s: %s" % (self.name, self.message))


_CLASS_NAMES = {
    -1: "BadRequestError", -2: "UnknownMethodError", -3: "NoSuchHandleError",
    -4: "NoSuchNameError", -5: "NameTakenError", -6: "OutOfBoundsError", -7: "FileFullError",
    -8: "DuplicateIndexError", -9: "MissingIndexError", -10: "IndexMismatchError",
    -11: "EmptyError", -12: "TooLargeError", -13: "NoSpaceError", -14: "LimitError",
    -15: "ScratchIOError", -16: "ShuttingDownError", -100: "ConnectError",
    -101: "ConnectionLostError", -102: "ProtocolError", -103: "OutOfMemoryError",
    -104: "Utf8Error", -105: "InvalidArgumentError", -106: "ForkError",
    -107: "UnknownDaemonError", -108: "FarenaTimeoutError",
}
FarenaError = Error  # the name this module used first
_CLASSES = {}
for _code, _cls in _CLASS_NAMES.items():
    _CLASSES[_code] = type(_cls, (Error,), {"__doc__": strerror(_code)})
    globals()[_cls] = _CLASSES[_code]
    __all__.append(_cls)


def _error(code, message=""):
    """Builds the exception for a FARENA_E... code."""
    return _CLASSES.get(code, Error)(code, message)


def _as_bytes(data):
    """Bytes of a payload: bytes-like objects as they are, str as UTF-8."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode("utf-8")
    return bytes(memoryview(data))


_U16_MAX = 0xFFFF
_U32_MAX = 0xFFFFFFFF
_U64_MAX = 0xFFFFFFFFFFFFFFFF
_INT_MAX = 0x7FFFFFFF


def _uint(value, top, what):
    """value as an int in 0..top, else ValueError: ctypes would silently
    truncate it (file index 65536 would become 0, a handle 2**64 + h would
    become h)."""
    v = operator.index(value)
    if not 0 <= v <= top:
        raise ValueError("%s %d is outside 0..%d" % (what, v, top))
    return v


def _h(handle):
    """A handle as the C library takes it (0 is left to the library, which
    refuses it with InvalidArgumentError)."""
    return _uint(handle, _U64_MAX, "handle")


def _ms(seconds):
    """A timeout in seconds (None or 0: none) as the C library's
    milliseconds, at least 1 and at most INT_MAX."""
    if not seconds:
        return 0
    if seconds < 0:
        raise ValueError("a timeout cannot be negative")
    return min(_INT_MAX, max(1, int(seconds * 1000)))


def _c_loc(loc):
    """A farena_loc from a Loc or any (file_index, offset, len) triple."""
    i, off, n = loc
    return _CLoc(_uint(i, _U16_MAX, "file index"), _uint(off, _U32_MAX, "offset"),
                 _uint(n, _U32_MAX, "len"))


class Locs:
    """Locations packed once into a C array (what libfarena's get_many
    takes), from any iterable of Locs or (file_index, offset, len) triples.
    get_many_views(), get_many() and the Reader's accept a Locs as well as
    any iterable; one converted ahead saves the conversion on every call,
    as a C caller keeps its farena_loc array. Immutable; len() and
    indexing (giving Locs) work."""

    __slots__ = ("_arr", "_offs", "_keep")

    def __init__(self, locs):
        if not isinstance(locs, (list, tuple)):
            locs = list(locs)
        flat = None
        if sys.byteorder == "little":
            # A farena_loc is (uint16, 2 bytes of padding, uint32, uint32):
            # on a little-endian machine, three uint32s whose first is the
            # file index, so array() converts them at C speed.
            try:
                flat = array.array("I", itertools.chain.from_iterable(locs))
            except OverflowError:
                raise ValueError("a location field is outside its range") from None
            except TypeError:
                flat = None
            if flat is not None and len(flat) != 3 * len(locs):
                flat = None
        if flat is not None:
            if flat and max(flat[0::3]) > _U16_MAX:
                raise ValueError("a file index is above 65535")
            n = len(locs)
            self._arr = (_CLoc * n).from_buffer(flat) if n else None
            lens = flat[2::3]
        else:
            cl = [_c_loc(x) for x in locs]
            self._arr = (_CLoc * len(cl))(*cl) if cl else None
            lens = [x.len for x in cl]
        self._keep = flat
        self._offs = list(itertools.accumulate(lens, initial=0))

    def __len__(self):
        return len(self._offs) - 1

    def __getitem__(self, i):
        x = self._arr[i] if self._arr is not None else [][i]
        return Loc(x.file_index, x.offset, x.len)

    def _views(self, data):
        """memoryviews of data cut at these locations' lengths, in order."""
        mv = memoryview(data)
        offs = self._offs
        return [mv[a:b] for a, b in zip(offs, offs[1:])]


def _as_locs(locs):
    """locs as a Locs (converted now unless it is one)."""
    return locs if isinstance(locs, Locs) else Locs(locs)


def _c_name(name):
    """The bytes of an arena name (str as UTF-8)."""
    b = name.encode("utf-8") if isinstance(name, str) else bytes(name)
    if not b or b"\0" in b:
        raise ValueError("an arena name is 1..max_name bytes without NUL")
    return b


class Arena(int):
    """The handle of an arena this connection holds a reference to.

    An int, usable wherever a handle is (and equal to it); returned by
    Client.into_arena, build, arena_new and opened. As a context manager its
    exit releases that reference, as release() does. Pickles as a plain int.
    """

    def __new__(cls, handle, client):
        self = int.__new__(cls, handle)
        self._client = client
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
        return False

    def __reduce__(self):
        return (int, (int(self),))

    def __repr__(self):
        return "Arena(%d)" % int(self)

    def release(self):
        """Drops this reference once; later calls, a reference already released
        through Client.release, or a closed client do nothing."""
        client, self._client = self._client, None
        if client is not None and client._c is not None:
            try:
                client.release(int(self))
            except NoSuchHandleError:  # noqa: F821 (made in the loop above)
                pass


class _Closing:
    """Closes on leaving a with block and when collected (close() is
    idempotent; a failure while collected is ignored)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class Client(_Closing):
    """One connection to farenad; a context manager that closes it.

    socket_path: None for $FARENA_SOCKET or the default path; timeout: None
    to wait forever, else seconds (connecting and every later call);
    direct: read held arenas directly (default; FARENA_DIRECT=0 also turns
    it off); max_fds: descriptors kept for that (0: the library's default).
    """

    def __init__(self, socket_path=None, timeout=None, direct=True, max_fds=0):
        self._c = None
        # arena -> {file_index: (fd, size) of libfarena's direct-read
        # descriptor, or None: read through the library}. See get().
        self._files = {}
        self._buf = _CBuf()
        self._bufp = ctypes.byref(self._buf)
        self._bufb = _CBufBytes.from_buffer(self._buf)
        path = os.fsencode(socket_path) if socket_path is not None else None
        opts = _CConnectOptions(ctypes.sizeof(_CConnectOptions), _ms(timeout),
                                1 if direct else 0, _uint(max_fds, _U32_MAX, "max_fds"))
        handle = ctypes.c_void_p()
        why = ctypes.create_string_buffer(320)
        rc = _lib.farena_connect_opts(path, ctypes.byref(opts), ctypes.byref(handle), why,
                                      len(why))
        if rc != 0:
            raise _error(rc, why.value.decode("utf-8", "replace"))
        self._c = handle
        self._direct = bool(_lib.farena_direct(handle))
        _clients.add(self)

    def close(self):
        """Closes the connection; this connection's writers and unbuilt files
        are discarded, its arena references dropped. Idempotent."""
        self._files = {}
        if self._c is not None:
            _lib.farena_close(self._c)
            self._c = None
        _lib.farena_buf_free(ctypes.byref(self._buf))

    def _check(self, rc):
        """Raises the farena.Error for rc when it is not 0."""
        if rc != 0:
            msg = _lib.farena_errmsg(self._c) if self._c is not None else b""
            raise _error(rc, (msg or b"").decode("utf-8", "replace"))

    def _client(self):
        """The C client, or ConnectionLostError once closed."""
        if self._c is None:
            raise _error(-101, "the client is closed")
        return self._c

    # ---- connection ----

    def set_timeout(self, seconds):
        """Sets the time limit of later calls (None or 0: wait forever)."""
        self._check(_lib.farena_set_timeout(self._client(), _ms(seconds)))

    def server(self):
        """What farenad said at connect: server, version, protocol, limits."""
        info = _CServerInfo()
        self._check(_lib.farena_server(self._client(), ctypes.byref(info)))
        return self._server_dict(info)

    def hello(self):
        """Sends hello again (a ping); returns what server() returns."""
        info = _CServerInfo()
        self._check(_lib.farena_hello(self._client(), ctypes.byref(info)))
        return self._server_dict(info)

    @staticmethod
    def _server_dict(info):
        return {"server": info.server.decode(), "version": info.version.decode(),
                "protocol": info.protocol,
                "limits": {n: getattr(info.limits, n) for n in _LIMIT_NAMES}}

    def limits(self):
        """farenad's limits (max_message, max_batch, ...) as a dict."""
        return self.server()["limits"]

    # ---- writing ----

    def writer_new(self, file_index=0):
        """Creates a writer for the file of index file_index; returns its handle."""
        h = ctypes.c_uint64()
        index = _uint(file_index, _U16_MAX, "file index")
        self._check(_lib.farena_writer_new(self._client(), index, ctypes.byref(h)))
        return h.value

    def push(self, writer, data):
        """Appends one payload (bytes-like, or str as UTF-8); returns its Loc."""
        b = _as_bytes(data)
        loc = _CLoc()
        self._check(_lib.farena_push(self._client(), _h(writer), b, len(b), ctypes.byref(loc)))
        return Loc(loc.file_index, loc.offset, loc.len)

    def push_many(self, writer, items):
        """Appends every payload of items in order; returns their Locs.

        Any number of items: libfarena splits and pipelines the requests."""
        writer = _h(writer)
        blobs = [_as_bytes(x) for x in items]
        n = len(blobs)
        if n == 0:
            return []
        iov = (_CIovec * n)()
        for i, b in enumerate(blobs):
            iov[i].iov_base = ctypes.cast(ctypes.c_char_p(b), ctypes.c_void_p).value
            iov[i].iov_len = len(b)
        locs = (_CLoc * n)()
        self._check(_lib.farena_push_many(self._client(), writer, iov, n, locs))
        return [Loc(x.file_index, x.offset, x.len) for x in locs]

    def writer_len(self, writer):
        """Bytes written so far to the writer."""
        v = ctypes.c_uint64()
        self._check(_lib.farena_writer_len(self._client(), _h(writer), ctypes.byref(v)))
        return v.value

    def finish(self, writer):
        """Ends the writer; returns the new file handle."""
        h = ctypes.c_uint64()
        self._check(_lib.farena_finish(self._client(), _h(writer), ctypes.byref(h)))
        return h.value

    def into_arena(self, writer):
        """Ends a writer of index 0 as a one-file arena; returns the arena."""
        h = ctypes.c_uint64()
        self._check(_lib.farena_into_arena(self._client(), _h(writer), ctypes.byref(h)))
        return Arena(h.value, self)

    def _files_call(self, fn, files):
        files = [_h(f) for f in files]
        arr = (ctypes.c_uint64 * max(1, len(files)))(*files)
        h = ctypes.c_uint64()
        self._check(fn(self._client(), arr, len(files), ctypes.byref(h)))
        return h.value

    def build(self, files):
        """Assembles an arena from file handles in any order; returns it."""
        return Arena(self._files_call(_lib.farena_build, files), self)

    def arena_new(self, files):
        """Assembles an arena from file handles in index order; returns it."""
        return Arena(self._files_call(_lib.farena_arena_new, files), self)

    # ---- reading ----

    def _take(self):
        """The bytes in the reused buffer, which is then emptied."""
        buf = self._bufb
        n = buf.len
        data = buf.data[:n] if n else b""
        if buf.cap > (16 << 20):
            _lib.farena_buf_free(self._bufp)
        else:
            buf.len = 0  # farena_buf_clear without a library call
        return data

    def get(self, arena, loc):
        """Returns the payload at loc (a Loc or a triple) as bytes."""
        # Direct reads of a held arena: os.pread on libfarena's descriptor
        # of the file (farena_direct_file), the location checked against the
        # file's size; anything else (not held, out of bounds, an error)
        # takes the library call below, which gives the errors and messages.
        i, off, n = loc
        files = self._files.get(arena)
        if files is not None:
            f = files.get(i)
            if f is not None and 0 <= off and 0 <= n and off + n <= f[1]:
                data = _pread(f[0], n, off)
                if len(data) == n:
                    return data
        elif self._direct:
            files = self._files[arena] = {}
        c = self._c
        if (c is None or type(arena) is not int or not 0 < arena <= _U64_MAX
                or not 0 <= i <= _U16_MAX or not 0 <= off <= _U32_MAX or not 0 <= n <= _U32_MAX):
            c, arena, cloc = self._client(), _h(arena), _c_loc(loc)
        else:
            cloc = _CLoc(i, off, n)
        rc = _get_into(c, arena, cloc, self._bufp)
        if rc != 0:
            self._check(rc)
        if files is not None and i not in files:
            self._learn(files, arena, i)
        return self._take()

    def _learn(self, files, arena, i):
        """Remembers libfarena's descriptor of arena's file i, or None."""
        fd, size = ctypes.c_int(), ctypes.c_uint64()
        rc = _lib.farena_direct_file(self._c, arena, i, ctypes.byref(fd), ctypes.byref(size))
        files[i] = (fd.value, size.value) if rc == 1 else None

    def get_into(self, arena, loc, out):
        """Appends the payload at loc to the bytearray out."""
        out += self.get(arena, loc)

    def get_str(self, arena, loc):
        """Returns the payload at loc as str; Utf8Error if it is not UTF-8."""
        _lib.farena_buf_clear(ctypes.byref(self._buf))
        self._check(_lib.farena_get_str_into(self._client(), _h(arena), _c_loc(loc),
                                             ctypes.byref(self._buf)))
        return self._take().decode("utf-8")

    def get_many(self, arena, locs):
        """Returns the payloads at every loc, in order, as a list of bytes.

        Any number of locations: libfarena splits and pipelines the requests
        (or reads a held arena directly). get_many_views() avoids the
        per-item copies."""
        return [bytes(v) for v in self.get_many_views(arena, locs)]

    def get_many_views(self, arena, locs):
        """Reads every loc in one library call (direct reads: one pread
        each; else pipelined requests) and returns a list of memoryviews, in
        order, all into one bytes buffer: no per-item call or copy. locs is
        a Locs, or any iterable of Locs or (file_index, offset, len)
        triples."""
        locs = _as_locs(locs)
        if not len(locs):
            return []
        self._check(_lib.farena_get_many_into(self._client(), _h(arena), locs._arr, len(locs),
                                              self._bufp))
        return locs._views(self._take())

    @property
    def direct(self):
        """True when this client reads held arenas directly."""
        return bool(_lib.farena_direct(self._client()))

    def reader(self, arena):
        """A Reader on arena: any number of threads may use it at once."""
        return Reader(self, arena)

    def arena_info(self, arena):
        """Returns {"files", "bytes", "refs", "name" (str or None)}."""
        info = _CArenaInfo()
        self._check(_lib.farena_arena_info(self._client(), _h(arena), ctypes.byref(info)))
        return {"files": info.files, "bytes": info.bytes, "refs": info.refs,
                "name": info.name.decode("utf-8", "replace") if info.has_name else None}

    def arena_files(self, arena):
        """Returns the arena's file handles in index order."""
        n = ctypes.c_size_t()
        cap = 64
        while True:
            arr = (ctypes.c_uint64 * cap)()
            self._check(_lib.farena_arena_files(self._client(), _h(arena), arr, cap,
                                                ctypes.byref(n)))
            if n.value <= cap:
                return list(arr[:n.value])
            cap = n.value

    # ---- sharing ----

    def open(self, arena):
        """Takes one more reference to the arena for this connection."""
        self._files.pop(arena, None)  # now held: learn its descriptors again
        self._check(_lib.farena_open(self._client(), _h(arena)))

    def opened(self, arena):
        """Takes a reference like open() and returns it as an Arena, for
        ``with c.opened(c.lookup(name)) as a: ...``."""
        self.open(arena)
        return Arena(arena, self)

    def release(self, handle):
        """Drops this connection's writer, file or one arena reference."""
        self._files.pop(handle, None)  # libfarena may close its descriptors
        self._check(_lib.farena_release(self._client(), _h(handle)))

    def name(self, arena, name):
        """Binds name to the arena; the name keeps it alive."""
        self._check(_lib.farena_name(self._client(), _h(arena), _c_name(name)))

    def lookup(self, name):
        """Returns the arena bound to name (takes no reference)."""
        h = ctypes.c_uint64()
        self._check(_lib.farena_lookup(self._client(), _c_name(name), ctypes.byref(h)))
        return h.value

    def unname(self, name):
        """Removes the name and its reference."""
        self._check(_lib.farena_unname(self._client(), _c_name(name)))

    # ---- daemon ----

    def stat(self):
        """farenad's counters as a dict; "requests" and "errors" map method
        names to counts."""
        st = _CStat()
        self._check(_lib.farena_stat(self._client(), ctypes.byref(st)))
        out = {n: getattr(st, n) for n in _STAT_NAMES}
        for key in ("requests", "errors"):
            per = {}
            for i in range(_STAT_METHODS):
                m = _lib.farena_method_name(i)
                if m is not None and getattr(st, key)[i]:
                    per[m.decode()] = getattr(st, key)[i]
            out[key] = per
        return out


class Reader(_Closing):
    """A read handle on one arena that any number of threads use at once
    (the crate's FileArena shared between threads): libfarena's
    farena_reader. It has its own connection to the daemon, holding one
    reference to the arena until close(), so it outlives the Client that
    made it. Reads of files whose descriptor was fetched take no lock and
    release the GIL while they read. A context manager that closes it; no
    thread may be using it then."""

    def __init__(self, client, arena):
        self._r = None
        # file_index -> (fd, size) of the reader's descriptor, or None: read
        # through the library. See get().
        self._files = {}
        handle = ctypes.c_void_p()
        client._check(_lib.farena_reader_open(client._client(), _h(arena), ctypes.byref(handle)))
        self._r = handle
        _clients.add(self)

    def close(self):
        """Closes the reader (its descriptors, connection and reference).
        Idempotent."""
        self._files = {}
        if self._r is not None:
            _lib.farena_reader_close(self._r)
            self._r = None

    def _reader(self):
        if self._r is None:
            raise _error(-101, "the reader is closed")
        return self._r

    @staticmethod
    def _take(buf):
        """The bytes of a call's own buffer, which is then freed."""
        data = ctypes.string_at(buf.data, buf.len) if buf.len else b""
        _lib.farena_buf_free(ctypes.byref(buf))
        return data

    @staticmethod
    def _check(rc, buf):
        if rc != 0:
            _lib.farena_buf_free(ctypes.byref(buf))
            raise _error(rc)  # readers keep no message (threads share them)

    def get(self, loc):
        """Returns the payload at loc (a Loc or a triple) as bytes."""
        # As Client.get: os.pread on the reader's descriptor of the file
        # (farena_reader_file), which releases the GIL while it reads; the
        # library call for anything else.
        i, off, n = loc
        f = self._files.get(i)
        if f is not None and 0 <= off and 0 <= n and off + n <= f[1]:
            data = _pread(f[0], n, off)
            if len(data) == n:
                return data
        r = self._reader()
        buf = _CBuf()
        self._check(_lib.farena_reader_get_into(r, _c_loc(loc), ctypes.byref(buf)), buf)
        if i not in self._files:
            fd, size = ctypes.c_int(), ctypes.c_uint64()
            rc = _lib.farena_reader_file(r, i, ctypes.byref(fd), ctypes.byref(size))
            self._files[i] = (fd.value, size.value) if rc == 1 else None
        return self._take(buf)

    def get_str(self, loc):
        """Returns the payload at loc as str; Utf8Error if it is not UTF-8."""
        buf = _CBuf()
        self._check(_lib.farena_reader_get_str_into(self._reader(), _c_loc(loc),
                                                    ctypes.byref(buf)), buf)
        return self._take(buf).decode("utf-8")

    def get_many_views(self, locs):
        """Like Client.get_many_views: one library call, memoryviews into
        one buffer."""
        locs = _as_locs(locs)
        if not len(locs):
            return []
        buf = _CBuf()
        self._check(_lib.farena_reader_get_many_into(self._reader(), locs._arr, len(locs),
                                                     ctypes.byref(buf)), buf)
        return locs._views(self._take(buf))

    def get_many(self, locs):
        """The payloads at every loc, in order, as a list of bytes."""
        return [bytes(v) for v in self.get_many_views(locs)]


from .spill import SpillMapping  # noqa: E402 (needs Client, defined above)
