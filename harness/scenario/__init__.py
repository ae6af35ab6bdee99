"""Scenario files: YAML → validated, typed model (pure; nothing touches the network)."""
