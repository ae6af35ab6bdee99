"""The machines a run spreads over: the inventory (inventory.py) and how each one is
reached (ssh.py: one OpenSSH master connection per host, the worker's session over it)."""
