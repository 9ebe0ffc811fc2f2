# shellcheck shell=bash disable=SC2034
# Shared by deploy/up.sh, down.sh and loadtest.sh (sourced, not run): where things are, and podman set up to
# stand in for a Docker engine on machines without one.
#   CONTAINERS_CONF   deploy/containers.conf (runc, cgroupfs, file events, file limits)
#   DOCKER_HOST       podman's Docker-compatible API on a socket of ours, for Debian's docker-compose
DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(dirname "$DEPLOY_DIR")"
export CONTAINERS_CONF="$DEPLOY_DIR/containers.conf"
PODMAN_SOCKET=/run/mriscan-podman.sock
COMPOSE=(docker-compose --project-name mriscan --file "$DEPLOY_DIR/compose.yaml")

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian packages, installed only when missing.
need_packages() {
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "deploy: installing ${missing[*]}" >&2
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
}

# podman's API service (started once, left running until down.sh), for docker-compose.
start_podman_service() {
  export DOCKER_HOST="unix://$PODMAN_SOCKET"
  if ! curl -s --unix-socket "$PODMAN_SOCKET" http://d/_ping >/dev/null 2>&1; then
    as_root env CONTAINERS_CONF="$CONTAINERS_CONF" podman system service --time=0 "unix://$PODMAN_SOCKET" \
      >/tmp/mriscan-podman-service.log 2>&1 &
    for _ in $(seq 50); do
      curl -s --unix-socket "$PODMAN_SOCKET" http://d/_ping >/dev/null 2>&1 && return 0
      sleep 0.2
    done
    echo "deploy: podman system service did not start (see /tmp/mriscan-podman-service.log)" >&2
    exit 1
  fi
}

shared_dir() {
  local shared="${MRISCAN_SHARED:-$REPO_DIR/../shared}"
  if [ ! -d "$shared/data/brain-tumor-mri/Testing" ]; then
    echo "deploy: the shared data folder was not found at $shared (expected data/brain-tumor-mri/ in it);" \
         "set MRISCAN_SHARED" >&2
    exit 1
  fi
  (cd "$shared" && pwd)
}
