"""Running cases side by side (`wgh run -j N`): worker processes, one case at a time each.

- `protocol`: what the parent and a worker say to each other (JSON lines).
- `worker`: a worker's main loop (`python -m harness.workers.worker`).
- `pool`: the parent: starts the workers, hands out cases (shared ones side by side,
  exclusive ones alone), streams progress, and stops every worker on a signal.
- `capacity`: how many workers `-j auto` starts.

Scenarios are independent by construction (per-run prefixes, their own namespaces), and
most of their time is spent waiting on WireGuard's timers, so they share a machine well.
"""
