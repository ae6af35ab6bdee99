"""Run a GitHub Actions workflow's jobs here, in podman, as a hosted runner would.

What a runner does for a job, and what this does instead:
- a fresh machine per job: a fresh container per job, privileged, on the host's
  network (as the runner's own). A job with `container:` gets that image (debian:12 is
  our locally made Debian 12 base: no registry is reachable here); a job that runs on
  the runner itself (`runs-on: ubuntu-24.04`) gets the project's image, the closest
  machine we have: Debian 12, not Ubuntu, with passwordless `sudo` (a shim: we are
  root) and Python, as the runner image has them;
- `actions/checkout`: a copy of this working tree (without ignored files) into the
  job's fresh workspace, mounted at /github/workspace;
- `run:` steps: each in order, with `bash --noprofile --norc -eo pipefail` as
  GitHub runs them, after `${{ }}` expressions are expanded; GITHUB_OUTPUT,
  GITHUB_STEP_SUMMARY, GITHUB_ENV and the other GITHUB_* variables as GitHub sets
  them; `if:` conditions (success(), always(), comparisons, && and ||); step outputs;
- artifacts: actions/upload-artifact copies into a store of directories, one per
  artifact; actions/download-artifact copies them back (by name or pattern; one
  folder per artifact under `path`, as v4+ does; `run-id` reads another run's store);
- `gh`: a shim that answers `gh run list` with the run id the test gives (a previous
  push run whose artifacts are in the store), or nothing.
Downloaded kernels, pip's wheels and apt's .debs are shared with this host's caches
(as actions/cache would keep them between runs), so a job does not fetch them again;
this host's way out (a TLS-intercepting proxy's CA for pip) is passed in as the
image build gets it.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .podman import BASE, run

WORKSPACE = "/github/workspace"
TEMP = "/github/runner_temp"
IMAGES = {"debian:12": BASE, "docker.io/library/debian:12": BASE}
SUDO_SHIM = '#!/bin/sh\n# the runner\'s passwordless sudo; we are root already\nwhile [ "${1#-}" != "$1" ]; do shift; done\nexec "$@"\n'
GH_SHIM = """#!/bin/sh
# gh, as far as the gate uses it: `gh run list ... --jq ...` prints the baseline run's id
case "$1 $2" in
  "run list") [ -n "$FAKE_GH_RUN_ID" ] && echo "$FAKE_GH_RUN_ID"; exit 0 ;;
