#!/usr/bin/env python3
"""Interoperability with the files other tools use, end to end through the `mriscan` binary:
  1. a torchvision MobileNetV2 state dict saved with torch.save (.pth) goes through
     interop/torchvision_to_safetensors.py and predicts what torchvision predicts;
  2. the same state dict written as safetensors.torch.save_file writes it (I64 num_batches_tracked, metadata
     {"format": "pt"} only) loads directly: width and classes inferred, class names from --class-names or
     defaulted with a warning, a wrong count refused;
  3. interop/export_onnx.py's ONNX model, run by ONNX Runtime (onnxruntime-node from tests/ui/node_modules), gives
     mriscan's probabilities (temperature included) for the same pixels; the max difference is printed.
Inputs are real Testing scans from ../shared, resized to 224x224 and saved as PNG, so mriscan, torchvision and
ONNX Runtime see identical pixels. Prints one line per check and exits 1 if any failed (ctest `Interop`).

Usage: /usr/bin/python3 tests/tools/interop_test.py BUILD/mriscan
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torchvision
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "interop"))
from tensor_files import randomize_batchnorm, read_safetensors, write_safetensors  # noqa: E402

BINARY = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "mriscan")
SHARED = os.environ.get("MRISCAN_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]
TOLERANCE = 1e-4  # on probabilities; float32 kernels summing in different orders
results = []


def check(name, condition, detail=""):
    results.append(bool(condition))
    print(("ok     " if condition else "FAILED ") + name + ("" if condition else f": {detail}"))


def run(*args, timeout=300):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)


def mriscan_probabilities(model, images, *extra):
    out = run(BINARY, "predict", "--json", "--model", model, *extra, *images)
    if out.returncode != 0:
        return None, out
    return np.array([[r["probabilities"][c] for c in r["probabilities"]] for r in json.loads(out.stdout)]), out


def main() -> int:
    data = os.path.join(SHARED, "data", "brain-tumor-mri", "Testing")
    if not os.path.isdir(data):
        print(f"FAILED: the dataset is missing at {data} (set MRISCAN_SHARED)")
        return 1
    work = tempfile.mkdtemp(prefix="mriscan-interop-")
    torch.manual_seed(3)
    model = torchvision.models.mobilenet_v2(width_mult=0.35, num_classes=4)
    randomize_batchnorm(model, torch.Generator().manual_seed(4), 64)
    model.eval()

    # Real scans at 224x224, as PNG (lossless): identical pixels for every runtime.
    images, pixels = [], []
    for c in CLASSES:
        name = sorted(f for f in os.listdir(os.path.join(data, c)) if f.endswith(".jpg"))[0]
        image = Image.open(os.path.join(data, c, name)).convert("RGB").resize((224, 224), Image.BILINEAR)
        images.append(os.path.join(work, f"{c}.png"))
        image.save(images[-1])
        pixels.append(np.asarray(image, dtype=np.float32))
    batch = np.stack(pixels)  # (N, 224, 224, 3), RGB in [0, 255]
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    x = torch.from_numpy(((batch / 255.0 - mean) / std).astype(np.float32)).permute(0, 3, 1, 2)
    with torch.no_grad():
        expected = torch.softmax(model(x), dim=1).numpy()  # (N, 4)

    # 1. torch.save -> the converter -> mriscan.
    pth = os.path.join(work, "torchvision.pth")
    torch.save(model.state_dict(), pth)
    converted = os.path.join(work, "converted.safetensors")
    out = run("/usr/bin/python3", os.path.join(ROOT, "interop", "torchvision_to_safetensors.py"), pth, converted,
              "--classes", ",".join(CLASSES))
    check(".pth converts", out.returncode == 0, out.stderr[-500:])
    got, out = mriscan_probabilities(converted, images)
    check(".pth: mriscan predicts what torchvision predicts",
          got is not None and np.abs(got - expected).max() < TOLERANCE,
          out.stderr[-300:] if got is None else f"max difference {np.abs(got - expected).max():.2e}")

    # 2. The state dict as safetensors.torch.save_file writes it, num_batches_tracked and all, no metadata.
    raw = os.path.join(work, "state_dict.safetensors")
    write_safetensors(raw, model.state_dict(), {"format": "pt"})
    _, header = read_safetensors_header(raw)
    check("the raw file has I64 num_batches_tracked", header["features.0.1.num_batches_tracked"]["dtype"] == "I64")
    got, out = mriscan_probabilities(raw, images)
    check("safetensors state dict: loads, width 0.35 and 4 classes inferred, same probabilities",
          got is not None and np.abs(got - expected).max() < TOLERANCE,
          out.stderr[-300:] if got is None else f"max difference {np.abs(got - expected).max():.2e}")
    check("without class names: a warning names the assumed ones and --class-names",
          "no class names" in out.stderr and "--class-names" in out.stderr, out.stderr)
    named = run(BINARY, "predict", "--json", "--model", raw, "--class-names", "a,b,c,d", images[0])
    check("--class-names sets them", named.returncode == 0 and
          set(json.loads(named.stdout)[0]["probabilities"]) == {"a", "b", "c", "d"}, named.stderr)
    wrong = run(BINARY, "predict", "--model", raw, "--class-names", "a,b", images[0])
    check("a wrong number of class names is refused", wrong.returncode != 0 and "2 class names" in wrong.stderr,
          wrong.stderr)
    other = os.path.join(work, "resnet.safetensors")
    write_safetensors(other, torchvision.models.resnet18(num_classes=4).state_dict(), {"format": "pt"})
    refused = run(BINARY, "predict", "--model", other, images[0])
    check("a state dict of another architecture is refused clearly",
          refused.returncode != 0 and "not a torchvision mobilenet_v2" in refused.stderr, refused.stderr)

    # 3. ONNX: export the converted model with a temperature, run it in ONNX Runtime, compare with mriscan.
    tensors, metadata = read_safetensors(converted)
    metadata["temperature"] = "0.7"
    tempered = os.path.join(work, "tempered.safetensors")
    write_safetensors(tempered, tensors, metadata)
    onnx_path = os.path.join(work, "model.onnx")
    out = run("/usr/bin/python3", os.path.join(ROOT, "interop", "export_onnx.py"), tempered, onnx_path)
    check("export_onnx.py writes the model and its sidecar", out.returncode == 0 and os.path.exists(onnx_path)
          and json.load(open(os.path.join(work, "model.json")))["class_names"] == CLASSES, out.stderr[-500:])
    inputs = os.path.join(work, "input.f32")
    batch.astype("<f4").tofile(inputs)
    ort = run("node", os.path.join(ROOT, "tests", "ui", "onnx_run.mjs"), onnx_path, inputs, *map(str, batch.shape))
    check("ONNX Runtime runs the export", ort.returncode == 0, ort.stderr[-500:])
    got, out = mriscan_probabilities(tempered, images)
    if ort.returncode == 0 and got is not None:
        onnx = np.array(json.loads(ort.stdout)["probabilities"]["data"]).reshape(got.shape)
        difference = np.abs(onnx - got).max()
        print(f"       ONNX Runtime vs mriscan: max |probability difference| {difference:.2e} over {got.size} values")
        check("ONNX Runtime gives mriscan's temperature-scaled probabilities", difference < TOLERANCE,
              f"{difference:.2e}")
        check("the temperature is applied (T = 0.7 differs from T = 1)", np.abs(onnx - expected).max() > 1e-3)
    print(f"interop_test: {sum(results)}/{len(results)} checks passed")
    return 0 if all(results) else 1


def read_safetensors_header(path):
    with open(path, "rb") as f:
        length = int.from_bytes(f.read(8), "little")
        return length, json.loads(f.read(length))


if __name__ == "__main__":
    sys.exit(main())
