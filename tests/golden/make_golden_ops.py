"""Writes tests/golden/ops.json: PyTorch reference values (float64) for every layer-level op of the engine.

Each case holds its inputs, an upstream gradient dy, the forward output and the gradients torch.autograd computes
for that dy, all stored in ENGINE layout (engine/kernels/params.h):
    activations (N, H, W, C); conv weight (KH, KW, C_in, C_out); depthwise weight (KH, KW, C);
    pointwise weight (C_in, C_out); linear weight (in, out); biases (C_out).
Schema: {"<case>": {"op": "<op>", "params": {...}, "tensors": {"<name>": {"shape": [...], "data": [flat, row-major]}}}}
Numbers are the shortest repr that round-trips a float64, so C++ tests can compare in double. Every top-level
key is a case (no metadata entry), so tests can iterate over all of them. Seed SEED below, torch 1.13.
What it is not: a whole-model reference (tests/golden/make_golden.py) or a test (tests/ read this file).

Regenerate: /usr/bin/python3 tests/golden/make_golden_ops.py [--out tests/golden/ops.json]
"""
import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "interop"))
from tensor_files import (conv_weight_to_engine, depthwise_weight_to_engine, linear_weight_to_engine,  # noqa: E402
                       nchw_to_nhwc, pointwise_weight_to_engine)

SEED = 20240607
DTYPE = torch.float64


def randn(*shape):
    return torch.randn(*shape, dtype=DTYPE)


def leaf(t):
    return t.clone().detach().requires_grad_(True)


def entry(t):
    t = t.detach().contiguous()
    return {"shape": list(t.shape), "data": [float(v) for v in t.reshape(-1).tolist()]}


def case(op, params, **tensors):
    return {"op": op, "params": params, "tensors": {name: entry(t) for name, t in tensors.items()}}


# --- convolutions (computed in NCHW / OIHW, stored in engine layout) ------------------------------------------

def conv2d_case(n, h, w, c_in, c_out, k, stride, pad, with_bias):
    x = leaf(randn(n, c_in, h, w))                       # (N, C_in, H, W)
    weight = leaf(randn(c_out, c_in, k, k) * 0.5)        # (C_out, C_in, KH, KW)
    bias = leaf(randn(c_out)) if with_bias else None
    y = F.conv2d(x, weight, bias, stride=stride, padding=pad)
    dy = randn(*y.shape)                                  # (N, C_out, OH, OW)
    y.backward(dy)
    params = {"batch": n, "in_h": h, "in_w": w, "in_c": c_in, "out_h": y.shape[2], "out_w": y.shape[3],
              "out_c": c_out, "kernel": k, "stride": stride, "pad": pad, "bias": with_bias}
    tensors = {"x": nchw_to_nhwc(x), "w": conv_weight_to_engine(weight)}
    if with_bias:
        tensors["bias"] = bias
    tensors.update(dy=nchw_to_nhwc(dy), y=nchw_to_nhwc(y), dx=nchw_to_nhwc(x.grad), dw=conv_weight_to_engine(weight.grad))
    if with_bias:
        tensors["dbias"] = bias.grad
    return case("conv2d", params, **tensors)


def depthwise_case(n, h, w, c, k, stride, pad, with_bias):
    x = leaf(randn(n, c, h, w))                          # (N, C, H, W)
    weight = leaf(randn(c, 1, k, k) * 0.5)               # (C, 1, KH, KW)
    bias = leaf(randn(c)) if with_bias else None
    y = F.conv2d(x, weight, bias, stride=stride, padding=pad, groups=c)
    dy = randn(*y.shape)
    y.backward(dy)
    params = {"batch": n, "in_h": h, "in_w": w, "channels": c, "out_h": y.shape[2], "out_w": y.shape[3],
              "kernel": k, "stride": stride, "pad": pad, "bias": with_bias}
    tensors = {"x": nchw_to_nhwc(x), "w": depthwise_weight_to_engine(weight)}
    if with_bias:
        tensors["bias"] = bias
    tensors.update(dy=nchw_to_nhwc(dy), y=nchw_to_nhwc(y), dx=nchw_to_nhwc(x.grad),
                   dw=depthwise_weight_to_engine(weight.grad))
    if with_bias:
        tensors["dbias"] = bias.grad
    return case("depthwise_conv2d", params, **tensors)


def pointwise_case(n, h, w, c_in, c_out):
    x = leaf(randn(n, c_in, h, w))
    weight = leaf(randn(c_out, c_in, 1, 1) * 0.5)        # (C_out, C_in, 1, 1)
    y = F.conv2d(x, weight)
    dy = randn(*y.shape)
    y.backward(dy)
    params = {"batch": n, "h": h, "w": w, "in_c": c_in, "out_c": c_out, "bias": False}
    return case("pointwise_conv2d", params, x=nchw_to_nhwc(x), w=pointwise_weight_to_engine(weight),
                dy=nchw_to_nhwc(dy), y=nchw_to_nhwc(y), dx=nchw_to_nhwc(x.grad),
                dw=pointwise_weight_to_engine(weight.grad))


def linear_case(n, f_in, f_out):
    x = leaf(randn(n, f_in))
    weight = leaf(randn(f_out, f_in) * 0.5)              # (out, in)
    bias = leaf(randn(f_out))
    y = F.linear(x, weight, bias)
    dy = randn(*y.shape)
    y.backward(dy)
    params = {"batch": n, "in": f_in, "out": f_out, "bias": True}
    return case("linear", params, x=x, w=linear_weight_to_engine(weight), bias=bias, dy=dy, y=y, dx=x.grad,
                dw=linear_weight_to_engine(weight.grad), dbias=bias.grad)


