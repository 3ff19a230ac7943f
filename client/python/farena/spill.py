"""farena.spill: SpillMapping, a dict of bytes whose values live in farenad.

Keys and locations stay in the process; values go to farenad and come back
by location (the crate's "keep the locations, drop the data" pattern, made
into a mapping). One mapping uses one connection of its own.

How sets, gets and deletes map onto farena:

- A value of at least ``own_arena_bytes`` (1 MiB) gets a one-file arena of
  its own (writer_new, push, into_arena): readable at once, released as
  soon as it is deleted or overwritten, never copied.
- A smaller value is appended to the mapping's one open writer (file index
  0). The mapping records key -> (segment, offset, length); the value
  leaves the process at once. Arenas are immutable and only arenas can be
  read, so the open writer is sealed (``into_arena``) when a get asks for a
  value in it, or before a push would take it past ``segment_bytes`` (64
  MiB); the next set opens a new writer. While the open writer holds at
  most ``tail_bytes`` (1 MiB), the mapping also keeps copies of its values
  in memory and serves gets of them from there, so reading back what was
  just written never seals a tiny arena: every shared arena holds more than
  ``tail_bytes`` when it is sealed.
- A delete or an overwrite only forgets the location: the value's bytes
  become dead. An arena whose values are all dead is released at once (the
  daemon frees its file); so is the open writer. When more than half of a
  shared arena's bytes are dead, its live values are copied into the open
  writer and the arena is released (compaction; each byte is copied at most
  once per byte that died beside it).
- Values are pushed and read in pieces of at most 1 MiB (or a quarter of
  the daemon's max_message, if smaller), consecutive in one file, so a value
  may be as large as a file (4 GiB - 1). A value given as a list of frames
  (as distributed serialises) is pushed frame by frame without joining.

The bound: bytes held in farenad <= 2 x live bytes + the open writer, which
holds at most max(segment_bytes, tail_bytes + own_arena_bytes) bytes. The
number of arenas is at most 2 x live bytes / min(tail_bytes,
own_arena_bytes) + 1. Memory in the process: the index (one small tuple per
key) plus at most tail_bytes of copies. If a compaction fails (the scratch
disk is full, say), the arena is kept as it is and the compaction is
retried at its next delete; until then the bound may be exceeded, and a
warning is logged on the "farena" logger.

Errors: a failed set raises farena.Error (NoSpaceError, FileFullError, ...)
and leaves the mapping as it was (the old value, if any, stays). A missing
key raises KeyError. A lost connection raises ConnectionLostError on every
later call that needs farenad.

close() (or leaving a ``with`` block) releases every arena and the writer and
closes the connection; the mapping is then empty, and a set raises
ConnectionLostError. A mapping is thread-safe (one lock around each call),
but belongs to the process that made it: after os.fork() the child must
make its own.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Iterator, MutableMapping
from typing import Any, Dict, Hashable, List, Optional, Tuple, Union

from . import Client, ConnectionLostError, NoSuchHandleError, _error, _lib, _CLoc, _h

__all__ = ["SpillMapping"]

_log = logging.getLogger("farena")

_MiB = 1 << 20
_CHUNK = _MiB


class _Segment:
    """One file of the mapping: the open writer, or a sealed one-file arena.

    handle is the writer handle while open, the arena handle once sealed;
    size the bytes in the file, dead those of deleted or overwritten values,
    keys the live keys stored in it; tail, while the writer is open and
    holds at most tail_bytes, maps its keys to copies of their values.
    """

    __slots__ = ("handle", "sealed", "size", "dead", "keys", "tail")

    def __init__(self, handle: int):
        self.handle = handle
        self.sealed = False
        self.size = 0
        self.dead = 0
        self.keys: set = set()
        self.tail: Optional[Dict[Hashable, bytes]] = {}


Value = Union[bytes, bytearray, memoryview, List[Any], Tuple[Any, ...]]


def _frames(value: Any) -> List[memoryview]:
    """The value as a list of flat byte views: a bytes-like object, or a list
    or tuple of them (stored one after the other, as zict.File writes them)."""
    if isinstance(value, str):
        raise TypeError("SpillMapping values are bytes-like, not str")
    parts = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for part in parts:
        if isinstance(part, str):
            raise TypeError("SpillMapping values are bytes-like, not str")
        mv = memoryview(part)
        if not mv.c_contiguous:
            mv = memoryview(mv.tobytes())
        out.append(mv.cast("B") if mv.format != "B" or mv.ndim != 1 else mv)
    return out


def _address(mv: memoryview) -> Tuple[int, Any]:
    """The address of a flat view's first byte, and the object that keeps it
    valid: no copy for bytes and writable buffers, a copy for other
    read-only ones (ctypes takes no pointer into those)."""
    if mv.nbytes == 0:
        return 0, None
    if not mv.readonly:
        c = ctypes.c_char.from_buffer(mv)
        return ctypes.addressof(c), c
    obj = mv.obj
    if isinstance(obj, bytes) and len(obj) == mv.nbytes:
        return ctypes.cast(ctypes.c_char_p(obj), ctypes.c_void_p).value, obj
    copy = bytearray(mv)
    c = ctypes.c_char.from_buffer(copy)
    return ctypes.addressof(c), (copy, c)


class SpillMapping(MutableMapping):
    """A MutableMapping[str, bytes] whose values live in farenad.

    socket_path: None for $FARENA_SOCKET or the default path. timeout: None
    to wait forever, else seconds per call. segment_bytes: the open writer
    is sealed before a push would take it past this (64 MiB). tail_bytes:
    while the open writer holds at most this, copies of its values stay in
    memory (1 MiB). own_arena_bytes: values at least this large get an
    arena of their own (1 MiB). See the module farena.spill for the design
    and the bound on dead space.

    Values may be any bytes-like object, or a list or tuple of them (stored
    joined); they come back as bytes. Keys never leave the process: any
    hashable works, str is what zict and Dask use.
    """

    def __init__(self, socket_path: Optional[str] = None, timeout: Optional[float] = None,
                 segment_bytes: int = 64 * _MiB, tail_bytes: int = _MiB,
                 own_arena_bytes: int = _MiB):
        if segment_bytes < 1 or tail_bytes < 0 or own_arena_bytes < 1:
            raise ValueError("segment_bytes and own_arena_bytes must be positive, "
                             "tail_bytes not negative")
        self._lock = threading.RLock()
        self._index: Dict[Hashable, Tuple[_Segment, int, int]] = {}
        self._writer: Optional[_Segment] = None
        self._arenas: set = set()
        self._client: Optional[Client] = None
        self._client = Client(socket_path, timeout)
        limits = self._client.limits()
        self.segment_bytes = segment_bytes
        self.tail_bytes = tail_bytes
        self.own_arena_bytes = own_arena_bytes
        self._file_max = limits["file_max"]
        # Requests and replies of 1 MiB: libfarena and farenad keep their
        # buffers small and warm (measured faster than 8 MiB pieces for 8 MB
        # values, whose fresh buffers cost page faults), far below
        # max_message.
        self._chunk = max(1, min(_CHUNK, limits["max_message"] // 4))
        self._live = 0
        self.compactions = 0
        self.seals = 0

    # ---- the mapping ----

    def __getitem__(self, key: str) -> bytes:
        with self._lock:
            seg, off, n = self._index[key]
            if not seg.sealed:
                if seg.tail is not None and key in seg.tail:
                    return seg.tail[key]
                self._seal(seg)
            return self._read(seg.handle, off, n)

    def __setitem__(self, key: str, value: Value) -> None:
        frames = _frames(value)
        n = sum(f.nbytes for f in frames)
        with self._lock:
            self._live_client()
            if n >= self.own_arena_bytes:
                seg, off, data = self._own_arena(frames, n), 0, None
            else:
                data = b"".join(frames) if len(frames) != 1 or not isinstance(
                    frames[0].obj, bytes) or frames[0].nbytes != len(frames[0].obj) \
                    else frames[0].obj
                seg, off = self._append(data)
            old = self._forget(key)
            self._index[key] = (seg, off, n)
            seg.keys.add(key)
            self._live += n
            if seg.tail is not None and data is not None:
                seg.tail[key] = data
            if old is not None:
                self._settle(old)

    def __delitem__(self, key: str) -> None:
        with self._lock:
            seg = self._forget(key)
            if seg is None:
                raise KeyError(key)
            self._settle(seg)

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def __repr__(self) -> str:
        return "<SpillMapping: %d keys, %d live bytes%s>" % (
            len(self._index), self._live, "" if self._client is not None else ", closed")

    def clear(self) -> None:
        """Removes every key and releases every arena, without reading values."""
        with self._lock:
            segs = list(self._arenas) + ([self._writer] if self._writer is not None else [])
            self._index.clear()
            self._arenas.clear()
            self._writer = None
            self._live = 0
            for seg in segs:
                self._release(seg)

    # ---- lifetime ----

    def close(self) -> None:
        """Releases every arena and the writer and closes the connection; the
        mapping is then empty. Idempotent."""
        with self._lock:
            if self._client is None:
                return
            # Closing the connection releases the writer and every arena at
            # once (the daemon drops what a closed connection held).
            self._index.clear()
            self._arenas.clear()
            self._writer = None
            self._live = 0
            client, self._client = self._client, None
            client.close()

    @property
    def closed(self) -> bool:
        """True once close() ran."""
        return self._client is None

    def __enter__(self) -> "SpillMapping":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __reduce__(self):
        raise TypeError("a SpillMapping cannot be pickled: its values belong to its connection")

    # ---- introspection ----

    def stats(self) -> Dict[str, int]:
        """Space accounting: keys, live_bytes, dead_bytes, stored_bytes (bytes
        in farenad's files for this mapping), arenas, writer_bytes (in the
        open writer), tail_bytes (copies held in memory), seals and
        compactions so far."""
        with self._lock:
            segs = list(self._arenas) + ([self._writer] if self._writer is not None else [])
            w = self._writer
            return {
                "keys": len(self._index),
                "live_bytes": self._live,
                "dead_bytes": sum(s.dead for s in segs),
                "stored_bytes": sum(s.size for s in segs),
                "arenas": len(self._arenas),
                "writer_bytes": w.size if w is not None else 0,
                "tail_bytes": sum(map(len, w.tail.values())) if w is not None and w.tail else 0,
                "seals": self.seals,
                "compactions": self.compactions,
            }

    # ---- internals ----

    def _live_client(self) -> Client:
        """The connection, or ConnectionLostError once closed."""
        if self._client is None:
            raise _error(-101, "the SpillMapping is closed")
        return self._client

    def _room(self, n: int) -> _Segment:
        """The open writer, with room for n more bytes: a writer that holds
        more than tail_bytes and would pass segment_bytes, or any that would
        pass the daemon's file size limit, is sealed first."""
        if n > self._file_max:
            raise _error(-7, "a value of %d bytes is larger than a file may be (%d)"
                         % (n, self._file_max))
        w = self._writer
        if w is not None and w.size > 0 and (
                w.size + n > self._file_max
                or (w.size > self.tail_bytes and w.size + n > self.segment_bytes)):
            self._seal(w)
            w = None
        if w is None:
            w = _Segment(self._live_client().writer_new(0))
            self._writer = w
        return w

    def _pushed(self, seg: _Segment, n: int) -> None:
        """Accounts for n bytes appended to the open writer seg."""
        seg.size += n
        if seg.tail is not None and seg.size > self.tail_bytes:
            seg.tail = None

    def _push(self, writer: int, frames: List[memoryview], off: int) -> int:
        """Pushes frames one after the other to the writer, whose end is at
        off, in pieces of at most chunk bytes (an empty value is one empty
        push); returns the bytes pushed. On a failure, raises with .pushed
        set to the bytes already in."""
        c = self._live_client()
        done = 0
        try:
            for mv in frames or [memoryview(b"")]:
                if mv.nbytes == 0 and len(frames) > 1:
                    continue
                addr, keep = _address(mv)
                at = 0
                while True:
                    piece = min(self._chunk, mv.nbytes - at)
                    loc = _CLoc()
                    c._check(_lib.farena_push(c._client(), _h(writer), addr + at, piece,
                                              ctypes.byref(loc)))
                    if loc.offset != off + done:
                        raise _error(-102, "push landed at %d, expected %d"
                                     % (loc.offset, off + done))
                    done += piece
                    at += piece
                    if at >= mv.nbytes:
                        break
                del keep
        except BaseException as e:
            e.pushed = done
            raise
        return done

    def _append(self, data: bytes) -> Tuple[_Segment, int]:
        """Appends data to the open writer; returns (segment, offset). On a
        failure the bytes already pushed are counted dead and the error is
        raised."""
        seg = self._room(len(data))
        off = seg.size
        try:
            done = self._push(seg.handle, [memoryview(data)], off)
        except BaseException as e:
            done = getattr(e, "pushed", 0)
            self._pushed(seg, done)
            seg.dead += done
            raise
        self._pushed(seg, done)
        return seg, off

    def _own_arena(self, frames: List[memoryview], n: int) -> _Segment:
        """Stores one large value as a one-file arena of its own (released
        when the value dies: never compacted); returns its segment."""
        if n > self._file_max:
            raise _error(-7, "a value of %d bytes is larger than a file may be (%d)"
                         % (n, self._file_max))
        c = self._live_client()
        w = c.writer_new(0)
        try:
            self._push(w, frames, 0)
            arena = c.into_arena(w)
        except BaseException:
            try:
                c.release(w)
            except Exception:
                pass
            raise
        seg = _Segment(int(arena))
        seg.sealed = True
        seg.size = n
        seg.tail = None
        self._arenas.add(seg)
        return seg

    def _read(self, arena: int, off: int, n: int) -> bytes:
        """The n bytes at off of the one-file arena."""
        c = self._live_client()
        if n <= self._chunk:
            return c.get(arena, (0, off, n))
        return b"".join(c.get(arena, (0, off + at, min(self._chunk, n - at)))
                        for at in range(0, n, self._chunk))

    def _seal(self, seg: _Segment) -> None:
        """Turns the open writer seg into a one-file arena (or releases it
        when nothing in it is live)."""
        if not seg.keys:
            self._release(seg)
            return
        arena = self._live_client().into_arena(seg.handle)
        seg.handle = int(arena)
        seg.sealed = True
        seg.tail = None
        self._writer = None
        self._arenas.add(seg)
        self.seals += 1

    def _release(self, seg: _Segment) -> None:
        """Releases seg's writer or arena and forgets it."""
        if seg is self._writer:
            self._writer = None
        self._arenas.discard(seg)
        if self._client is not None and self._client._c is not None:
            try:
                self._client.release(seg.handle)
            except NoSuchHandleError:
                pass
            except ConnectionLostError:
                pass

    def _forget(self, key: Hashable) -> Optional[_Segment]:
        """Removes key from the index, counting its bytes dead; returns the
        segment that held it (to _settle once the caller is done), or None."""
        entry = self._index.pop(key, None)
        if entry is None:
            return None
        seg, _, n = entry
        self._live -= n
        seg.dead += n
        seg.keys.discard(key)
        if seg.tail is not None:
            seg.tail.pop(key, None)
        return seg

    def _settle(self, seg: _Segment) -> None:
        """After a value of seg died: releases seg when nothing in it is
        live, compacts it when sealed and more than half dead."""
        if not seg.keys:
            if seg is self._writer or seg in self._arenas:
                self._release(seg)
        elif seg.sealed and seg in self._arenas and seg.dead * 2 > seg.size:
            try:
                self._compact(seg)
            except Exception as e:  # the mapping stays consistent; retried later
                _log.warning("farena.SpillMapping: compaction of arena %d failed: %s",
                             seg.handle, e)

    def _compact(self, seg: _Segment) -> None:
        """Copies the live values of the sealed seg into the open writer, then
        releases seg. Keys move one batch at a time, so a failure leaves each
        key either in seg or moved, never lost."""
        c = self._live_client()
        keys = sorted(seg.keys, key=lambda k: self._index[k][1])
        i = 0
        while i < len(keys):
            batch, total = [], 0
            while i < len(keys) and (not batch or total + self._index[keys[i]][2] <= self._chunk):
                batch.append(keys[i])
                total += self._index[keys[i]][2]
                i += 1
            if len(batch) == 1 and total > self._chunk:
                k = batch[0]
                _, off, n = self._index[k]
                values = [self._read(seg.handle, off, n)]
            else:
                values = c.get_many(seg.handle, [(0, self._index[k][1], self._index[k][2])
                                                 for k in batch])
            for k, v in zip(batch, values):
                dest, off = self._append(v)
                seg.keys.discard(k)
                seg.dead += len(v)
                self._index[k] = (dest, off, len(v))
                dest.keys.add(k)
                if dest.tail is not None:
                    dest.tail[k] = v
        self.compactions += 1
        self._release(seg)
