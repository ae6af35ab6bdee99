"""Network conditions on one direction of a link: netem (delay, jitter, loss, ...)
and a token bucket (rate, queue), applied as the egress qdisc of the sending veth end.

Division of labour: `tc_commands` plans (pure, unit-tested without root); `apply`
runs the plan inside the node's namespace with one `tc -batch` and then reads the
qdiscs back, because tc and its callers are known to fail silently or half-way.

Why `tc` and not pyroute2: pyroute2's netem encoder lacks jitter distributions,
Gilbert-Elliott loss, slot and ecn, so part of the model could not be expressed; tc
is the reference encoder for every netem option, and its `-j` output is the
read-back. One `tc -batch` process per direction of a link.

The tree on a direction's egress:

    netem only:      root 1: netem
    rate only:       root 1: tbf
    netem and rate:  root 1: netem  →  1:1 (netem's only class)  2: tbf
    queue only:      root 1: pfifo limit <queue>

netem delays (and drops, duplicates, ...) first; the packets it releases queue in the
token bucket, which is the bottleneck's queue. netem shapes egress only: each
direction of a link is configured on its own sending end, and `delay` is one-way.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.errors import BuildError, MissingCapability
from harness.plan.types import Conditions

if TYPE_CHECKING:
    from harness.net.nsexec import InNamespace

# A token bucket must hold at least a timer tick's worth of bytes (HZ=250 on Debian:
# 4 ms), or it cannot reach its rate; it also loses whatever tokens arrive while its
# dequeue runs later than the bucket can bank. 10 ms (the tc-tbf man page's HZ=100
# rule) rides out the scheduling delays of loaded CI runners and emulated VMs:
# through WireGuard in a TCG VM on a busy host, 20 Mbit/s (18.3 Mbit/s of TCP
# goodput expected) carried 15.6-17.2 Mbit/s with a 4 ms bucket, 17.5-17.9 with
# 10 ms. The price: at most 10 ms worth at line rate after an idle spell.
BURST_SECONDS = 0.010
DEFAULT_QUEUE_SECONDS = 0.05  # tbf queue without `queue:`: 50 ms at the link's rate
MIN_QUEUE_PACKETS = 4  # ... but never fewer packets than this
NETEM_DEFAULT_LIMIT = 1000  # netem's own default queue limit (packets)
VM_HINT = "wgh vm --kernel 6.1"

# How a kernel (or tc) without a qdisc module answers, depending on versions: the
# kernel's extack, the bare errno (older kernels: ENOENT), tc's own userspace lookup.
_UNKNOWN_QDISC = (
    "specified qdisc kind is unknown",
    "specified qdisc not found",
    "no such file or directory",
    "unknown qdisc",
)
_BATCH_FAILED = re.compile(r"Command failed -:(\d+)")


# --- planning (pure) ----------------------------------------------------------------


def tc_commands(ifname: str, conditions: Conditions | None, mtu: int = 1500) -> list[list[str]]:
    """The tc argv lists (without the leading 'tc') that give `ifname` exactly these
    egress conditions; None or empty conditions clear them.

    The first two commands reset the device whatever it had: `replace root pfifo`
    succeeds whether or not a root qdisc exists (and grafts over any kind), and the
    `del` that follows always has something to delete, so the device is back at its
    default (noqueue for a veth). Everything after is an `add`, never a `replace`:
    replacing a qdisc of another kind fails ("Invalid qdisc name"), and replacing one
    of the same kind keeps the old options the new command does not mention.
    """
    dev = ["dev", ifname]
    commands = [["qdisc", "replace", *dev, "root", "pfifo"], ["qdisc", "del", *dev, "root"]]
    if conditions is None or conditions.empty:
        return commands
    netem = netem_args(conditions, mtu)
    tbf = tbf_args(conditions, mtu)
    if netem is not None:
        commands.append(["qdisc", "add", *dev, "root", "handle", "1:", "netem", *netem])
        if tbf is not None:
            commands.append(["qdisc", "add", *dev, "parent", "1:1", "handle", "2:", "tbf", *tbf])
    elif tbf is not None:
        commands.append(["qdisc", "add", *dev, "root", "handle", "1:", "tbf", *tbf])
    elif conditions.queue:
        # a queue limit and nothing else: a plain FIFO of that many packets
        commands.append(["qdisc", "add", *dev, "root", "handle", "1:", "pfifo", "limit", str(conditions.queue)])
    return commands


def netem_args(c: Conditions, mtu: int = 1500) -> list[str] | None:
    """netem's options for these conditions, or None when netem is not needed.

    Zero and unset values are left out (some netem versions reject `loss 0%`), units
    are always written, and settings that cannot have an effect are dropped rather
    than sent: a delay correlation without jitter (it correlates the jitter), a loss
    correlation without loss, the `uniform` distribution (netem's jitter is uniform
    without a table, and tc has no uniform.dist).
    """
    args: list[str] = []
    limit = _netem_limit(c, mtu)
    if limit is not None:
        args += ["limit", str(limit)]
    if _positive(c.delay):
        args += ["delay", _time(c.delay)]
        if _positive(c.jitter):
            args.append(_time(c.jitter))
            if _positive(c.delay_correlation):
                args.append(_percent(c.delay_correlation))
            if c.distribution and c.distribution != "uniform":
                args += ["distribution", c.distribution]
    ge = c.gilbert_elliott
    if ge is not None and (_positive(ge.bad_loss) or _positive(ge.good_loss)):
        # tc's order is p r 1-h 1-k (1-h: loss in the bad state, 1-k: in the good one);
        # positional, so only a trailing zero 1-k (tc's default) can be left out
        args += ["loss", "gemodel", _percent(ge.p), _percent(ge.r), _percent(ge.bad_loss)]
        if _positive(ge.good_loss):
            args.append(_percent(ge.good_loss))
    elif _positive(c.loss):
        args += ["loss", _percent(c.loss)]
        if _positive(c.loss_correlation):
            args.append(_percent(c.loss_correlation))
    if _positive(c.reorder) and _positive(c.delay):
        args += ["reorder", _percent(c.reorder)]
    if _positive(c.duplicate):
        args += ["duplicate", _percent(c.duplicate)]
    if _positive(c.corrupt):
        args += ["corrupt", _percent(c.corrupt)]
    if not args or args[0] == "limit" and len(args) == 2:
        return None  # nothing for netem to do (a queue alone belongs to the token bucket)
    return args


def tbf_args(c: Conditions, mtu: int = 1500) -> list[str] | None:
    """Token bucket options for `rate`, or None without a rate.

    burst: at least two full packets (a packet larger than the bucket never passes)
    and 10 ms at the rate (see BURST_SECONDS). limit (the queue, in bytes): `queue`
    packets of MTU size, or 50 ms at the rate (at least a few packets).
    """
    if not _positive(c.rate):
        return None
    burst = max(math.ceil(c.rate / 8 * BURST_SECONDS), 2 * mtu)
    return ["rate", f"{round(c.rate)}bit", "burst", f"{burst}b", "limit", f"{tbf_limit_bytes(c, mtu)}b"]


def tbf_limit_bytes(c: Conditions, mtu: int = 1500) -> int:
    if c.queue:
        return c.queue * mtu
    return max(math.ceil(c.rate / 8 * DEFAULT_QUEUE_SECONDS), MIN_QUEUE_PACKETS * mtu)


def _netem_limit(c: Conditions, mtu: int) -> int | None:
    """netem's queue limit in packets.

    Without a rate, netem's queue is the link's queue: `queue` packets. With a rate,
    the token bucket is the bottleneck queue, and netem's count includes the packets
    it holds for their delay *and* those waiting in its child: it must hold both, or
    netem would drop before the bucket fills and the queue would not be `queue`.
    """
    if not _positive(c.rate):
        return c.queue
    in_flight = math.ceil(c.rate / 8 * ((c.delay or 0) + (c.jitter or 0)) / mtu)
    queued = math.ceil(tbf_limit_bytes(c, mtu) / mtu)
    needed = 2 * in_flight + queued
    return needed if needed > NETEM_DEFAULT_LIMIT else None


def _positive(value: float | None) -> bool:
    return value is not None and value > 0


def _number(value: float) -> str:
    """Fixed point, no exponent, no trailing zeros: 0.1 → '0.1', 25.0 → '25'."""
    return f"{value:.9f}".rstrip("0").rstrip(".")


def _time(seconds: float) -> str:
    """Seconds → tc time with a unit: 0.02 → '20ms', 0.0125 → '12500us' (tc has no ns)."""
    micro = round(seconds * 1e6, 3)
    if micro == int(micro) and int(micro) % 1000 == 0:
        return f"{int(micro) // 1000}ms"
    return f"{_number(micro)}us"


def _percent(value: float) -> str:
    return f"{_number(value)}%"


# --- applying ---------------------------------------------------------------------


def apply(node: "InNamespace | None", ifname: str, conditions: Conditions | None, mtu: int = 1500) -> None:
    """Replace the egress conditions of `ifname` inside `node` (None: clear them),
    then read them back: raises MissingCapability when the kernel lacks a qdisc,
    BuildError when tc refuses or the qdiscs read back are not the planned ones."""
    if node is None or not node.netns_path:
        raise ValueError("impairments are applied inside a harness namespace, never the host's own")
    commands = tc_commands(ifname, conditions, mtu)
    result = _tc(node, ["-batch", "-"], input="".join(" ".join(c) + "\n" for c in commands))
    if result.returncode != 0:
        raise classify_failure(result.stderr, commands, ifname)
    qdiscs = read_back(node, ifname)
    problem = check_read_back(qdiscs, conditions, mtu)
    if problem:
        raise BuildError(f"tc accepted the conditions for {ifname} but {problem}; tc -j qdisc show: {json.dumps(qdiscs)}")


def read_back(node: "InNamespace | None", ifname: str) -> list[dict[str, Any]]:
    """The qdiscs of `ifname` in `node` as `tc -j qdisc show` reports them (for checks and diagnostics)."""
    if node is None or not node.netns_path:
        raise ValueError("impairments are read inside a harness namespace, never the host's own")
    result = _tc(node, ["-j", "qdisc", "show", "dev", ifname])
    if result.returncode != 0:
        raise BuildError(f"tc qdisc show dev {ifname} failed: {result.stderr.strip()}")
    try:
        return json.loads(result.stdout or "[]")
    except json.JSONDecodeError as exc:
        raise BuildError(f"tc -j qdisc show dev {ifname} printed no JSON ({exc}): {result.stdout[:200]!r}") from None


def _tc(node: "InNamespace", args: list[str], input: str | None = None) -> subprocess.CompletedProcess:
    try:
        return node.run(["tc", *args], input=input)
    except FileNotFoundError:
        raise MissingCapability("tc is not installed: apt-get install iproute2") from None


def is_unknown_qdisc(stderr: str) -> bool:
    """Does tc's error say the qdisc kind does not exist here (module missing)?
    tc's own 'No distribution data for ... No such file or directory' does not count."""
    text = stderr.lower()
    if "distribution data" in text:
        return False
    return any(pattern in text for pattern in _UNKNOWN_QDISC)


