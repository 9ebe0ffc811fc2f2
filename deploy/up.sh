#!/usr/bin/env bash
# deploy/up.sh [N] [THREADS]: builds the server and nginx images and starts N replicas (default 2) behind nginx
# on http://127.0.0.1:8080/, each with THREADS kernel threads (default: the cores divided among the replicas).
# Works on a fresh Debian 12 machine without a Docker engine: installs podman, runc, debootstrap and
# docker-compose, makes the Debian base images itself when no registry has them (debootstrap from the Debian
# mirror, `podman import`, under the tags deploy/Dockerfile names), and runs compose against podman's API.
# The model: $MRISCAN_MODEL, else the newest runs/*/model.safetensors (train one with scripts/demo.sh).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
replicas="${1:-2}"
cores="$(nproc)"
threads="${2:-$(( cores / replicas > 0 ? cores / replicas : 1 ))}"

need_packages podman runc netavark aardvark-dns debootstrap docker-compose curl ca-certificates
command -v npm >/dev/null 2>&1 || need_packages nodejs npm
cd "$REPO_DIR"

# The model and the data, both mounted read-only.
model="${MRISCAN_MODEL:-$(ls -t runs/*/model.safetensors 2>/dev/null | head -1 || true)}"
if [ -z "$model" ] || [ ! -f "$model" ]; then
  echo "deploy: no model: set MRISCAN_MODEL to a model.safetensors or train one first (scripts/demo.sh)" >&2
  exit 1
fi
MRISCAN_MODEL="$(cd "$(dirname "$model")" && pwd)/$(basename "$model")"
shared="$(shared_dir)"  # exits here, with its message, when ../shared is missing
MRISCAN_DATA="$shared/data/brain-tumor-mri"
export MRISCAN_MODEL MRISCAN_DATA
export MRISCAN_THREADS="$threads"

# Base images: debian:bookworm (build stage) and bookworm-slim (run stage) from one minbase root file system;
# slim as Debian's own slim images are made: documentation, manuals and translations removed, and kept out of
# packages installed later (dpkg path-exclude).
make_base_images() {
  local rootfs
  rootfs="$(mktemp -d /var/tmp/mriscan-rootfs.XXXXXX)"
  echo "deploy: no Debian base image here; making one with debootstrap (a few minutes)" >&2
  export_apt_proxy
  as_root env http_proxy="${http_proxy:-}" debootstrap --variant=minbase bookworm "$rootfs" "$(debian_mirror)" >/dev/null
  as_root rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  as_root tar -C "$rootfs" -c . | as_root podman import --change 'CMD ["bash"]' - docker.io/library/debian:bookworm
  as_root tee "$rootfs/etc/dpkg/dpkg.cfg.d/slim" >/dev/null <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
DPKG
  as_root find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  as_root rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* "$rootfs"/var/cache/debconf/*-old
  as_root tar -C "$rootfs" -c . | as_root podman import --change 'CMD ["bash"]' - docker.io/library/debian:bookworm-slim
  as_root rm -rf "$rootfs"
}
as_root podman image exists docker.io/library/debian:bookworm-slim || make_base_images

# The web UI's Chart.js goes into the image from the build context.
[ -f server/ui/node_modules/chart.js/dist/chart.umd.js ] || npm ci --prefix server/ui --no-audit --no-fund --loglevel=error
echo "deploy: building localhost/mriscan (log: /tmp/mriscan-build.log)" >&2
build() { as_root podman build "$@" >>/tmp/mriscan-build.log 2>&1 || { tail -30 /tmp/mriscan-build.log >&2; exit 1; }; }
: >/tmp/mriscan-build.log
build --format docker -f deploy/Dockerfile -t localhost/mriscan:latest .
build --format docker -f deploy/nginx.Dockerfile -t localhost/mriscan-nginx:latest deploy

start_podman_service
"${COMPOSE[@]}" up -d --no-build --scale api="$replicas" >&2
# nginx resolves `api` when it starts: restart it so that it sees every replica of this scale.
"${COMPOSE[@]}" restart nginx >&2

echo "deploy: waiting for http://127.0.0.1:8080/ready" >&2
for _ in $(seq 120); do
  curl -sf http://127.0.0.1:8080/ready >/dev/null 2>&1 && break
  sleep 1
done
curl -sf http://127.0.0.1:8080/ready >/dev/null || { echo "deploy: not ready after 120 s" >&2; "${COMPOSE[@]}" logs --tail 30 >&2; exit 1; }
seen="$(for _ in $(seq $(( replicas * 10 ))); do curl -s -D - -o /dev/null http://127.0.0.1:8080/health | tr -d '\r' | sed -n 's/^X-Replica: //p'; done | sort -u | tr '\n' ' ')"
volume="$(as_root podman volume inspect mriscan_state --format '{{.Mountpoint}}')"
echo "deploy: up: $replicas replica(s) x $threads thread(s) behind nginx on http://127.0.0.1:8080/ (replicas answering: $seen)"
echo "deploy: image size: $(as_root podman image inspect localhost/mriscan:latest --format '{{.Size}}' | awk '{printf "%.1f MB", $1/1e6}')"
echo "deploy: admin token: $volume/admin_token; load test: deploy/loadtest.sh; stop: deploy/down.sh"
