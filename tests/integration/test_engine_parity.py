"""Every engine means the same, and so does every way of starting WireGuard: the
scenario library on the Mininet engine, and through the userspace backend's command
template, gives the verdicts and diagnosis codes it gives on the netns engine with the
built-in backend, case by case, skips included (an engine-specific limit must be
declared as a skip with its reason, never be silently different), and round-trip times
that a configured delay sets agree within a stated tolerance. On the host with
wireguard-go; in the VM (pytest --vm-kernel) with kernel WireGuard and netem, for the
cases only a VM can run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.engines import DEFAULT, ENGINES
from harness.results.verdicts import differences, verdicts

from .simhosts import SSHD_HOW_TO, simulated_hosts, sshd_available

pytestmark = pytest.mark.requires("root", "wireguard")

REPO = Path(__file__).resolve().parents[2]
IN_VM = bool(os.environ.get("WGH_IN_VM"))
# in the emulated VM (10-50x slower, the test sharing two CPUs with the other
# workers) what the host cannot show: netem (lossy-link), kernel WireGuard with
# wireguard-go in one network (interop), and NAT with DNS (dns-endpoint); the host
# runs the whole library
FILES = ["scenarios/lossy-link.yaml", "scenarios/interop.yaml", "scenarios/dns-endpoint.yaml"] if IN_VM else ["scenarios/"]
USERSPACE_TEMPLATE = "wireguard-go -f {ifname}"


# RTTs that a configured delay sets (netem: in the VM) must agree between engines within
# the larger of these two bounds; unshaped RTTs are the machine's noise, not compared
RTT_TOLERANCE = (0.2, 5.0)  # relative to the reference, absolute in ms


def _library(wgh_cli, *options: str) -> dict:
    # this test shares the CPUs with the other pytest workers: a few cases at a time, not
    # -j auto's 8 on two cores (the IPv6 losses first blamed on that load were tentative
    # addresses, fixed by IFA_F_NODAD; the load itself still stretches every timer)
    done = wgh_cli("run", "--no-results", "--json", "-j", "2" if IN_VM else "4", *options, *FILES, timeout=1800)
    assert done.returncode == 0, f"{' '.join(options)}: exit {done.returncode}\n{_failures(done.stdout)}\n{done.stderr[-4000:]}"
    return json.loads(done.stdout)


def _failures(stdout: str) -> str:
    """The cases that did not pass, with their failed steps' messages (the diagnosis):
    what a failure of this test must name, before the progress lines of stderr."""
    try:
        document = json.loads(stdout)
    except ValueError:
        return "(no results document on stdout)"
    lines = []
    for case in document.get("scenarios", []):
        if case.get("status") not in ("passed", "skipped"):
            lines.append(f"{case.get('key')}: {case.get('status')} {case.get('error') or ''}".rstrip())
            lines += [f"  step {step.get('index', 0) + 1}: {step.get('outcome')}: {step.get('message', '')}"
                      for step in case.get("steps", []) if step.get("outcome") not in ("pass", "expected-fail")]
    return "\n".join(lines) or "(every case passed or was skipped)"


def _delayed_cases() -> set[str]:
    """The cases whose links have a configured delay (in either direction)."""
    from harness.scenario.load import load_cases

    paths = [REPO / f for f in FILES]
    cases = load_cases([p for path in paths for p in (sorted(path.glob("*.yaml")) if path.is_dir() else [path])])
    return {c.id for c in cases if any(link.delay or any(t.delay for t in link.towards.values()) for link in c.spec.links)}


def _shaped_rtts(document: dict, delayed: set[str]) -> dict[tuple[str, int, str], float]:
    """(case, step, measurement) → average and minimum RTT in ms (not the maximum: one
    outlier), for the cases whose links have a configured delay."""
    return {
        (case["id"], step["index"], name): m["value"]
        for case in document["scenarios"]
        if case["id"] in delayed
        for step in case["steps"]
        for name, m in step["measurements"].items()
        if name.endswith(("rtt_avg", "rtt_min")) and m["value"] is not None
    }


def _rtt_disagreements(reference: dict, other: dict, delayed: set[str]) -> dict[tuple[str, int, str], tuple[float, float | None]]:
    one, two = _shaped_rtts(reference, delayed), _shaped_rtts(other, delayed)
    relative, absolute = RTT_TOLERANCE
    return {key: (one[key], two.get(key)) for key in one if key not in two or abs(one[key] - two[key]) > max(relative * one[key], absolute)}


# alone: the library's own rate and timing cases run alone inside its `wgh run -j`, which
# means nothing if other tests share the machine (CI18: throughput's UDP loss 4.4% > 1%
# next to three other pytest workers)
@pytest.mark.alone
def test_the_library_gives_the_same_verdicts_on_every_engine_and_through_the_userspace_template(wgh_cli, wgh_backend):
    """One test, so that the reference runs once (under pytest -n a module-scoped
    fixture would run once per worker)."""
    missing = [f for f in FILES if not (REPO / f).exists()]
    assert not missing, f"parity files renamed or gone: {missing}"
    reference_document = _library(wgh_cli, "--engine", DEFAULT, "--backend", wgh_backend)
    reference = verdicts(reference_document)
    ran = [case for case, (status, _) in reference.items() if status != "skipped"]
    assert len(ran) >= (4 if IN_VM else 30), f"too few cases ran to compare: {ran}"
    assert any(cause for status, steps in reference.values() for _, cause in steps), "some case failed for a named cause"
    ways = {f"engine {engine}": ("--engine", engine, "--backend", wgh_backend) for engine in ENGINES if engine != DEFAULT}
    if not IN_VM and wgh_backend in ("auto", "wireguard-go"):
        # wireguard-go started from a template like any UAPI implementation: the built-in backend's verdicts
        ways["userspace template"] = ("--engine", DEFAULT, "--backend", "userspace", "--userspace", USERSPACE_TEMPLATE)
    documents = {way: _library(wgh_cli, *options) for way, options in ways.items()}
    differ = {way: differences(reference, verdicts(document)) for way, document in documents.items()}
    assert differ == {way: {} for way in ways}
    # and measured alike where a configured delay sets the RTT (netem: in the VM)
    delayed = _delayed_cases()
    rtts = {way: _rtt_disagreements(reference_document, document, delayed) for way, document in documents.items()}
    assert rtts == {way: {} for way in ways}, f"RTTs under a configured delay differ by more than {RTT_TOLERANCE}: {rtts}"
    if IN_VM:
        assert _shaped_rtts(reference_document, delayed), "lossy-link's shaped RTT was measured"
        return
    # and spread over three hosts (simulated: namespaces reached over SSH, links between
    # them over VXLAN), placed automatically; last, as it needs sshd (the host only: the
    # workers, SSH and placement are the same on any kernel)
    if not sshd_available():
        pytest.skip(f"the engines and the template agree; the hosts axis needs sshd: {SSHD_HOW_TO}")
    with simulated_hosts(["alpha", "beta", "gamma"]) as inventory:
        spread = _library(wgh_cli, "--engine", DEFAULT, "--backend", wgh_backend, "--hosts", inventory.file)
    assert differences(reference, verdicts(spread)) == {}
    assert _rtt_disagreements(reference_document, spread, delayed) == {}
    placed = [case["id"] for case in spread["scenarios"] if case["status"] != "skipped" and len(case.get("placement") or {}) > 1]
    assert placed, "the cases were spread over several hosts (results.json's `placement`)"
