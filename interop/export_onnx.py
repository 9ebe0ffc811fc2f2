"""Exports a mriscan model file to ONNX (for ONNX Runtime, Triton, OpenVINO) through torchvision and
torch.onnx.export, with mriscan's preprocessing and temperature inside the graph.

The graph starts where a caller is after decoding an image and resizing it to the model's size:
  input  "image"          float32 (N, S, S, 3), RGB values in [0, 255], S = the model's image_size; resize with
                          bilinear interpolation (mriscan: half-pixel centres, a box prefilter when shrinking by
                          more than 2x), channels last, as decoded.
  inside                  x / 255, ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225), NHWC -> NCHW,
                          MobileNetV2 in eval mode (batch norm on its running statistics), logits / T.
  outputs "logits"        float32 (N, K), before temperature scaling
          "probabilities" float32 (N, K), softmax(logits / T): what `mriscan predict` reports
N is dynamic. OUT.json beside the model records the class names, image size, temperature, preprocessing and
source. What is not exported: the out-of-distribution check (input statistics and feature distances), so an
ONNX consumer gets probabilities for anything, MRI or not; use `mriscan serve` where that matters.

Usage: /usr/bin/python3 interop/export_onnx.py MODEL.safetensors OUT.onnx [--opset 13]
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_torchvision_load import load_torchvision  # noqa: E402

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class WithPreprocessing(torch.nn.Module):
    """(N, S, S, 3) RGB in [0, 255] -> (logits, softmax(logits / T)), as described above."""

    def __init__(self, network, temperature):
        super().__init__()
        self.network = network
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 1, 1, 3) * 255.0)
        self.register_buffer("std", torch.tensor(STD).view(1, 1, 1, 3) * 255.0)
        self.temperature = float(temperature)

    def forward(self, image):
        x = ((image - self.mean) / self.std).permute(0, 3, 1, 2)  # (N, 3, S, S)
        logits = self.network(x)  # (N, K)
        return logits, torch.softmax(logits / self.temperature, dim=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a mriscan model file (.safetensors) with a classifier")
    parser.add_argument("out", help="the .onnx file to write (OUT.json is written beside it)")
    parser.add_argument("--opset", type=int, default=13)
    args = parser.parse_args()

    network, metadata, skipped = load_torchvision(args.model)
    num_classes = int(metadata["num_classes"])
    if num_classes == 0:
        raise SystemExit(f"{args.model}: a backbone without classifier; export a trained model")
    size = int(metadata.get("image_size", "224"))
    temperature = float(metadata.get("temperature", "1"))
    class_names = json.loads(metadata.get("class_names", "[]"))
    wrapped = WithPreprocessing(network, temperature).eval()
    example = torch.rand(1, size, size, 3) * 255.0
    torch.onnx.export(wrapped, (example,), args.out, opset_version=args.opset, input_names=["image"],
                      output_names=["logits", "probabilities"],
                      dynamic_axes={"image": {0: "N"}, "logits": {0: "N"}, "probabilities": {0: "N"}})
    sidecar = {"model": os.path.basename(args.model), "class_names": class_names, "image_size": size,
               "temperature": temperature, "width_mult": float(metadata["width_mult"]),
               "input": {"name": "image", "shape": ["N", size, size, 3], "dtype": "float32",
                         "values": "RGB in [0, 255], resized to image_size x image_size with bilinear interpolation"},
               "outputs": {"logits": ["N", num_classes], "probabilities": ["N", num_classes]},
               "preprocessing_inside": "x/255, mean (0.485,0.456,0.406), std (0.229,0.224,0.225), NHWC->NCHW",
               "not_exported": ["out-of-distribution check"] + ([f"{len(skipped)} ood.* tensors"] if skipped else []),
               "opset": args.opset, "torch": torch.__version__}
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump(sidecar, f, indent=2)
        f.write("\n")
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes, {num_classes} classes, {size}x{size}, T = "
          f"{temperature:g}) and its .json")


if __name__ == "__main__":
    main()
