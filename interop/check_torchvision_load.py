"""Loads a mriscan model file into torchvision and prints its eval-mode logits as JSON (an interoperability check).

Builds torchvision.models.mobilenet_v2(width_mult=W, num_classes=K) from the file's metadata and loads every tensor
with load_state_dict(strict=True), so a misnamed, missing or mis-shaped tensor fails loudly. Tensors that are not
part of the network by design ("ood.*", written by the OOD detector) are skipped and listed; num_batches_tracked
(which mriscan does not store) is kept at torchvision's value. A backbone file (num_classes 0) is loaded into
model.features and the output is the pooled (N, 1280) feature vector instead of logits.
Input (NHWC): --input X.json (either {"shape","data"} or {"input": {"shape","data"}}, as written by
torchvision_to_safetensors.py --emit-logits) or --input X.safetensors (tensor --input-name, default "input");
without --input, a seeded randn (--batch, --resolution, --seed). What it is not: a converter (the other script).

Usage: /usr/bin/python3 interop/check_torchvision_load.py MODEL.safetensors [--input X.json] [--out logits.json]
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tensor_files import nhwc_to_nchw, read_safetensors  # noqa: E402

EXTRA_PREFIXES = ("ood.",)  # tensors a mriscan file may hold that are not part of the network


def load_torchvision(path):
    """A mriscan model file as an eval-mode torchvision mobilenet_v2: (model, metadata, skipped tensor names)."""
    tensors, metadata = read_safetensors(path)
    for key in ("format", "width_mult", "num_classes"):
        if key not in metadata:
            raise SystemExit(f"{path}: no '{key}' metadata; not a mriscan model file?")
    if metadata["format"] != "mriscan-mobilenet_v2":
        raise SystemExit(f"{path}: format is '{metadata['format']}', expected 'mriscan-mobilenet_v2'")
    width = float(metadata["width_mult"])
    num_classes = int(metadata["num_classes"])
    skipped = sorted(k for k in tensors if k.startswith(EXTRA_PREFIXES))
    state = {k: torch.from_numpy(v) for k, v in tensors.items() if not k.startswith(EXTRA_PREFIXES)}
    model = torchvision.models.mobilenet_v2(width_mult=width, num_classes=max(num_classes, 1))
    # mriscan does not store num_batches_tracked; keep torchvision's so strict=True checks everything else.
    for name, value in model.state_dict().items():
        if name.endswith("num_batches_tracked"):
            state.setdefault(name, value)
    if num_classes == 0:
        model.features.load_state_dict({k[len("features."):]: v for k, v in state.items()}, strict=True)
    else:
        model.load_state_dict(state, strict=True)
    model.eval()
    return model, metadata, skipped


def read_input(args):
    """Returns the input as a float32 tensor (N, H, W, 3)."""
    if args.input is None:
        generator = torch.Generator().manual_seed(args.seed)
        return torch.randn(args.batch, args.resolution, args.resolution, 3, generator=generator)
    if args.input.endswith(".json"):
        with open(args.input) as f:
            obj = json.load(f)
        obj = obj.get("input", obj)
        if "shape" not in obj or "data" not in obj:
            raise SystemExit(f"{args.input}: expected {{'shape', 'data'}} or {{'input': {{'shape', 'data'}}}}")
        x = torch.tensor(obj["data"], dtype=torch.float32).reshape(obj["shape"])
    else:
        tensors, _ = read_safetensors(args.input)
        if args.input_name not in tensors:
            raise SystemExit(f"{args.input}: no tensor '{args.input_name}' (has {sorted(tensors)[:8]}...)")
        x = torch.from_numpy(tensors[args.input_name])
    if x.dim() != 4 or x.shape[3] != 3:
        raise SystemExit(f"{args.input}: input must be NHWC (N, H, W, 3), got shape {list(x.shape)}")
    return x


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a mriscan model file (.safetensors)")
    parser.add_argument("--input", default=None, help="NHWC input: .json or .safetensors")
    parser.add_argument("--input-name", default="input", help="tensor name when --input is a .safetensors file")
    parser.add_argument("--out", default=None, help="also write the result JSON here")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--resolution", type=int, default=None, help="default: the file's image_size")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    model, metadata, skipped = load_torchvision(args.model)
    width, num_classes = float(metadata["width_mult"]), int(metadata["num_classes"])
    if args.resolution is None:
        args.resolution = int(metadata.get("image_size", "224"))

    x = read_input(args)  # (N, H, W, 3)
    with torch.no_grad():
        if num_classes == 0:
            features = model.features(nhwc_to_nchw(x))  # (N, 1280, h, w)
            output_name, output = "features", torch.nn.functional.adaptive_avg_pool2d(features, 1).flatten(1)
        else:
            output_name, output = "logits", model(nhwc_to_nchw(x))  # (N, K)
    result = {"model": os.path.basename(args.model), "width_mult": width, "num_classes": num_classes,
              "mode": "eval", "input_shape": list(x.shape), "skipped_tensors": skipped,
              output_name: {"shape": list(output.shape), "data": output.reshape(-1).tolist()},
              "argmax": np.asarray(output.argmax(dim=1)).tolist()}
    text = json.dumps(result, separators=(",", ":"))
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
        print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
