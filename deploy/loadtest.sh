#!/usr/bin/env bash
# deploy/loadtest.sh [USERS] [SECONDS] [URL]: Locust headless against a deployment (default 100 users, 60 s,
# http://127.0.0.1:8080, i.e. nginx from deploy/up.sh), deploy/locustfile.py's mix. Writes Locust's CSV and
# HTML reports under runs/loadtest/<time>-<users>u/ and prints one summary line: requests/s, p50/p95/p99 of
# /predict, failures, the share shed with 503, and whether /health always answered 200. The request mix is
# deploy/locustfile.py's (MRISCAN_GRADCAM_WEIGHT=0: predictions without Grad-CAM only).
# Traffic goes only where URL points (loopback by default).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
users="${1:-100}"
seconds="${2:-60}"
url="${3:-http://127.0.0.1:8080}"
need_packages python3-locust
MRISCAN_SHARED="$(shared_dir)"  # exits here, with its message, when ../shared is missing
export MRISCAN_SHARED
out="$REPO_DIR/runs/loadtest/$(date +%Y%m%d-%H%M%S)-${users}u"
mkdir -p "$out"
curl -sf "$url/ready" >/dev/null || { echo "loadtest: $url/ready does not answer 200: start it with deploy/up.sh" >&2; exit 1; }
# Debian's locust runs under Debian's Python (/usr/bin/python3), whatever python3 is first on PATH.
/usr/bin/python3 -m locust -f "$DEPLOY_DIR/locustfile.py" --headless --users "$users" --spawn-rate "$users" \
  --run-time "${seconds}s" --stop-timeout 10 --host "$url" --csv "$out/locust" --html "$out/report.html" \
  --only-summary --loglevel WARNING >"$out/locust.log" 2>&1 || true  # a run with failures exits 1; we report them
/usr/bin/python3 - "$out" "$users" "$seconds" <<'PY'
import csv, json, sys
out, users, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = {r["Name"]: r for r in csv.DictReader(open(f"{out}/locust_stats.csv"))}
failures = list(csv.DictReader(open(f"{out}/locust_failures.csv")))
total = rows["Aggregated"]
predict = rows.get("/predict", total)
requests = int(total["Request Count"])
shed = sum(int(f["Occurrences"]) for f in failures if "503" in f["Error"])
health = rows.get("/health", {"Request Count": "0", "Failure Count": "0"})
summary = {
    "users": users, "seconds": seconds, "requests": requests,
    "requests_per_second": round(float(total["Requests/s"]), 1),
    "predictions_per_second": round(sum(float(r["Requests/s"]) for n, r in rows.items() if n.startswith("/predict")), 1),
    "predict_p50_ms": float(predict["50%"]), "predict_p95_ms": float(predict["95%"]),
    "predict_p99_ms": float(predict["99%"]),
    "failures": int(total["Failure Count"]), "shed_503_share": round(shed / max(1, requests), 4),
    "health_requests": int(health["Request Count"]), "health_failures": int(health["Failure Count"]),
}
json.dump(summary, open(f"{out}/summary.json", "w"), indent=1)
print(f"loadtest: {users} users, {seconds} s: {summary['requests_per_second']} req/s "
      f"({summary['predictions_per_second']} predictions/s), /predict p50/p95/p99 "
      f"{summary['predict_p50_ms']:.0f}/{summary['predict_p95_ms']:.0f}/{summary['predict_p99_ms']:.0f} ms, "
      f"{summary['failures']} failures, 503 share {summary['shed_503_share']:.2%}, /health "
      f"{summary['health_requests'] - summary['health_failures']}/{summary['health_requests']} 200; {out}")
PY