esac
echo "gh shim: only 'gh run list' is known here" >&2; exit 1
"""


@dataclass
class StepResult:
    name: str
    outcome: str  # success | failure | skipped
    log: str = ""
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass
class JobResult:
    job: str
    steps: list[StepResult]
    workspace: Path
    summary: str
    skipped: bool = False  # its `if:` was false
    failed: bool = False  # a step failed that was not `continue-on-error`

    @property
    def ok(self) -> bool:
        return not self.skipped and not self.failed

    def step(self, name_or_id: str) -> StepResult:
        return next(s for s in self.steps if name_or_id in (s.name, s.outputs.get("__id__")))

    def log(self) -> str:
        return "\n".join(f"--- {s.name}: {s.outcome}\n{s.log[-6000:]}" for s in self.steps)


class Expressions:
    """`${{ }}` expressions, as far as workflows use them: contexts (matrix, env,
    github, steps, runner), string literals, ==, !=, !, &&, ||, and always(),
    success(), failure(). Values are strings ('' when missing), as GitHub's are."""

    TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<op>==|!=|&&|\|\||!|\(|\))|(?P<call>(?:always|success|failure|cancelled)\(\))|(?P<num>\d+)|(?P<name>[A-Za-z_][\w-]*(?:\.[\w-]+)*))")

    def __init__(self, contexts: dict[str, Any], failed: bool = False):
        self.contexts = contexts
        self.failed = failed

    def lookup(self, path: str) -> Any:
        value: Any = self.contexts
        for part in path.split("."):
            value = value.get(part, "") if isinstance(value, dict) else ""
        return value if value is not None else ""

    def evaluate(self, text: str) -> Any:
        tokens = []
        position = 0
        while position < len(text.rstrip()):
            match = self.TOKEN.match(text, position)
            if not match or match.end() == position:
                raise ValueError(f"expression not understood here: {text!r} at {position}")
            position = match.end()
            kind = match.lastgroup
            tokens.append((kind, match.group(kind)))
        self._tokens, self._at = tokens, 0
        value = self._or()
        if self._at != len(tokens):
            raise ValueError(f"expression not understood here: {text!r}")
        return value

    def _peek(self) -> tuple[str, str] | None:
        return self._tokens[self._at] if self._at < len(self._tokens) else None

    def _next(self) -> tuple[str, str]:
        token = self._tokens[self._at]
        self._at += 1
        return token

    def _chain(self, op: str, operand, combine) -> Any:
        value = operand()
        while self._peek() == ("op", op):
            self._next()
            value = combine(value, operand())
        return value

    def _or(self) -> Any:  # GitHub's ||, as Python's `or`: the first truthy operand
        return self._chain("||", self._and, lambda left, right: left or right)

    def _and(self) -> Any:  # GitHub's &&, as Python's `and`
        return self._chain("&&", self._compare, lambda left, right: left and right)

    def _compare(self) -> Any:
        value = self._unary()
        while self._peek() in (("op", "=="), ("op", "!=")):
            op = self._next()[1]
            right = self._unary()
            same = str(value).lower() == str(right).lower()  # GitHub compares strings case-insensitively
            value = same if op == "==" else not same
        return value

    def _unary(self) -> Any:
        if self._peek() == ("op", "!"):
            self._next()
            return not self._unary()
        kind, text = self._next()
        if kind == "op" and text == "(":
            value = self._or()
            self._next()
            return value
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return text
        if kind == "call":
            return {"always()": True, "success()": not self.failed, "failure()": self.failed, "cancelled()": False}[text]
        if kind == "name":
            if text in ("true", "false"):
                return text == "true"
            return self.lookup(text)
        raise ValueError(f"unexpected {text!r}")

    def expand(self, text: str) -> str:
        def value(match: re.Match) -> str:
            result = self.evaluate(match.group(1))
            return ("true" if result else "false") if isinstance(result, bool) else str(result)

        return re.sub(r"\$\{\{\s*(.+?)\s*\}\}", value, text)


