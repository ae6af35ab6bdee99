"""iperf3 between two nodes: the server in one namespace, the client in the other,
results from iperf3's JSON (kept as an artifact), the server stopped by its PID."""

from __future__ import annotations

import json
import shutil
import time

from harness.diagnosis import mtu
from harness.diagnosis.path import diagnose_path
from harness.engine.base import Node
from harness.errors import MissingCapability
from harness.interrupts import checkpoint
from harness.net.nodeprocess import NodeProcess
from harness.scenario.steps.throughput import Iperf3Args
from harness.steps.registry import runs
from harness.steps.result import Measurement, StepResult

PORT = 5201


def _listening(node: Node, port: int) -> bool:
    """Is a TCP socket listening on `port` in the node? (One request where it is.)"""
    return node.apply(_listening_here, port)


def _listening_here(node: Node, port: int) -> bool:
    for name in ("tcp", "tcp6"):
        try:
            table = node.read_proc_net(name)
        except OSError:  # no IPv6 in the node
            continue
        if port in listening_ports(table):
            return True
    return False


def listening_ports(table: str) -> set[int]:
    """The local ports of the sockets in LISTEN state (0A) in /proc/net/tcp{,6}."""
    ports = set()
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[3] == "0A":
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


SERVER_START_TIMEOUT = 30.0  # s for iperf3's server to listen


