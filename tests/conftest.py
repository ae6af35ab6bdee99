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
