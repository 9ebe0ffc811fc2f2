#!/usr/bin/env python3
"""deploy/load_matrix.py: Locust through nginx against 1 and 2 `mriscan serve` replicas on SQLite and on
PostgreSQL, at 50 and 100 users, predictions only and with uploads; one table of requests/s, p50/p95/p99 and
errors per configuration, all measured in one run on this machine.

Everything runs as local processes on loopback, as the replica tests run them (tests/support/replica_fixture.h):
the replicas (a state directory each on PostgreSQL, one shared on SQLite), Debian's nginx with deploy/nginx.conf
(only its upstream, port and log lines replaced), and for PostgreSQL a cluster initialised in a temporary
directory with default settings (as the `postgres` user under root). The CPU is shared by all of it and by Locust
itself, so the figures compare configurations with each other, not with a deployment on separate machines.

Usage: /usr/bin/python3 deploy/load_matrix.py --model MODEL [--binary build/mriscan] [--seconds 30] [--repeats 3]
       [--out FILE.json] [--audit-cost]   (each figure is the median of the repeats, run interleaved; --audit-cost
       measures predictions with the audit trail on and off instead)
What it is not: a test (nothing is asserted); deploy/loadtest.sh is the same measurement against a deployment.
"""
import argparse
import csv
import json
import os
import platform
import pwd
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKEN = "load-matrix-token-0123456789"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(url, timeout=2).status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"load_matrix: {url} did not answer 200 in {seconds} s")


