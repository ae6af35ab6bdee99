"""Side effects on the network: namespaces, links, addresses, routes, NAT (pyroute2)."""
