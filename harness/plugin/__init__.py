"""The wgharness pytest plugin, one module per job. `harness.pytest_plugin` is the
entry point (pytest11): it adds the hookspecs and registers these modules as plugins.

- options: the command-line and ini options and what reads them; the report header
- markers: `requires(...)` and `wgh_scenario`; the requirement skip
- collect: scenario files under `scenarios/` folders as ScenarioFile/ScenarioItem
- fixtures: wgh_backend, wgh_engine, wgh_network
- session: results.json, the expected-failure summary, the pytest-benchmark feed,
  the signal handlers (only in sessions that build networks), the --vm-kernel re-run
- hookspecs: the hooks a conftest may implement (pytest_wgh_make_engine)
"""
