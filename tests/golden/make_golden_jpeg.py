#!/usr/bin/env python3
"""Writes tests/golden/jpeg_pil.json: a few small JPEG files and the RGB pixels PIL decodes from them, so
tests/io/test_jpeg_decode.cpp can check that mriscan's decoder (libjpeg-turbo, io/jpeg_decode.h) gives exactly the
pixels a PyTorch pipeline (PIL / torchvision) would feed the same model.

Files: colour 4:2:0 baseline (odd sizes, so the chroma upsampling's edge handling is covered), colour 4:4:4,
grayscale (PIL mode "L", converted to RGB the way torchvision's ImageFolder loader does), and a progressive one.
What it is not: a test; it only writes the fixture. Deterministic: a fixed pattern, PIL's own encoder.

Regenerate: /usr/bin/python3 tests/golden/make_golden_jpeg.py [--out tests/golden/jpeg_pil.json]
"""
import argparse
import base64
import io
import json
import os

import PIL
from PIL import Image


def pattern(width, height):
    """Smooth gradients plus sharp edges: both the IDCT and the chroma upsampling leave a trace."""
    image = Image.new("RGB", (width, height))
    pixels = image.load()
    for y in range(height):
        for x in range(width):
            edge = 255 if (x // 5 + y // 3) % 2 else 0
            pixels[x, y] = ((x * 7 + y * 3) % 256, (edge + y * 11) % 256, (x * y) % 256)
    return image


def case(name, image, **save_options):
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", **save_options)
    data = buffer.getvalue()
    decoded = Image.open(io.BytesIO(data)).convert("RGB")
    return {"name": name, "width": decoded.width, "height": decoded.height,
            "jpeg": base64.b64encode(data).decode(), "rgb": base64.b64encode(decoded.tobytes()).decode()}


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(root, "tests", "golden", "jpeg_pil.json"))
    args = parser.parse_args()
    colour = pattern(37, 23)
    cases = [case("colour_420", colour, quality=85, subsampling=2),
             case("colour_444", colour, quality=90, subsampling=0),
             case("grayscale", colour.convert("L"), quality=80),
             case("progressive_420", colour, quality=75, subsampling=2, progressive=True)]
    with open(args.out, "w") as out:
        json.dump({"pil": PIL.__version__, "regenerate": "/usr/bin/python3 tests/golden/make_golden_jpeg.py",
                   "cases": cases}, out, indent=1)
        out.write("\n")


if __name__ == "__main__":
    main()
