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

# The Debian archive this machine's apt uses, so that a site with its own mirror builds the base image from it as
# apt itself would: the first non-security URI of a deb822 .sources file, else of a `deb` line in sources.list
# (files under APT_ETC, default /etc/apt); $DEBIAN_MIRROR overrides; deb.debian.org when nothing is found.
debian_mirror() {
  local etc="${APT_ETC:-/etc/apt}" uri=""
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  uri="$(cat "$etc"/sources.list.d/*.sources 2>/dev/null |
    awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /-security\/?$/) { print $i; exit } }')"
  [ -n "$uri" ] || uri="$(cat "$etc"/sources.list "$etc"/sources.list.d/*.list 2>/dev/null |
    awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) while ($i !~ /\]$/) i++; if ($2 ~ /^\[/) i++;
                      if ($i !~ /-security\/?$/) { print $i; exit } }')"
  echo "${uri:-http://deb.debian.org/debian}"
}

# apt's HTTP proxy (Acquire::http::Proxy), if one is configured and none is in the environment, for debootstrap
# and the image build (podman passes http_proxy to the build).
export_apt_proxy() {
  local APT_PROXY=""
  [ -n "${http_proxy:-}" ] && return 0
  command -v apt-config >/dev/null || return 0
  eval "$(apt-config shell APT_PROXY Acquire::http::Proxy)"
  [ -n "$APT_PROXY" ] && export http_proxy="$APT_PROXY" https_proxy="${https_proxy:-$APT_PROXY}"
  return 0
}
