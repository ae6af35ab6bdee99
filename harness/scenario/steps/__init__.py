"""The step kinds of the scenario format: their arguments, reference checks and needs,
one module per theme, each registering its kinds (`registry.step`).

The order of these imports is the order of the `Step` union, hence of the JSON Schema and
of every list of kinds shown to a user: new modules go last, and a module imports only
the ones above it (else it would register first).
"""

from harness.scenario.steps import basic, throughput, timeline, background, peers, mesh, wgstate, dns  # noqa: F401