class Runner:
    """One workflow run: its artifacts store, the event, the images to use."""

    def __init__(self, workflow: Path, checkout: Path, store: Path, *, project_image: str, podman: list[str], limits: list[str],
                 env: dict[str, str] | None = None, event: str = "push", base_ref: str = "", run_id: str = "1", mounts: dict[str, str] | None = None, host_env: dict[str, str] | None = None):
        self.document = yaml.safe_load(workflow.read_text())
        self.checkout = checkout
        self.store = store
        self.project_image = project_image
        self.podman = podman
        self.limits = limits
        self.env = {**{k: str(v) for k, v in (self.document.get("env") or {}).items()}, **(env or {})}
        self.event = event
        self.base_ref = base_ref
        self.run_id = run_id
        self.mounts = mounts or {}
        self.host_env = host_env or {}  # this host's way out (a proxy's CA): not the workflow's business

    def artifacts(self, run_id: str | None = None) -> Path:
        return self.store / (run_id or self.run_id)

    def run_job(self, name: str, matrix: dict[str, Any] | None = None, gh_run_id: str = "", timeout: float = 1800) -> JobResult:
        job = self.document["jobs"][name]
        condition = str(job.get("if", "success()")).removeprefix("${{").removesuffix("}}")
        if not Expressions({"github": {"event_name": self.event, "base_ref": self.base_ref}}).evaluate(condition):
            return JobResult(name, [], self.store, "", skipped=True)
        container = job.get("container")
        image = IMAGES.get(container["image"], container["image"]) if isinstance(container, dict) else self.project_image
        workdir = self.store.parent / f"job-{name}-{uuid.uuid4().hex[:6]}"
        workspace, temp = workdir / "workspace", workdir / "temp"
        workspace.mkdir(parents=True)
        temp.mkdir()
        (temp / "sudo").write_text(SUDO_SHIM)
        (temp / "gh").write_text(GH_SHIM)
        for shim in ("sudo", "gh"):
            os.chmod(temp / shim, 0o755)
        volumes = ["-v", f"{workspace}:{WORKSPACE}", "-v", f"{temp}:{TEMP}"]
        for host_path, guest_path in self.mounts.items():
            volumes += ["-v", f"{host_path}:{guest_path}"]
        name_tag = f"wgh-gha-{os.getpid()}-{name}-{uuid.uuid4().hex[:6]}"
        started = run([*self.podman, "run", "-d", "--rm", "--name", name_tag, "--privileged", "--network", "host", *self.limits,
                       *volumes, "-w", WORKSPACE, "--entrypoint", "sleep", image, "infinity"], 120)
        assert started.returncode == 0, started.stderr
        contexts: dict[str, Any] = {
            "matrix": {k: str(v) for k, v in (matrix or {}).items()},
            "env": dict(self.env),
            "github": {"event_name": self.event, "base_ref": self.base_ref, "ref_name": self.base_ref if self.event == "pull_request" else "main",
                       "repository": "wgharness/wgharness", "token": "not-a-token",
                       "run_id": self.run_id, "workspace": WORKSPACE, "job": name},
            "runner": {"os": "Linux", "temp": TEMP},
            "steps": {},
        }
        base_env = {
            "CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": WORKSPACE, "GITHUB_REPOSITORY": "wgharness/wgharness",
            "GITHUB_EVENT_NAME": self.event, "GITHUB_BASE_REF": self.base_ref, "GITHUB_RUN_ID": self.run_id, "GITHUB_JOB": name,
            "RUNNER_TEMP": TEMP, "RUNNER_OS": "Linux", "HOME": "/root", "FAKE_GH_RUN_ID": gh_run_id,
            "PATH": f"{TEMP}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", **self.host_env,
        }
        if isinstance(container, dict):  # a container job runs as root: no sudo, and no runner tools (gh)
            base_env["PATH"] = base_env["PATH"].split(":", 1)[1]
        results: list[StepResult] = []
        failed = False
        try:
            for index, step in enumerate(job["steps"]):
                expressions = Expressions(contexts, failed)
                label = expressions.expand(str(step.get("name") or step.get("uses") or step.get("run", "").splitlines()[0]))
                condition = str(step.get("if", "success()"))
                if not expressions.evaluate(condition.removeprefix("${{").removesuffix("}}")):
                    results.append(StepResult(label, "skipped"))
                    continue
                env = {**base_env, **contexts["env"], **{k: expressions.expand(str(v)) for k, v in (job.get("env") or {}).items()},
                       **{k: expressions.expand(str(v)) for k, v in (step.get("env") or {}).items()}}
                if "uses" in step:
                    result = self._action(step, expressions, workspace, label)
                else:
                    result = self._run_step(name_tag, index, expressions.expand(step["run"]), env, temp, label, timeout)
                    contexts["env"].update(result.outputs.pop("__env__", {}))
                if step.get("id"):
                    contexts["steps"][step["id"]] = {"outputs": result.outputs, "outcome": result.outcome}
                    result.outputs = {**result.outputs, "__id__": step["id"]}
                results.append(result)
                # continue-on-error: the step's outcome stays a failure, the job goes on
                failed = failed or (result.outcome == "failure" and str(step.get("continue-on-error", False)).lower() != "true")
        finally:
            run([*self.podman, "rm", "--force", "--time", "5", name_tag], 120)
        summary = "".join(p.read_text() for p in sorted(temp.glob("summary-*")))
        return JobResult(name, results, workspace, summary, failed=failed)

    def _run_step(self, container: str, index: int, script: str, env: dict[str, str], temp: Path, label: str, timeout: float) -> StepResult:
        for kind in ("output", "summary", "env"):
            (temp / f"{kind}-{index}").write_text("")
        (temp / f"step-{index}.sh").write_text(script)
        env = {**env, "GITHUB_OUTPUT": f"{TEMP}/output-{index}", "GITHUB_STEP_SUMMARY": f"{TEMP}/summary-{index}", "GITHUB_ENV": f"{TEMP}/env-{index}"}
        argv = [*self.podman, "exec", *[f"--env={k}={v}" for k, v in env.items()], container,
                "bash", "--noprofile", "--norc", "-eo", "pipefail", f"{TEMP}/step-{index}.sh"]
        try:
            done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
            outcome, log = ("success" if done.returncode == 0 else "failure"), done.stdout + f"\n(exit {done.returncode})"
        except subprocess.TimeoutExpired as exc:
            outcome, log = "failure", f"{exc.stdout or ''}\n(timed out after {timeout:g}s)"
        outputs = _key_values((temp / f"output-{index}").read_text())
        outputs["__env__"] = _key_values((temp / f"env-{index}").read_text())  # type: ignore[assignment]
        return StepResult(label, outcome, log, outputs)

    def _action(self, step: dict, expressions: Expressions, workspace: Path, label: str) -> StepResult:
        action = step["uses"].split("@")[0]
        given = {k: expressions.expand(str(v)) for k, v in (step.get("with") or {}).items()}
        try:
            if action == "actions/checkout":
                _copy_tree(self.checkout, workspace)
            elif action == "actions/upload-artifact":
                self._upload(given, workspace)
            elif action == "actions/download-artifact":
                self._download(given, workspace)
            else:
                raise AssertionError(f"{action} is not emulated here")
        except (OSError, ValueError) as exc:
            return StepResult(label, "failure", str(exc))
        return StepResult(label, "success")

    def _upload(self, given: dict[str, str], workspace: Path) -> None:
        target = self.artifacts() / given["name"]
        matched = [p for pattern in given["path"].split("\n") if pattern.strip() for p in sorted(workspace.glob(pattern.strip().rstrip("/")))]
        files = [p for p in matched if p.is_file()] + [f for p in matched if p.is_dir() for f in p.rglob("*") if f.is_file()]
        if not files:
            if given.get("if-no-files-found", "warn") == "error":
                raise ValueError(f"upload-artifact {given['name']}: no files found at {given['path']}")
            return
        if target.exists():
            raise ValueError(f"upload-artifact: an artifact named {given['name']} exists already in this run")
        for path in matched:
            if path.is_dir():
                shutil.copytree(path, target, dirs_exist_ok=True)
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target / path.name)

    def _download(self, given: dict[str, str], workspace: Path) -> None:
        store = self.artifacts(given.get("run-id"))
        names = sorted(p.name for p in store.iterdir()) if store.is_dir() else []
        if "name" in given:
            chosen, each_apart = [given["name"]], False
        else:
            chosen, each_apart = [n for n in names if fnmatch.fnmatchcase(n, given.get("pattern", "*"))], given.get("merge-multiple") != "true"
        missing = [n for n in chosen if n not in names]
        if missing:
            raise ValueError(f"download-artifact: no artifact {missing} in run {given.get('run-id') or self.run_id}")
        destination = workspace / given.get("path", ".")
        for artifact in chosen:
            shutil.copytree(store / artifact, destination / artifact if each_apart else destination, dirs_exist_ok=True)


def _key_values(text: str) -> dict[str, str]:
    """GITHUB_OUTPUT / GITHUB_ENV: `key=value` lines, and `key<<DELIM` … `DELIM` blocks."""
    values: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delimiter = line.split("<<", 1)
            block = []
            for inner in lines:
                if inner == delimiter:
                    break
                block.append(inner)
            values[key] = "\n".join(block)
        elif "=" in line:
            key, value = line.split("=", 1)
            values[key] = value
    return values


def _copy_tree(source: Path, target: Path) -> None:
    """The working tree as a checkout has it: tracked and new files, not ignored ones."""
    listed = subprocess.run(["git", "-C", str(source), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, (entry.decode() for entry in listed)):
        origin = source / name
        if origin.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target / name)
