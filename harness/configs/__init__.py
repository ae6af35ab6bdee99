"""WireGuard configurations as users write them: wg-quick files (wg0.conf) and
systemd-networkd's .netdev/.network pairs, parsed with every setting's line, so that a
problem is reported as file:line: field: message. Pure: no I/O beyond reading the file."""
