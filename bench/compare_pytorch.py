#!/usr/bin/python3
"""mriscan vs PyTorch on the same machine, in the same run: end-to-end MobileNetV2 figures and depthwise kernels.

Runs, back to back and alternating, `build/mriscan bench --json` and the same workloads in PyTorch (Debian's
python3-torch), each `--runs` times, and prints medians and the ratio mriscan / PyTorch for each figure.

PyTorch peer, set up so that it is not handicapped:
  * the same thread count (torch.set_num_threads), channels_last memory format;
  * inference: TorchScript trace + freeze + optimize_for_inference (eager for training);
  * environment MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=17179869184 (no page-fault storms from glibc returning
    memory every step) and OPENBLAS_CORETYPE=SkylakeX (the right OpenBLAS kernel for AVX-512).

Usage: /usr/bin/python3 bench/compare_pytorch.py [--threads 2] [--batch 32] [--image-size 224] [--runs 3]
                                                 [--repeats 5] [--json OUT.json] [--skip-depthwise]
                                                 [--build DIR]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "17179869184", "OPENBLAS_CORETYPE": "SkylakeX"}

# bench/mobilenet_v2_shapes.h, depthwise part: (name, h, w, channels, stride)
DEPTHWISE = [("b1_112x112x32_s1", 112, 112, 32, 1), ("b2_112x112x96_s2", 112, 112, 96, 2),
             ("b3_56x56x144_s1", 56, 56, 144, 1), ("b4_56x56x144_s2", 56, 56, 144, 2),
             ("b5_28x28x192_s1", 28, 28, 192, 1), ("b7_28x28x192_s2", 28, 28, 192, 2),
             ("b8_14x14x384_s1", 14, 14, 384, 1), ("b12_14x14x576_s1", 14, 14, 576, 1),
             ("b14_14x14x576_s2", 14, 14, 576, 2), ("b15_7x7x960_s1", 7, 7, 960, 1)]


def timed(fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def torch_peer(args):
    """Runs inside a child process with PEER_ENV set; prints one JSON document."""
    import torch
    import torchvision
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    size, batch = args.image_size, args.batch
    result = {"threads": torch.get_num_threads(), "torch": torch.__version__}

    model = torchvision.models.mobilenet_v2(num_classes=4).eval().to(memory_format=torch.channels_last)
    with torch.no_grad():
        for n, key in ((1, "infer1"), (batch, "infer")):
            x = torch.randn(n, 3, size, size).to(memory_format=torch.channels_last)
            scripted = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(model, x)))
            runs = timed(lambda: scripted(x), 3, max(args.repeats, 20) if n == 1 else args.repeats)
            result[key] = {"median_ms": 1e3 * statistics.median(runs), "images_per_second": n / statistics.median(runs)}

    def train(frozen_blocks, key):
        net = torchvision.models.mobilenet_v2(num_classes=4).to(memory_format=torch.channels_last).train()
        for i in range(frozen_blocks):  # frozen prefix: no gradients, BN on running statistics (as mriscan does)
            net.features[i].eval()
            for p in net.features[i].parameters():
                p.requires_grad_(False)
        opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-4, weight_decay=1e-4)
        x = torch.randn(batch, 3, size, size).to(memory_format=torch.channels_last)
        y = torch.arange(batch) % 4

        def step():
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
        runs = timed(step, 1, args.repeats)
        result[key] = {"median_ms": 1e3 * statistics.median(runs), "images_per_second": batch / statistics.median(runs)}
    train(0, "train")
    train(13, "finetune")

    if not args.skip_depthwise:
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


def ours_depthwise(args):
    """Depthwise kernels of the fast table via Google Benchmark, same shapes and batch."""
    exe = os.path.join(args.build, "mriscan_bench")
    env = dict(os.environ, MRISCAN_BENCH_BATCH=str(args.kernel_batch), OMP_NUM_THREADS=str(args.threads))
    out = subprocess.run([exe, "--benchmark_filter=Depthwise/.*/simd", "--benchmark_format=json",
                          "--benchmark_min_time=0.2"], env=env, check=True, capture_output=True, text=True).stdout
    times = {}
    for b in json.loads(out)["benchmarks"]:
        _, direction, name = b["name"].split("/")[:3]  # Depthwise/<direction>/<shape>/simd[/real_time]
        ms = b["real_time"] if b["time_unit"] == "ms" else b["real_time"] / 1e6
        times.setdefault(name, {})[direction] = ms
    return {name: {"forward_ms": t["forward"], "forward_backward_ms": t["forward"] + t["backward_input"] + t["backward_weight"]}
            for name, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--runs", type=int, default=3, help="alternating runs of each side; medians are reported")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats inside each run")
    parser.add_argument("--kernel-batch", type=int, default=8)
    parser.add_argument("--skip-depthwise", action="store_true")
    parser.add_argument("--json", help="write all raw figures here")
    parser.add_argument("--build", default=os.path.join(ROOT, "build"), help="build directory (default: build/)")
    parser.add_argument("--peer", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer:
        return torch_peer(args)

    exe = os.path.join(args.build, "mriscan")
    if not os.path.exists(exe):
        sys.exit(f"{exe} not found: run tools/build.sh first")
    common = ["--threads", str(args.threads), "--batch", str(args.batch), "--image-size", str(args.image_size),
              "--repeats", str(args.repeats)]
    ours_runs, peer_runs, ours_dw = [], [], []
    for run in range(args.runs):
        print(f"run {run + 1}/{args.runs}: mriscan ...", file=sys.stderr, flush=True)
        ours_runs.append(json.loads(subprocess.run([exe, "bench", "--json"] + common, check=True,
                                                   capture_output=True, text=True).stdout))
        if not args.skip_depthwise:
            ours_dw.append(ours_depthwise(args))
        print(f"run {run + 1}/{args.runs}: PyTorch ...", file=sys.stderr, flush=True)
        peer = subprocess.run([sys.executable, __file__, "--peer"] + sys.argv[1:], env=dict(os.environ, **PEER_ENV),
                              check=True, capture_output=True, text=True)
        peer_runs.append(json.loads(peer.stdout))

    def med(runs, *keys):
        values = []
        for r in runs:
            for k in keys:
                r = r[k]
            values.append(r)
        return statistics.median(values)

    cpu = next((l.split(":", 1)[1].strip() for l in subprocess.run(["lscpu"], capture_output=True, text=True)
                .stdout.splitlines() if l.startswith("Model name")), "unknown")
    print(f"\nmachine: {cpu}, {args.threads} threads, {args.image_size}x{args.image_size}, batch {args.batch}, "
          f"median of {args.runs} runs (each itself a median of {args.repeats}+ repeats)")
    print(f"{'workload':<34}{'mriscan':>12}{'PyTorch':>12}{'ratio':>9}  better is")
    rows = [("inference latency, batch 1 (ms)", "infer1", "median_ms", "lower"),
            (f"inference, batch {args.batch} (img/s)", "infer", "images_per_second", "higher"),
            (f"training step, batch {args.batch} (img/s)", "train", "images_per_second", "higher"),
            (f"fine-tune 13 frozen, batch {args.batch} (img/s)", "finetune", "images_per_second", "higher")]
    summary = {"machine": cpu, "threads": args.threads, "runs": args.runs, "rows": {}}
    for label, key, field, better in rows:
        ours, theirs = med(ours_runs, key, field), med(peer_runs, key, field)
        print(f"{label:<34}{ours:>12.2f}{theirs:>12.2f}{ours / theirs:>8.2f}x  {better}")
        summary["rows"][key] = {"mriscan": ours, "pytorch": theirs, "ratio": ours / theirs}
    if not args.skip_depthwise:
        print(f"\ndepthwise 3x3, batch {args.kernel_batch}, forward+backward (ms); speedup = PyTorch / mriscan")
        for name, *_ in DEPTHWISE:
            ours = statistics.median(r[name]["forward_backward_ms"] for r in ours_dw)
            theirs = statistics.median(r["depthwise"][name]["forward_backward_ms"] for r in peer_runs)
            ours_f = statistics.median(r[name]["forward_ms"] for r in ours_dw)
            theirs_f = statistics.median(r["depthwise"][name]["forward_ms"] for r in peer_runs)
            print(f"  {name:<20} fwd {ours_f:7.2f} vs {theirs_f:7.2f} ({theirs_f / ours_f:4.1f}x)   "
                  f"fwd+bwd {ours:7.2f} vs {theirs:7.2f} ({theirs / ours:4.1f}x)")
            summary["rows"]["depthwise_" + name] = {"mriscan_ms": ours, "pytorch_ms": theirs, "speedup": theirs / ours}
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summary": summary, "mriscan": ours_runs, "pytorch": peer_runs, "mriscan_depthwise": ours_dw}, f,
                      indent=2)


if __name__ == "__main__":
    main()
