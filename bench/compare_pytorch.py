#!/usr/bin/python3
"""mriscan vs PyTorch and ONNX Runtime on the same machine, in the same run: end-to-end MobileNetV2 figures, peak
memory of a training step, depthwise kernels and pointwise GEMMs.

Runs, back to back and alternating, `build/mriscan bench --json`, the same workloads in PyTorch (Debian's
python3-torch) and the inference workloads in ONNX Runtime (onnxruntime-node, the torchvision model exported by
torch.onnx.export), each `--runs` times, and prints medians and the ratios mriscan / peer for each figure.
Peak memory: each side runs the training step alone in a fresh process; its peak resident set is reported.
Pointwise GEMMs: GFLOP/s of mriscan's fast table (build/mriscan_bench) and of OpenBLAS's cblas_sgemm on the same
shapes, both against the FMA peak measured by the FmaPeak benchmark on the same threads.

PyTorch peer, set up so that it is not handicapped:
  * the same thread count (torch.set_num_threads);
  * each workload in both memory formats, NCHW (contiguous) and channels_last, and the faster one reported (the
    table names it); the peak-memory step runs channels_last;
  * inference: TorchScript trace + freeze + optimize_for_inference (eager for training);
  * environment MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=17179869184 (no page-fault storms from glibc returning
    memory every step); PyTorch's BLAS (libblas.so.3) is OpenBLAS when libopenblas0-pthread is installed, as
    scripts/install_deps.sh does, not the netlib reference BLAS.
ONNX Runtime peer (bench/onnx_peer.mjs): intra-op threads = --threads, sequential execution, all graph
optimisations, NCHW input as exported.

With --bf16, mriscan also runs with --precision bf16 (bf16 GEMM inputs, fp32 sums; the peers stay fp32) and
the table gains that column.

Usage: /usr/bin/python3 bench/compare_pytorch.py [--threads 2] [--batch 32] [--image-size 224] [--runs 3]
                                                 [--repeats 5] [--json OUT.json] [--skip-kernels] [--bf16]
                                                 [--isa avx2] [--build DIR]
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "17179869184"}
OPENBLAS = "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0"

# bench/mobilenet_v2_shapes.h, depthwise part: (name, h, w, channels, stride)
DEPTHWISE = [("b1_112x112x32_s1", 112, 112, 32, 1), ("b2_112x112x96_s2", 112, 112, 96, 2),
             ("b3_56x56x144_s1", 56, 56, 144, 1), ("b4_56x56x144_s2", 56, 56, 144, 2),
             ("b5_28x28x192_s1", 28, 28, 192, 1), ("b7_28x28x192_s2", 28, 28, 192, 2),
             ("b8_14x14x384_s1", 14, 14, 384, 1), ("b12_14x14x576_s1", 14, 14, 576, 1),
             ("b14_14x14x576_s2", 14, 14, 576, 2), ("b15_7x7x960_s1", 7, 7, 960, 1)]
# bench/mobilenet_v2_shapes.h, pointwise part: (name, h, w, in_channels, out_channels)
POINTWISE = [("112x112_32to16", 112, 112, 32, 16), ("112x112_16to96", 112, 112, 16, 96),
             ("56x56_24to144", 56, 56, 24, 144), ("56x56_144to24", 56, 56, 144, 24),
             ("28x28_32to192", 28, 28, 32, 192), ("28x28_192to32", 28, 28, 192, 32),
             ("14x14_64to384", 14, 14, 64, 384), ("14x14_384to64", 14, 14, 384, 64),
             ("14x14_96to576", 14, 14, 96, 576), ("7x7_160to960", 7, 7, 160, 960),
             ("7x7_320to1280", 7, 7, 320, 1280)]
DIRECTIONS = ("forward", "backward_input", "backward_weight")


def timed(fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def torch_train_step(torch, args, frozen_blocks, memory_format):
    """One AdamW training step of torchvision's MobileNetV2 in memory_format with the first blocks frozen."""
    import torchvision
    net = torchvision.models.mobilenet_v2(num_classes=4).to(memory_format=memory_format).train()
    for i in range(frozen_blocks):  # frozen prefix: no gradients, BN on running statistics (as mriscan does)
        net.features[i].eval()
        for p in net.features[i].parameters():
            p.requires_grad_(False)
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-4, weight_decay=1e-4)
    x = torch.randn(args.batch, 3, args.image_size, args.image_size).to(memory_format=memory_format)
    y = torch.arange(args.batch) % 4

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    return step


