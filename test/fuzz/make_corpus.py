#!/usr/bin/env python3
"""Writes the seed corpus for fuzz_safetensors: small valid files covering every dtype, metadata,
odd layouts and alignment, plus one file per class of defect the reader must refuse. The output is
deterministic, so regenerating only changes files whose recipe changed.

usage: python3 test/fuzz/make_corpus.py [--out DIR]    (default: test/fuzz/corpus next to this file)
"""
import argparse
import json
import math
import os
import struct

SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2, "I32": 4, "U32": 4,
         "F32": 4, "F64": 8, "I64": 8, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1}
PACK = {"BOOL": "B", "U8": "B", "I8": "b", "I16": "h", "U16": "H", "F16": "e", "I32": "i", "U32": "I",
        "F32": "f", "F64": "d", "I64": "q", "U64": "Q"}


def frame(header: bytes, data: bytes = b"", length=None) -> bytes:
    """Length prefix + header + data; `length` overrides the prefix to build framing defects."""
    n = len(header) if length is None else length
    return struct.pack("<Q", n) + header + data


def encode(values, dtype: str) -> bytes:
    if dtype == "BF16":  # truncating f32 is enough for seeds; rounding does not matter here
        return b"".join(struct.pack("<f", v)[2:] for v in values)
    if dtype in ("F8_E4M3", "F8_E5M2"):
        return bytes(int(v) & 0xFF for v in values)
    return struct.pack("<%d%s" % (len(values), PACK[dtype]), *values)


def sample(dtype: str, n: int, seed: int):
    if dtype in ("F16", "BF16", "F32", "F64"):
        return [math.sin(seed + i) * (10 ** (i % 4)) for i in range(n)]
    if dtype == "BOOL":
        return [(seed + i) % 3 == 0 for i in range(n)]
    if dtype in ("F8_E4M3", "F8_E5M2"):
        return [(seed * 37 + i * 11) & 0xFF for i in range(n)]
    bits = SIZES[dtype] * 8
    lo, hi = (0, 2 ** bits - 1) if dtype.startswith("U") else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    span = hi - lo + 1
    return [lo + ((seed + 1) * 2654435761 * (i + 1)) % span for i in range(n)]


