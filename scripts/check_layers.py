#!/usr/bin/env python3
"""Checks the layering of the source tree (README, "Layout"): each folder has one job, and a file includes only
headers of its own folder or of the folders below it, in this order (lowest first):

    engine  io  layers  optim  models  data  infer  eval  train  server  tools

It also checks that no source folder holds more than 30% of the non-test C++ lines, so that no folder grows back
into a catch-all. Run by ctest as `Layering`; exits 1 and names every violation.
What it is not: a style checker (clang-format) or an include-what-you-use tool.

Usage: /usr/bin/python3 scripts/check_layers.py [REPO_ROOT]
"""
import pathlib
import re
import sys

LAYERS = ["engine", "io", "layers", "optim", "models", "data", "infer", "eval", "train", "server", "tools"]
MAX_FOLDER_SHARE = 0.30
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"/]+)/[^"]+"', re.MULTILINE)


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent)
    rank = {name: i for i, name in enumerate(LAYERS)}
    problems = []
    lines_per_folder = {name: 0 for name in LAYERS}
    for folder in LAYERS:
        for path in sorted((root / folder).rglob("*")):
            if path.suffix not in (".h", ".cpp"):
                continue
            text = path.read_text(encoding="utf-8")
            lines_per_folder[folder] += text.count("\n")
            for included in INCLUDE.findall(text):
                if included not in rank:
                    problems.append(f"{path.relative_to(root)}: includes from '{included}/', which is no source folder")
                elif rank[included] > rank[folder]:
                    problems.append(f"{path.relative_to(root)}: includes '{included}/', a folder above '{folder}/'")
    total = sum(lines_per_folder.values())
    for folder, lines in lines_per_folder.items():
        share = lines / total if total else 0.0
        print(f"{folder:8s} {lines:6d} lines  {100 * share:5.1f}%")
        if share > MAX_FOLDER_SHARE:
            limit = 100 * MAX_FOLDER_SHARE
            problems.append(f"{folder}/ holds {100 * share:.1f}% of the C++ lines (at most {limit:.0f}%)")
    for problem in problems:
        print("layering:", problem)
    if not problems:
        print("layering: every include points down")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
