#!/usr/bin/env bash
# Install everything wgharness needs on a Debian/Ubuntu machine (as root), then the
# harness itself into .venv/. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  wireguard-tools wireguard-go   # both WireGuard implementations' tools
  iproute2 nftables iptables conntrack kmod
  iputils-ping iperf3
  python3 python3-venv python3-pip
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run as root (network namespaces and WireGuard need it)" >&2
  exit 1
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'
echo "wgharness installed: $(.venv/bin/wgh --version 2>/dev/null || true) — try: .venv/bin/wgh doctor"
