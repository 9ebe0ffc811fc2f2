#!/usr/bin/env python3
"""Smoke test of mriscan_layer_bench (bench/layers/): the reduced set (`--quick`: batch 2, two shapes of each kind)
runs, every mriscan result matches oneDNN's within the stated tolerance, the JSON and the roofline PNG are
written with sane fields, and MRISCAN_ISA's choice of kernel set is the one reported. Run by ctest as
`LayerBenchSmoke` (registered only where oneDNN is found); prints one line per check and exits 1 if any failed.
What it is not: a measurement (the times of a smoke run on a busy machine mean nothing; docs/roofline.md).

Usage: /usr/bin/python3 tests/tools/layer_bench_test.py BUILD/mriscan_layer_bench
"""
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

BINARY = sys.argv[1] if len(sys.argv) > 1 else "build/mriscan_layer_bench"
OPS = {"depthwise.forward", "depthwise.backward_data", "depthwise.backward_weights", "batchnorm.forward_training",
       "batchnorm.backward", "pointwise.forward", "pointwise.backward_data", "pointwise.backward_weights"}
results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail and not ok else ''}")


def positive(value):
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def png_size(path):
    """(width, height) from the IHDR chunk of a PNG file, or None when it is not one."""
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def check_rows(report):
    rows, tolerance = report["rows"], report["settings"]["tolerance"]
    # --quick: two depthwise shapes (3 conv rows + 2 batch-norm rows each) and two pointwise shapes (3 rows each).
    check("row count", len(rows) == 2 * 5 + 2 * 3, str(len(rows)))
    check("every op kind present", {r["op"] for r in rows} == OPS, str({r["op"] for r in rows}))
    for r in rows:
        name = f"{r['layer']} {r['op']}"
        timed = all(positive(r[side]["median_ms"]) and len(r[side]["runs_ms"]) >= 5 for side in ("mriscan", "onednn"))
        check(f"{name}: both timed, >= 5 runs", timed, json.dumps(r)[:200])
        check(f"{name}: within tolerance", r["within_tolerance"] and 0 <= r["max_rel_error"] <= tolerance,
              str(r["max_rel_error"]))
        model = positive(r["flops"]) and positive(r["bytes"]) and positive(r["mriscan_gflops"])
        ratio = r["onednn"]["median_ms"] / r["mriscan"]["median_ms"]
        check(f"{name}: work model, ratio, oneDNN impl", model and math.isclose(r["ratio_onednn_over_mriscan"], ratio)
              and r["onednn_impl"] != "", json.dumps(r)[:200])


def check_roofline(report):
    roof = report["roofline"]
    check("roofs measured", positive(roof["peak_gflops"]) and positive(roof["bandwidth_gbytes_per_s"]), str(roof)[:200])
    check("one roofline point per row", len(roof["points"]) == len(report["rows"]))
    for p, r in zip(roof["points"], report["rows"]):
        expected_roof = min(roof["peak_gflops"], roof["bandwidth_gbytes_per_s"] * r["flops"] / r["bytes"])
        ok = (p["op"] == r["op"] and math.isclose(p["intensity_flop_per_byte"], r["flops"] / r["bytes"])
              and math.isclose(p["roof_gflops"], expected_roof) and math.isclose(p["gflops"], r["mriscan_gflops"]))
        check(f"roofline point {p['layer']} {p['op']}", ok, str(p))


def check_isa_choice():
    """MRISCAN_ISA=avx2 runs the avx2 kernel set and reports it by that name, or is refused clearly where this CPU
    or build has no such set."""
    env = {k: v for k, v in os.environ.items() if k != "MRISCAN_KERNELS"}
    env["MRISCAN_ISA"] = "avx2"
    with tempfile.TemporaryDirectory() as tmp:
        json_path = os.path.join(tmp, "layers.json")
        run = subprocess.run([BINARY, "--quick", "--filter", "b1_", "--json", json_path], capture_output=True,
                             text=True, timeout=120, env=env)
        if run.returncode != 0:
            check("MRISCAN_ISA=avx2 refused clearly", "MRISCAN_ISA=avx2:" in run.stderr, run.stderr[-500:])
            return
        report = json.load(open(json_path))
        check("MRISCAN_ISA=avx2 names the avx2 table", report["machine"]["kernel_table"] == "avx2",
              report["machine"]["kernel_table"])
        check("MRISCAN_ISA=avx2 results match oneDNN's", report["correct"] is True)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        json_path, png_path = os.path.join(tmp, "layers.json"), os.path.join(tmp, "roofline.png")
        run = subprocess.run([BINARY, "--quick", "--json", json_path, "--png", png_path], capture_output=True,
                             text=True, timeout=120)
        check("--quick exits 0", run.returncode == 0, run.stderr[-2000:])
        check("stdout says the check passed", "correctness: passed" in run.stdout, run.stdout[-500:])
        check("stdout names oneDNN's ISA", "oneDNN 2." in run.stdout and ", ISA " in run.stdout, run.stdout[:300])
        if not os.path.exists(json_path):
            check("JSON written", False)
            return
        report = json.load(open(json_path))
        machine = report["machine"]
        check("JSON: correct", report["correct"] is True)
        check("JSON: machine", machine["kernel_table"] != "" and machine["onednn_isa"] != ""
              and machine["onednn_version"].startswith("2.") and machine["threads"] >= 1, str(machine))
        with open("/proc/cpuinfo") as cpuinfo:
            names = [l.split(":", 1)[1].strip() for l in cpuinfo if l.startswith("model name")]
        check("JSON: the CPU's model name", machine["cpu_model"] == (names[0] if names else ""), machine["cpu_model"])
        check("JSON: batch 2", report["settings"]["batch"] == 2)
        check_rows(report)
        check_roofline(report)
        check("PNG written, 1200x800", os.path.exists(png_path) and png_size(png_path) == (1200, 800))
    check_isa_choice()
    bad = subprocess.run([BINARY, "--repeats", "3"], capture_output=True, text=True, timeout=30)
    check("fewer than 5 repeats refused", bad.returncode == 2 and "--repeats" in bad.stderr, bad.stderr)
    none = subprocess.run([BINARY, "--quick", "--filter", "no_such_layer"], capture_output=True, text=True, timeout=60)
    check("a filter matching nothing refused", none.returncode == 2 and "no layer" in none.stderr, none.stderr)


if __name__ == "__main__":
    main()
    print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
    sys.exit(0 if all(results) else 1)
