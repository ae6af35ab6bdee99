"""Pure planning: names, addresses, routes, peers. No I/O; unit-tested without root."""
