#!/usr/bin/env bash
# Install everything wgharness needs on a Debian/Ubuntu machine (as root), then the
# harness itself into .venv/. Idempotent: a second run only checks.
#   --vm       also what `wgh vm` needs: qemu, busybox (virtme-ng's initramfs), udev
#              (the guest's console ports) and virtme-ng. Kernels are fetched on first use.
#   --container  also podman, runc and debootstrap: the test that builds the container
#              image (Containerfile) and runs scenarios in it
#   --vagrant  also Debian's vagrant: the test that validates the Vagrantfile
#   --runtime  only what running scenarios needs (no test tools, no chromium): for
#              container images (Containerfile) and CI jobs that only run `wgh`
# On Ubuntu, whose kernels keep sch_netem in linux-modules-extra-<release> (GitHub's
# hosted runners may lack it), that package is tried when netem is missing; where the
# archive has moved past the running kernel it is gone, and this says so (run netem's
# cases in a VM then: wgh run --only-needing netem under wgh vm). chromium only renders
# a report once in the tests: on Ubuntu its package is a snap stub that works neither
# on runners nor in containers, so it is left out there (that test skips, saying so).
# The last lines say what the running kernel offers: kernel WireGuard, netem.
# Every CI template, the Containerfile and the Vagrantfile call this script: the
# package list lives here only.
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_VM=0
WITH_CONTAINER=0
WITH_VAGRANT=0
RUNTIME_ONLY=0
for arg in "$@"; do
  case "$arg" in
    --vm) WITH_VM=1 ;;
    --container) WITH_CONTAINER=1 ;;
    --vagrant) WITH_VAGRANT=1 ;;
    --runtime) RUNTIME_ONLY=1 ;;
    *) echo "install.sh: unknown option $arg (known: --vm, --container, --vagrant, --runtime)" >&2; exit 2 ;;
  esac
done

APT_PACKAGES=(
  wireguard-tools wireguard-go   # both WireGuard implementations' tools
  iproute2 nftables iptables conntrack kmod
  iputils-ping iperf3
  dnsmasq-base                   # DNS servers inside topologies (endpoint-by-name scenarios)
  mininet                        # mnexec, for the mininet engine (the Python module comes from PyPI)
  python3 python3-venv python3-pip
)
TEST_PACKAGES=(stress-ng         # CPU load beside the soak (benchmarks/soak.py; .ci/run's short soak)
  openssh-server)                # the multihost tests' simulated hosts: `sshd -i` per connection, through
                                 # ssh's ProxyCommand inside their namespaces (nothing listens)
VM_PACKAGES=(qemu-system-x86 busybox-static udev file)  # file: virtme-ng reads the kernel's version with it
CONTAINER_PACKAGES=(podman runc debootstrap)  # runc: Debian's default crun cannot run privileged containers on every host

if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run as root (network namespaces and WireGuard need it)" >&2
  exit 1
fi

is_ubuntu() { grep -qs '^ID=ubuntu' /etc/os-release; }
wanted=("${APT_PACKAGES[@]}")
[ "$RUNTIME_ONLY" = 0 ] && wanted+=("${TEST_PACKAGES[@]}")
# renders `wgh report` pages once in tests (headless screenshot); optional
[ "$RUNTIME_ONLY" = 0 ] && ! is_ubuntu && wanted+=(chromium)
[ "$WITH_VM" = 1 ] && wanted+=("${VM_PACKAGES[@]}")
[ "$WITH_CONTAINER" = 1 ] && wanted+=("${CONTAINER_PACKAGES[@]}")
[ "$WITH_VAGRANT" = 1 ] && wanted+=(vagrant)
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
updated=0
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  [ "$updated" = 1 ] || { apt-get update -qq; updated=1; }
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
if [ ${#missing[@]} -gt 0 ]; then
  apt_install "${missing[@]}"
fi

# Ubuntu's kernels ship sch_netem in linux-modules-extra; a container sees the host's
# kernel, whose modules it cannot install (wgh doctor says what is missing)
in_container() { [ -e /.dockerenv ] || [ -e /run/.containerenv ]; }
if is_ubuntu && ! in_container && ! modprobe -q sch_netem 2>/dev/null; then
  extra="linux-modules-extra-$(uname -r)"
  [ "$updated" = 1 ] || { apt-get update -qq; updated=1; }
  if [ -z "$(apt-cache show "$extra" 2>/dev/null | head -1)" ]; then
    echo "install.sh: netem is missing and the archive no longer has $extra (it has moved past this kernel): scenarios with delay or loss will be skipped here; run them in a VM (wgh vm --kernel latest -- .venv/bin/wgh run --only-needing netem ...)" >&2
  elif apt_install "$extra" && modprobe -q sch_netem; then
    echo "install.sh: installed $extra for netem"
  else
    echo "install.sh: netem is missing and $extra did not provide it: scenarios with delay or loss will be skipped (see wgh doctor)" >&2
  fi
fi
if is_ubuntu && [ "$RUNTIME_ONLY" = 0 ]; then
  echo "install.sh: chromium left out (Ubuntu's package is a snap stub): the test that renders a report in it skips"
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
extras=test
[ "$RUNTIME_ONLY" = 1 ] && extras=
[ "$WITH_VM" = 1 ] && extras=${extras:+$extras,}vm
.venv/bin/python -m pip install -q -e ".${extras:+[$extras]}"
# the harness is installed editable, so pip compiled none of it: compile it now, or every
# `wgh` start recompiles ~100 modules (~0.15 s) where PYTHONDONTWRITEBYTECODE is set
.venv/bin/python -m compileall -q harness >/dev/null
have() { modprobe -q "$1" 2>/dev/null && echo yes || echo "no ($2)"; }
echo "install.sh: this kernel ($(uname -r)): kernel WireGuard $(have wireguard 'wireguard-go is used'), netem $(have sch_netem 'delay and loss cases skip')"
echo "wgharness installed: $(.venv/bin/wgh --version 2>/dev/null || true) — try: .venv/bin/wgh doctor"
