"""`wgh bisect`: the first bad kernel, or config version, between a good and a bad one.

The candidates are ordered: kernels as the archive orders its releases (`A..B`, see
harness.kernels), config versions as given. The first is taken to be good (the
user's known-good; `--check-good` boots it too) and the last is tried first: if it is
not bad, there is nothing to find and bisect says so. Then every step tries the
candidate half-way between the newest good and the oldest bad one, so n candidates
take 1 + ⌈log₂(n − 1)⌉ steps (13 kernels: 5). A candidate that cannot be judged (its
cases skipped, the guest timed out, too few samples) is skipped, git-bisect style:
the next try is its nearest untried neighbour, and if only skipped candidates are
left between good and bad, the answer is that range.

Each step is judged by a `Judge`:
- verdicts: bad when a case failed (or the command exited non-zero), good when every
  case passed;
- a metric (`--metric`): the good end's runs are the baseline (one more step, at the
  start), and a step is bad when `wgh compare`'s statistics call the metric a
  regression against them (same threshold, alpha and repeats).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

GOOD, BAD, SKIP = "good", "bad", "skip"


@dataclass
class Trial:
    """What one step's run left: its exit code and its results document, if any."""

    exit_code: int | None
    results: dict[str, Any] | None = None
    error: str = ""
    seconds: float = 0.0


@dataclass
class Step:
    number: int
    index: int  # the candidate's position
    candidate: str
    verdict: str
    evidence: str
    release: str | None = None
    seconds: float = 0.0


@dataclass
class Bisection:
    candidates: list[str]
    steps: list[Step] = field(default_factory=list)
    first_bad: str | None = None
    last_good: str | None = None
    undecided: list[str] = field(default_factory=list)  # skipped candidates the first bad may be among
    note: str = ""

    @property
    def found(self) -> bool:
        return self.first_bad is not None and not self.undecided

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "boots": len(self.steps)}


class Judge(Protocol):
    def __call__(self, trial: Trial) -> tuple[str, str]: ...


def judge_verdicts(trial: Trial) -> tuple[str, str]:
    """Bad when a case failed or errored, good when every case passed; skip when no case
    ran (all skipped: the kernel lacks what they need) or the run did not finish."""
    if trial.error:
        return SKIP, trial.error
    if trial.results is None:
        # a command without results (a pytest selection): its exit code is the verdict
        # (pytest: 1 tests failed; 5 none collected, 2-4 usage or internal errors)
        if trial.exit_code == 0:
            return GOOD, "exit 0"
        if trial.exit_code == 1:
            return BAD, "exit 1: tests failed"
        return SKIP, f"exit {trial.exit_code}: could not be judged"
    counts: dict[str, int] = {}
    failing: list[str] = []
    for scenario in trial.results.get("scenarios", []):
        counts[scenario["status"]] = counts.get(scenario["status"], 0) + 1
        if scenario["status"] in ("failed", "error"):
            failing.append(f"{scenario['id']}: {_first_failure(scenario)}")
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    if failing:
        return BAD, f"{summary}; " + "; ".join(dict.fromkeys(failing))
    if counts.get("passed"):
        return GOOD, summary
    return SKIP, f"no case ran to a verdict ({summary or 'none'})"


def _first_failure(scenario: dict[str, Any]) -> str:
    for step in scenario.get("steps", []):
        if step.get("outcome") == "fail":
            return f"step {step['index'] + 1} ({step.get('kind')}): {step.get('message', '')}"
    return scenario.get("error") or scenario["status"]


@dataclass
class MetricJudge:
    """A step is bad when `metric` regressed against the baseline's runs, as `wgh
    compare` judges it (one metric: no family to adjust for)."""

    metric: str  # a metric key, or "scenario :: metric"
    threshold: float = 0.05
    alpha: float = 0.01
    min_samples: int = 3
    baseline: dict[str, Any] | None = None

    def matches(self, scenario: str, metric: str) -> bool:
        if " :: " in self.metric:
            return f"{scenario} :: {metric}" == self.metric
        return metric == self.metric

    def __call__(self, trial: Trial) -> tuple[str, str]:
        from harness.results.compare import Side, collect, compare_sides
        from harness.results.load import ResultSet

        if trial.error or trial.results is None:
            return SKIP, trial.error or f"exit {trial.exit_code}: no results"
        if self.baseline is None:
            raise RuntimeError("the metric judge needs the good end's results first")

        def side(document: dict[str, Any]) -> Side:
            series, statuses = collect(ResultSet("", Path("."), document))
            return {key: s for key, s in series.items() if self.matches(*key)}, statuses

        base, new = side(self.baseline), side(trial.results)
        if not new[0]:
            verdict, evidence = judge_verdicts(trial)
            return (BAD, f"no {self.metric} measured: {evidence}") if verdict == BAD else (SKIP, f"no {self.metric} measured ({evidence})")
        report = compare_sides([("", base, new)], threshold=self.threshold, alpha=self.alpha, family="none", min_samples=self.min_samples)
        rows = [r for r in report.rows if r.new]
        worst = next((r for r in rows if r.verdict == "regression"), rows[0])
        described = (
            f"{worst.scenario} :: {worst.metric} {_number(worst.new_median)} against {_number(worst.base_median)} "
            f"({'-' if worst.change is None else format(worst.change, '+.1%')}, p={'-' if worst.p_value is None else format(worst.p_value, '.2g')}, "
            f"n={len(worst.new)} vs {len(worst.base)}): {worst.verdict}"
        )
        if worst.verdict == "regression":
            return BAD, described
        if worst.verdict in ("insufficient samples", "missing"):
            return SKIP, described
        return GOOD, described


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def max_steps(candidates: int, *, with_good_end: bool = False) -> int:
    """The most steps bisect takes: the bad end, then ⌈log₂(n − 1)⌉ halvings (no skips),
    and the good end too when it is run (--check-good, a metric's baseline)."""
    return 1 + (candidates - 2).bit_length() + (1 if with_good_end else 0)


