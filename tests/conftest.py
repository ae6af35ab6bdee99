import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


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
