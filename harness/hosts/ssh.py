"""Reaching a host with OpenSSH: one master connection per host (ControlMaster), a
child of ours ended by its PID, and every later session multiplexed over it: the
worker's, and any command (`ssh -O check`, cleanup).

Nothing interactive ever (BatchMode), host keys only if already known
(StrictHostKeyChecking=yes), the user's own ssh_config still applies (host aliases,
jump hosts), and the options the harness forces come first on the command line, so
they win over it.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Sequence

from harness.errors import HarnessError, MissingCapability
from harness.hosts.inventory import Host
from harness.net import nsexec
from harness.remote.client import WorkerConnection

MASTER_TIMEOUT = 30.0  # to connect and authenticate
ALIVE_INTERVAL = 5  # seconds between keepalives: a dead link is noticed within ~15 s


class SshError(HarnessError):
    """A host could not be reached or refused us; the message has ssh's own words."""


def ssh_binary() -> str:
    found = shutil.which("ssh")
    if found is None:
        raise MissingCapability("ssh is not installed: apt-get install openssh-client")
    return found


def base_argv(host: Host, control_path: Path, *, ssh: str = "ssh") -> list[str]:
    """The options every ssh to `host` carries (pure)."""
    argv = [
        ssh,
        "-o", "BatchMode=yes",
        "-o", "StrictHostKeyChecking=yes",
        "-o", f"ControlPath={control_path}",
        "-o", f"ServerAliveInterval={ALIVE_INTERVAL}",
        "-o", "ServerAliveCountMax=3",
        "-e", "none",  # binary frames: no escape character
        "-p", str(host.port),
        "-l", host.user,
    ]
    if host.identity:
        argv += ["-i", str(Path(host.identity).expanduser()), "-o", "IdentitiesOnly=yes"]
    if host.known_hosts:
        argv += ["-o", f"UserKnownHostsFile={Path(host.known_hosts).expanduser()}"]
    for option, value in host.ssh_options:
        argv += ["-o", f"{option}={value}"]
    return argv


def master_argv(host: Host, control_path: Path, *, ssh: str = "ssh") -> list[str]:
    """The master connection: no command, no tty, stays in the foreground (a child we end)."""
    return base_argv(host, control_path, ssh=ssh) + ["-o", "ControlMaster=yes", "-o", "ControlPersist=no", "-N", "-T", "--", host.address]


def session_argv(host: Host, control_path: Path, command: Sequence[str], *, ssh: str = "ssh") -> list[str]:
    """A session over the master: `command` run there (quoted for the remote shell)."""
    return base_argv(host, control_path, ssh=ssh) + ["-o", "ControlMaster=no", "-T", "--", host.address, shlex.join(command)]


class HostConnection:
    """The master connection to one host; sessions and the worker go over it."""

    def __init__(self, host: Host, control_dir: Path | None = None):
        self.host = host
        self._own_dir = control_dir is None
        # a private directory: the control socket gives a shell on the host to whoever can open it
        self.control_dir = Path(tempfile.mkdtemp(prefix="wgh-ssh-")) if control_dir is None else control_dir
        self.control_path = self.control_dir / f"{host.name}.sock"
        self.ssh = ssh_binary()
        self.master: subprocess.Popen | None = None

    def open(self, timeout: float = MASTER_TIMEOUT) -> "HostConnection":
        """Connect and authenticate once; SshError with ssh's message if that fails.
        From the thread that keeps the connection (its death signal follows that thread)."""
        self.start()
        return self.wait_ready(timeout)

    def start(self) -> None:
        """Start the master, not waiting for it: from the thread that keeps the
        connection (its death signal follows that thread); wait_ready from any."""
        # its own session: Ctrl-C reaches the controller, which closes this in order; a
        # death signal: it ends with a SIGKILLed controller, and every session over it
        self.master = nsexec.spawn(
            None, master_argv(self.host, self.control_path, ssh=self.ssh),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )

    def wait_ready(self, timeout: float = MASTER_TIMEOUT) -> "HostConnection":
        """Until the started master has connected and authenticated; SshError with
        ssh's message if it could not."""
        assert self.master is not None, "start() first"
        deadline = time.monotonic() + timeout
        while True:
            if self.master.poll() is not None:
                error = self.master.stderr.read().strip() if self.master.stderr else ""
                self.close()
                raise SshError(f"ssh to host {self.host.name} ({self.host.user}@{self.host.address}:{self.host.port}) failed: {error or 'no message'}")
            if self.control_path.exists() and self.run(["true"], timeout=timeout).returncode == 0:
                return self
            if time.monotonic() > deadline:
                self.close()
                raise SshError(f"ssh to host {self.host.name} did not connect within {timeout:g}s")
            time.sleep(0.05)

    def run(self, command: Sequence[str], *, timeout: float = 60.0, input: str | None = None) -> subprocess.CompletedProcess:
        """`command` on the host, over the master, to completion."""
        return subprocess.run(
            session_argv(self.host, self.control_path, command, ssh=self.ssh),
            input=input, capture_output=True, text=True, timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL,
        )

    def worker(self) -> WorkerConnection:
        """The harness's worker on the host, its frames over this connection; its
        version is checked before anything else."""
        return greeted(self.start_worker())

    def start_worker(self) -> WorkerConnection:
        """The worker started, not yet greeted (from the thread that keeps it: see
        start); `greeted` from any thread."""
        return WorkerConnection(session_argv(self.host, self.control_path, self.host.command("worker"), ssh=self.ssh), where=f"host {self.host.name}")

    def close(self) -> None:
        """End the master (by its PID): every session over it ends with it."""
        if self.master is not None:
            # our child, not yet waited for: its PID cannot have been reused
            self.master.terminate()
            try:
                self.master.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.master.kill()
                self.master.wait()
            self.master = None
        if self._own_dir:
            shutil.rmtree(self.control_dir, ignore_errors=True)


def greeted(connection: WorkerConnection) -> WorkerConnection:
    """A started worker once its version and code are checked; closed if they are not."""
    try:
        connection.hello()
    except BaseException:
        connection.close(timeout=10)
        raise
    return connection
