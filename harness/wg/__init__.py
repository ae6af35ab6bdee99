"""WireGuard: keys, device configuration and status, per backend (kernel, wireguard-go)."""
