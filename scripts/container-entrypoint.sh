#!/usr/bin/env bash
# The container image's entry point: checks that the container may build test networks
# (and says exactly which privilege is missing), picks the backend the host kernel
# allows, then runs `wgh` with the given arguments (default: the scenario suite, results
# in $WGH_RESULTS_DIR, /results in the image).
#   WGH_BACKEND=kernel|wireguard-go|auto   overrides the choice (default: auto)
set -uo pipefail
WGH=${WGH:-/opt/wgharness/.venv/bin/wgh}
RESULTS=${WGH_RESULTS_DIR:-/results}

missing=()
effective=$((16#$(awk '/^CapEff:/ {print $2}' /proc/self/status)))
has_cap() { (( (effective >> $1) & 1 )); }
has_cap 12 || missing+=("CAP_NET_ADMIN (links, addresses, routes, nftables, WireGuard): --cap-add NET_ADMIN, or --privileged")
has_cap 13 || missing+=("CAP_NET_RAW (ping's ICMP sockets, captures): --cap-add NET_RAW, or --privileged")
has_cap 21 || missing+=("CAP_SYS_ADMIN (network namespaces and their /run/netns mounts): --cap-add SYS_ADMIN, or --privileged")
if [ ! -w /proc/sys/net/ipv4/ip_forward ]; then
  missing+=("a writable /proc/sys (each node's own net.* sysctls, inside its namespace): --security-opt systempaths=unconfined, or --privileged")
fi
if ! unshare --net true 2>/dev/null; then
  missing+=("network namespaces (unshare --net failed): --cap-add SYS_ADMIN, or --privileged")
fi
# outside the names runs use (harness.plan.naming): a concurrent run's reaper would
# take a "wgh…" namespace for a dead run's and end what runs inside it
probe_ns="entrypoint-probe-$$"
if ip netns add "$probe_ns" 2>/dev/null; then
  if ! ip -n "$probe_ns" link add probe0 type veth peer name probe1 2>/dev/null; then
    missing+=("links in a namespace (ip link add failed): --cap-add NET_ADMIN, or --privileged")
  fi
  ip netns del "$probe_ns" 2>/dev/null
else
  missing+=("named namespaces (ip netns add failed: mounting /run/netns): --cap-add SYS_ADMIN, or --privileged")
fi
kernel_wireguard=0
if ip netns add "$probe_ns" 2>/dev/null; then
  ip -n "$probe_ns" link add wg0 type wireguard 2>/dev/null && kernel_wireguard=1
  ip netns del "$probe_ns" 2>/dev/null
fi
if [ "$kernel_wireguard" = 0 ] && [ ! -c /dev/net/tun ]; then
  missing+=("/dev/net/tun (wireguard-go needs it, and the host kernel's WireGuard module is not loaded): --device /dev/net/tun, or modprobe wireguard on the host")
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "wgharness: this container cannot build test networks:" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  exit 2
fi

backend=${WGH_BACKEND:-auto}
if [ "$backend" = auto ]; then
  if [ "$kernel_wireguard" = 1 ]; then backend=kernel; else backend=wireguard-go; fi
  echo "wgharness: backend $backend ($([ "$kernel_wireguard" = 1 ] && echo "the host kernel's WireGuard module is loaded" || echo "no WireGuard module in the host kernel: userspace"))" >&2
fi

case "${1:-}" in
  run) shift; set -- run --backend "$backend" --results-dir "$RESULTS" "$@" ;;
  shell) shift; set -- shell --backend "$backend" "$@" ;;
esac
exec "$WGH" "$@"
