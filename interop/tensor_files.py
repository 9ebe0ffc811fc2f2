"""Shared helpers for the Python reference scripts: safetensors read/write (F32 only) and layout conversions.

There is no `safetensors` Python package on this machine, so the format is written by hand:
    bytes [0, 8)       N = header length, unsigned 64-bit little-endian
    bytes [8, 8 + N)   JSON header {"<name>": {"dtype": "F32", "shape": [...], "data_offsets": [b, e]}, ...,
                       "__metadata__": {"<key>": "<string>"}}, padded with spaces to a multiple of 8
    bytes [8 + N, end) the data buffer; offsets are relative to its start; row-major little-endian float32
This mirrors io/safetensors.h on the C++ side. Also: PyTorch -> engine layout conversions, and
randomize_batchnorm (seeded non-trivial BN parameters and statistics for reference models).
Run with /usr/bin/python3 (the interpreter that has torch 1.13 / torchvision 0.14 / numpy).
"""
import json
import os
import struct

import numpy as np
import torch


def write_safetensors(path, tensors, metadata=None):
    """tensors: ordered dict name -> torch.Tensor or np.ndarray (int64 stored as I64, like safetensors.torch does
    for num_batches_tracked; everything else as F32). metadata: dict str -> str."""
    header = {}
    blobs = []
    offset = 0
    for name, value in tensors.items():
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        is_int64 = np.asarray(value).dtype == np.int64
        array = np.ascontiguousarray(np.asarray(value, dtype="<i8" if is_int64 else "<f4"))
        blob = array.tobytes()
        header[name] = {"dtype": "I64" if is_int64 else "F32", "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    if metadata:
        for key, value in metadata.items():
            if not isinstance(value, str):
                raise TypeError(f"metadata value for '{key}' must be a string, got {type(value).__name__}")
        header["__metadata__"] = dict(metadata)
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * ((8 - len(header_bytes) % 8) % 8)  # keep the data 8-byte aligned
    tmp_path = path + ".tmp"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(tmp_path, "wb") as out:
        out.write(struct.pack("<Q", len(header_bytes)))
        out.write(header_bytes)
        for blob in blobs:
            out.write(blob)
    os.replace(tmp_path, path)
    return os.path.getsize(path)


def read_safetensors(path):
    """Returns (dict name -> np.ndarray float32, metadata dict). Raises ValueError with the path on bad input."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: too short to be a safetensors file")
    (header_len,) = struct.unpack("<Q", raw[:8])
    if 8 + header_len > len(raw):
        raise ValueError(f"{path}: header length {header_len} runs past the end of the file")
    header = json.loads(raw[8:8 + header_len].decode("utf-8"))
    metadata = header.pop("__metadata__", {}) or {}
    data = raw[8 + header_len:]
    tensors = {}
    for name, entry in header.items():
        if entry["dtype"] != "F32":
            raise ValueError(f"{path}: tensor '{name}' has dtype {entry['dtype']}, only F32 is supported")
        begin, end = entry["data_offsets"]
        count = int(np.prod(entry["shape"])) if entry["shape"] else 1
        if end - begin != 4 * count or end > len(data):
            raise ValueError(f"{path}: tensor '{name}' byte range [{begin}, {end}) does not match shape {entry['shape']}")
        tensors[name] = np.frombuffer(data[begin:end], dtype="<f4").reshape(entry["shape"]).copy()
    return tensors, metadata


# --- PyTorch layout -> engine layout (see engine/kernels/params.h) -------------------------------------------

def nchw_to_nhwc(x):       # (N, C, H, W) -> (N, H, W, C)
    return x.permute(0, 2, 3, 1)


def nhwc_to_nchw(x):       # (N, H, W, C) -> (N, C, H, W)
    return x.permute(0, 3, 1, 2)


def conv_weight_to_engine(w):       # (C_out, C_in, KH, KW) -> (KH, KW, C_in, C_out)
    return w.permute(2, 3, 1, 0)


def depthwise_weight_to_engine(w):  # (C, 1, KH, KW) -> (KH, KW, C)
    return w[:, 0].permute(1, 2, 0)


def pointwise_weight_to_engine(w):  # (C_out, C_in, 1, 1) -> (C_in, C_out)
    return w[:, :, 0, 0].t()


def linear_weight_to_engine(w):     # (out, in) -> (in, out)
    return w.t()


def randomize_batchnorm(model, generator, resolution):
    """Seeded, non-trivial BatchNorm state for a reference model (in place; the model is left in train mode).

    gamma in [0.5, 1.5), beta ~ 0.1 N(0,1); running statistics from one train-mode pass over a separate random
    calibration batch of 8 images (momentum None = plain average), jittered (mean + 0.05 N(0,1), var * U[0.8, 1.2)).
    torchvision's own init (1, 0, mean 0, var 1) would hide gamma/beta or mean/var being swapped or ignored, and
    makes the eval-mode network saturate its ReLU6s so its logits barely depend on the input.
    """
    batchnorms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for bn in batchnorms:
            c = bn.num_features
            bn.weight.copy_(0.5 + torch.rand(c, generator=generator))
            bn.bias.copy_(0.1 * torch.randn(c, generator=generator))
            bn.reset_running_stats()
            bn.momentum = None
        model.train()
        model(torch.randn(8, 3, resolution, resolution, generator=generator))  # (N, C, H, W) calibration batch
        for bn in batchnorms:
            c = bn.num_features
            bn.momentum = 0.1
            bn.num_batches_tracked.zero_()
            bn.running_mean.add_(0.05 * torch.randn(c, generator=generator))
            bn.running_var.mul_(0.8 + 0.4 * torch.rand(c, generator=generator))
