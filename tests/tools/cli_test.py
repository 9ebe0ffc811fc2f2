#!/usr/bin/env python3
"""Tests of the `mriscan` command line as a user meets it: --help generated from each command's option list (for
`train`, from TrainConfig's field table, defaults included), unknown options and bad values refused with a
clear message and a non-zero exit, `bench --json` reporting milliseconds in both `median_ms` and `runs_ms` (and
`--profile` per op, within the step's wall time), `--precision` honoured or clearly refused, `calibrate-sets`
refitting the prediction sets' scores a tiny model's training stored, `predict` on DICOM files (the same pixels,
the same answer; a refused transfer syntax named), (where mpirun
exists) a data-parallel `train` whose ranks fail ending the whole job with the error, not hanging, and (where
qemu-user exists) a binary started on an emulated CPU refusing clearly or running, never dying of SIGILL.
Run by ctest as `Cli` with the binary's path; prints one line per check and exits 1 if any failed.
What it is not: a test of training quality (tests/train/) or of the server (tests/server/).

Usage: /usr/bin/python3 tests/tools/cli_test.py BUILD/mriscan
"""
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = sys.argv[1] if len(sys.argv) > 1 else "build/mriscan"
results = []


def run(*args, timeout=300):
    return subprocess.run([BINARY, *args], capture_output=True, text=True, timeout=timeout)


def cpu_check_extensions():
    """The extension names tools/cpu_check.cpp tests (and reports by the same name when missing)."""
    with open(os.path.join(ROOT, "tools", "cpu_check.cpp")) as source:
        return set(re.findall(r'__builtin_cpu_supports\("([^"]+)"\)', source.read()))


def refused_extensions(stderr):
    """The names after "lacks:" in cpu_check.cpp's refusal ("... lacks: avx512f avx512bw."), empty if none."""
    line = next((l for l in stderr.splitlines() if "lacks:" in l), "")
    return {name.rstrip(".") for name in line.split("lacks:", 1)[-1].split()} if line else set()


def check(name, condition, detail=""):
    results.append(bool(condition))
    print(("ok     " if condition else "FAILED ") + name + ("" if condition else f": {detail}"))


def without_metadata(source, target, key):
    """Copies the safetensors file `source` to `target` without the metadata entry `key` (a model file as written
    before that entry existed)."""
    with open(source, "rb") as f:
        length = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(length))
        data = f.read()
    del header["__metadata__"][key]
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(target, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + data)


def metadata_of(path):
    with open(path, "rb") as f:
        return json.loads(f.read(int.from_bytes(f.read(8), "little")))["__metadata__"]


