"""Engines: what builds a plan into real (or emulated) hosts, and the handle the steps
and the diagnosis use to act inside one of them.

- `base`: the `Node` protocol (a built host: its network namespace by path, commands,
  sockets and netlink opened inside it) and `socket_in` helpers shared by steps.
- `netns`: nodes of the netns engine (named namespaces under /run/netns).
- `fake`: nodes that do nothing on the host, for unit tests of steps and diagnosis.

The netns engine's build and timeline operations still live in harness/net/network.py;
they move behind an `Engine` protocol next (issue 11), so a Mininet topology can be
the engine of a run.
"""
