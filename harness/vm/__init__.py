"""Run commands inside a throwaway VM booted from a chosen kernel (virtme-ng), so
kernel WireGuard and netem are available where the host kernel lacks them."""