def check_calibrate_sets():
    """`calibrate-sets` re-splits the data as the file's training did: on a tiny model trained here and stripped of
    its conformal scores, it writes back exactly the scores training stored (to --out; the input is untouched)."""
    shared = os.environ.get("MRISCAN_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
    data = os.path.join(shared, "data", "brain-tumor-mri")
    if not os.path.isdir(data):
        print("skip   calibrate-sets: no shared dataset")
        return
    with tempfile.TemporaryDirectory() as scratch:
        trained = run("train", "--data", data, "--out", os.path.join(scratch, "run"), "--epochs", "1",
                      "--width", "0.35", "--image-size", "64", "--max-per-class", "20", "--val-fraction", "0.3",
                      "--batch", "8", "--no-test", timeout=900)
        check("a tiny model trains (for calibrate-sets)", trained.returncode == 0, trained.stderr[-2000:])
        if trained.returncode != 0:
            return
        model = os.path.join(scratch, "run", "model.safetensors")
        bare, out = os.path.join(scratch, "bare.safetensors"), os.path.join(scratch, "with_sets.safetensors")
        without_metadata(model, bare, "conformal")
        calibrated = run("calibrate-sets", "--model", bare, "--out", out, "--json", timeout=900)
        check("calibrate-sets exits 0", calibrated.returncode == 0, calibrated.stderr[-2000:])
        if calibrated.returncode != 0:
            return
        stored, refitted = json.loads(metadata_of(model)["conformal"]), json.loads(metadata_of(out)["conformal"])
        same = all(abs(a - b) < 1e-6 for a, b in zip(refitted["scores"], stored["scores"]))
        check("calibrate-sets writes back the scores training stored", refitted["n"] == stored["n"] and same,
              f"{refitted['scores'][:5]} vs {stored['scores'][:5]}")
        check("calibrate-sets leaves the input file as it was", "conformal" not in metadata_of(bare))
        check("calibrate-sets puts the sets in the model card", "## Prediction sets" in metadata_of(out)["model_card"])
        # Ten scans, for one the tiny model's out-of-distribution check answers (a withheld answer has no sets).
        gliomas = os.path.join(data, "Testing", "glioma")
        scans = [os.path.join(gliomas, name) for name in sorted(os.listdir(gliomas))[:10]]
        predicted = run("predict", "--model", out, "--alpha", "0.3", "--json", *scans)
        answers = json.loads(predicted.stdout) if predicted.returncode == 0 else []
        answer = next((a for a in answers if not a["out_of_distribution"]), {})
        levels = set(answer.get("prediction_sets") or {})
        check("predict --alpha 0.3 leads with the 0.3 set, then 0.05 and 0.01",
              answer.get("prediction_set_alpha") == 0.3 and levels == {"0.3", "0.05", "0.01"},
              predicted.stdout[-2000:] + predicted.stderr[-2000:])


def check_dicom_predict():
    """`predict` on DICOM files (tests/io/make_dicom_fixtures.py): an 8-bit secondary capture and a 16-bit file
    windowed onto the same pixels give the same answer; a refused transfer syntax is a clear error."""
    with tempfile.TemporaryDirectory() as scratch:
        with open(os.path.join(scratch, "source.pgm"), "wb") as f:
            f.write(b"P5\n32 24\n255\n" + bytes((x * 8 + y * 3) % 256 for y in range(24) for x in range(32)))
        made = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "io", "make_dicom_fixtures.py"),
                               os.path.join(scratch, "source.pgm"), os.path.join(scratch, "dicom")],
                              capture_output=True, text=True)
        if made.returncode == 77:
            print("skip: predict on DICOM (pydicom missing)")
            return
        check("the DICOM test files are made", made.returncode == 0, made.stderr)
        model = os.path.join(ROOT, "tests", "golden", "torchvision_w035_random.safetensors")
        files = [os.path.join(scratch, "dicom", name + ".dcm") for name in ("sc8", "mr16_window")]
        both = run("predict", "--json", "--model", model, "--class-names", "a,b,c,d", *files)
        answers = json.loads(both.stdout) if both.returncode == 0 else []
        check("predict takes DICOM files, the same pixels giving the same probabilities",
              len(answers) == 2 and answers[0]["probabilities"] == answers[1]["probabilities"], both.stderr)
        mpeg = run("predict", "--model", model, "--class-names", "a,b,c,d", os.path.join(scratch, "dicom", "mpeg2.dcm"))
        check("predict refuses an MPEG-2 DICOM naming its transfer syntax",
              mpeg.returncode != 0 and "1.2.840.10008.1.2.4.100 (MPEG2" in mpeg.stderr, mpeg.stderr)