def classify_failure(stderr: str, commands: list[list[str]], ifname: str) -> Exception:
    """The exception for a failed `tc -batch` of `commands`: MissingCapability when
    the kernel lacks the qdisc the failing command needs, BuildError otherwise."""
    failed = _failed_command(stderr, commands)
    kind = next((k for k in ("netem", "tbf") if k in failed), None) if failed else None
    text = stderr.strip()
    if is_unknown_qdisc(text):
        if kind == "tbf":
            return MissingCapability(
                f"this kernel has no token bucket qdisc (sch_tbf) for `rate:` on {ifname}: modprobe sch_tbf, "
                f"or run it in a VM: {VM_HINT} -- <command> (tc said: {text})"
            )
        if kind == "netem" or (failed is None and any("netem" in c for c in commands)):
            return MissingCapability(
                f"this kernel has no sch_netem, needed for delay/jitter/loss/reorder/duplicate/corrupt on {ifname}: "
                f"run it where the module loads, e.g. in a VM: {VM_HINT} -- <command> "
                f"(or pytest ... --vm-kernel 6.1) (tc said: {text})"
            )
    where = f" at `tc {' '.join(failed)}`" if failed else ""
    return BuildError(f"tc could not set the conditions on {ifname}{where}: {text or 'no error text'}")


