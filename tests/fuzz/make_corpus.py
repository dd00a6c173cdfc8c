#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpus (tests/fuzz/corpus/<target>/): a few small valid
files of each format, so the fuzzer starts from inputs that get past the magic bytes.
Pure Python (no NumPy), deterministic; rerun after a format change and commit the output."""
import gzip, json, os, struct, zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def idx(dims, data):
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + bytes(data)


def gz(data):
    return gzip.compress(data, mtime=0)


def npy(shape, values, descr="<f8", version=(1, 0), fortran=False):
    shape_text = "(" + "".join(f"{d}, " if len(shape) == 1 else f"{d}," for d in shape).rstrip(",") + ")"
    if len(shape) == 1:
        shape_text = f"({shape[0]},)"
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (
        descr, "True" if fortran else "False", shape_text)
    pre = 10 if version == (1, 0) else 12
    pad = 64 - (pre + len(header) + 1) % 64
    header = header + " " * pad + "\n"
    fmt = {"<f8": "<%dd", "<f4": "<%df", ">f8": ">%dd"}[descr]
    body = struct.pack(fmt % len(values), *values)
    length = struct.pack("<H", len(header)) if version == (1, 0) else struct.pack("<I", len(header))
    return b"\x93NUMPY" + bytes(version) + length + header.encode() + body


def checkpoint(meta, entries):
    js, payload, off = [], b"", 0
    for name, dtype, shape, data in entries:
        js.append({"name": name, "dtype": dtype, "shape": shape, "offset": off, "bytes": len(data)})
        payload += data
        off += len(data)
    header = json.dumps({"meta": meta, "entries": js}, separators=(",", ":")).encode()
    out = b"GACKPT01" + struct.pack("<Q", len(header)) + header + payload
    return out + struct.pack("<I", zlib.crc32(out) & 0xFFFFFFFF)


# IDX: images [2, 3, 3], labels [4], both raw and gzip.
images = idx([2, 3, 3], range(18))
labels = idx([4], [0, 1, 9, 3])
put("idx", "images.idx", images)
put("idx", "labels.idx", labels)
put("idx", "images.idx.gz", gz(images))
put("idx", "labels.idx.gz", gz(labels))

# gzip: one member, two members.
put("gzip", "one.gz", gz(b"grokalign " * 8))
put("gzip", "two.gz", gz(b"first") + gz(b"second"))

# CIFAR-10: one record (label 3, pixels 0..255 repeating).
put("cifar10", "one_record.bin", bytes([3]) + bytes(i % 256 for i in range(3072)))

# .npy: f8, f4, a 0-d array, format 2.0, big-endian (refused), Fortran order (refused).
put("npy", "f8_2x3.npy", npy([2, 3], [0.5, -1, 2, 3, 4, 5]))
put("npy", "f4_4.npy", npy([4], [1, 2, 3, 4], "<f4"))
put("npy", "scalar.npy", npy([], [7.0]))
put("npy", "v2.npy", npy([2], [1, 2], version=(2, 0)))
put("npy", "big_endian.npy", npy([2], [1, 2], ">f8"))
put("npy", "fortran.npy", npy([2, 2], [1, 2, 3, 4], fortran=True))

# State dict: the [2, 3] weight, as f8 and as f4.
put("state_dict", "weight_f8.npy", npy([2, 3], [1, 2, 3, 4, 5, 6]))
put("state_dict", "weight_f4.npy", npy([2, 3], [1, 2, 3, 4, 5, 6], "<f4"))

# Checkpoints: parameters, a generator, a step.
meta = {"step": 20, "config": {"program": "fuzz", "dtype": "f64"}}
put("checkpoint", "small.bin", checkpoint(meta, [
    ("model.weight", "f8", [2, 2], struct.pack("<4d", 1, 2, 3, 4)),
    ("model.bias", "f4", [2], struct.pack("<2f", 0.5, -0.5)),
    ("gen.data", "u8", [4], struct.pack("<4Q", 1, 2, 3, 4)),
    ("step", "i8", [1], struct.pack("<q", 20)),
]))
put("checkpoint", "empty.bin", checkpoint({}, []))

# Resume: checkpoint meta, NUL, stats.csv, NUL, resumes.json; the configuration is exactly
# what resume.fuzz.cpp's Run records (without threads, library, data.source, epochs).
config = {"program": "fuzz", "settings": {"lr": 0.001, "width": 8}, "data": {"name": "xor"},
          "seed": 0, "dtype": "f64", "preset": "default"}
stats = b"step,loss,acc\n1,0.9,0.5\n2,0.5,0.75\n3,0.25,1\n4,0.125,1\n"
config_json = json.dumps(dict(config, threads=1, library={"version": "0.1"})).encode()
put("resume", "matching.txt",
    json.dumps({"step": 2, "config": config}).encode() + b"\0" + stats + b"\0" + b"[]" + b"\0" +
    config_json)
put("resume", "cut_row.txt",
    json.dumps({"step": 3, "config": config}).encode() + b"\0" + stats + b"4,0.1" + b"\0")
other = dict(config, dtype="f32")
put("resume", "other_dtype.txt",
    json.dumps({"step": 2, "config": other}).encode() + b"\0" + stats + b"\0" + b"{")
