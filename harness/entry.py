"""The `wgh` script's entry point, kept free of imports: a signal that arrives while
the harness is still being imported must not become a KeyboardInterrupt traceback.

Importing the harness takes ~0.3 s on an idle machine and seconds on a loaded one
(pydantic, pyroute2, the scenario model); Python's own SIGINT handler would raise
KeyboardInterrupt wherever that import happens to be (exit -2 with a traceback), and
SIGTERM would kill the process without a word. Until `harness.cli.main` installs the
harness's handlers (harness.interrupts) a signal is only noted here; main then exits
130 at once, as for any signal before anything is built."""

import signal

_EARLY = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def console_main() -> None:
    noted: list[int] = []
    for signum in _EARLY:
        signal.signal(signum, lambda signum, frame: noted.append(signum))
    from harness import cli  # replaces the handlers above only when main() installs its own

    cli.console_main(early_signals=noted)
