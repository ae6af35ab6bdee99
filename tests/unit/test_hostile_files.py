"""The hostile corpus (tests/hostile/): every file is rejected with `file:line: …`,
exit 2, quickly and in bounded memory, and never reaches the host."""

from __future__ import annotations

import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import ScenarioError
from harness.scenario.load import load_file

CORPUS = sorted((Path(__file__).parent.parent / "hostile").glob("*.yaml"))
PROBLEM_LINE = re.compile(r"^(?P<file>[^:\n]+\.yaml):(?P<line>\d+): \S")


def test_corpus_is_there():
    assert len(CORPUS) >= 30


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_each_hostile_file_is_rejected_with_a_line(path):
    with pytest.raises(ScenarioError) as err:
        load_file(path)
    for problem in err.value.problems:
        assert problem.file == str(path)
        assert problem.line is not None and problem.line >= 1, str(problem)
        assert "\n" not in str(problem), f"an error message spans lines: {problem!s}"


def _limits() -> None:
    gib = 1 << 30
    resource.setrlimit(resource.RLIMIT_AS, (2 * gib, 2 * gib))  # an expansion bomb dies, not the machine


def test_wgh_validate_rejects_the_whole_corpus_with_exit_2():
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "validate", *map(str, CORPUS)],
        capture_output=True, text=True, timeout=60, preexec_fn=_limits,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines and all(PROBLEM_LINE.match(line) for line in lines), "\n".join(l for l in lines if not PROBLEM_LINE.match(l))
    assert {PROBLEM_LINE.match(line)["file"] for line in lines} == {str(p) for p in CORPUS}


@pytest.mark.parametrize(
    "key",
    ["/etc/hostname", "kernel.hostname", "kernel.core_pattern", "vm.swappiness", "fs.protected_symlinks",
     "net.ipv4/../../kernel.hostname", "net..ipv4", "net.ipv4.", "net", "net.ipv4", "net/ipv4/ip_forward", " net.ipv4.ip_forward"],
)
def test_only_network_namespace_sysctls_are_allowed(key):
    from harness.scenario.load import load_data

    with pytest.raises(ScenarioError) as err:
        load_data({"nodes": {"a": {"sysctls": {key: 1}}}})
    assert "only per-network-namespace sysctls" in str(err.value)


def test_allowed_sysctls_still_validate():
    from harness.scenario.load import load_data

    (case,) = load_data({"nodes": {"a": {"sysctls": {"net.ipv4.conf.all.rp_filter": 2, "net.ipv4.conf.eth0.forwarding": "1", "net.ipv4.ip_local_port_range": "1024 65000"}}}})
    assert case.spec.nodes["a"].sysctls["net.ipv4.conf.eth0.forwarding"] == "1"


def test_the_sysctl_writer_refuses_other_paths_by_itself():
    """Defence in depth: even a name that skipped validation never becomes a host path."""
    from harness.net import nsexec

    for name in ("kernel.hostname", "/tmp/x", "net.ipv4/../../kernel"):
        with pytest.raises(ValueError):
            nsexec.write_sysctls("wgh-never-created", {name: "1"})
