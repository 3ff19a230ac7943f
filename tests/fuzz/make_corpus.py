#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_scan_decode into tests/fuzz/corpus/.

Each file is: one byte choosing the scanner limits, one byte choosing the
chunking, then a byte stream (see tests/fuzz/pipeline.h). The seeds cover
every method of protocol 1 with well-formed params, responses and
notifications, every msgpack format, and the hostile inputs the guards
exist for. Needs only the Python standard library (a tiny msgpack encoder
is below), so it runs anywhere: python3 tests/fuzz/make_corpus.py
"""
import os
import struct
import sys

# Limits selector: max_message index | depth index << 2 | objects index << 4
# (see pick_limits() in pipeline.c). 0x3a is the daemon's defaults.
DEFAULTS = 0x3A
SMALL = 0x00 | (1 << 2) | (1 << 4)  # 64 KiB, depth 4, 16 objects
# Chunking: low two bits pick a span of 1, 3, 17 or 300 bytes; 0x80 = whole.
BYTEWISE, SMALL_CHUNKS, MID_CHUNKS, WHOLE = 0x00, 0x01, 0x02, 0x80


class Raw(bytes):
    """Bytes emitted as they are (hand-made encodings)."""


def pack(v):
    """Minimal msgpack encoding of None/bool/int/float/str/bytes/list/dict."""
    if isinstance(v, Raw):
        return bytes(v)
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack("b", v)
        if v >= 0:
            for fmt, marker in (("B", 0xCC), (">H", 0xCD), (">I", 0xCE), (">Q", 0xCF)):
                try:
                    return bytes([marker]) + struct.pack(fmt, v)
                except struct.error:
                    continue
        for fmt, marker in (("b", 0xD0), (">h", 0xD1), (">i", 0xD2), (">q", 0xD3)):
            try:
                return bytes([marker]) + struct.pack(fmt, v)
            except struct.error:
                continue
        raise ValueError(v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        n = len(b)
        if n < 32:
            return bytes([0xA0 | n]) + b
        if n < 256:
            return b"\xd9" + bytes([n]) + b
        if n < 65536:
            return b"\xda" + struct.pack(">H", n) + b
        return b"\xdb" + struct.pack(">I", n) + b
    if isinstance(v, (bytes, bytearray)):
        n = len(v)
        if n < 256:
            return b"\xc4" + bytes([n]) + bytes(v)
        if n < 65536:
            return b"\xc5" + struct.pack(">H", n) + bytes(v)
        return b"\xc6" + struct.pack(">I", n) + bytes(v)
    if isinstance(v, list):
        n = len(v)
        if n < 16:
            head = bytes([0x90 | n])
        elif n < 65536:
            head = b"\xdc" + struct.pack(">H", n)
        else:
            head = b"\xdd" + struct.pack(">I", n)
        return head + b"".join(pack(x) for x in v)
    if isinstance(v, dict):
        n = len(v)
        head = bytes([0x80 | n]) if n < 16 else b"\xde" + struct.pack(">H", n)
        return head + b"".join(pack(k) + pack(x) for k, x in v.items())
    raise TypeError(type(v))


def req(msgid, method, params):
    return pack([0, msgid, method, params])


def note(method, params):
    return pack([2, method, params])


def ok(msgid, result):
    return pack([1, msgid, None, result])


def err(msgid, code, message):
    return pack([1, msgid, [code, message], None])


def h(text):
    return Raw(bytes.fromhex(text))


def seeds():
    s = {}
    calls = {
        "hello": [],
        "hello_info": [{"client": "py", "pid": 4242}],
        "writer_new": [0],
        "writer_new_max": [65535],
        "push": [1, b"hello"],
        "push_str": [1, "hello"],
        "push_many": [1, [b"a", b"bc", b""]],
        "push_many_empty": [1, []],
        "writer_len": [1],
        "finish": [1],
        "into_arena": [1],
        "build": [[2, 3]],
        "arena_new": [[2, 3]],
        "get": [4, [0, 0, 5]],
        "get_edges": [4, [65535, 4294967295, 4294967295]],
        "get_many": [4, [[0, 0, 5], [0, 5, 6]]],
        "arena_info": [4],
        "arena_files": [4],
        "open": [4],
        "release": [18446744073709551615],
        "name": [4, "jobs"],
        "lookup": ["jobs"],
        "unname": ["jobs"],
        "stat": [],
        "list": ["jobs/", None, 100],
        "list_cursor": ["", "jobs", 10],
        # What JavaScript encoders send: integers as float64.
        "get_floats": [4.0, [0.0, 2147483648.0, 5.0]],
    }
    method_of = {"hello_info": "hello", "writer_new_max": "writer_new", "push_str": "push",
                 "push_many_empty": "push_many", "get_edges": "get", "list_cursor": "list",
                 "get_floats": "get"}
    for i, (key, params) in enumerate(calls.items()):
        s["req_" + key] = (DEFAULTS, WHOLE, req(i + 1, method_of.get(key, key), params))

    # Bad params the daemon answers with bad_request.
    bad = {
        "index_65536": req(5, "writer_new", [65536]),
        "index_neg": req(5, "writer_new", [-1]),
        "index_float": req(5, "writer_new", [1.5]),
        "offset_float_2p32": req(5, "get", [4, [0, 4294967296.0, 1]]),
        "list_count_0": req(5, "list", ["", None, 0]),
        "index_nil": req(5, "writer_new", [None]),
        "handle_0": req(5, "release", [0]),
        "loc_short": req(5, "get", [4, [0, 0]]),
        "loc_big_offset": req(5, "get", [4, [0, 4294967296, 1]]),
        "name_empty": req(5, "name", [4, ""]),
        "name_nul": req(5, "name", [4, "a\x00b"]),
        "name_256": req(5, "name", [4, "n" * 256]),
        "method_33": req(5, "m" * 33, []),
        "method_bin": pack([0, 5, b"push", []]),
        "params_map": pack([0, 5, "push", {}]),
        "unknown_method": req(5, "frobnicate", []),
        "msgid_neg": pack([0, -5, "push", []]),
        "msgid_2p32": pack([0, 4294967296, "push", []]),
        "msgid_float": pack([0, 5.0, "push", []]),
        "short_req": pack([0, 5, "push"]),
        "long_req": pack([0, 5, "push", [], None]),
        "type_1": pack([1, 5, None, None]),
        "type_3": pack([3, 5, "push", []]),
        "not_array": pack({"a": 1}),
        "scalar": pack(7),
        "note_bad": pack([2, 5, []]),
    }
    for key, body in bad.items():
        s["bad_" + key] = (DEFAULTS, WHOLE, body)

    s["note_release"] = (DEFAULTS, WHOLE, note("release", [9]))
    s["resp_loc"] = (DEFAULTS, WHOLE, ok(7, [0, 0, 5]))
    s["resp_bin"] = (DEFAULTS, WHOLE, ok(8, b"hello"))
    s["resp_hello"] = (DEFAULTS, WHOLE, ok(1, {
        "server": "farenad", "version": "0.1.0", "protocol": 1,
        "limits": {"max_message": 67108864, "max_batch": 65536, "max_depth": 16,
                   "max_objects": 1048576, "max_name": 255, "file_max": 4294967295,
                   "max_clients": 1024, "max_writers": 1024, "max_handles": 65536,
                   "max_bytes": 0, "min_free": 67108864},
        "methods": list(method_of.get(k, k) for k in calls if k not in method_of)}))
    s["resp_err"] = (DEFAULTS, WHOLE, err(9, "no_such_handle", "handle 9"))
    s["resp_err_unknown"] = (DEFAULTS, WHOLE, err(9, "brand_new", "from the future"))
    s["resp_limit"] = (DEFAULTS, WHOLE, err(0, "limit", "too many clients"))

    # A pipelined stream, fed in several chunkings.
    stream = b"".join([req(1, "hello", []), req(2, "writer_new", [0]),
                       req(3, "push", [2, b"x" * 300]), note("release", [2]),
                       req(4, "push_many", [2, [b"a", "b"]]), ok(4, [[0, 0, 1], [0, 1, 1]]),
                       req(4294967295, "stat", [])])
    for name, chunk in (("bytewise", BYTEWISE), ("small", SMALL_CHUNKS), ("mid", MID_CHUNKS),
                        ("whole", WHOLE)):
        s["stream_" + name] = (DEFAULTS, chunk, stream)

    # Every msgpack format, non-minimal widths included.
    formats = ("c0 c2 c3 00 7f e0 ff cc ff cd ffff ce ffffffff cf ffffffffffffffff d0 80 "
               "d1 8000 d2 80000000 d3 8000000000000000 ca 3fc00000 cb 3ff8000000000000 a0 "
               "a3 616263 d9 02 6869 da 0002 6869 db 00000002 6869 c4 02 0102 c5 0002 0102 "
               "c6 00000002 0102 d4 01 aa d5 02 aabb d6 03 aabbccdd d7 04 0102030405060708 "
               "d8 05 0102030405060708090a0b0c0d0e0f10 c7 02 01 aabb c8 0002 01 aabb "
               "c9 00000002 01 aabb 90 dc 0001 c0 dd 00000001 c0 80 de 0001 01 02 "
               "df 00000001 01 02")
    parts = formats.split()
    s["formats_stream"] = (DEFAULTS, SMALL_CHUNKS, h(" ".join(parts)))
    s["formats_in_array"] = (DEFAULTS, BYTEWISE, pack([0, 3, "x", [h(p) for p in [
        "c0", "cf ffffffffffffffff", "d3 8000000000000000", "cb 3ff8000000000000",
        "db 00000002 6869", "c6 00000002 0102", "d8 05 0102030405060708090a0b0c0d0e0f10",
        "c9 00000002 01 aabb", "dd 00000001 c0", "df 00000001 01 02"]]]))

    # Hostile inputs: declared sizes, depth, object counts, 0xc1.
    hostile = {
        "array32_huge": "dd ffffffff", "array16_small_max": "dc ffff", "map32_huge": "df ffffffff",
        "map16_small_max": "de ffff", "bin32_huge": "c6 ffffffff", "str32_huge": "db ffffffff",
        "ext32_huge": "c9 ffffffff 01", "bin16_small_max": "c5 ffff",
        "array32_objects": "dd 00100001", "c1": "c1", "c1_nested": "94 00 07 c1",
        "push_huge_bin": "94 00 07 a4 70757368 92 01 c6 ffffffff",
        "get_many_huge": "94 00 07 a8 6765745f6d616e79 92 01 dd 7fffffff",
    }
    for key, text in hostile.items():
        small = key.endswith("small_max")
        s["hostile_" + key] = (SMALL if small else DEFAULTS, WHOLE, h(text))
    s["hostile_deep_40"] = (DEFAULTS, WHOLE, h("91" * 40 + "c0"))
    s["hostile_deep_1000"] = (DEFAULTS, SMALL_CHUNKS, h("91" * 1000 + "c0"))
    s["deep_32_maxdepth"] = (0x3E, WHOLE, h("91" * 32 + "c0"))
    s["objects_17_small"] = (SMALL, WHOLE, pack(list(range(17))))
    s["objects_15_small"] = (SMALL, BYTEWISE, pack(list(range(15))))
    s["split_headers"] = (DEFAULTS, BYTEWISE,
                          req(70000, "get", [18446744073709551615, [65535, 4294967295, 1]]))
    return s


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(out, exist_ok=True)
    for name, (limits, chunking, body) in sorted(seeds().items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(bytes([limits, chunking]) + body)
    print("wrote %d seeds to %s" % (len(seeds()), out), file=sys.stderr)


if __name__ == "__main__":
    main()
