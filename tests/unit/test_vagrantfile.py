"""The Vagrantfile: `vagrant validate` accepts it (both machines, one per kernel), its
environment variables are checked, and every machine is provisioned by the same
scripts/install.sh as CI and the container image (no second package list). No box can
be fetched and nested KVM is unusable here, so `vagrant up` itself is not run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MACHINES = ["bookworm-6.1", "bookworm-6.12"]


def _validate(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    if shutil.which("vagrant") is None:
        pytest.skip("needs vagrant: scripts/install.sh --vagrant (Debian's vagrant package)")
    work = tmp_path / "project"
    work.mkdir(exist_ok=True)
    shutil.copy(ROOT / "Vagrantfile", work / "Vagrantfile")
    environment = {**os.environ, "VAGRANT_HOME": str(tmp_path / "vagrant.d"), "VAGRANT_CHECKPOINT_DISABLE": "1", **env}
    return subprocess.run(["vagrant", "validate", "--ignore-provider"], cwd=work, capture_output=True, text=True, timeout=120, env=environment)


def test_vagrant_validates_one_machine_per_kernel(tmp_path):
    done = _validate(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "validated successfully" in done.stdout
    assert [m for m in MACHINES if f"==> {m}:" in done.stdout] == MACHINES


@pytest.mark.parametrize("variable, value", [("WGH_CPUS", "two"), ("WGH_MEMORY", "2G"), ("WGH_BOX", "not a box")])
def test_a_bad_setting_is_refused_by_name(tmp_path, variable, value):
    done = _validate(tmp_path, **{variable: value})
    assert done.returncode != 0
    assert f"{variable}={value!r}".replace("'", '"') in done.stdout + done.stderr


def test_settings_from_the_environment_are_used(tmp_path):
    assert _validate(tmp_path, WGH_CPUS="4", WGH_MEMORY="4096", WGH_BOX="generic/debian12").returncode == 0


def test_machines_are_provisioned_by_the_shared_install_script():
    text = (ROOT / "Vagrantfile").read_text()
    assert "bash scripts/install.sh" in text
    install = (ROOT / "scripts" / "install.sh").read_text()
    block = install.split("APT_PACKAGES=(", 1)[1].split(")", 1)[0]
    listed = {word for line in block.splitlines() for word in line.split("#")[0].split()}
    assert listed and not [pkg for pkg in listed if re.search(rf"\b{re.escape(pkg)}\b", text)], "the Vagrantfile repeats install.sh's packages"
