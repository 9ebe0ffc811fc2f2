#!/usr/bin/env python3
"""deploy/lib.sh's debian_mirror: the Debian archive the image is built from is the one this machine's apt uses
(deb822 .sources, else sources.list lines with or without options), never a security archive, $DEBIAN_MIRROR
first, deb.debian.org when apt names none. Run by ctest (DeployLib)."""
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def mirror(etc, **env):
    command = f'source "{ROOT}/deploy/lib.sh"; debian_mirror'
    environment = dict(os.environ, APT_ETC=etc)
    environment.pop("DEBIAN_MIRROR", None)
    environment.update(env)
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=environment,
                          check=True).stdout.strip()


def main():
    failures = 0
    with tempfile.TemporaryDirectory() as etc:
        os.makedirs(os.path.join(etc, "sources.list.d"))
        results = [("nothing configured", "http://deb.debian.org/debian", mirror(etc))]
        with open(os.path.join(etc, "sources.list"), "w") as f:
            f.write("# a comment\ndeb http://security.example/debian-security bookworm-security main\n"
                    "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main\n")
        results.append(("sources.list with options, after a security line", "http://mirror.example/debian",
                        mirror(etc)))
        with open(os.path.join(etc, "sources.list.d", "site.sources"), "w") as f:
            f.write("Types: deb\nURIs: http://local.mirror/debian-security/ http://local.mirror/debian\n"
                    "Suites: bookworm\nComponents: main\n")
        results.append(("deb822 first", "http://local.mirror/debian", mirror(etc)))
        results.append(("$DEBIAN_MIRROR first", "http://override/debian",
                        mirror(etc, DEBIAN_MIRROR="http://override/debian")))
    for name, expected, got in results:
        ok = got == expected
        failures += not ok
        print(("ok     " if ok else "FAILED ") + f"{name}: {got}" + ("" if ok else f" (expected {expected})"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
