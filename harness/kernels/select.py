"""Kernel expressions → the archive's kernels they name (pure).

An expression is a comma-separated list of terms; each term is
- a version: '6.1' (the newest 6.1), '6.1.0-53', '6.12.115', or a whole release,
- `latest`: the newest kernel of all,
- `all`: every kernel on offer, oldest first,
- a range `A..B`: every kernel from the oldest A to the newest B, both included
  ('6.1.0-47..6.1.0-57', '6.1..6.12', '6.12.107..latest').
Terms that are not of these forms (paths, 'host') are the caller's to handle.
"""

from __future__ import annotations

from harness.errors import HarnessError
from harness.kernels.names import SPEC_RE, ArchiveKernel, matches


class KernelSpecError(HarnessError, ValueError):
    """The spec names no kernel we can find or fetch; the message says what to do."""


def is_archive_term(term: str) -> bool:
    return term in ("all", "latest") or ".." in term or bool(SPEC_RE.match(term))


def _offered(kernels: list[ArchiveKernel]) -> str:
    if not kernels:
        return "none: run `apt-get update`, or give a path to a kernel image, a .deb or a kernel build tree"
    releases = [k.release for k in kernels]
    shown = releases if len(releases) <= 8 else releases[:3] + ["…"] + releases[-4:]
    return f"{len(releases)}: {', '.join(shown)}"


def _matching(spec: str, kernels: list[ArchiveKernel]) -> list[ArchiveKernel]:
    if spec == "latest":
        return kernels[-1:]
    if not SPEC_RE.match(spec):
        raise KernelSpecError(f"kernel spec {spec!r} is not a version like '6.1', '6.1.0-53' or '6.12.115', nor 'latest'")
    return [k for k in kernels if matches(spec, k.release)]


def select_one(spec: str, kernels: list[ArchiveKernel]) -> ArchiveKernel:
    """The newest kernel a version spec (or 'latest') names."""
    found = _matching(spec, kernels)
    if not found:
        raise KernelSpecError(f"no kernel in the archive matches {spec!r} (on offer, {_offered(kernels)})")
    return found[-1]


def select_range(term: str, kernels: list[ArchiveKernel]) -> list[ArchiveKernel]:
    low_spec, _, high_spec = term.partition("..")
    if not low_spec or not high_spec or ".." in high_spec:
        raise KernelSpecError(f"kernel range {term!r} is not of the form A..B, e.g. 6.1.0-47..6.1.0-57")
    lows, highs = _matching(low_spec, kernels), _matching(high_spec, kernels)
    for spec, found in ((low_spec, lows), (high_spec, highs)):
        if not found:
            raise KernelSpecError(f"kernel range {term!r}: no kernel in the archive matches {spec!r} (on offer, {_offered(kernels)})")
    low, high = lows[0].key, highs[-1].key
    if low > high:
        raise KernelSpecError(f"kernel range {term!r} is empty: {lows[0].release} is newer than {highs[-1].release}")
    return [k for k in kernels if low <= k.key <= high]


def select(term: str, kernels: list[ArchiveKernel]) -> list[ArchiveKernel]:
    """The kernels one term names, oldest first."""
    if term == "all":
        if not kernels:
            raise KernelSpecError(f"'all': no kernel on offer ({_offered(kernels)})")
        return list(kernels)
    if ".." in term:
        return select_range(term, kernels)
    return [select_one(term, kernels)]


def split_terms(expression: str) -> list[str]:
    return [term.strip() for term in expression.split(",") if term.strip()]
