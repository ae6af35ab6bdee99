"""`wgh bisect --configs` end to end on this machine: four versions of a hub's config
directory, where the third brings a typo into the phone's AllowedIPs (10.8.0.30 for
10.8.0.3, as examples/configs/v2 has it) and the fourth keeps it. Each step runs
`wgh run --configs VERSION` (its default checks) with wireguard-go; bisect names the
third version after checking the last, then the second and third."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from .placement import host_only

pytestmark = [pytest.mark.requires("root", "wireguard"), host_only]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "configs"


def test_bisect_names_the_first_broken_config_version(wgh_cli, tmp_path):
    versions = []
    for number in range(1, 5):
        folder = tmp_path / f"v{number}"
        shutil.copytree(EXAMPLES / "v1", folder)
        if number >= 3:
            shutil.copy(EXAMPLES / "v2" / "server.conf", folder / "server.conf")
        versions.append(str(folder))
    done = wgh_cli("bisect", "--configs", *versions, "--backend", "wireguard-go", "--results-dir", str(tmp_path / "results"), timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"first bad: {versions[2]} (last good: {versions[1]}), after 3 steps" in done.stdout
    (summary,) = (tmp_path / "results").glob("*-bisect.json")
    steps = json.loads(summary.read_text())["steps"]
    assert [(Path(s["candidate"]).name, s["verdict"]) for s in steps] == [("v4", "bad"), ("v2", "good"), ("v3", "bad")]
    assert "phone" in steps[0]["evidence"]  # the failing check, named
