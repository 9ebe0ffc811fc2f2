#!/usr/bin/env python3
"""Hostile-client probes against a running `mriscan serve` on loopback (the hardening findings, one line each).

Usage: tests/server/probe_server.py --port 8080 [--pid PID] [--token TOKEN] [--scan FILE.jpg] [--costly-jpeg F]
Each probe prints what the server did. With --pid, the server's resident memory is read from /proc before,
during (peak) and after the probes that could grow it. With --token, the admin-only probes run too (uploads,
deep JSON). --scan is a real scan for predictions (default: the first Testing glioma scan in ../shared).
Traffic goes to 127.0.0.1 only and is bounded in count and time.
What it is not: a test (tests/server/ assert the same behaviours); this reports figures for notes and README.
"""
import argparse
import json
import os
import re
import socket
import struct
import threading
import time
import urllib.error
import urllib.request

import hostile_payloads


def rss_mb(pid):
    if not pid:
        return None
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return None


def connect(port, timeout=10.0):
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def read_response(sock, limit=64 << 20):
    """Reads until the peer closes or `limit` bytes; returns (status, bytes read)."""
    data = b""
    try:
        while len(data) < limit:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    match = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    return (int(match.group(1)) if match else None), len(data)


def probe_chunked_unknown_path(port, pid, megabytes=300):
    before = rss_mb(pid)
    sock = connect(port)
    sock.sendall(b"POST /no/such/path HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n" % (1 << 20) + b"\0" * (1 << 20) + b"\r\n"
    sent = 0
    try:
        for _ in range(megabytes):
            sock.sendall(chunk)
            sent += 1
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        pass
    status, _ = read_response(sock)
    sock.close()
    return f"chunked POST, no Content-Length: status {status}, {sent} MB sent before the server closed " \
           f"(discarded, never stored), " \
           f"RSS {before} -> {rss_mb(pid)} MB"


def probe_multi_range(port):
    sock = connect(port)
    ranges = ",".join("0-204800" for _ in range(2000))
    sock.sendall(f"GET /vendor/chart.umd.js HTTP/1.1\r\nHost: x\r\nRange: bytes={ranges}\r\n"
                 f"Connection: close\r\n\r\n".encode())
    status, size = read_response(sock)
    return f"2000 overlapping ranges: status {status}, {size / 1e6:.2f} MB streamed"


def gif_bytes():
    return b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00," \
           b"\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"


def psd_bytes():
    header = b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, 1, 1, 8, 3)
    return header + struct.pack(">I", 0) * 3 + struct.pack(">H", 0) + b"\0" * 3


