"""Nodes on another machine: a worker process there (`wgh worker`, reached over
OpenSSH's stdin/stdout, or a local pipe in tests) builds its share of a run's network
and answers for its nodes; the controller drives it through the same `Engine` and
`Node` interfaces as a local engine (harness.engine.base).

- wire: the frames both sides exchange (length-prefixed pickles, errors carried back);
- worker: the serving side (one per host and run; it dies with its connection and
  removes what it built);
- client: the controller's side (`WorkerConnection`, `RemoteNode`, `RemoteEngine`).
"""
