#!/usr/bin/env python3
"""Hostile-client probes against a running `mriscan serve` on loopback (the hardening findings, one line each).

Usage: tests/server/probe_server.py --port 8080 [--pid PID]
Each probe prints what the server did. With --pid, the server's resident memory is read from /proc before and
after the probes that could grow it. Traffic goes to 127.0.0.1 only and is bounded in count and time.
What it is not: a test (tests/server/ assert the same behaviours); this reports figures for notes and README.
"""
import argparse
import re
import socket
import struct
import threading
import time
import urllib.request


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
    return f"chunked POST, no Content-Length: status {status}, {sent} MB sent before the server closed (discarded, never stored), " \
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, default=0)
    args = parser.parse_args()
    for probe in (lambda: probe_chunked_unknown_path(args.port, args.pid),
                  lambda: probe_multi_range(args.port),
                  lambda: probe_formats(args.port),
                  lambda: probe_method_label(args.port),
                  lambda: probe_header_flood(args.port),
                  lambda: probe_slow_clients(args.port)):
        try:
            print(probe(), flush=True)
        except Exception as error:  # a probe that breaks the connection is a finding, not a crash of the script
            print(f"probe failed: {error!r}", flush=True)
    print(f"RSS at the end: {rss_mb(args.pid)} MB")


if __name__ == "__main__":
    main()