class Postgres:
    """A cluster in a temporary directory, on a free port; default settings."""

    def __init__(self):
        bins = sorted(d for d in os.listdir("/usr/lib/postgresql") if os.path.exists(f"/usr/lib/postgresql/{d}/bin/initdb"))
        if not bins:
            raise SystemExit("load_matrix: PostgreSQL's server is not installed (scripts/install_deps.sh)")
        self.bin = f"/usr/lib/postgresql/{bins[-1]}/bin"
        self.dir = tempfile.mkdtemp(prefix="mriscan-load-postgres-")  # not under root: postgres must reach it
        self.as_user = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.port = free_port()
        self.run("initdb", "-A", "trust", "-U", "mriscan", "-E", "UTF8", "-D", f"{self.dir}/data")
        self.run("pg_ctl", "-D", f"{self.dir}/data", "-l", f"{self.dir}/server.log", "-w", "-o",
                 f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start")

    def run(self, tool, *args):
        subprocess.run(self.as_user + [f"{self.bin}/{tool}", *args], check=True, stdout=subprocess.DEVNULL)

    def create_database(self, name):
        self.run("psql", "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U", "mriscan", "-d", "postgres", "-c",
                 f"CREATE DATABASE {name}")
        return f"postgresql://mriscan@127.0.0.1:{self.port}/{name}"

    def stop(self):
        subprocess.run(self.as_user + [f"{self.bin}/pg_ctl", "-D", f"{self.dir}/data", "-m", "fast", "stop"],
                       stdout=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)


def start_replicas(args, root, count, database_url, audit=True):
    threads = max(1, os.cpu_count() // count)
    processes, ports = [], []
    env = {**os.environ, "MRISCAN_ADMIN_TOKEN": TOKEN}
    for i in range(count):
        state = os.path.join(root, f"state-{i}" if database_url else "state")
        port = free_port()
        command = [args.binary, "serve", "--model", args.model, "--data", args.data, "--state-dir", state, "--port",
                   str(port), "--threads", str(threads), "--replica", f"r{i}", "--quiet"]
        if database_url:
            command += ["--database", database_url]
        command += ["--audit", "1" if audit else "0"]
        log = open(os.path.join(root, f"replica-{i}.log"), "w")
        processes.append(subprocess.Popen(command, env=env, stdout=log, stderr=log))
        ports.append(port)
    for port in ports:
        wait_http(f"http://127.0.0.1:{port}/ready")
    return processes, ports


def start_nginx(root, ports):
    conf = open(os.path.join(REPO, "deploy", "nginx.conf")).read()
    port = free_port()
    upstream = "".join(f"    server 127.0.0.1:{p};\n" for p in ports)
    for old, new in [("    server api:8080;\n", upstream), ("listen 8080;", f"listen 127.0.0.1:{port};"),
                     ("access_log /dev/stdout replicas;", "access_log off;")]:
        if old not in conf:
            raise SystemExit(f"load_matrix: deploy/nginx.conf no longer has {old!r}")
        conf = conf.replace(old, new)
    path = os.path.join(root, "nginx.conf")
    open(path, "w").write(conf)
    user = "user root; " if os.geteuid() == 0 else ""
    process = subprocess.Popen(["/usr/sbin/nginx", "-c", path, "-p", root, "-g",
                                f"daemon off; {user}pid {root}/nginx.pid; error_log {root}/nginx-error.log;"])
    time.sleep(0.5)
    return process, port


def locust(url, users, seconds, uploads, out):
    env = {**os.environ, "MRISCAN_GRADCAM_WEIGHT": "0", "MRISCAN_UPLOAD_WEIGHT": "4" if uploads else "0",
           "MRISCAN_ADMIN_TOKEN": TOKEN}
    subprocess.run(["/usr/bin/python3", "-m", "locust", "-f", os.path.join(REPO, "deploy", "locustfile.py"),
                    "--headless", "--users", str(users), "--spawn-rate", str(users), "--run-time", f"{seconds}s",
                    "--stop-timeout", "10", "--host", url, "--csv", out, "--only-summary", "--loglevel", "ERROR"],
                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = {r["Name"]: r for r in csv.DictReader(open(f"{out}_stats.csv"))}
    total = rows["Aggregated"]
    result = {"requests_per_second": round(float(total["Requests/s"]), 1), "requests": int(total["Request Count"]),
              "errors": int(total["Failure Count"])}
    for name in ("/predict", "/upload_training_data"):
        if name in rows:
            result[name] = {q: float(rows[name][f"{q}%"]) for q in ("50", "95", "99")}
            result[name]["per_second"] = round(float(rows[name]["Requests/s"]), 1)
    return result


def median_of(measurements):
    """Each number's median over the repeats (nested the same way as one measurement)."""
    first = measurements[0]
    if isinstance(first, dict):
        return {k: median_of([m[k] for m in measurements]) for k in first}
    return statistics.median(measurements)


def stop(processes):
    for p in processes:
        p.send_signal(signal.SIGTERM)
    for p in processes:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default=os.path.join(REPO, "build", "mriscan"))
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", default=os.path.join(REPO, "..", "shared", "data", "brain-tumor-mri"))
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3, help="runs per configuration; the table gives medians")
    parser.add_argument("--out", default=None)
    parser.add_argument("--audit-cost", action="store_true",
                        help="instead of the matrix: predictions with the audit trail on and off")
    args = parser.parse_args()
    shared = os.path.abspath(os.path.join(args.data, "..", ".."))
    if not os.path.isdir(os.path.join(args.data, "Testing")):
        raise SystemExit(f"load_matrix: no dataset at {args.data} (../shared is missing?)")
    os.environ["MRISCAN_SHARED"] = shared
    root = tempfile.mkdtemp(prefix="mriscan-load-")
    postgres = Postgres()
    # (backend, replicas, uploads, users, audit): the matrix, or with --audit-cost predictions with the audit trail
    # on and off (its cost), 1 replica at 50 users.
    if args.audit_cost:
        configurations = [(backend, 1, False, 50, audit) for backend in ("sqlite", "postgresql")
                          for audit in (True, False)]
    else:
        configurations = [(backend, replicas, uploads, users, True) for backend in ("sqlite", "postgresql")
                          for replicas in (1, 2) for uploads in (False, True) for users in (50, 100)]
    runs = {c: [] for c in configurations}
    databases = 0
    try:
        for repeat in range(args.repeats):  # the outer loop: a drift of the machine touches every configuration
            for backend, replicas, uploads, users, audit in configurations:
                run_root = tempfile.mkdtemp(dir=root)
                databases += backend == "postgresql"
                url = postgres.create_database(f"load{databases}") if backend == "postgresql" else None
                processes, ports = start_replicas(args, run_root, replicas, url, audit)
                nginx, port = start_nginx(run_root, ports)
                try:
                    measured = locust(f"http://127.0.0.1:{port}", users, args.seconds, uploads,
                                      os.path.join(run_root, "locust"))
                finally:
                    stop([nginx] + processes)
                    shutil.rmtree(run_root, ignore_errors=True)
                runs[(backend, replicas, uploads, users, audit)].append(measured)
                print(json.dumps({"repeat": repeat, "backend": backend, "replicas": replicas, "users": users,
                                  "uploads": uploads, "audit": audit, **measured}), flush=True)
    finally:
        postgres.stop()
        shutil.rmtree(root, ignore_errors=True)
    results = [{"backend": b, "replicas": r, "users": u, "mix": "predict + uploads" if up else "predict",
                "audit": audit, **median_of(runs[(b, r, up, u, audit)])} for b, r, up, u, audit in configurations]
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model_name = next((l.split(":", 1)[1].strip() for l in cpu.splitlines() if l.startswith("Model name")), "?")
    report = {"cpu": model_name, "cores": os.cpu_count(), "seconds_per_run": args.seconds, "repeats": args.repeats,
              "machine": platform.machine(), "results": results}
    if args.out:
        json.dump(report, open(args.out, "w"), indent=1)


if __name__ == "__main__":
    sys.exit(main())