def torch_peer(args):
    """Runs inside a child process with PEER_ENV set; prints one JSON document."""
    import torch
    import torchvision
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    size, batch = args.image_size, args.batch
    result = {"threads": torch.get_num_threads(), "torch": torch.__version__}
    if args.peer == "memory":  # the training step alone, in this fresh process: its peak resident set
        timed(torch_train_step(torch, args, 0, torch.channels_last), 1, 2)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        print(json.dumps(result))
        return
    if args.peer == "export":  # the ONNX Runtime peer's model: the same network, NCHW, dynamic batch
        model = torchvision.models.mobilenet_v2(num_classes=4).eval()
        torch.onnx.export(model, (torch.randn(1, 3, size, size),), args.onnx, opset_version=13, input_names=["x"],
                          output_names=["logits"], dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}})
        return

    def keep_faster(key, runs, images, memory_format):  # result[key]: the faster memory format's median
        median = statistics.median(runs)
        if key not in result or 1e3 * median < result[key]["median_ms"]:
            result[key] = {"median_ms": 1e3 * median, "images_per_second": images / median,
                           "format": "channels_last" if memory_format == torch.channels_last else "NCHW"}

    for memory_format in (torch.contiguous_format, torch.channels_last):
        model = torchvision.models.mobilenet_v2(num_classes=4).eval().to(memory_format=memory_format)
        with torch.no_grad():
            for n, key in ((1, "infer1"), (batch, "infer")):
                x = torch.randn(n, 3, size, size).to(memory_format=memory_format)
                scripted = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(model, x)))
                keep_faster(key, timed(lambda: scripted(x), 3, max(args.repeats, 20) if n == 1 else args.repeats), n,
                            memory_format)
        for frozen_blocks, key in ((0, "train"), (13, "finetune")):
            keep_faster(key, timed(torch_train_step(torch, args, frozen_blocks, memory_format), 1, args.repeats), batch,
                        memory_format)

    if not args.skip_kernels:
        dw = {}
        for name, h, w, c, s in DEPTHWISE:
            x = torch.randn(args.kernel_batch, c, h, w).to(memory_format=torch.channels_last).requires_grad_(True)
            weight = torch.randn(c, 1, 3, 3, requires_grad=True)
            y = torch.nn.functional.conv2d(x, weight, stride=s, padding=1, groups=c)
            dy = torch.randn_like(y)
            fwd = timed(lambda: torch.nn.functional.conv2d(x, weight, stride=s, padding=1, groups=c), 3, 10)
            dx_dw = timed(lambda: torch.autograd.grad(
                torch.nn.functional.conv2d(x, weight, stride=s, padding=1, groups=c), (x, weight), dy), 3, 10)
            dw[name] = {"forward_ms": 1e3 * statistics.median(fwd),
                        "forward_backward_ms": 1e3 * statistics.median(dx_dw)}
        result["depthwise"] = dw
    print(json.dumps(result))


def openblas_gemm(args):
    """GFLOP/s of OpenBLAS's cblas_sgemm on the pointwise shapes, in the three directions the layers use."""
    import ctypes
    import numpy as np
    if not os.path.exists(OPENBLAS):
        return None
    blas = ctypes.CDLL(OPENBLAS)
    blas.openblas_set_num_threads(args.threads)
    row_major, no_trans, trans = 101, 111, 112
    f32 = ctypes.c_float
    out = {}
    for name, h, w, ci, co in POINTWISE:
        m = args.kernel_batch * h * w
        x, wt, y = (np.random.rand(*shape).astype(np.float32) for shape in ((m, ci), (ci, co), (m, co)))
        dx, dw = np.zeros_like(x), np.zeros_like(wt)
        ptr = lambda a: a.ctypes.data_as(ctypes.c_void_p)  # noqa: E731
        calls = {  # the layers' three products (bench/bench_kernels.cpp, pointwise): y = x.w, dx += dy.w^T, dw += x^T.dy
            "forward": lambda: blas.cblas_sgemm(row_major, no_trans, no_trans, m, co, ci, f32(1), ptr(x), ci, ptr(wt),
                                                co, f32(0), ptr(y), co),
            "backward_input": lambda: blas.cblas_sgemm(row_major, no_trans, trans, m, ci, co, f32(1), ptr(y), co,
                                                       ptr(wt), co, f32(1), ptr(dx), ci),
            "backward_weight": lambda: blas.cblas_sgemm(row_major, trans, no_trans, ci, co, m, f32(1), ptr(x), ci,
                                                        ptr(y), co, f32(1), ptr(dw), co)}
        out[name] = {d: 2.0 * m * ci * co / statistics.median(timed(calls[d], 2, 7)) / 1e9 for d in DIRECTIONS}
    return out


