#!/usr/bin/env bash
# Installs the Debian 12 packages pciesim needs, and nothing else.
# Idempotent: when every package is already present it prints nothing and
# touches nothing. Must run as root when something is missing.
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config make
  libsystemc-dev libboost-graph-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libyaml-cpp-dev nlohmann-json3-dev libcli11-dev
  pybind11-dev python3-dev python3-pytest python3-numpy python3-matplotlib python3-yaml
  python3-pandas python3-distributed python3-dask python3-tqdm
  pciutils linux-libc-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: missing packages: ${missing[*]}" >&2
  echo "setup: run this script as root (or install them with apt-get) and retry" >&2
  exit 1
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