def _failed_command(stderr: str, commands: list[list[str]]) -> list[str] | None:
    match = _BATCH_FAILED.search(stderr)
    if match and 1 <= int(match.group(1)) <= len(commands):
        return commands[int(match.group(1)) - 1]
    return None


# --- reading back -------------------------------------------------------------------


@dataclass(frozen=True)
class _Expected:
    kind: str
    handle: str
    parent: str | None  # None: root


def _expected_tree(conditions: Conditions | None, mtu: int) -> list[_Expected]:
    if conditions is None or conditions.empty:
        return []
    netem = netem_args(conditions, mtu) is not None
    tbf = tbf_args(conditions, mtu) is not None
    if netem and tbf:
        return [_Expected("netem", "1:", None), _Expected("tbf", "2:", "1:")]
    if netem:
        return [_Expected("netem", "1:", None)]
    if tbf:
        return [_Expected("tbf", "1:", None)]
    return [_Expected("pfifo", "1:", None)] if conditions.queue else []


def check_read_back(qdiscs: list[dict[str, Any]], conditions: Conditions | None, mtu: int = 1500) -> str | None:
    """What is wrong with the read-back qdiscs for these conditions (None: all in place).

    Checks the tree (kinds, handles, parents) and the values that matter most for
    fidelity: the token bucket's rate, netem's delay and random loss.
    """
    expected = _expected_tree(conditions, mtu)
    shaping = {"netem", "tbf"}
    if not expected:
        left = [q.get("kind") for q in qdiscs if q.get("kind") in shaping or q.get("handle") == "1:"]
        return f"{', '.join(left)} is still there after clearing" if left else None
    found = {q.get("handle"): q for q in qdiscs}
    for want in expected:
        q = found.get(want.handle)
        if q is None or q.get("kind") != want.kind:
            have = ", ".join(f"{x.get('kind')} {x.get('handle')}" for x in qdiscs) or "nothing"
            return f"{want.kind} {want.handle} is missing (found: {have})"
        if want.parent is None and not q.get("root"):
            return f"{want.kind} {want.handle} is not the root qdisc"
        if want.parent is not None and not str(q.get("parent", "")).startswith(want.parent):
            return f"{want.kind} {want.handle} hangs off {q.get('parent')}, not {want.parent}"
    options = {want.kind: found[want.handle].get("options", {}) for want in expected}
    if "tbf" in options and "rate" in options["tbf"]:
        got, want_rate = options["tbf"]["rate"], conditions.rate / 8
        if abs(got - want_rate) > max(1.0, want_rate * 0.001):
            return f"tbf's rate is {got} B/s, not {want_rate:g}"
    netem = options.get("netem")
    if netem is not None:
        delay = netem.get("delay", {}).get("delay")
        if delay is not None and _positive(conditions.delay) and not math.isclose(delay, conditions.delay, rel_tol=1e-3, abs_tol=1e-6):
            return f"netem's delay is {delay}s, not {conditions.delay:g}s"
        loss = netem.get("loss-random", {}).get("loss")
        if loss is not None and conditions.gilbert_elliott is None and _positive(conditions.loss):
            if not math.isclose(loss * 100, conditions.loss, rel_tol=1e-3, abs_tol=1e-6):
                return f"netem's loss is {loss * 100:g}%, not {conditions.loss:g}%"
    return None
