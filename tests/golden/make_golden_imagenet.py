#!/usr/bin/python3
"""Writes tests/golden/imagenet_folded_features.safetensors: the 1280-d features of the BN-folded ImageNet
MobileNetV2 (../shared/weights/mobilenetv2_1.0_224_nchw_bnfolded_npy), computed by PyTorch, for a seeded input.

The reference network is torchvision's mobilenet_v2 with every BatchNorm2d replaced by nn.Identity and every
conv given the folded bias from the .npy files: the folded network as its authors ran it, with no BN at all.
The C++ test imports the same files (models/imagenet_import.h), calibrates BN on other images, and must give
the same features in eval mode. Input: 2 images of 96x96 (any resolution works; small keeps the file small).

Stored (float32): "input" (2, 96, 96, 3) NHWC, "features" (2, 1280) = global average pool of features.18.
Regenerate: /usr/bin/python3 tests/golden/make_golden_imagenet.py [--shared ../shared]
"""
import argparse
import os
import re
import sys

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "interop"))
from tensor_files import nchw_to_nhwc, write_safetensors  # noqa: E402


def folded_mobilenet(npy_dir):
    model = torchvision.models.mobilenet_v2(num_classes=1000).eval()
    convs = [m for m in model.features.modules() if isinstance(m, torch.nn.Conv2d)]
    indices = sorted(int(re.match(r"conv_(\d+)_weight\.npy", f).group(1))
                     for f in os.listdir(npy_dir) if re.match(r"conv_(\d+)_weight\.npy", f))
    assert len(indices) == len(convs) == 52, (len(indices), len(convs))
    for conv, index in zip(convs, indices):  # numeric file order == forward order (SOURCES.md's layer map)
        weight = torch.from_numpy(np.load(os.path.join(npy_dir, f"conv_{index}_weight.npy")))
        bias = torch.from_numpy(np.load(os.path.join(npy_dir, f"conv_{index}_bias.npy")))
        assert weight.shape == conv.weight.shape, (index, weight.shape, conv.weight.shape)
        conv.weight.data.copy_(weight)
        conv.bias = torch.nn.Parameter(bias)

    def strip_batchnorm(module):
        for name, child in module.named_children():
            if isinstance(child, torch.nn.BatchNorm2d):
                setattr(module, name, torch.nn.Identity())
            else:
                strip_batchnorm(child)
    strip_batchnorm(model)
    return model


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default=os.environ.get("MRISCAN_SHARED", os.path.join(root, "..", "shared")))
    parser.add_argument("--out", default=os.path.join(root, "tests", "golden", "imagenet_folded_features.safetensors"))
    args = parser.parse_args()
    model = folded_mobilenet(os.path.join(args.shared, "weights", "mobilenetv2_1.0_224_nchw_bnfolded_npy"))
    torch.manual_seed(0)
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        features = model.features(x).mean(dim=(2, 3))
    write_safetensors(args.out, {"input": nchw_to_nhwc(x), "features": features},
                      {"regenerate": "/usr/bin/python3 tests/golden/make_golden_imagenet.py", "torch": torch.__version__})
    print(f"wrote {args.out}: features {tuple(features.shape)}, |f| mean {features.abs().mean():.4f}")


if __name__ == "__main__":
    main()
