#!/usr/bin/env python3
"""Soak test of `mriscan serve` (not in CI): mixed traffic on loopback for a bounded time, then a report.

Starts the server itself (a fresh state directory, a free port), then runs N client threads for --minutes:
predictions of real Testing scans (some with ?gradcam=1 or /explain), batches, bad inputs (GIF, text, truncated
JPEG), hostile requests (an oversized head, a chunked body, a gzip body inflating to 1 GB, a declared body that
never comes, malformed UTF-8 in paths and file names, JSON nested a million deep, a progressive JPEG with hundreds
of scans if --costly-jpeg is given), uploads of real Training scans, and one retrain. It samples the server's
resident memory every second and reports requests by status, 5xx other than 503, whether the process survived,
and RSS at start, end and peak.

Usage: tests/server/soak_server.py --binary build/mriscan --model runs/quick/model.safetensors [--minutes 10]
       [--costly-jpeg FILE]
"""
import argparse
import collections
import json
import os
import random
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid

import hostile_payloads
from hostile_payloads import multipart

TOKEN = "soak-token-" + uuid.uuid4().hex


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except FileNotFoundError:
        return None
    return None


def request(base, path, body=None, content_type=None, admin=False, timeout=60):
    headers = {"Content-Type": content_type} if content_type else {}
    if admin:
        headers["Authorization"] = "Bearer " + TOKEN
    req = urllib.request.Request(base + path, data=body, headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        error.read()
        return error.code
    except OSError:
        return "connection error"


def raw(port, data):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
            try:
                sock.sendall(data)
            except OSError:
                pass  # refused from the head: the answer may arrive before the body is sent
            answer = sock.recv(64)
            return int(answer[9:12]) if answer.startswith(b"HTTP/1.1 ") else "no response"
    except OSError:
        return "connection error"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data",
                                                       "brain-tumor-mri"))
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--costly-jpeg", default=None, help="a progressive JPEG with hundreds of scans")
    args = parser.parse_args()

    testing = [os.path.join(root, f) for root, _, files in os.walk(os.path.join(args.data, "Testing")) for f in files]
    training = [(os.path.basename(root), os.path.join(root, f))
                for root, _, files in os.walk(os.path.join(args.data, "Training")) for f in files]
    random.seed(7)
    scans = [open(p, "rb").read() for p in random.sample(testing, 40)]
    uploads = random.sample(training, 200)
    gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + b"\0" * 30

    state = tempfile.mkdtemp(prefix="mriscan_soak_")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, MRISCAN_ADMIN_TOKEN=TOKEN)
    log = open(os.path.join(state, "server.log"), "w")
    server = subprocess.Popen([args.binary, "serve", "--model", args.model, "--data", args.data, "--state-dir",
                               os.path.join(state, "state"), "--port", str(port), "--quiet",
                               "--retrain-max-per-class", "40"], env=env, stderr=log)
    for _ in range(300):
        if request(base, "/ready", timeout=2) == 200:
            break
        time.sleep(0.1)
    rss_start = rss_mb(server.pid)
    counts = collections.Counter()
    lock = threading.Lock()
    stop = time.time() + args.minutes * 60
    samples = []

    def record(kind, status):
        with lock:
            counts[(kind, status)] += 1

    bomb = hostile_payloads.gzip_bomb()
    costly = open(args.costly_jpeg, "rb").read() if args.costly_jpeg else None
    hostile = [
        ("bad head", lambda: raw(port, b"GET /health HTTP/1.1\r\n" + b"X: y\r\n" * 500 + b"\r\n")),
        ("bad chunked", lambda: raw(port, b"POST /predict HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")),
        ("gzip bomb", lambda: raw(port, hostile_payloads.compressed_post(bomb))),
        ("body never sent", lambda: raw(port, hostile_payloads.declared_body_head())),
        ("bad utf-8 path", lambda: request(base, random.choice(hostile_payloads.BAD_UTF8_PATHS))),
        ("bad utf-8 name", lambda: request(base, "/upload_training_data",
                                           *hostile_payloads.bad_filename_upload(scans[0]), admin=True)),
        ("deep json", lambda: request(base, "/retrain", hostile_payloads.deep_json(), "application/json", admin=True)),
        ("explain", lambda: request(base, "/explain", *multipart([("file", "s.jpg", scans[1])]))),
    ]
    if costly:
        hostile.append(("costly jpeg", lambda: request(base, "/predict",
                                                       *multipart([("file", "c.jpg", costly)]))))

    def client(index):
        rng = random.Random(index)
        upload_index = index
        while time.time() < stop:
            pick = rng.random()
            if pick < 0.55:
                body, ctype = multipart([("file", "scan.jpg", rng.choice(scans))])
                record("predict", request(base, "/predict", body, ctype))
            elif pick < 0.62:
                body, ctype = multipart([("file", "scan.jpg", rng.choice(scans))])
                record("predict gradcam", request(base, "/predict?gradcam=1", body, ctype))
            elif pick < 0.70:
                body, ctype = multipart([("files", f"s{i}.jpg", s) for i, s in enumerate(rng.sample(scans, 8))])
                record("predict_batch", request(base, "/predict_batch", body, ctype))
            elif pick < 0.80:
                kind = rng.choice(["gif", "text", "truncated"])
                payload = {"gif": gif, "text": b"not a scan", "truncated": rng.choice(scans)[:300]}[kind]
                body, ctype = multipart([("file", "bad", payload)])
                record("bad " + kind, request(base, "/predict", body, ctype))
            elif pick < 0.88:
                kind, send = rng.choice(hostile)
                record(kind, send())
            elif pick < 0.95:
                label, path = uploads[upload_index % len(uploads)]
                upload_index += args.clients
                body, ctype = multipart([("files", "u.jpg", open(path, "rb").read()), ("label", None, label.encode())])
                record("upload", request(base, "/upload_training_data", body, ctype, admin=True))
            else:
                record("health", request(base, "/health", timeout=5))

    def sampler():
        while time.time() < stop:
            samples.append(rss_mb(server.pid) or 0.0)
            time.sleep(1.0)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    threads.append(threading.Thread(target=sampler))
    for t in threads:
        t.start()
    time.sleep(5)
    retrain = json.dumps({"epochs": 1, "frozen_blocks": 14, "max_samples_per_class": 40}).encode()
    record("retrain submit", request(base, "/retrain", retrain, "application/json", admin=True))
    for t in threads:
        t.join()
    alive = server.poll() is None
    rss_end = rss_mb(server.pid)
    with urllib.request.urlopen(base + "/retrain_status/1", timeout=10) as response:
        job = json.loads(response.read())
    server.terminate()
    exit_code = server.wait(timeout=60)

    total = sum(counts.values())
    server_errors = sum(n for (kind, status), n in counts.items() if isinstance(status, int) and status >= 500
                        and status != 503)
    print(f"soak: {args.minutes:g} min, {args.clients} clients, {total} requests; server alive at the end: {alive}; "
          f"exit after SIGTERM: {exit_code}")
    print(f"5xx other than 503: {server_errors}; connection errors: "
          f"{sum(n for (k, s), n in counts.items() if s == 'connection error')}")
    for (kind, status), n in sorted(counts.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        print(f"  {kind:16s} {str(status):18s} {n}")
    print(f"retrain job: {job.get('status')} {job.get('error') or ''}")
    print(f"RSS MB: start {rss_start:.0f}, end {rss_end:.0f}, peak {max(samples):.0f}; "
          f"first minute max {max(samples[:60]):.0f}, last minute max {max(samples[-60:]):.0f}")
    print(f"state and server log: {state}")


if __name__ == "__main__":
    main()
