#!/usr/bin/env python3
"""Same-run comparison of one process against data-parallel processes under MPI, on real training epochs.

Runs `mriscan train` (a subset of ../shared's Training images at 224x224, batch 32, whole network) as
  1 process x 2 threads  |  2 ranks x 1 thread (buckets during backward)  |  2 ranks x 1 thread, one bucket after
  backward (no overlap)
alternately, --runs times, and prints the median training images/s of the epoch (data loading included), the
seconds per epoch spent waiting for gradient all-reduces after backward (the part not hidden behind computation)
and in the batch-norm synchronisation, with `lscpu`'s model name.
What it is not: a scaling study across machines (docs/distributed_training.md models that).

Usage: /usr/bin/python3 bench/compare_data_parallel.py [--build build] [--runs 3] [--per-class 64]
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent


def model_name() -> str:
    for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def epoch_summary(run_dir: pathlib.Path) -> dict:
    lines = (run_dir / "train_log.jsonl").read_text().splitlines()
    return json.loads(lines[-1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default=str(ROOT / "build"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--per-class", type=int, default=64)
    args = parser.parse_args()
    binary = str(pathlib.Path(args.build) / "mriscan")
    common = ["train", "--epochs", "1", "--batch", "32", "--max-per-class", str(args.per_class), "--no-test",
              "--seed", "1"]
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1")
    mpirun = ["mpirun", "-np", "2", "--oversubscribe", "--bind-to", "none"]
    setups = {
        "1 process x 2 threads": [binary, *common, "--threads", "2"],
        "2 ranks x 1 thread": [*mpirun, binary, *common, "--threads", "1"],
        "2 ranks x 1 thread, no overlap": [*mpirun, binary, *common, "--threads", "1", "--bucket-mb", "0"],
    }
    results = {name: [] for name in setups}
    with tempfile.TemporaryDirectory() as scratch:
        for run in range(args.runs):
            for i, (name, command) in enumerate(setups.items()):
                out = pathlib.Path(scratch) / f"run{run}_{i}"
                subprocess.run([*command, "--out", str(out)], check=True, env=env, capture_output=True)
                results[name].append(epoch_summary(out))
    print(f"CPU: {model_name()}; {args.runs} runs, medians; one epoch of {args.per_class} images per class, "
          "batch 32, 224x224")
    print(f"{'setup':34s} {'img/s':>7s} {'allreduce wait s':>17s} {'BN sync s':>10s} {'epoch s':>8s}")
    for name, summaries in results.items():
        def med(key, sub=None):
            values = [(s.get("processes", {}).get(key, 0.0) if sub else s[key]) for s in summaries]
            return statistics.median(values)
        print(f"{name:34s} {med('images_per_second'):7.1f} {med('allreduce_wait_seconds', True):17.2f} "
              f"{med('batch_norm_sync_seconds', True):10.2f} {med('train_seconds'):8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