class Iperf3Run:
    """A started iperf3 test: the server (one test, then it exits) and the client."""

    def __init__(self, network, args: Iperf3Args, port: int = PORT):
        binary = shutil.which("iperf3")
        if binary is None:
            raise MissingCapability("iperf3 is not installed: apt-get install iperf3")
        self.args = args
        self.address = network.plan.target_address(args.from_, args.to, args.via, args.family)
        arrow = "←" if args.reverse else "→"
        self.title = f"iperf3 {args.protocol.upper()} {args.from_} {arrow} {args.to} ({self.address}, {args.via}, {args.seconds:g}s)"
        # both ends kept where their nodes are (Node.start): a node may be on another machine
        self.server = network.node(args.to).start(NodeProcess, [binary, "-s", "-1", "-p", str(port), "-J"])
        checkpoint("iperf3-started", network.plan.run_id)  # never recorded: found by namespace and owner (tests)
        self.client = None
        try:
            # generous: an emulated VM on a busy machine took over 10 s to start one
            deadline = time.monotonic() + SERVER_START_TIMEOUT
            while not _listening(network.node(args.to), port):
                if self.server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"iperf3 server in {args.to} did not listen on port {port} within {SERVER_START_TIMEOUT:g}s (exit {self.server.poll()})")
                time.sleep(0.01)
            argv = [binary, "-c", str(self.address), "-p", str(port), "-J", "-t", f"{args.seconds:g}", "-P", str(args.parallel)]
            if args.protocol == "udp":
                argv += ["-u", "-b", f"{int(args.bitrate or 1_000_000)}"]
            elif args.bitrate:
                argv += ["-b", f"{int(args.bitrate)}"]
            if args.reverse:
                argv.append("-R")
            if args.family == 6:
                argv.append("-6")
            self.client = network.node(args.from_).start(NodeProcess, argv, capture=True)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop both ends (by PID, where they run) if they are still running."""
        for end in (self.client, self.server):
            if end is not None:
                end.close()

    def finish(self, network, index: int) -> StepResult:
        result = self._collect(network, index)
        moved = result.measurements.get(f"{self.args.record}.throughput" if self.args.record else "throughput")
        if not result.passed and self.args.via == "tunnel" and (moved is None or not moved.value):
            self._diagnose(network, result)  # nothing got through: say why (a slow tunnel is not a broken one)
        return result

    def _diagnose(self, network, result: StepResult) -> None:
        """The tunnel's usual diagnosis, then the MTU question: bulk data travels in
        full-size packets, so a path that drops those stalls TCP while the small
        packets of its handshake and the control connection pass."""
        args = self.args
        sender, receiver = (args.to, args.from_) if args.reverse else (args.from_, args.to)
        address = network.plan.tunnel_address(receiver, args.family)
        diagnosis = diagnose_path(network, sender, address)
        tunnel_mtu = network.plan.wireguard[sender].mtu or mtu.DEFAULT_TUNNEL_MTU
        full_size_ping = tunnel_mtu - (28 if args.family == 4 else 48)  # ICMP payload of a full-size packet
        diagnosis = mtu.refine(network, sender, address, full_size_ping, 0, diagnosis)
        result.message += f": {diagnosis.summary}"
        result.diagnosis = str(diagnosis)

    def _collect(self, network, index: int) -> StepResult:
        args = self.args
        try:
            out, err = self.client.communicate(args.seconds + 30)
        finally:
            self.close()
        result = StepResult(index, "iperf3", self.title, False, args.expect)
        try:
            report = json.loads(out)
        except ValueError:
            result.message = f"iperf3 gave no report: {(err or out).strip()[-300:]}"
            return result
        if network.artifacts_dir is not None:
            network.artifacts_dir.mkdir(parents=True, exist_ok=True)
            report_path = network.artifacts_dir / f"iperf3-step{index + 1}-{args.protocol}.json"
            report_path.write_text(out)
            result.artifacts.append(str(report_path))
        if "error" in report:
            result.message = f"iperf3: {report['error']}"
            return result
        end = report.get("end", {})
        prefix = f"{args.record}." if args.record else ""
        m = result.measurements
        if args.protocol == "tcp":
            received = end.get("sum_received", {}).get("bits_per_second", 0.0)
            m[prefix + "throughput"] = Measurement(round(received), "bit/s", samples=_interval_rates(report))
            m[prefix + "retransmits"] = Measurement(end.get("sum_sent", {}).get("retransmits", 0), "segments")
            loss = None
        else:
            summary = end.get("sum", {})
            loss = summary.get("lost_percent", 0.0)
            received = summary.get("bits_per_second", 0.0) * (1 - loss / 100)
            m[prefix + "throughput"] = Measurement(round(received), "bit/s", samples=_interval_rates(report))
            m[prefix + "loss"] = Measurement(round(loss, 3), "%")
            m[prefix + "jitter"] = Measurement(summary.get("jitter_ms"), "ms")
        problems = []
        if received <= 0:
            problems.append("nothing arrived")
        if args.min_rate is not None and received < args.min_rate:
            problems.append(f"below the minimum of {args.min_rate / 1e6:g} Mbit/s")
        if args.max_loss is not None and loss is not None and loss > args.max_loss:
            problems.append(f"loss {loss:.2f}% above {args.max_loss:g}%")
        if args.record is not None:
            network.throughputs[args.record] = received
        ratio_text = ""
        if args.ratio_to is not None:
            base = network.throughputs.get(args.ratio_to)
            if not base:
                problems.append(f"no throughput recorded as '{args.ratio_to}' to compare with")
            else:
                ratio = received / base
                m[prefix + "ratio"] = Measurement(round(ratio, 4), "ratio")
                ratio_text = f", {ratio:.1%} of {args.ratio_to} ({base / 1e6:.1f} Mbit/s)"
                if args.min_ratio is not None and ratio < args.min_ratio:
                    problems.append(f"below {args.min_ratio:.0%} of {args.ratio_to}")
        result.passed = not problems
        result.message = f"{received / 1e6:.1f} Mbit/s received" + (f", loss {loss:.2f}%" if loss is not None else "") + ratio_text
        if problems:
            result.message += ": " + "; ".join(problems)
        return result


def _interval_rates(report: dict) -> list[float] | None:
    """The per-interval (per-second) rates of the client's report: the raw samples
    behind the mean. The sender's view; the total above is what was received."""
    rates = [round(i["sum"]["bits_per_second"]) for i in report.get("intervals", []) if "sum" in i and "bits_per_second" in i["sum"]]
    return rates or None


@runs("iperf3")
def iperf3(network, index: int, args: Iperf3Args) -> StepResult:
    run = Iperf3Run(network, args, PORT + index)  # one port per step: background runs may overlap
    if args.background is None:
        return run.finish(network, index)
    network.traffic[args.background] = run
    return StepResult(index, "iperf3", f"{run.title} in the background as '{args.background}'", True)