def ours_kernels(args):
    """Depthwise and pointwise kernels of the fast table and the FMA peak via Google Benchmark, same shapes and batch.
    Returns ({shape: {forward_ms, forward_backward_ms}}, {shape: {direction: GFLOP/s}}, FMA peak GFLOP/s)."""
    exe = os.path.join(args.build, "mriscan_bench")
    env = dict(os.environ, MRISCAN_BENCH_BATCH=str(args.kernel_batch), OMP_NUM_THREADS=str(args.threads))
    # The fast table's benchmarks end in its kernel set's name (FmaPeak/<set>, <kind>/<direction>/<shape>/<set>).
    listed = subprocess.run([exe, "--benchmark_list_tests", "--benchmark_filter=^FmaPeak/"], env=env, check=True,
                            capture_output=True, text=True).stdout.split()
    kernel_set = next(name.split("/")[1] for name in listed if name.split("/")[1] != "ref")
    out = subprocess.run([exe, f"--benchmark_filter=^(FmaPeak|Depthwise|Pointwise|PointwiseBf16)/(.*/)?{kernel_set}/",
                          "--benchmark_format=json", "--benchmark_min_time=0.2"],
                         env=env, check=True, capture_output=True, text=True).stdout
    times, gemm, peak = {}, {}, None
    for b in json.loads(out)["benchmarks"]:
        if b["name"].startswith("FmaPeak"):
            peak = b["FLOPS"] / 1e9
            continue
        kind, direction, name = b["name"].split("/")[:3]  # <kind>/<direction>/<shape>/<set>/real_time
        if kind in ("Pointwise", "PointwiseBf16"):
            gemm.setdefault(name, {})[direction + ("_bf16" if kind == "PointwiseBf16" else "")] = b["FLOPS"] / 1e9
            continue
        ms = b["real_time"] if b["time_unit"] == "ms" else b["real_time"] / 1e6
        times.setdefault(name, {})[direction] = ms
    depthwise = {name: {"forward_ms": t["forward"],
                        "forward_backward_ms": t["forward"] + t["backward_input"] + t["backward_weight"]}
                 for name, t in times.items()}
    return depthwise, gemm, peak


