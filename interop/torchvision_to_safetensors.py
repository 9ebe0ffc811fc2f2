"""Converts a torchvision mobilenet_v2 state dict (.pth) into a mriscan model file (safetensors).

Tensor names and layouts stay exactly torchvision's (OIHW convolutions, (out, in) linear); the C++ loader
(models/weights_io.h) converts to engine layouts. num_batches_tracked is dropped. Metadata (all strings), matching
models/model_file.h: format "mriscan-mobilenet_v2", version / format_version "1", width_mult, num_classes,
image_size, class_names (JSON list), preprocessing, temperature "1", source.
--num-classes 0 drops the classifier and writes a backbone (what the C++ side expects for an imported backbone).
--random-init (instead of IN.pth) writes a seeded random torchvision model (non-trivial BatchNorm state, see
tensor_files.randomize_batchnorm), and --emit-logits FILE.json writes torchvision's eval-mode logits for a seeded random
NHWC input, so a C++ test can check that the engine reproduces torchvision. What it is not: a trainer or a
converter for other architectures.

Usage:
  /usr/bin/python3 interop/torchvision_to_safetensors.py IN.pth OUT.safetensors [--num-classes K] [--classes a,b,c,d]
  /usr/bin/python3 interop/torchvision_to_safetensors.py --random-init OUT.safetensors --width-mult 0.35 \\
      --num-classes 4 --emit-logits logits.json [--seed 7] [--logits-resolution 64] [--logits-batch 2]
"""
import argparse
import json
import os
import sys

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tensor_files import nchw_to_nhwc, randomize_batchnorm, write_safetensors  # noqa: E402

FORMAT = "mriscan-mobilenet_v2"
CANDIDATE_WIDTHS = [0.35, 0.5, 0.75, 1.0, 1.3, 1.4]


def float32_list(t):
    """Flat list of a float32 tensor's values, 9 significant digits (enough to round-trip a float32 exactly)."""
    return [float(f"{v:.9g}") for v in t.reshape(-1).tolist()]


def preprocessing_text(resolution):
    return (f"resize to {resolution}x{resolution} bilinear, RGB/255, ImageNet mean (0.485,0.456,0.406) "
            "std (0.229,0.224,0.225), NHWC")


def load_state_dict(path):
    """Accepts a plain state dict, a pickled nn.Module, or a checkpoint dict holding one under 'state_dict'/'model'."""
    obj = torch.load(path, map_location="cpu")
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise SystemExit(f"{path}: not a state dict of tensors (got {type(obj).__name__})")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in obj.items()}  # strip DataParallel