# --- batch norm ---------------------------------------------------------------------------------------------

def batchnorm_case(training):
    n, h, w, c, eps, momentum = 2, 3, 3, 4, 1e-5, 0.1
    x = leaf(randn(n, c, h, w) * 2.0 + 0.5)
    gamma = leaf(1.0 + 0.3 * randn(c))
    beta = leaf(0.2 * randn(c))
    running_mean = 0.1 * randn(c)
    running_var = 1.0 + 0.5 * torch.rand(c, dtype=DTYPE)
    mean_before, var_before = running_mean.clone(), running_var.clone()
    # F.batch_norm updates running_mean / running_var in place when training (PyTorch momentum convention:
    # running = (1 - momentum) * running + momentum * batch_stat, with the UNBIASED batch variance).
    y = F.batch_norm(x, running_mean, running_var, gamma, beta, training=training, momentum=momentum, eps=eps)
    dy = randn(*y.shape)
    y.backward(dy)
    params = {"batch": n, "h": h, "w": w, "channels": c, "eps": eps, "momentum": momentum, "training": training,
              "rows": n * h * w,
              "note": ("normalises with the biased batch variance; running_var is updated with the UNBIASED batch "
                       "variance (x rows/(rows-1)); running = (1-momentum)*running + momentum*batch")
              if training else "normalises with the given running statistics; they are not changed"}
    tensors = dict(x=nchw_to_nhwc(x), gamma=gamma, beta=beta, running_mean=mean_before, running_var=var_before,
                   dy=nchw_to_nhwc(dy), y=nchw_to_nhwc(y), dx=nchw_to_nhwc(x.grad), dgamma=gamma.grad,
                   dbeta=beta.grad)
    if training:
        tensors.update(running_mean_after=running_mean, running_var_after=running_var)
    return case("batchnorm", params, **tensors)


# --- element-wise, pooling, loss ----------------------------------------------------------------------------

def relu6_case():
    # Values in (-2, 8), at least 0.05 away from the kinks at 0 and 6 so the derivative is unambiguous.
    x = torch.rand(2 * 3 * 3 * 4 * 4, dtype=DTYPE) * 10.0 - 2.0
    x = x[((x.abs() >= 0.05) & ((x - 6.0).abs() >= 0.05))][: 2 * 3 * 3 * 4].reshape(2, 3, 3, 4)  # (N, H, W, C)
    x = leaf(x)
    y = F.relu6(x)
    dy = randn(*y.shape)
    y.backward(dy)
    return case("relu6", {"min_distance_from_kinks": 0.05}, x=x, dy=dy, y=y, dx=x.grad)


def add_case():
    a, b = leaf(randn(2, 3, 3, 4)), leaf(randn(2, 3, 3, 4))  # (N, H, W, C)
    y = a + b
    dy = randn(*y.shape)
    y.backward(dy)
    return case("add", {}, a=a, b=b, dy=dy, y=y, da=a.grad, db=b.grad)


def global_avg_pool_case():
    x = leaf(randn(2, 3, 4, 5))                          # (N, H, W, C)
    y = x.mean(dim=(1, 2))                               # (N, C)
    dy = randn(*y.shape)
    y.backward(dy)
    return case("global_avg_pool", {"batch": 2, "h": 3, "w": 4, "channels": 5}, x=x, dy=dy, y=y, dx=x.grad)


def softmax_xent_case(label_smoothing):
    logits = leaf(randn(4, 5) * 2.0)                     # (N, classes)
    labels = torch.tensor([2, 0, 4, 1])
    loss = F.cross_entropy(logits, labels, label_smoothing=label_smoothing)  # mean over the batch
    loss.backward()
    params = {"batch": 4, "classes": 5, "label_smoothing": label_smoothing, "reduction": "mean",
              "note": "target = (1 - s) * one_hot + s / classes; dlogits is the gradient of the mean loss"}
    return case("softmax_cross_entropy", params, logits=logits, labels=labels.to(DTYPE), loss=loss,
                dlogits=logits.grad)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser.add_argument("--out", default=os.path.join(root, "tests", "golden", "ops.json"))
    args = parser.parse_args()

    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    cases = {
        "conv2d_stem": conv2d_case(n=2, h=7, w=7, c_in=3, c_out=4, k=3, stride=2, pad=1, with_bias=True),
        "conv2d_k3s1p0": conv2d_case(n=1, h=5, w=6, c_in=2, c_out=3, k=3, stride=1, pad=0, with_bias=False),
        "depthwise_s1": depthwise_case(n=2, h=5, w=5, c=5, k=3, stride=1, pad=1, with_bias=True),
        "depthwise_s2": depthwise_case(n=1, h=7, w=6, c=3, k=3, stride=2, pad=1, with_bias=False),
        "pointwise": pointwise_case(n=2, h=3, w=3, c_in=4, c_out=5),
        "linear": linear_case(n=3, f_in=6, f_out=4),
        "batchnorm_train": batchnorm_case(training=True),
        "batchnorm_eval": batchnorm_case(training=False),
        "relu6": relu6_case(),
        "add": add_case(),
        "global_avg_pool": global_avg_pool_case(),
        "softmax_xent": softmax_xent_case(0.0),
        "softmax_xent_smooth": softmax_xent_case(0.1),
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as out:
        json.dump(cases, out, indent=None, separators=(",", ":"))
        out.write("\n")
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes), {len(cases)} cases:")
    for name, c in cases.items():
        shapes = ", ".join(f"{k}{tuple(v['shape'])}" for k, v in c["tensors"].items())
        print(f"  {name:20s} {c['op']:22s} {shapes}")


if __name__ == "__main__":
    main()
