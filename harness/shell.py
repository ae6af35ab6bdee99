"""`wgh shell`: a scenario's network, built and run up to a step, at a prompt.

This is how a failing scenario is debugged by hand: the harness builds the network
(any engine), runs the steps up to `--until N`, and hands over a prompt where

    <node> <command>     runs the command inside that node, on this terminal
                         (`client wg show`, `server tcpdump -ni eth0`, `home nft list ruleset`);
                         Ctrl-C stops the command, not the shell
    nodes                lists the nodes, their underlay and tunnel addresses
    diagnose A B         prints the harness's diagnosis of the tunnel from A to B
    steps                runs the scenario's remaining steps
    mininet              (Mininet engine) Mininet's own CLI on the same network
    exit, Ctrl-D, Ctrl-C at the prompt, or a closed terminal: tear everything down

Teardown is the run's usual one (deferred signals, the record, the reaper), so
nothing is left whichever way the shell ends."""

from __future__ import annotations

import cmd
import shlex
import signal
import sys
from typing import Any, TextIO

from harness.interrupts import shielded
from harness.steps.result import StepResult


class NodeShell(cmd.Cmd):
    prompt = "wgh> "

    def __init__(self, network: Any, remaining: list[tuple[int, Any]], engine: str, stdin: TextIO, stdout: TextIO):
        super().__init__(stdin=stdin, stdout=stdout)
        self.network = network
        self.remaining = remaining
        self.engine = engine
        self.nodes = list(network.plan.nodes)

    # --- commands in nodes ------------------------------------------------------------

    def default(self, line: str) -> bool:
        words = line.split(None, 1)
        if not words or words[0] not in self.nodes:
            self._say(f"unknown command or node {words[0] if words else line!r}; nodes: {', '.join(self.nodes)}; `help` lists the commands")
            return False
        if len(words) == 1:
            self._say(f"usage: {words[0]} <command>, e.g. `{words[0]} ip addr`")
            return False
        self._run_in(words[0], words[1])
        return False

    def _run_in(self, node: str, command: str) -> None:
        """The command through `sh -c` inside the node, with this terminal: pipes and
        redirections work; Ctrl-C reaches the command (and is absorbed here)."""
        self.stdout.flush()
        process = self.network.node(node).popen(["sh", "-c", command])
        try:
            while True:
                try:
                    process.wait()
                    break
                except KeyboardInterrupt:  # the terminal's Ctrl-C went to both: the command stops, the shell stays
                    if process.poll() is None:
                        process.send_signal(signal.SIGINT)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        if process.returncode:
            self._say(f"(exit {process.returncode})")

    # --- the harness's own commands ---------------------------------------------------

    def do_nodes(self, arg: str) -> None:
        """nodes: each node with its underlay and tunnel addresses."""
        plan = self.network.plan
        for name in self.nodes:
            underlay = [str(a) for port in plan.ports.get(name, ()) for a in self.network.engine.port_addresses(port)]
            tunnel = [str(a) for a in plan.wireguard[name].addresses] if name in plan.wireguard else []
            role = " (router)" if plan.nodes[name].forwards else ""
            self._say(f"{name}{role}: underlay {', '.join(underlay) or '-'}" + (f"; tunnel {', '.join(tunnel)}" if tunnel else ""))

    def do_diagnose(self, arg: str) -> None:
        """diagnose A B: whether A's packets reach B through the tunnel now, and if not, why."""
        from harness.diagnosis.tunnel import diagnose_tunnel
        from harness.steps.checks import check

        words = shlex.split(arg)
        wireguard = list(self.network.plan.wireguard)
        if len(words) != 2 or not all(w in wireguard for w in words):
            self._say(f"usage: diagnose A B, with A and B among the WireGuard nodes: {', '.join(wireguard)}")
            return
        probe = check(self.network, {"ping": {"from": words[0], "to": words[1], "count": 2, "interval": "100ms", "timeout": "1s"}})
        if probe.passed:
            evidence = diagnose_tunnel(self.network, words[0], words[1]).lines
            self._say("\n".join([f"the tunnel {words[0]} → {words[1]} works: {probe.message}", *evidence]))
        else:
            self._say(f"{probe.message}\n{probe.diagnosis or ''}".rstrip())

    def do_steps(self, arg: str) -> None:
        """steps: run the scenario's remaining steps."""
        if not self.remaining:
            self._say("no steps left")
            return
        run_steps(self.network, self.remaining, self._say)
        self.remaining = []

    def do_mininet(self, arg: str) -> None:
        """mininet: Mininet's own CLI on this network (Mininet engine); `exit` comes back here."""
        net = getattr(self.network.engine, "net", None)
        if net is None:
            self._say(f"the {self.engine} engine has no Mininet network: run with --engine mininet")
            return
        from mininet.cli import CLI

        CLI(net, stdin=self.stdin)

    def do_exit(self, arg: str) -> bool:
        """exit: tear the network down and leave (also Ctrl-D)."""
        return True

    do_quit = do_exit

    def do_EOF(self, arg: str) -> bool:  # noqa: N802 (cmd's name)
        self._say("")
        return True

    def emptyline(self) -> bool:
        return False  # not cmd's default of repeating the last command

    def _say(self, text: str) -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()


def run_steps(network: Any, steps: list[tuple[int, Any]], say: Any) -> list[StepResult]:
    from harness.steps.checks import run_step

    results = []
    for index, step in steps:
        result = run_step(network, index, step)
        results.append(result)
        say(f"[{result.outcome}] step {index + 1}: {result.title}: {result.message}".rstrip(": "))
    return results


def open_shell(case: Any, *, until: int | None, backend: str, userspace: Any, engine: str | None, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    """Build `case`'s network, run steps 1..until (all when None is not given: none),
    hand over the prompt, and tear down however it ends. Returns the exit code."""
    from harness.plan.naming import new_run_id
    from harness.run import missing_for, prepare_network

    missing = missing_for(case, backend, userspace, engine)
    if missing:
        print(f"wgh shell: {case.id} cannot run here: {'; '.join(missing)}", file=sys.stderr)
        return 3
    steps = list(enumerate(case.spec.steps))
    count = len(steps) if until is None else until
    if not 0 <= count <= len(steps):
        print(f"wgh shell: --until {until}: {case.id} has {len(steps)} steps", file=sys.stderr)
        return 2
    run_id = new_run_id()
    chosen, network = prepare_network(case, run_id, backend=backend, userspace=userspace, engine=engine)
    code = 0
    try:
        network.build()
        print(f"wgh shell: {case.id} built on the {chosen} engine (run {run_id}); nodes: {', '.join(network.plan.nodes)}", file=stdout, flush=True)
        if count:
            run_steps(network, steps[:count], lambda text: print(text, file=stdout, flush=True))
        print("'<node> <command>' runs in a node; nodes, diagnose A B, steps, help; exit or Ctrl-D tears it down", file=stdout, flush=True)
        NodeShell(network, steps[count:], chosen, stdin, stdout).cmdloop()
    except KeyboardInterrupt as exc:  # Ctrl-C at the prompt, SIGTERM, a closed terminal (SIGHUP)
        print(f"\nwgh shell: {exc or 'SIGINT'}", file=sys.stderr)
        code = 130
    finally:
        with shielded(network.describe_left):
            leftovers = network.teardown()
    if leftovers:
        print(f"wgh shell: teardown could not remove: {', '.join(leftovers)}; `wgh clean` removes it", file=sys.stderr)
        return 1
    print(f"wgh shell: torn down: everything run {run_id} built was removed", file=sys.stderr)
    return code
