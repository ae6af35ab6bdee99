"""wgharness: real WireGuard peers in emulated networks, driven by scenario files."""

__version__ = "0.1.0"
