#!/usr/bin/env bash
# Install everything wgharness needs on a Debian/Ubuntu machine (as root), then the
# harness itself into .venv/. Idempotent: a second run only checks.
#   --vm   also what `wgh vm` needs: qemu, busybox (virtme-ng's initramfs), udev
#          (the guest's console ports) and virtme-ng. Kernels are fetched on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_VM=0
for arg in "$@"; do
  case "$arg" in
    --vm) WITH_VM=1 ;;
    *) echo "install.sh: unknown option $arg (known: --vm)" >&2; exit 2 ;;
  esac
done

APT_PACKAGES=(
  wireguard-tools wireguard-go   # both WireGuard implementations' tools
  iproute2 nftables iptables conntrack kmod
  iputils-ping iperf3
  dnsmasq-base                   # DNS servers inside topologies (endpoint-by-name scenarios)
  mininet                        # mnexec, for the mininet engine (the Python module comes from PyPI)
  chromium                       # renders `wgh report` pages once in tests (headless screenshot)
  python3 python3-venv python3-pip
)
VM_PACKAGES=(qemu-system-x86 busybox-static udev)

if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run as root (network namespaces and WireGuard need it)" >&2
  exit 1
fi

wanted=("${APT_PACKAGES[@]}")
[ "$WITH_VM" = 1 ] && wanted+=("${VM_PACKAGES[@]}")
missing=()
for pkg in "${wanted[@]}"; do
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
extras=test
[ "$WITH_VM" = 1 ] && extras=test,vm
.venv/bin/python -m pip install -q -e ".[$extras]"
# the harness is installed editable, so pip compiled none of it: compile it now, or every
# `wgh` start recompiles ~100 modules (~0.15 s) where PYTHONDONTWRITEBYTECODE is set
.venv/bin/python -m compileall -q harness >/dev/null
echo "wgharness installed: $(.venv/bin/wgh --version 2>/dev/null || true) — try: .venv/bin/wgh doctor"
