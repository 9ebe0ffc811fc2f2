#!/usr/bin/python3
"""Checks the objects of a build for the rule of one binary on every x86-64 CPU (CMakeLists.txt, the kernel sets):
no instruction of a higher instruction set is reachable on a lower CPU except through a kernel table chosen for it.

  * each kernel set's partially linked object (kernel_set_<set>.o) exports exactly one symbol, mriscan_kernels_<set>,
    and has no COMDAT groups, GNU unique symbols or start-up constructors: nothing in it can stand in for another
    object's code, and nothing in it runs before a table is chosen;
  * that entry (the table fill, which runs on every CPU) uses no AVX instruction at all;
  * a set uses no instruction of a higher one: the avx2 set no AVX-512 (zmm or mask registers), the avx512 set no
    AVX512-BF16, the baseline set no AVX;
  * every other object of the library, the server and the CLI (the baseline) uses no AVX instruction, unless the
    build asked for -march=native (MRISCAN_NATIVE) or another -march.
Usage: check_kernel_sets.py BUILD_DIR        (exit 1 and the offending objects and instructions on a violation)
"""
import glob
import os
import re
import subprocess
import sys

# AVX and later: VEX/EVEX-encoded instructions all start with "v" (vmovups, vfmadd231ps, vzeroupper, ...); AVX-512
# adds zmm and the mask registers k0-k7.
ANY_AVX = re.compile(r"\tv[a-z0-9]+\s|%[yz]mm\d+")
AVX512 = re.compile(r"%zmm\d+|%k[0-7]\b")
BF16 = re.compile(r"\tv(dpbf16ps|cvtne2ps2bf16|cvtneps2bf16)\s")
HIGHER = {"baseline": ANY_AVX, "avx2": AVX512, "avx512": BF16, "avx512_bf16": None}

failures = []


def fail(message):
    failures.append(message)
    print("FAILED " + message)


def disassembly_by_function(path):
    """{function symbol: [instruction lines]} of every object in `path` (an object file or an archive)."""
    text = subprocess.run(["objdump", "-d", "--no-show-raw-insn", path], capture_output=True, text=True,
                          check=True).stdout
    functions, current = {}, None
    for line in text.splitlines():
        header = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if header:
            current = functions.setdefault(header.group(1), [])
        elif current is not None and "\t" in line:
            current.append(line)
    return functions


def offending(functions, pattern, limit=3):
    found = []
    for name, lines in functions.items():
        hits = [l.strip() for l in lines if pattern.search(l)]
        if hits:
            found.append(f"{name}: {hits[0]}")
    return found[:limit]


def check_kernel_set(build, path):
    kernel_set = os.path.basename(path)[len("kernel_set_"):-len(".o")]
    entry = "mriscan_kernels_" + kernel_set
    exported = subprocess.run(["nm", "-g", "--defined-only", path], capture_output=True, text=True,
                              check=True).stdout.split()[2::3]
    if exported != [entry]:
        fail(f"{path}: exports {exported}, not only {entry}")
    sections = subprocess.run(["readelf", "-S", "-g", "-s", "-W", path], capture_output=True, text=True,
                              check=True).stdout
    if "COMDAT group" in sections:
        fail(f"{path}: still has COMDAT groups")
    if " UNIQUE " in sections:
        fail(f"{path}: has GNU unique symbols")
    if not sanitized(build) and re.search(r"\.(init_array|ctors)\b", sections):
        fail(f"{path}: has start-up constructors")
    functions = disassembly_by_function(path)
    hits = offending({entry: functions.get(entry, [])}, ANY_AVX)
    if entry not in functions or (hits and not native(build)):  # the entry is baseline code, native in such a build
        fail(f"{path}: the entry {entry} is missing or uses AVX: {hits}")
    pattern = HIGHER.get(kernel_set)
    if pattern is not None and not native(build):
        hits = offending(functions, pattern)
        if hits:
            fail(f"{path}: the {kernel_set} set uses a higher set's instructions: {hits}")
    print(f"ok     {os.path.basename(path)}: exports only {entry}, uses no higher set")


def native(build):
    cache = open(os.path.join(build, "CMakeCache.txt")).read()
    return "MRISCAN_NATIVE:BOOL=ON" in cache or re.search(r"CMAKE_CXX_FLAGS:STRING=.*-march=", cache) is not None


def sanitized(build):
    return "MRISCAN_SANITIZE:BOOL=ON" in open(os.path.join(build, "CMakeCache.txt")).read()


def check_baseline(build):
    """Everything outside the kernel sets: the libraries' other members and the CLI's objects."""
    objects = [os.path.join(build, name) for name in ("libmriscan_core.a", "libmriscan_server.a")]
    objects += glob.glob(os.path.join(build, "CMakeFiles", "mriscan.dir", "**", "*.o"), recursive=True)
    for path in objects:
        text = subprocess.run(["objdump", "-d", "--no-show-raw-insn", path], capture_output=True, text=True,
                              check=True).stdout
        # An archive's members: "In archive ...:" then "<member>:     file format ..." blocks.
        for member in re.split(r"\n(?=\S+:\s+file format)", text):
            name = member.split(":", 1)[0].strip()
            if name.startswith("kernel_set_"):
                continue
            hits = [l.strip() for l in member.splitlines() if "\t" in l and ANY_AVX.search(l)]
            if hits:
                fail(f"{os.path.basename(path)}({name}): baseline code uses AVX: {hits[:3]}")
    print(f"ok     baseline: {len(objects)} libraries and objects use no AVX instruction")


def main():
    build = os.path.abspath(sys.argv[1])
    sets = sorted(glob.glob(os.path.join(build, "kernel_set_*.o")))
    if not sets:
        fail(f"no kernel_set_*.o in {build}")
    for path in sets:
        check_kernel_set(build, path)
    if native(build):
        print("skipped: the baseline check (this build targets one CPU: -march in its flags)")
    else:
        check_baseline(build)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
