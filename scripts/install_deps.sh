#!/usr/bin/env bash
# Installs everything mriscan needs on a fresh Debian 12 machine (as root, or with sudo available).
# Idempotent: skips apt-get when every package is already installed. Used by scripts/demo.sh and scripts/test.sh.
set -euo pipefail
packages=(build-essential cmake pkg-config
  libeigen3-dev libxsimd-dev libstb-dev libjpeg-dev libcpp-httplib-dev nlohmann-json3-dev libsqlite3-dev
  libpq-dev postgresql
  libssl-dev libcli11-dev libcairo2-dev fonts-dejavu-core ccache
  libgdcm-dev libopenjp2-7-dev libcharls-dev libgdcm-tools python3-pydicom
  libgtest-dev libgmock-dev libbenchmark-dev libdnnl-dev
  libopenmpi-dev openmpi-bin
  clang libclang-rt-14-dev
  nginx qemu-user
  python3-torch python3-torchvision python3-numpy libopenblas0-pthread
  chromium)
# libgdcm-dev, libopenjp2-7-dev, libcharls-dev: the decoders of DICOM's JPEG, RLE, JPEG 2000 and JPEG-LS frames
# (docs/dicom.md, io/dicom_pixels.h); libgdcm-tools (gdcmconv) and python3-pydicom make the DICOM
# test files at test time (tests/io/make_dicom_fixtures.py).
# postgresql: the server the PostgreSQL backend's tests start in a temporary directory (libpq-dev is the client).
# libopenblas0-pthread: the benchmark peers' BLAS (PyTorch loads libblas.so.3, otherwise the netlib reference).
# libdnnl-dev: oneDNN, a benchmark peer only (mriscan_layer_bench, bench/layers/); nothing else links it.
# Node.js and npm: Debian's packages unless the machine already has them (some come with a newer Node.js whose
# npm conflicts with Debian's npm package).
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  echo "install_deps: installing ${missing[*]}" >&2
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Front-end packages from npm, pinned by their lock files: Chart.js for the web UI (served by `mriscan serve`
# from server/ui/node_modules), playwright-core for the browser test (drives Debian's /usr/bin/chromium), and
# kubernetes-models and yaml for the offline check of deploy/k8s (tests/deploy).
cd "$(dirname "$0")/.."
for dir in server/ui tests/ui tests/deploy; do
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
    echo "install_deps: npm ci in $dir" >&2
    # onnxruntime-node bundles its CPU runtime; its install script would only fetch GPU providers.
    ONNXRUNTIME_NODE_INSTALL=skip npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >/dev/null
    touch "$dir/node_modules"
  fi
done
