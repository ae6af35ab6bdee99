"""iperf3 between two nodes: the server in one namespace, the client in the other,
results from iperf3's JSON (kept as an artifact), the server stopped by its PID."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

from harness.errors import MissingCapability
from harness.net import nsexec
from harness.scenario.model import Iperf3Args
from harness.steps.result import Measurement, StepResult

PORT = 5201


def _listening(namespace: str, port: int) -> bool:
    """Is a TCP socket listening on `port` in the namespace? (/proc/thread-self/net
    follows the reading thread's namespace, /proc/self/net would not.)"""

    def look() -> bool:
        for name in ("tcp", "tcp6"):
            try:
                lines = Path(f"/proc/thread-self/net/{name}").read_text().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    return True
        return False

    return nsexec.call_in(namespace, look)


def iperf3(network, index: int, args: Iperf3Args) -> StepResult:
    binary = shutil.which("iperf3")
    if binary is None:
        raise MissingCapability("iperf3 is not installed: apt-get install iperf3")
    plan = network.plan
    if args.via == "tunnel":
        address = plan.tunnel_address(args.to, args.family)
    else:
        address = plan.underlay_address(args.from_, args.to, args.family, reachable=False)
    title = f"iperf3 {args.protocol.upper()} {args.from_} {'←' if args.reverse else '→'} {args.to} ({address}, {args.via}, {args.seconds:g}s)"
    server = network.popen(
        args.to, [binary, "-s", "-1", "-p", str(PORT), "-J"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while not _listening(network.namespace(args.to), PORT):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"iperf3 server in {args.to} did not start: {server.stdout.read().decode(errors='replace')[-300:]}")
            time.sleep(0.01)
        argv = [binary, "-c", str(address), "-p", str(PORT), "-J", "-t", f"{args.seconds:g}", "-P", str(args.parallel)]
        if args.protocol == "udp":
            argv += ["-u", "-b", f"{int(args.bitrate or 1_000_000)}"]
        elif args.bitrate:
            argv += ["-b", f"{int(args.bitrate)}"]
        if args.reverse:
            argv.append("-R")
        if args.family == 6:
            argv.append("-6")
        client = network.run(args.from_, argv, timeout=args.seconds + 30)
    finally:
        if server.poll() is None:
            server.kill()
        server.wait(timeout=5)
        if server.stdout:
            server.stdout.close()
    result = StepResult(index, "iperf3", title, False, args.expect)
    try:
        report = json.loads(client.stdout)
    except ValueError:
        result.message = f"iperf3 gave no report: {(client.stderr or client.stdout).strip()[-300:]}"
        return result
    if network.artifacts_dir is not None:
        network.artifacts_dir.mkdir(parents=True, exist_ok=True)
        (network.artifacts_dir / f"iperf3-step{index + 1}-{args.protocol}.json").write_text(client.stdout)
    if "error" in report:
        result.message = f"iperf3: {report['error']}"
        return result
    end = report.get("end", {})
    prefix = f"{args.record}." if args.record else ""
    m = result.measurements
    if args.protocol == "tcp":
        received = end.get("sum_received", {}).get("bits_per_second", 0.0)
        m[prefix + "throughput"] = Measurement(round(received), "bit/s")
        m[prefix + "retransmits"] = Measurement(end.get("sum_sent", {}).get("retransmits", 0), "segments")
        loss = None
    else:
        summary = end.get("sum", {})
        received = summary.get("bits_per_second", 0.0) * (1 - summary.get("lost_percent", 0.0) / 100)
        loss = summary.get("lost_percent", 0.0)
        m[prefix + "throughput"] = Measurement(round(received), "bit/s")
        m[prefix + "loss"] = Measurement(round(loss, 3), "%")
        m[prefix + "jitter"] = Measurement(summary.get("jitter_ms"), "ms")
    problems = []
    if received <= 0:
        problems.append("nothing arrived")
    if args.min_rate is not None and received < args.min_rate:
        problems.append(f"below the minimum of {args.min_rate / 1e6:g} Mbit/s")
    if args.max_loss is not None and loss is not None and loss > args.max_loss:
        problems.append(f"loss {loss:.2f}% above {args.max_loss:g}%")
    result.passed = not problems
    result.message = f"{received / 1e6:.1f} Mbit/s received" + (f", loss {loss:.2f}%" if loss is not None else "")
    if problems:
        result.message += ": " + "; ".join(problems)
    return result
