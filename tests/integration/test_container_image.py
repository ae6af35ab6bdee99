"""The container image's entry point (scripts/container-entrypoint.sh), run on the host
as it runs in a container: with the privileges a privileged container has it picks the
backend the kernel allows and runs the suite's command; without them it names each
missing privilege and how to grant it. The image itself is built and run with podman in
tests/integration/test_container_build.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .placement import host_only

pytestmark = [pytest.mark.requires("root", "wireguard"), host_only]

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "scripts" / "container-entrypoint.sh"


def _entrypoint(*args: str, results: Path, drop: str = "", timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "WGH": str(Path(shutil.which("wgh") or ROOT / ".venv" / "bin" / "wgh")), "WGH_RESULTS_DIR": str(results)}
    prefix = ["setpriv", "--bounding-set", drop, "--inh-caps", "-all"] if drop else []
    return subprocess.run([*prefix, "bash", str(ENTRYPOINT), *args], capture_output=True, text=True, timeout=timeout, env=env)


def test_privileged_it_runs_the_scenarios_with_the_backend_the_kernel_allows(tmp_path):
    from harness import caps

    done = _entrypoint("run", str(ROOT / "scenarios" / "direct.yaml"), results=tmp_path)
    assert done.returncode == 0, done.stderr
    expected = "kernel" if caps.kernel_wireguard() else "wireguard-go"
    assert f"wgharness: backend {expected}" in done.stderr
    (results,) = tmp_path.glob("*/results.json")
    document = json.loads(results.read_text())
    assert [s["status"] for s in document["scenarios"]] == ["passed"]
    assert set(document["scenarios"][0]["backends"].values()) == {expected}


@pytest.mark.parametrize(
    "drop, named",
    [
        ("-sys_admin", ["--cap-add SYS_ADMIN"]),
        ("-net_admin", ["--cap-add NET_ADMIN"]),
        ("-net_raw", ["--cap-add NET_RAW"]),
        ("-sys_admin,-net_admin", ["--cap-add SYS_ADMIN"]),
    ],
)
def test_without_privileges_it_says_which_are_missing(tmp_path, drop, named):
    done = _entrypoint("run", str(ROOT / "scenarios" / "direct.yaml"), results=tmp_path, drop=drop)
    assert done.returncode == 2
    assert "this container cannot build test networks" in done.stderr
    for words in named:
        assert words in done.stderr, done.stderr
    assert not list(tmp_path.iterdir()), "nothing ran"
