#!/usr/bin/env bash
# deploy/down.sh [--volumes]: stops and removes what deploy/up.sh started; --volumes also deletes the state
# (registry, jobs, uploads, model versions). SIGTERM first: replicas drain (compose.yaml's stop_grace_period).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
start_podman_service
# compose interpolates every variable of compose.yaml even to stop; these two only matter for `up`.
export MRISCAN_MODEL="${MRISCAN_MODEL:-/dev/null}" MRISCAN_DATA="${MRISCAN_DATA:-/dev/null}"
"${COMPOSE[@]}" down "$@" >&2
as_root pkill -f "podman system service --time=0 unix://$PODMAN_SOCKET" || true
echo "deploy: down" >&2