def probe_formats(port):
    out = []
    for name, body in (("GIF", gif_bytes()), ("PSD", psd_bytes())):
        request = urllib.request.Request(f"http://127.0.0.1:{port}/predict", data=body,
                                         headers={"Content-Type": "application/octet-stream"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                out.append(f"{name} {response.status}")
        except urllib.error.HTTPError as error:
            out.append(f"{name} {error.code}")
    return "formats posted to /predict: " + ", ".join(out)


def probe_method_label(port):
    sock = connect(port)
    sock.sendall(b'G"E{T}\\ / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    status, _ = read_response(sock)
    sock.close()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    bad_lines = [line for line in text.splitlines()
                 if line and not line.startswith("#") and
                 not re.match(r'^[a-z_]+(\{([a-z_]+="([^"\\]|\\.)*",?)*\})? \S+$', line)]
    series = len([line for line in text.splitlines() if line.startswith("mriscan_http_requests_total")])
    return f"method with quotes and braces: status {status}; /metrics lines that do not parse: {len(bad_lines)}; " \
           f"request-count series: {series}"


def probe_header_flood(port, lines=200000):
    sock = connect(port)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    sent = 0
    try:
        block = b"X-Flood: 1\r\n" * 1000
        while sent < lines:
            sock.sendall(block)
            sent += 1000
        sock.sendall(b"\r\n")
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        pass
    status, _ = read_response(sock)
    sock.close()
    return f"{lines} header lines: status {status} after {sent} lines were sent"


def probe_slow_clients(port, clients=143, seconds=12.0):
    stop = threading.Event()
    socks = []
    for _ in range(clients):
        try:
            socks.append(connect(port))
        except OSError:
            break

    def trickle():
        text = b"GET /health HTTP/1.1\r\nHost: x\r\n"
        i = 0
        while not stop.is_set() and i < len(text):
            for sock in socks:
                try:
                    sock.send(text[i:i + 1])
                except OSError:
                    pass
            i += 1
            stop.wait(3.0)

    thread = threading.Thread(target=trickle)
    thread.start()
    time.sleep(1.0)
    worst = 0.0
    failures = 0
    deadline = time.time() + seconds
    while time.time() < deadline:
        start = time.time()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
                response.read()
        except OSError:
            failures += 1
        worst = max(worst, time.time() - start)
        time.sleep(0.5)
    stop.set()
    thread.join()
    answered_408 = 0
    for sock in socks:
        sock.settimeout(0.5)
        try:
            answered_408 += sock.recv(1024).startswith(b"HTTP/1.1 408")
        except OSError:
            pass
        sock.close()
    return f"{len(socks)} slow clients (1 byte / 3 s) for {seconds:.0f} s: /health worst {worst * 1000:.0f} ms, " \
           f"{failures} failures; {answered_408} slow clients answered 408"


class RssPeak:
    """Samples the server's resident memory every 50 ms while the block runs: start, peak and end in MB."""

    def __init__(self, pid):
        self.pid, self.samples, self.stop = pid, [], threading.Event()

    def __enter__(self):
        self.start = rss_mb(self.pid)
        self.thread = threading.Thread(target=self.sample)
        self.thread.start()
        return self

    def sample(self):
        while not self.stop.wait(0.05):
            self.samples.append(rss_mb(self.pid) or 0.0)

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.end = rss_mb(self.pid)

    def __str__(self):
        if not self.pid:
            return "RSS not read (no --pid)"
        return f"RSS {self.start:.0f} -> peak {max(self.samples or [0]):.0f} -> {self.end:.0f} MB"


def http(port, path, body=None, content_type=None, token=None, timeout=30):
    """(status, body bytes) of one request; a refused or dropped connection is (None, b'')."""
    headers = {"Content-Type": content_type} if content_type else {}
    if token:
        headers["Authorization"] = "Bearer " + token
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, headers=headers,
                                     method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return None, b""


def probe_gzip_bomb(port, pid):
    bomb = hostile_payloads.gzip_bomb()
    with RssPeak(pid) as rss:
        start = time.time()
        sock = connect(port, timeout=60)
        status = None
        try:
            sock.sendall(hostile_payloads.compressed_post(bomb))
        except OSError:
            pass  # refused from the head: the server may close before the body is sent
        status, _ = read_response(sock)
        sock.close()
        seconds = time.time() - start
        time.sleep(0.5)
    return f"gzip body {len(bomb) / 1e6:.1f} MB inflating to 1 GB, no token: status {status} in {seconds:.2f} s, {rss}"


def probe_stalled_bodies(port, scan, clients=10):
    socks = []
    for _ in range(clients):
        sock = connect(port, timeout=40)
        sock.sendall(hostile_payloads.declared_body_head())
        socks.append(sock)
    time.sleep(0.3)
    start = time.time()
    body, ctype = hostile_payloads.multipart([("file", "scan.jpg", scan)])
    status, _ = http(port, "/predict", body, ctype, timeout=30)
    waited = time.time() - start
    answers = []
    for sock in socks:
        answers.append(read_response(sock)[0])
        sock.close()
    return f"{clients} clients declaring 60 MB and sending nothing: an 11th client's /predict -> {status} after " \
           f"{waited:.2f} s (30 s limit); the silent ones got {sorted(set(map(str, answers)))}"


def probe_trickled_body(port):
    sock = connect(port, timeout=60)
    sock.sendall(hostile_payloads.declared_body_head(1_000_000) + b"\0" * 8192)
    start, status = time.time(), None
    sock.settimeout(0.2)
    while status is None and time.time() - start < 60:
        try:
            sock.sendall(b"\0" * 100)  # 500 bytes/s
            status, _ = read_response(sock, limit=4096)
        except OSError:
            status, _ = read_response(sock, limit=4096)
            break
    sock.close()
    return f"body of 1 MB sent at 500 B/s after its first 8 KiB: status {status} after {time.time() - start:.1f} s"


def probe_held_workers(port, workers=8, seconds=14, rate=96 << 10):
    """`workers` bodies sent at `rate` (above the minimum): every worker held; what /health and /ready say."""
    length = int(rate * seconds)
    socks = [connect(port, timeout=30) for _ in range(workers)]
    for sock in socks:
        sock.sendall(hostile_payloads.declared_body_head(length))
    stop = threading.Event()

    def feed():
        sent = 0
        while sent < length and not stop.is_set():
            piece = b"\0" * min(rate // 10, length - sent)
            for sock in socks:
                try:
                    sock.sendall(piece)
                except OSError:
                    pass
            sent += len(piece)
            time.sleep(0.1)

    thread = threading.Thread(target=feed)
    thread.start()
    time.sleep(seconds - 2)
    health = json.loads(http(port, "/health", timeout=5)[1] or b"{}").get("workers")
    ready, _ = http(port, "/ready", timeout=5)
    stop.set()
    thread.join()
    for sock in socks:
        sock.close()
    return f"{workers} bodies at {rate >> 10} KiB/s for {seconds - 2} s: /health workers {health}; /ready {ready}"


def leaked_paths(value):
    """Absolute paths of this host found in a JSON value (strings that name an existing file or folder)."""
    if isinstance(value, dict):
        return [p for v in value.values() for p in leaked_paths(v)]
    if isinstance(value, list):
        return [p for v in value for p in leaked_paths(v)]
    if isinstance(value, str):
        return [word for word in re.findall(r"/[^\s'\"]+", value) if len(word) > 1 and os.path.exists(word)]
    return []


def probe_server_paths(port):
    out = []
    for path in ("/models", "/retrain_jobs"):
        status, body = http(port, path)
        out.append(f"{path} {status}: {len(leaked_paths(json.loads(body or b'{}')))} server paths")
    return "unauthenticated answers: " + "; ".join(out)


def probe_utf8(port, token, scan):
    out = []
    for path in hostile_payloads.BAD_UTF8_PATHS:
        status, body = http(port, path)
        try:
            json.loads(body.decode("utf-8"))
            valid = "valid UTF-8 JSON"
        except (UnicodeDecodeError, ValueError):
            valid = "NOT valid UTF-8 JSON"
        out.append(f"{path} -> {status} {valid}")
    if token:
        body, ctype = hostile_payloads.bad_filename_upload(scan)
        status, _ = http(port, "/upload_training_data", body, ctype, token)
        out.append(f"upload named b'scan-\\xff\\xfe.jpg' -> {status}")
    return "malformed UTF-8: " + "; ".join(out)


def probe_deep_json(port, token):
    status, _ = http(port, "/retrain", hostile_payloads.deep_json(), "application/json", token)
    alive, _ = http(port, "/health", timeout=5)
    return f"retrain body nested a million deep (admin): status {status}; /health afterwards {alive}"


def probe_gradcam(port, scan, clients=12):
    body, ctype = hostile_payloads.multipart([("file", "scan.jpg", scan)])
    statuses, threads = [], []

    def explain():
        statuses.append(http(port, "/explain", body, ctype, timeout=120)[0])

    for _ in range(clients):
        threads.append(threading.Thread(target=explain))
        threads[-1].start()
    time.sleep(0.3)
    start = time.time()
    predicted, _ = http(port, "/predict", body, ctype, timeout=60)
    waited = time.time() - start
    for thread in threads:
        thread.join()
    counts = {str(s): statuses.count(s) for s in set(statuses)}
    return f"{clients} concurrent /explain (no token): statuses {counts}; a /predict meanwhile -> {predicted} " \
           f"in {waited:.2f} s"


def probe_costly_jpeg(port, path):
    """A small progressive JPEG with hundreds of refinement scans (tests/support/progressive_jpeg.h writes one)."""
    if not path:
        return "costly JPEG: skipped (no --costly-jpeg)"
    jpeg = open(path, "rb").read()
    out = []
    for route, files in (("/predict", [("file", "scan.jpg", jpeg)]),
                         ("/predict_batch", [("files", f"s{i}.jpg", jpeg) for i in range(4)])):
        body, ctype = hostile_payloads.multipart(files)
        start = time.time()
        status, _ = http(port, route, body, ctype, timeout=120)
        out.append(f"{route} x{len(files)} -> {status} in {time.time() - start:.2f} s")
    return f"progressive JPEG of {len(jpeg) / 1e3:.0f} KB with hundreds of scans: " + "; ".join(out)


def probe_security_headers(port):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/")
    with urllib.request.urlopen(request, timeout=10) as response:
        headers = response.headers
    names = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options")
    return "web UI headers: " + "; ".join(f"{name}: {headers.get(name, 'absent')}" for name in names)


def default_scan():
    folder = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "brain-tumor-mri", "Testing",
                          "glioma")
    return os.path.join(folder, sorted(os.listdir(folder))[0]) if os.path.isdir(folder) else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, default=0)
    parser.add_argument("--token", default=os.environ.get("MRISCAN_ADMIN_TOKEN"))
    parser.add_argument("--scan", default=default_scan())
    parser.add_argument("--costly-jpeg", default=None, help="a progressive JPEG with hundreds of scans")
    args = parser.parse_args()
    if not args.scan:
        parser.error("--scan is needed: no ../shared dataset to take a scan from")
    scan = open(args.scan, "rb").read()
    for probe in (lambda: probe_chunked_unknown_path(args.port, args.pid),
                  lambda: probe_multi_range(args.port),
                  lambda: probe_formats(args.port),
                  lambda: probe_method_label(args.port),
                  lambda: probe_header_flood(args.port),
                  lambda: probe_slow_clients(args.port),
                  lambda: probe_gzip_bomb(args.port, args.pid),
                  lambda: probe_stalled_bodies(args.port, scan),
                  lambda: probe_trickled_body(args.port),
                  lambda: probe_held_workers(args.port),
                  lambda: probe_server_paths(args.port),
                  lambda: probe_utf8(args.port, args.token, scan),
                  lambda: probe_deep_json(args.port, args.token) if args.token else "deep JSON: skipped (no --token)",
                  lambda: probe_costly_jpeg(args.port, args.costly_jpeg),
                  lambda: probe_gradcam(args.port, scan),
                  lambda: probe_security_headers(args.port)):
        try:
            print(probe(), flush=True)
        except Exception as error:  # a probe that breaks the connection is a finding, not a crash of the script
            print(f"probe failed: {error!r}", flush=True)
    print(f"RSS at the end: {rss_mb(args.pid)} MB")


if __name__ == "__main__":
    main()
