"""Flaky verdicts across repeated runs of the same cases (benchmarks/soak.py).

A *verdict* is what a run concluded about one case: for a scenario, its status and
each step's outcome with the cause codes its diagnosis named; for a Python test,
passed / failed / error / skipped. A case is *flaky* when its verdict differs between
runs of the same command on the same machine. An inconclusive scenario (the machine was
overloaded: harness.pressure) reached no verdict, so it is counted apart and never
makes a case flaky: that is the point of it.

The soak document (`wgharness-soak`, version 1) keeps every run's verdicts, so that
`wgh report SOAK.json` can show the table again and a later session can compare.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.diagnosis.result import tagged_causes

SOAK_KIND = "wgharness-soak"
SOAK_VERSION = 1
INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Verdict:
    verdict: str  # "passed", or e.g. "failed: 3 fail [udp-blocked]"
    message: str = ""  # why, when it did not pass
    causes: tuple[str, ...] = ()


def scenario_verdicts(document: dict[str, Any]) -> dict[str, Verdict]:
    """Case id → verdict, from a results document (skipped cases left out: the host's
    capabilities decide them). With --repeat, a case's runs must all agree (else its
    verdict says so)."""
    found: dict[str, list[Verdict]] = {}
    for case in document.get("scenarios", []):
        if case.get("status") == "skipped":
            continue
        found.setdefault(case["id"], []).append(_scenario_verdict(case))
    return {case: runs[0] if len(set(runs)) == 1 else Verdict(" | ".join(sorted({r.verdict for r in runs})), runs[0].message) for case, runs in found.items()}


def _scenario_verdict(case: dict[str, Any]) -> Verdict:
    status = case["status"]
    if status == "passed":
        return Verdict("passed")
    if status == INCONCLUSIVE:
        steps = [s for s in case.get("steps", []) if s.get("outcome") == INCONCLUSIVE]
        return Verdict(INCONCLUSIVE, steps[0]["message"] if steps else "")
    bad = [s for s in case.get("steps", []) if s.get("outcome") not in ("pass", "expected-fail", INCONCLUSIVE)]
    causes = tuple(c for s in bad for c in tagged_causes(s.get("message", "")))
    parts = [f"{s['index'] + 1} {s['outcome']}" + (f" [{', '.join(tagged_causes(s.get('message', '')))}]" if tagged_causes(s.get("message", "")) else "") for s in bad]
    message = case.get("error") or "; ".join(f"step {s['index'] + 1} ({s['kind']}): {s.get('message', '')}" for s in bad)
    verdict = status + (": " + ", ".join(parts) if parts else "")
    if case.get("error"):
        verdict += ": " + case["error"].splitlines()[0][:80]
    return Verdict(verdict, message[:2000], causes)


def junit_verdicts(xml_text: str) -> dict[str, Verdict]:
    """Test id → verdict, from pytest's --junitxml report."""
    found: dict[str, Verdict] = {}
    for testcase in ElementTree.fromstring(xml_text).iter("testcase"):
        test_id = f"{testcase.get('classname', '')}::{testcase.get('name', '')}"
        verdict, message = "passed", ""
        for child in testcase:
            if child.tag in ("failure", "error"):
                verdict = "failed" if child.tag == "failure" else "error"
                message = (child.get("message") or child.text or "")[:2000]
                break
            if child.tag == "skipped":
                verdict = INCONCLUSIVE if "inconclusive (machine overloaded)" in (child.get("message") or "") else "skipped"
                message = (child.get("message") or "")[:2000]
        found[test_id] = Verdict(verdict, message, tagged_causes(message))
    return found


@dataclass
class Flaky:
    id: str
    verdicts: dict[str, int]  # verdict → in how many runs
    messages: list[str] = field(default_factory=list)  # one per differing verdict, not passed
    causes: list[str] = field(default_factory=list)


@dataclass
class SetSummary:
    runs: int
    cases: int  # distinct cases with a verdict in at least one run
    verdicts: int  # verdicts reached (inconclusive ones left out)
    inconclusive: int
    failures: int  # verdicts that are a failure or an error
    flaky: list[Flaky]


def summarize(runs: list[dict[str, Verdict]]) -> SetSummary:
    """Flaky cases across runs: a case whose (conclusive) verdict is not the same in
    every run it has one in. A case missing from a run (a crash, an interrupted run)
    counts as the verdict "absent"."""
    ids = sorted({case for run in runs for case in run})
    flaky, reached, inconclusive, failures = [], 0, 0, 0
    for case in ids:
        seen: dict[str, int] = {}
        examples: dict[str, Verdict] = {}
        for run in runs:
            verdict = run.get(case, Verdict("absent"))
            if verdict.verdict == INCONCLUSIVE:
                inconclusive += 1
                continue
            reached += 1
            failures += verdict.verdict.startswith(("failed", "error"))
            seen[verdict.verdict] = seen.get(verdict.verdict, 0) + 1
            examples.setdefault(verdict.verdict, verdict)
        if len(seen) > 1:
            others = [v for v in examples.values() if v.verdict not in ("passed", "skipped")]
            flaky.append(Flaky(case, seen, [v.message for v in others], sorted({c for v in others for c in v.causes})))
    return SetSummary(len(runs), len(ids), reached, inconclusive, failures, flaky)


def summary_json(summary: SetSummary) -> dict[str, Any]:
    return asdict(summary)


def verdicts_json(verdicts: dict[str, Verdict]) -> dict[str, dict[str, Any]]:
    return {case: {"verdict": v.verdict, **({"message": v.message} if v.message else {}), **({"causes": list(v.causes)} if v.causes else {})} for case, v in verdicts.items()}


def verdicts_from_json(data: dict[str, dict[str, Any]]) -> dict[str, Verdict]:
    return {case: Verdict(v["verdict"], v.get("message", ""), tuple(v.get("causes", ()))) for case, v in data.items()}


def is_soak_document(data: Any) -> bool:
    return isinstance(data, dict) and data.get("kind") == SOAK_KIND
