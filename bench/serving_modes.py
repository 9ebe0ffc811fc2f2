#!/usr/bin/python3
"""How a server should spend 2 cores on predictions: the offline figures behind server/thread_budget.h.

Measured in one run, alternating, `--runs` rounds (medians reported), with `mriscan bench` on random inputs:
  * one-at-a-time: batch 1 on every core (what a lone request gets);
  * concurrent: as many batch-1 streams as cores, one kernel thread each, started together (what the
    ThreadBudget gives requests under load); images/s is the sum over the streams;
  * micro-batching's best case: batch B on every core, for B in --batches (a batcher can only add waiting time
    to these figures, never remove it).
Micro-batching pays only if some batch B beats the concurrent streams' images/s.

Usage: /usr/bin/python3 bench/serving_modes.py [--build DIR] [--runs 3] [--repeats 30] [--batches 2,4,8,16]
"""
import argparse
import json
import os
import statistics
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bench(binary, threads, workload, batch, repeats):
    cmd = [binary, "bench", "--json", "--workloads", workload, "--batch", str(batch), "--repeats", str(repeats)]
    if threads > 0:
        cmd += ["--threads", str(threads)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def result(process, workload=None):
    out, _ = process.communicate()
    report = json.loads(out)
    return report[workload] if workload else report


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--batches", default="2,4,8,16")
    args = parser.parse_args()
    binary = os.path.join(args.build, "mriscan")
    # mriscan's default thread count: the physical cores.
    cores = result(bench(binary, 0, "infer1", 1, 1))["threads"]
    batches = [int(b) for b in args.batches.split(",")]
    figures = {}
    for _ in range(args.runs):
        r = result(bench(binary, cores, "infer1", 1, args.repeats), "infer1")
        figures.setdefault("one-at-a-time, batch 1", []).append((1000.0 / r["median_ms"], r["median_ms"]))
        streams = [bench(binary, 1, "infer1", 1, args.repeats) for _ in range(cores)]
        ms = [result(s, "infer1")["median_ms"] for s in streams]
        figures.setdefault(f"{cores} concurrent streams x 1 thread", []).append(
            (sum(1000.0 / m for m in ms), statistics.median(ms)))
        for b in batches:
            r = result(bench(binary, cores, "infer", b, max(3, args.repeats // b)), "infer")
            figures.setdefault(f"batch {b}", []).append((r["images_per_second"], r["median_ms"]))
    model = next((l.split(":", 1)[1].strip() for l in subprocess.run(["lscpu"], capture_output=True, text=True)
                  .stdout.splitlines() if l.startswith("Model name")), "?")
    print(f"{model}, {cores} cores, medians of {args.runs} runs")
    print(f"{'mode':40s} {'images/s':>9s} {'ms per call':>12s}")
    best = max(statistics.median(v[0] for v in values) for values in figures.values())
    for mode, values in figures.items():
        ips = statistics.median(v[0] for v in values)
        print(f"{mode:40s} {ips:9.1f} {statistics.median(v[1] for v in values):12.2f}"
              f"{'   <- best' if ips == best else ''}")


if __name__ == "__main__":
    main()