def infer_width(state, num_classes):
    """The width multiplier whose torchvision architecture has exactly these tensor names and shapes."""
    wanted = {k: tuple(v.shape) for k, v in state.items() if not k.endswith("num_batches_tracked")}
    for width in CANDIDATE_WIDTHS:
        reference = torchvision.models.mobilenet_v2(width_mult=width, num_classes=max(num_classes, 1))
        shapes = {k: tuple(v.shape) for k, v in reference.state_dict().items() if not k.endswith("num_batches_tracked")}
        if num_classes == 0:
            shapes = {k: s for k, s in shapes.items() if not k.startswith("classifier.")}
        if shapes == wanted:
            return width
    raise SystemExit(f"state dict does not match torchvision mobilenet_v2 for any width in {CANDIDATE_WIDTHS} "
                     f"(stem weight shape {wanted.get('features.0.0.weight')}); pass --width-mult explicitly")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", help="IN.pth OUT.safetensors, or OUT.safetensors with --random-init")
    parser.add_argument("--random-init", action="store_true", help="write a seeded random model instead of IN.pth")
    parser.add_argument("--num-classes", type=int, default=None,
                        help="class count; 0 drops the classifier (backbone file). Default: from IN.pth / --classes")
    parser.add_argument("--classes", default=None, help="comma-separated class names (sets the class count)")
    parser.add_argument("--width-mult", type=float, default=None, help="default: inferred from IN.pth; 1.0 for random")
    parser.add_argument("--image-size", type=int, default=224, help="resolution recorded in the metadata")
    parser.add_argument("--seed", type=int, default=7, help="seed for --random-init and --emit-logits")
    parser.add_argument("--emit-logits", default=None, help="write torchvision eval-mode logits for a random input")
    parser.add_argument("--logits-resolution", type=int, default=64)
    parser.add_argument("--logits-batch", type=int, default=2)
    args = parser.parse_args()

    expected_paths = 1 if args.random_init else 2
    if len(args.paths) != expected_paths:
        parser.error("expected OUT.safetensors with --random-init" if args.random_init else "expected IN.pth OUT.safetensors")
    out_path = args.paths[-1]
    class_names = [c.strip() for c in args.classes.split(",")] if args.classes else None
    if class_names is not None and args.num_classes is not None and args.num_classes != len(class_names):
        parser.error(f"--num-classes {args.num_classes} but --classes lists {len(class_names)} names")

    torch.set_num_threads(1)  # reproducible bit-for-bit (reduction order)
    torch.manual_seed(args.seed)
    if args.random_init:
        num_classes = args.num_classes if args.num_classes is not None else len(class_names or []) or 4
        width = args.width_mult if args.width_mult is not None else 1.0
        model = torchvision.models.mobilenet_v2(width_mult=width, num_classes=max(num_classes, 1))
        randomize_batchnorm(model, torch.Generator().manual_seed(args.seed + 1), args.logits_resolution)
        state = model.state_dict()
        source = f"torchvision {torchvision.__version__} mobilenet_v2 random init, seed {args.seed}"
    else:
        in_path = args.paths[0]
        state = load_state_dict(in_path)
        if "classifier.1.weight" not in state:
            raise SystemExit(f"{in_path}: no 'classifier.1.weight'; is this a torchvision mobilenet_v2 state dict?")
        file_classes = state["classifier.1.weight"].shape[0]
        num_classes = args.num_classes if args.num_classes is not None else (len(class_names) if class_names else file_classes)
        if num_classes == 0:
            state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
        elif num_classes != file_classes:
            raise SystemExit(f"{in_path}: classifier has {file_classes} classes but {num_classes} were requested "
                             "(use --num-classes 0 to keep only the backbone)")
        width = args.width_mult if args.width_mult is not None else infer_width(state, num_classes)
        model = torchvision.models.mobilenet_v2(width_mult=width, num_classes=max(num_classes, 1))
        if num_classes == 0:
            model.features.load_state_dict({k[len("features."):]: v for k, v in state.items()}, strict=True)
        else:
            model.load_state_dict(state, strict=True)  # validates every name and shape
        source = f"converted from {os.path.basename(in_path)} by interop/torchvision_to_safetensors.py"

    if class_names is None:
        class_names = [f"class_{i}" for i in range(num_classes)]
    tensors = {k: v.float() for k, v in model.state_dict().items()
               if not k.endswith("num_batches_tracked") and not (num_classes == 0 and k.startswith("classifier."))}
    metadata = {"format": FORMAT, "version": "1", "format_version": "1", "width_mult": repr(float(width)),
                "num_classes": str(num_classes), "image_size": str(args.image_size),
                "class_names": json.dumps(class_names), "preprocessing": preprocessing_text(args.image_size),
                "temperature": "1", "source": source}
    size = write_safetensors(out_path, tensors, metadata)
    print(f"wrote {out_path} ({size} bytes, {len(tensors)} tensors, width_mult {width}, num_classes {num_classes})")

    if args.emit_logits:
        if num_classes == 0:
            raise SystemExit("--emit-logits needs a classifier (num_classes > 0)")
        generator = torch.Generator().manual_seed(args.seed + 2)
        x = torch.randn(args.logits_batch, 3, args.logits_resolution, args.logits_resolution, generator=generator)
        model.eval()
        with torch.no_grad():
            logits = model(x)  # (N, num_classes)
        x_nhwc = nchw_to_nhwc(x).contiguous()  # (N, H, W, 3)
        result = {"model": os.path.basename(out_path), "mode": "eval", "seed": args.seed,
                  "input": {"shape": list(x_nhwc.shape), "data": float32_list(x_nhwc)},
                  "logits": {"shape": list(logits.shape), "data": float32_list(logits)}}
        with open(args.emit_logits, "w") as out:
            json.dump(result, out, separators=(",", ":"))
            out.write("\n")
        print(f"wrote {args.emit_logits} ({os.path.getsize(args.emit_logits)} bytes): input {list(x_nhwc.shape)} NHWC, "
              f"logits {logits.tolist()}")


if __name__ == "__main__":
    main()
