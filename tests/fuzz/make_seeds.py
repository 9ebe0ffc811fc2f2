#!/usr/bin/env python3
"""Seed corpora for the libFuzzer targets (tests/fuzz/), from the same fixtures the tests use: real scans from
../shared (JPEG), small PNGs made here, the DICOM files of tests/io/make_dicom_fixtures.py (without their preamble
and "DICM", which fuzz_dicom adds; none when pydicom is missing), a safetensors file in the layout mriscan writes,
request heads from the server tests, and the retrain parameters of the API docs.
Usage: make_seeds.py OUT_DIR [SHARED_DIR]."""
import gzip
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib


def png(width, height, colour_type=2, seed=0):
    channels = {0: 1, 2: 3, 6: 4}[colour_type]
    rows = b"".join(b"\0" + bytes((seed + x * 7 + y * 13 + c) % 256 for x in range(width) for c in range(channels))
                    for y in range(height))

    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def safetensors():
    tensors = {"a.weight": [2, 3], "b.bias": [4]}
    header, data, offset = {"__metadata__": {"class_names": '["glioma","notumor"]', "image_size": "64"}}, b"", 0
    for name, shape in tensors.items():
        count = 1
        for d in shape:
            count *= d
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + 4 * count]}
        data += struct.pack("<%df" % count, *range(count))
        offset += 4 * count
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def multipart(files, label="glioma"):
    body = b""
    for name, content in files:
        name = name if isinstance(name, bytes) else name.encode()
        body += (b"--FUZZ\r\nContent-Disposition: form-data; name=\"files\"; filename=\"" + name +
                 b"\"\r\nContent-Type: image/png\r\n\r\n" + content + b"\r\n")
    body += b"--FUZZ\r\nContent-Disposition: form-data; name=\"label\"\r\n\r\n" + label.encode() + b"\r\n--FUZZ--\r\n"
    return body


def dicom_files():
    """The DICOM test files made from a small grey image, each after its first 132 bytes."""
    with tempfile.TemporaryDirectory() as folder:
        width, height = 24, 16
        pixels = bytes((x * 11 + y * 5) % 256 for y in range(height) for x in range(width))
        with open(os.path.join(folder, "source.pgm"), "wb") as f:
            f.write(b"P5\n%d %d\n255\n" % (width, height) + pixels)
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "io", "make_dicom_fixtures.py")
        made = subprocess.run([sys.executable, script, os.path.join(folder, "source.pgm"),
                               os.path.join(folder, "dicom")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if made.returncode != 0:
            print("make_seeds: no DICOM seeds (make_dicom_fixtures.py failed; pydicom missing?)", file=sys.stderr)
            return []
        seeds = []
        for name in sorted(os.listdir(os.path.join(folder, "dicom"))):
            if name.endswith(".dcm"):
                with open(os.path.join(folder, "dicom", name), "rb") as f:
                    seeds.append(f.read()[132:])
        return seeds


def main():
    out = sys.argv[1]
    shared = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared")
    scans = []
    training = os.path.join(shared, "data", "brain-tumor-mri", "Training")
    for label in sorted(os.listdir(training)) if os.path.isdir(training) else []:
        folder = os.path.join(training, label)
        for name in sorted(os.listdir(folder))[:2]:
            with open(os.path.join(folder, name), "rb") as f:
                scans.append(f.read())
    images = scans + [png(16, 12), png(5, 7, 0, 3), png(9, 9, 6, 5)]
    corpora = {
        "fuzz_image_decode": images,
        "fuzz_dicom": dicom_files(),
        "fuzz_safetensors": [safetensors()],
        "fuzz_request_head": [
            b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST /predict?gradcam=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\nConnection: close\r\n\r\n",
            b"GET /vendor/chart.umd.js HTTP/1.1\r\nRange: bytes=0-10,5-20\r\n\r\n",
            b"POST /retrain HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"G\"E{T}\\ / HTTP/1.1\r\n\r\n",
            # Compressed bodies (refused from the head), alone and hidden behind an identity header.
            b"POST /predict HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: 20\r\n\r\n"
            + gzip.compress(b"x" * 4096),
            b"POST /predict HTTP/1.1\r\nContent-Encoding: identity\r\ncontent-encoding: br\r\n"
            b"Content-Length: 3\r\n\r\nabc",
            # Malformed UTF-8 and control bytes in the path.
            b"GET /%FF/\xff\xfe/models/\xc0\xaf HTTP/1.1\r\nHost: x\r\n\r\n"],
        "fuzz_multipart": [multipart([("a.png", png(8, 8))]), multipart([("b.jpg", s) for s in scans[:1]]),
                           # File names that are not UTF-8 (a lone byte, an overlong '/', a surrogate) or are.
                           multipart([(b"\xff\xfe.png", png(4, 4)), (b"\xc0\xaf.png", png(4, 4))]),
                           multipart([(b"\xed\xa0\x80.png", png(4, 4)), ("m\u00e9ningiome.png", png(4, 4))])],
        "fuzz_retrain_params": [b'{"epochs": 2, "learning_rate": 0.0001, "frozen_blocks": 14}',
                                b'{"epochs": 1, "max_samples_per_class": 50}', b'{"epochs": "3"}', b"[]",
                                # Nested past the depth limit, and just within it; brackets inside a string.
                                b'{"epochs": ' + b"[" * 5000 + b"]" * 5000 + b"}",
                                b'{"epochs": ' + b"[" * 31 + b"]" * 31 + b"}",
                                b'{"note": "[[[[{{{{", "epochs": 2}'],
    }
    for target, seeds in corpora.items():
        folder = os.path.join(out, target)
        os.makedirs(folder, exist_ok=True)
        for i, seed in enumerate(seeds):
            with open(os.path.join(folder, "seed%d" % i), "wb") as f:
                f.write(seed)
    print("seeds:", ", ".join("%s %d" % (t, len(s)) for t, s in corpora.items()))


if __name__ == "__main__":
    main()