def run_json(command, env=None):
    return json.loads(subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--runs", type=int, default=3, help="alternating runs of each side; medians are reported")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats inside each run")
    parser.add_argument("--kernel-batch", type=int, default=8)
    parser.add_argument("--skip-kernels", action="store_true", help="no depthwise or pointwise kernel tables")
    parser.add_argument("--bf16", action="store_true",
                        help="also run mriscan with --precision bf16 (AVX512-BF16) and report it as a column")
    parser.add_argument("--isa", choices=("avx2",),
                        help="time mriscan's AVX2 kernel set (MRISCAN_ISA) against PyTorch limited the same way "
                             "(ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA, OpenBLAS's Haswell kernels) on a bigger CPU; "
                             "ONNX Runtime has no such setting and keeps the machine's best")
    parser.add_argument("--json", help="write all raw figures here")
    parser.add_argument("--build", default=os.path.join(ROOT, "build"), help="build directory (default: build/)")
    parser.add_argument("--peer", choices=("all", "memory", "export", "gemm"), help=argparse.SUPPRESS)
    parser.add_argument("--onnx", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer == "gemm":
        return print(json.dumps(openblas_gemm(args)))
    if args.peer:
        return torch_peer(args)

    exe = os.path.join(args.build, "mriscan")
    if not os.path.exists(exe):
        sys.exit(f"{exe} not found: run scripts/build.sh first")
    common = ["--threads", str(args.threads), "--batch", str(args.batch), "--image-size", str(args.image_size),
              "--repeats", str(args.repeats)]
    peer = [sys.executable, __file__] + sys.argv[1:]
    peer_env = dict(os.environ, **PEER_ENV)
    if args.isa == "avx2":
        os.environ["MRISCAN_ISA"] = "avx2"  # every mriscan and mriscan_bench run below
        peer_env.update(ATEN_CPU_CAPABILITY="avx2", ONEDNN_MAX_CPU_ISA="AVX2", DNNL_MAX_CPU_ISA="AVX2",
                        OPENBLAS_CORETYPE="Haswell")
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = os.path.join(tmp, "mobilenet_v2.onnx")
        subprocess.run(peer + ["--peer", "export", "--onnx", onnx_path], env=peer_env, check=True, capture_output=True)
        runs = {side: [] for side in ("ours", "ours_bf16", "torch", "ort", "ours_memory", "torch_memory",
                                      "ours_kernels", "blas")}
        for run in range(args.runs):
            print(f"run {run + 1}/{args.runs}: mriscan, PyTorch, ONNX Runtime, peak memory ...", file=sys.stderr,
                  flush=True)
            runs["ours"].append(run_json([exe, "bench", "--json"] + common))
            if args.bf16:
                runs["ours_bf16"].append(run_json([exe, "bench", "--json", "--precision", "bf16"] + common))
            runs["torch"].append(run_json(peer + ["--peer", "all"], peer_env))
            runs["ort"].append(run_json(["node", os.path.join(ROOT, "bench", "onnx_peer.mjs"), onnx_path,
                                         str(args.threads), str(args.batch), str(args.image_size), str(args.repeats)]))
            runs["ours_memory"].append(run_json([exe, "bench", "--json", "--workloads", "train"] + common))
            runs["torch_memory"].append(run_json(peer + ["--peer", "memory"], peer_env))
            if not args.skip_kernels:
                runs["ours_kernels"].append(ours_kernels(args))
                runs["blas"].append(run_json(peer + ["--peer", "gemm"], peer_env))
    report(args, runs)


def report(args, runs):
    med = lambda values: statistics.median(list(values))  # noqa: E731
    cpu = next((l.split(":", 1)[1].strip() for l in subprocess.run(["lscpu"], capture_output=True, text=True)
                .stdout.splitlines() if l.startswith("Model name")), "unknown")
    print(f"\nmachine: {cpu}, mriscan kernel set {runs['ours'][0]['isa']}"
          + (" (PyTorch limited to AVX2; ONNX Runtime not limited)" if args.isa else "")
          + f", {args.threads} threads, {args.image_size}x{args.image_size}, batch {args.batch}, "
          f"median of {args.runs} runs (each itself a median of {args.repeats}+ repeats); PyTorch "
          f"{runs['torch'][0]['torch']}, ONNX Runtime {runs['ort'][0]['onnxruntime']}")
    bf16 = bool(runs["ours_bf16"])
    print(f"{'workload':<36}{'mriscan':>10}{'PyTorch':>10}{'ratio':>8}{'ORT':>10}{'ratio':>8}  better PyTorch's format"
          + ("   mriscan bf16: value, ratio to PyTorch, ratio to ORT" if bf16 else ""))
    rows = [("inference latency, batch 1 (ms)", "infer1", "median_ms", "lower"),
            (f"inference, batch {args.batch} (img/s)", "infer", "images_per_second", "higher"),
            (f"training step, batch {args.batch} (img/s)", "train", "images_per_second", "higher"),
            (f"fine-tune 13 frozen, batch {args.batch} (img/s)", "finetune", "images_per_second", "higher")]
    summary = {"machine": cpu, "isa": runs["ours"][0]["isa"], "peers_limited_to": args.isa, "threads": args.threads,
               "runs": args.runs, "rows": {}}
    for label, key, field, better in rows:
        ours, theirs = med(r[key][field] for r in runs["ours"]), med(r[key][field] for r in runs["torch"])
        formats = sorted({r[key]["format"] for r in runs["torch"]})  # PyTorch's faster memory format in each run
        row = {"mriscan": ours, "pytorch": theirs, "ratio_pytorch": ours / theirs, "pytorch_format": formats}
        line = f"{label:<36}{ours:>10.2f}{theirs:>10.2f}{ours / theirs:>7.2f}x"
        if key in runs["ort"][0]:
            ort = med(r[key][field] for r in runs["ort"])
            row.update(onnxruntime=ort, ratio_onnxruntime=ours / ort)
            line += f"{ort:>10.2f}{ours / ort:>7.2f}x"
        else:
            line += f"{'-':>10}{'':>8}"
        line = f"{line}  {better:<7}{'/'.join(formats):<14}"
        if bf16:
            ours_bf16 = med(r[key][field] for r in runs["ours_bf16"])
            row.update(mriscan_bf16=ours_bf16, ratio_bf16_pytorch=ours_bf16 / theirs)
            line += f"{ours_bf16:>10.2f}{ours_bf16 / theirs:>7.2f}x"
            if "onnxruntime" in row:
                row["ratio_bf16_onnxruntime"] = ours_bf16 / row["onnxruntime"]
                line += f"{ours_bf16 / row['onnxruntime']:>7.2f}x"
        print(line)
        summary["rows"][key] = row
    ours_mb = med(r["train"]["peak_rss_mb"] for r in runs["ours_memory"])
    torch_mb = med(r["peak_rss_mb"] for r in runs["torch_memory"])
    print(f"{'training step peak RSS (MB)':<36}{ours_mb:>10.0f}{torch_mb:>10.0f}{ours_mb / torch_mb:>7.2f}x"
          f"{'-':>10}{'':>8}  lower")
    summary["rows"]["train_peak_rss_mb"] = {"mriscan": ours_mb, "pytorch": torch_mb, "ratio_pytorch": ours_mb / torch_mb}
    if not args.skip_kernels:
        print(f"\ndepthwise 3x3, batch {args.kernel_batch} (ms); speedup = PyTorch / mriscan")
        for name, *_ in DEPTHWISE:
            ours = med(r[0][name]["forward_backward_ms"] for r in runs["ours_kernels"])
            theirs = med(r["depthwise"][name]["forward_backward_ms"] for r in runs["torch"])
            ours_f = med(r[0][name]["forward_ms"] for r in runs["ours_kernels"])
            theirs_f = med(r["depthwise"][name]["forward_ms"] for r in runs["torch"])
            print(f"  {name:<20} fwd {ours_f:7.2f} vs {theirs_f:7.2f} ({theirs_f / ours_f:4.1f}x)   "
                  f"fwd+bwd {ours:7.2f} vs {theirs:7.2f} ({theirs / ours:4.1f}x)")
            summary["rows"]["depthwise_" + name] = {"mriscan_ms": ours, "pytorch_ms": theirs, "speedup": theirs / ours}
        peak = med(r[2] for r in runs["ours_kernels"])
        has_blas = runs["blas"][0] is not None
        print(f"\npointwise GEMM, batch {args.kernel_batch}, GFLOP/s (% of the measured FMA peak, {peak:.0f} "
              f"GFLOP/s on {args.threads} threads): mriscan" + (" | OpenBLAS sgemm" if has_blas else
                                                                  " (OpenBLAS not installed)")
              + " | mriscan with bf16 inputs, where the CPU has AVX512-BF16")
        print(f"  {'shape':<16}" + "".join(f"{d:>38}" for d in DIRECTIONS))
        for name, *_ in POINTWISE:
            cells, row = [], {}
            for d in DIRECTIONS:
                ours = med(r[1][name][d] for r in runs["ours_kernels"])
                cell = f"{ours:6.1f} ({100 * ours / peak:3.0f}%)"
                row[d] = {"mriscan_gflops": ours}
                if has_blas:
                    blas = med(r[name][d] for r in runs["blas"])
                    cell += f" | {blas:6.1f}"
                    row[d]["openblas_gflops"] = blas
                if d + "_bf16" in runs["ours_kernels"][0][1][name]:
                    ours_bf16 = med(r[1][name][d + "_bf16"] for r in runs["ours_kernels"])
                    cell += f" | bf16 {ours_bf16:6.1f}"
                    row[d]["mriscan_bf16_gflops"] = ours_bf16
                cells.append(f"{cell:>38}")
            print(f"  {name:<16}" + "".join(cells))
            summary["rows"]["pointwise_" + name] = row
        summary["fma_peak_gflops"] = peak
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summary": summary, "raw": runs}, f, indent=2)


if __name__ == "__main__":
    main()
