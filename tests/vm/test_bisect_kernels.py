"""`wgh bisect` over every Debian kernel this host's archive offers (6.1.0-47 …
6.12.118: 19 at the time of writing, 13 when the issue was filed), each booted in
turn under virtme-ng, finds a planted regression in at most ⌈log₂ n⌉ + 1 boots.

The regression is planted: each guest runs tests/vm/planted_regression.py, whose
check depends on the kernel's version (it fails from 6.1.0-53 on, by the archive's
release order) and which also needs kernel WireGuard of every kernel it boots. The
kernels are fetched from the archive as they are needed (checked against its
SHA256) and cached, so a bisection downloads only the kernels it boots."""

from __future__ import annotations

import functools
import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from planted_regression import PLANTED_FIRST_BAD  # noqa: E402

pytestmark = [pytest.mark.requires("root", "vm"), pytest.mark.timeout(3000)]  # up to 6 boots under emulation
RANGE = "6.1.0-47..6.12.118"


def test_bisect_finds_the_planted_kernel_regression(wgh_cli, tmp_path):
    from harness.kernels.resolve import expand, offer

    candidates = expand(RANGE, functools.cache(offer))
    if len(candidates) < 3 or PLANTED_FIRST_BAD not in candidates:
        pytest.skip(f"this archive offers {len(candidates)} kernels in {RANGE} ({', '.join(candidates)}): the planted one is not among them")
    done = wgh_cli(
        "bisect", "--kernels", RANGE, "--cpus", "1", "--memory", "1G", "--timeout", "600", "--results-dir", str(tmp_path),
        "--", "pytest", "-q", "tests/vm/planted_regression.py", timeout=2900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (summary,) = tmp_path.glob("*-bisect.json")
    result = json.loads(summary.read_text())
    assert result["first_bad"] == PLANTED_FIRST_BAD and result["undecided"] == []
    assert result["last_good"] == candidates[candidates.index(PLANTED_FIRST_BAD) - 1]
    assert result["boots"] <= math.ceil(math.log2(len(candidates))) + 1, result["steps"]
    assert [s["verdict"] for s in result["steps"]][0] == "bad"  # the bad end first
    for step in result["steps"]:
        expected = "bad" if candidates.index(step["candidate"]) >= candidates.index(PLANTED_FIRST_BAD) else "good"
        assert step["verdict"] == expected, step
    print(f"wgh bisect: {len(candidates)} kernels, {result['boots']} boots:\n{done.stdout}")