def main() -> int:
    train_help = run("train", "--help")
    check("train --help exits 0", train_help.returncode == 0, train_help.stderr)
    for option, default in [("--lr X", "(0.0003)"), ("--epochs N", "(20)"), ("--frozen-blocks K", "(4)"),
                            ("--low-res-epochs N", "(6)"), ("--lr-factor X", "(0.5)"), ("--precision NAME", "(fp32)"),
                            ("--no-augment", None), ("--resume RUNDIR", None), ("--json", None)]:
        line = next((l for l in train_help.stdout.splitlines() if l.strip().startswith(option)), "")
        check(f"train --help lists {option}", line, train_help.stdout)
        if default:
            check(f"train --help gives {option}'s default {default}", line.rstrip().endswith(default), line)

    unknown = run("train", "--out", "/tmp/never", "--learning-rate", "0.1")
    check("an unknown option is refused", unknown.returncode != 0 and "unknown option --learning-rate" in unknown.stderr,
          unknown.stderr)
    bad_value = run("train", "--out", "/tmp/never", "--epochs", "ten")
    check("a bad value names the option", bad_value.returncode != 0 and "--epochs expects an integer" in bad_value.stderr,
          bad_value.stderr)
    no_out = run("train")
    check("train without --out says so", no_out.returncode != 0 and "--out" in no_out.stderr, no_out.stderr)

    commands = (["serve"], ["eval"], ["predict"], ["convert"], ["bench"], ["data", "check"], ["calibrate-sets"])
    for command in commands:
        shown = run(*command, "--help")
        check(f"{' '.join(command)} --help shows its options", shown.returncode == 0 and "  --" in shown.stdout,
              shown.stdout + shown.stderr)

    with tempfile.TemporaryDirectory() as scratch:
        env = dict(os.environ, MRISCAN_ADMIN_TOKEN="short-token")
        short = subprocess.run([BINARY, "serve", "--model", os.path.join(scratch, "none.safetensors"), "--state-dir",
                                scratch, "--port", "0", "--quiet"], capture_output=True, text=True, timeout=60, env=env)
        check("serve refuses a $MRISCAN_ADMIN_TOKEN shorter than 16 characters",
              short.returncode != 0 and "16+ characters" in short.stderr, short.stderr)

    with tempfile.TemporaryDirectory() as scratch:
        nested = os.path.join(scratch, "runs", "new", "backbone.safetensors")
        converted = run("convert", "--out", nested, "--calibration-images", "4")
        written = converted.returncode == 0 and os.path.exists(nested) and os.path.getsize(nested) > 10**6
        check("convert creates the folders of --out", written, converted.stderr)

    bench = run("bench", "--workloads", "infer1,train", "--width", "0.35", "--image-size", "64", "--batch", "4",
                "--repeats", "3", "--json")
    check("bench --json exits 0", bench.returncode == 0, bench.stderr)
    if bench.returncode == 0:
        report = json.loads(bench.stdout)
        for workload in ("infer1", "train"):
            runs = report[workload]["runs_ms"]
            median_ms = report[workload]["median_ms"]
            check(f"bench {workload}: median_ms is the median of runs_ms (both milliseconds)",
                  abs(statistics.median(runs) - median_ms) <= 1e-9 * max(1.0, median_ms), f"{runs} vs {median_ms}")
    # --profile: per-op times of one training step, and how much of that step's wall time the ops account for.
    profiled = run("bench", "--workloads", "train", "--width", "0.35", "--image-size", "64", "--batch", "4",
                   "--repeats", "1", "--profile", "--json")
    check("bench --profile exits 0", profiled.returncode == 0, profiled.stderr)
    if profiled.returncode == 0:
        profile = json.loads(profiled.stdout)["train"]["profile"]
        ops = profile["ops"]
        summed = sum(op["forward_ms"] + op["backward_ms"] for op in ops.values())
        check("bench --profile times the network's ops, forward and backward",
              {"batch_norm", "pointwise_conv2d", "depthwise_conv2d"} <= set(ops)
              and all(op["backward_ms"] > 0 for name, op in ops.items() if name == "pointwise_conv2d"), str(ops))
        check("bench --profile: ops_ms is the sum of the ops and no more than the step's wall_ms",
              abs(summed - profile["ops_ms"]) <= 1e-6 * max(1.0, summed) and 0 < profile["ops_ms"] <= profile["wall_ms"],
              str(profile))
    # Fine-tuning's profile bills the untaped, folded prefix to its own line, not to the first taped op.
    tuned = run("bench", "--workloads", "finetune", "--frozen-blocks", "13", "--width", "0.35", "--image-size", "64",
                "--batch", "4", "--repeats", "1", "--profile", "--json")
    check("bench --workloads finetune --profile exits 0", tuned.returncode == 0, tuned.stderr)
    if tuned.returncode == 0:
        profile = json.loads(tuned.stdout)["finetune"]["profile"]
        ops = profile["ops"]
        check("bench --profile: fine-tuning's folded prefix is one forward-only line beside the taped ops",
              ops.get("folded_prefix", {}).get("calls") == 1 and ops["folded_prefix"]["forward_ms"] > 0
              and ops["folded_prefix"]["backward_ms"] == 0 and "pointwise_conv2d" in ops
              and 0 < profile["ops_ms"] <= profile["wall_ms"], str(profile))
    # --precision: a bad name is refused naming the choices; bf16 runs where the build has AVX512-BF16 (the
    # report says so) and is refused with a message naming the instructions elsewhere, never a silent fp32 run.
    tiny = ["--workloads", "infer1", "--width", "0.35", "--image-size", "64", "--repeats", "1", "--json"]
    bad_precision = run("bench", "--precision", "fp16", *tiny)
    check("bench --precision fp16 is refused naming fp32 and bf16",
          bad_precision.returncode != 0 and "fp32 or bf16" in bad_precision.stderr, bad_precision.stderr)
    bf16 = run("bench", "--precision", "bf16", *tiny)
    avx512_bf16 = "avx512_bf16" in open("/proc/cpuinfo").read()
    if bf16.returncode == 0:
        check("bench --precision bf16 reports bf16", json.loads(bf16.stdout)["precision"] == "bf16", bf16.stdout)
    else:
        check("bench --precision bf16 without AVX512-BF16: a clear refusal",
              not avx512_bf16 and "AVX512-BF16" in bf16.stderr, bf16.stderr)
    if shutil.which("mpirun"):
        env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        failing = subprocess.run(["mpirun", "-np", "2", "--oversubscribe", BINARY, "train", "--out", "/tmp/never",
                                  "--data", "/nonexistent/dataset"], capture_output=True, text=True, timeout=120,
                                 env=env)
        check("under mpirun, an error ends every rank with its message (no hang)",
              failing.returncode != 0 and "of 2: error: dataset folder" in failing.stderr
              and "ending every rank" in failing.stderr, failing.stderr[-2000:])
    # One binary for every CPU: the code outside the kernel sets is built for a baseline (tools/cpu_check.cpp refuses
    # a CPU below it with a message), and the kernels come from the highest set the CPU runs. QEMU's user-mode
    # emulator (Debian's qemu-user) offers a CPU of its own: without AVX-512 on QEMU 7.2 (Debian 12), so the binary
    # must run there on a lower set, and refuse MRISCAN_ISA naming a set the emulated CPU lacks. A signal (SIGILL)
    # fails. (Its own ISA report: the same run's JSON.) Not for a sanitizer build: ASan's shadow memory does not map
    # under qemu-user (the run hangs).
    sanitized = "libasan" in subprocess.run(["ldd", BINARY], capture_output=True, text=True).stdout
    if shutil.which("qemu-x86_64") and not sanitized:
        emulated = subprocess.run(["qemu-x86_64", "-cpu", "max", BINARY, "bench", *tiny], capture_output=True,
                                  text=True, timeout=300)
        named = refused_extensions(emulated.stderr)
        refused = (emulated.returncode > 0 and named and named <= cpu_check_extensions()
                   and "rebuild" in emulated.stderr)
        check("on an emulated CPU: a normal run on a kernel set it has (or a clear refusal), never SIGILL",
              refused or emulated.returncode == 0, f"exit {emulated.returncode}: {emulated.stderr[-500:]}")
        if emulated.returncode == 0:
            isa = json.loads(emulated.stdout)["isa"]
            print(f"       (the emulated CPU ran the {isa} kernel set)")
            # An x86-64-v2 CPU (QEMU's Nehalem) runs the baseline's own set; one below the baseline (QEMU's qemu64:
            # no SSE4.2 or POPCNT) gets cpu_check.cpp's message naming what it lacks, before anything else runs.
            nehalem = subprocess.run(["qemu-x86_64", "-cpu", "Nehalem", BINARY, "bench", *tiny], capture_output=True,
                                     text=True, timeout=300)
            check("on an emulated x86-64-v2 CPU: runs on the sse4_2 kernel set",
                  nehalem.returncode == 0 and json.loads(nehalem.stdout)["isa"] == "sse4_2",
                  f"exit {nehalem.returncode}: {nehalem.stderr[-500:]}")
            old_cpu = subprocess.run(["qemu-x86_64", "-cpu", "qemu64", BINARY, "--help"], capture_output=True,
                                     text=True, timeout=60)
            named = refused_extensions(old_cpu.stderr)
            check("on an emulated CPU below the baseline: a refusal naming the missing extensions",
                  old_cpu.returncode == 1 and "sse4.2" in named and named <= cpu_check_extensions(),
                  f"exit {old_cpu.returncode}: {old_cpu.stderr[-500:]}")
            if isa != "avx512_bf16":
                forced = subprocess.run(["qemu-x86_64", "-cpu", "max", BINARY, "bench", *tiny], capture_output=True,
                                        text=True, timeout=120, env=dict(os.environ, MRISCAN_ISA="avx512_bf16"))
                check("on an emulated CPU: MRISCAN_ISA naming a set it lacks is refused, naming the sets it runs",
                      forced.returncode == 1 and "cannot run" in forced.stderr and isa in forced.stderr,
                      f"exit {forced.returncode}: {forced.stderr[-500:]}")
    check_calibrate_sets()
    check_dicom_predict()
    failed = results.count(False)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
