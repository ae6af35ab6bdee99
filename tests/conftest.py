import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """A shell starts a background job (`pytest ... &` in a CI script) with SIGINT
    ignored, and that is inherited: Python then never raises KeyboardInterrupt, and
    every harness run a test starts ignores Ctrl-C too (a soak started so failed every
    Ctrl-C test). The tests of Ctrl-C need SIGINT as a terminal delivers it; a handler,
    unlike SIG_IGN, is reset by exec, so the processes the tests start get it too."""
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def wgh_cli():
    """Run the `wgh` console script of this environment."""
    wgh = shutil.which("wgh", path=str(Path(sys.executable).parent)) or "wgh"

    def run(*args: str, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run([wgh, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO, **kwargs)

    run.path = wgh
    return run


@pytest.fixture(autouse=True)
def _restore_signal_handlers():
    """Tests that call `wgh`'s main() in-process install its signal handlers: give the
    test runner its own back afterwards."""
    import signal

    from harness import interrupts

    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    yield
    # a shield left up would defer every later signal in this process (a later test's
    # Ctrl-C "DID NOT RAISE"): blame the test that left it
    stale, interrupts._shield = interrupts._shield, None
    assert stale is None, f"the test left a signal shield up ({stale.during})"
    for signum, handler in saved.items():
        signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


@pytest.fixture
def marked_child_starter():
    """A stand-in for a harness process: it starts `sleep` through nsexec (so the child
    carries it as its owner, WGH_OWNER) without PR_SET_PDEATHSIG, as dnsmasq runs, says
    the child's PID and waits. Returns (starter, child PID); both are stopped afterwards."""
    from harness.processes import process_start_time, stop_process

    started: list[tuple[subprocess.Popen, int]] = []

    def start(seconds: int = 600) -> tuple[subprocess.Popen, int]:
        starter = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(
                f"""
                import subprocess, time
                from harness.net import nsexec
                child = nsexec.popen(None, ["sleep", "{seconds}"], die_with_parent=False, stdin=subprocess.DEVNULL)
                print(child.pid, flush=True)
                time.sleep({seconds})
                """
            )],
            stdout=subprocess.PIPE, text=True,
        )
        started.append((starter, int(starter.stdout.readline())))
        return started[-1]

    yield start
    for starter, child in started:
        starter.kill()
        starter.wait()
        starter.stdout.close()
        stop_process(child, process_start_time(child))