def build(tensors, metadata=None, align=True, key_order=None) -> bytes:
    """tensors: list of (name, dtype, shape) laid out contiguously in that order."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    entries = {}
    for seed, (name, dtype, shape) in enumerate(tensors):
        n = math.prod(shape)
        blob = encode(sample(dtype, n, seed), dtype)
        assert len(blob) == n * SIZES[dtype]
        entries[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    for name in key_order or entries:
        header[name] = entries[name]
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if align:
        text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    return frame(text, data)


def raw(header_text: str, data_len: int = 0, length=None) -> bytes:
    return frame(header_text.encode("utf-8", "surrogatepass"), bytes((i * 7 + 1) & 0xFF for i in range(data_len)), length)


def t(dtype, shape, begin, end):
    return '{"dtype":"%s","shape":%s,"data_offsets":[%d,%d]}' % (dtype, json.dumps(shape), begin, end)


def corpus():
    valid = {
        "valid_f32": build([("weight", "F32", (2, 3))]),
        "valid_f16_bf16_meta": build([("a.f16", "F16", (4, 4)), ("b.bf16", "BF16", (3,))], {"format": "pt"}),
        "valid_f64_i64": build([("x", "F64", (5,)), ("idx", "I64", (2, 2))]),
        "valid_i32_u8_bool": build([("i", "I32", (3,)), ("u", "U8", (7,)), ("mask", "BOOL", (2, 5))]),
        "valid_i8_i16_u16": build([("q8", "I8", (9,)), ("q16", "I16", (3, 3)), ("r16", "U16", (4,))]),
        "valid_u32_u64": build([("c32", "U32", (3,)), ("c64", "U64", (2,))]),
        "valid_f8_all_codes": build([("e4m3", "F8_E4M3", (256,)), ("e5m2", "F8_E5M2", (16, 16))]),
        "valid_metadata_unicode": build([("t\u00e9", "F32", (1,))],
                                        {"q\"uote": "back\\slash", "ctl": "\t\n\u0001", "emoji": "\U0001F600", "": ""}),
        "valid_empty": build([]),
        "valid_metadata_only": build([], {"k": "v"}),
        "valid_scalar_zero_size": build([("s", "F32", ()), ("z", "F16", (0,)), ("z3", "I64", (2, 0, 3)), ("u", "U8", (3,))]),
        # No padding and a 3-byte tensor first: everything after it is misaligned in the file.
        "valid_unaligned": build([("u", "U8", (3,)), ("f", "F32", (2,)), ("d", "F64", (1,))], align=False),
        "valid_key_order": build([(f"layer.{i}", dt, (i % 3 + 1,)) for i, dt in enumerate(SIZES)],
                                 key_order=[f"layer.{i}" for i in reversed(range(len(SIZES)))]),
    }
    one = t("F32", [2, 2], 0, 16)
    bad = {
        "bad_short": b"\x10\x00\x00\x00\x00",
        "bad_len_zero": frame(b"", b"{}"),
        "bad_len_over_limit": frame(b"{}", length=100000001),
        "bad_len_past_eof": frame(b"{}", length=64),
        "bad_json_cut": raw('{"w":' + one[:20], 0),
        "bad_unterminated_string": raw('{"w":{"dtype":"F32', 0),
        "bad_trailing_comma": raw('{"w":%s,}' % one, 16),
        "bad_escape": raw('{"w\\q":%s}' % one, 16),
        "bad_lone_surrogate": raw('{"w\\ud800":%s}' % one, 16),
        "bad_utf8": frame(b'{"w\xc0\xaf":' + one.encode() + b"}", bytes(16)),
        "bad_deep": raw('{"__metadata__":' + "[" * 70 + "]" * 70 + "}"),
        "bad_not_object": raw("[1,2]"),
        "bad_trailing_garbage": raw('{"w":%s} x' % one, 16),
        "bad_unknown_dtype": raw('{"w":%s}' % t("F33", [2, 2], 0, 16), 16),
        "bad_missing_shape": raw('{"w":{"dtype":"F32","data_offsets":[0,16]}}', 16),
        "bad_extra_field": raw('{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16],"x":0}}', 16),
        "bad_negative_shape": raw('{"w":%s}' % t("F32", [2, -2], 0, 16), 16),
        "bad_float_shape": raw('{"w":{"dtype":"F32","shape":[2,2.0],"data_offsets":[0,16]}}', 16),
        "bad_shape_overflow": raw('{"w":%s}' % t("U8", [4294967296, 4294967296], 0, 0)),
        "bad_begin_gt_end": raw('{"w":%s}' % t("F32", [0], 8, 4), 8),
        "bad_size_mismatch": raw('{"w":%s}' % t("F32", [2, 2], 0, 12), 12),
        "bad_end_out_of_range": raw('{"w":%s}' % t("F32", [2, 2], 4, 20), 16),
        "bad_offsets_huge": raw('{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,18446744073709551616]}}', 1),
        "bad_overlap": raw('{"a":%s,"b":%s}' % (t("U8", [8], 0, 8), t("U8", [8], 4, 12)), 12),
        "bad_gap": raw('{"a":%s,"b":%s}' % (t("U8", [4], 0, 4), t("U8", [4], 8, 12)), 12),
        "bad_trailing_bytes": raw('{"w":%s}' % one, 20),
        "bad_duplicate_key": raw('{"w":%s,"w":%s}' % (one, t("F32", [2, 2], 16, 32)), 32),
        "bad_metadata_value": raw('{"__metadata__":{"n":1}}'),
    }
    return {**valid, **bad}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name, blob in sorted(corpus().items()):
        assert len(blob) < 4096, name
        with open(os.path.join(args.out, name + ".safetensors"), "wb") as f:
            f.write(blob)
    print("wrote %d files to %s" % (len(corpus()), args.out))


if __name__ == "__main__":
    main()