def bisect(
    candidates: list[str],
    try_candidate: Callable[[str], Trial],
    judge: Judge,
    *,
    check_good: bool = False,
    log: Callable[[str], None] = lambda text: None,
) -> Bisection:
    """Find the first bad candidate. `try_candidate` runs one (boots its kernel, runs
    its config version) and returns what the run left; `judge` calls it good, bad or
    skip. With `check_good`, or a MetricJudge (whose baseline it is), the first
    candidate is run too."""
    if len(candidates) < 2:
        raise ValueError(f"bisect needs at least 2 candidates, a good and a bad one ({len(candidates)} given)")
    result = Bisection(list(candidates))

    def attempt(index: int) -> tuple[str, Trial]:
        candidate = candidates[index]
        log(f"wgh bisect: step {len(result.steps) + 1}: {candidate} ({_position(index, candidates)})")
        started = time.monotonic()
        trial = try_candidate(candidate)
        trial.seconds = trial.seconds or time.monotonic() - started
        verdict, evidence = judge(trial)
        release = ((trial.results or {}).get("environment") or {}).get("kernel_release")
        result.steps.append(Step(len(result.steps) + 1, index, candidate, verdict, evidence, release, round(trial.seconds, 1)))
        log(f"wgh bisect: {candidate} is {verdict}: {evidence}")
        return verdict, trial

    good, bad = 0, len(candidates) - 1
    metric = isinstance(judge, MetricJudge)
    if check_good or metric:
        if metric:
            first = try_candidate(candidates[0])
            verdict, evidence = (GOOD, "the baseline") if first.results else (SKIP, first.error or f"exit {first.exit_code}: no results")
            judge.baseline = first.results
            result.steps.append(Step(1, 0, candidates[0], verdict, evidence, ((first.results or {}).get("environment") or {}).get("kernel_release"), round(first.seconds, 1)))
            log(f"wgh bisect: {candidates[0]} (the good end) is the baseline: {evidence}")
        else:
            verdict, _ = attempt(0)
        if verdict != GOOD:
            result.note = f"the good end, {candidates[0]}, is {verdict} (not good): nothing to bisect between it and {candidates[-1]}"
            return result
    verdict, _ = attempt(bad)
    if verdict != BAD:
        result.note = f"the bad end, {candidates[-1]}, is {verdict} (not bad): no regression to find up to it"
        return result
    skipped: set[int] = set()
    while bad - good > 1:
        untried = [i for i in range(good + 1, bad) if i not in skipped]
        if not untried:
            break
        middle = (good + bad) / 2
        index = min(untried, key=lambda i: (abs(i - middle), i))
        verdict, _ = attempt(index)
        if verdict == GOOD:
            good = index
        elif verdict == BAD:
            bad = index
        else:
            skipped.add(index)
    result.last_good, result.first_bad = candidates[good], candidates[bad]
    result.undecided = [candidates[i] for i in range(good + 1, bad)]
    if result.undecided:
        result.note = f"the first bad one is {' or '.join([*result.undecided, candidates[bad]])}: {', '.join(result.undecided)} could not be judged"
    else:
        result.note = f"first bad: {candidates[bad]} (last good: {candidates[good]}), after {len(result.steps)} step{'s' if len(result.steps) != 1 else ''}"
    return result


def _position(index: int, candidates: list[str]) -> str:
    return f"{index + 1} of {len(candidates)}"


def format_bisection(result: Bisection) -> str:
    """Each step's evidence, then the answer."""
    lines = []
    for step in result.steps:
        release = f" [{step.release}]" if step.release and step.release != step.candidate else ""
        lines.append(f"step {step.number}: {step.candidate}{release} ({step.index + 1}/{len(result.candidates)}, {step.seconds:g}s): {step.verdict.upper()}: {step.evidence}")
    lines.append(f"wgh bisect: {result.note}")
    return "\n".join(lines)


def write_summary(result: Bisection, path: Path) -> None:
    path.write_text(json.dumps(result.to_json(), indent=2) + "\n")
