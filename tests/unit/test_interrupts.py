"""Signals during startup: held until the code is loaded, then exit 130 (no root)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

HELD_IMPORT = textwrap.dedent(
    """
    import os, signal, sys
    from harness import interrupts
    interrupts.install()
    try:
        with interrupts.held():
            os.kill(os.getpid(), signal.SIG{name})
            # the handler has run by now; the import (pydantic builds validators) completes
            import harness.scenario.model
            print("loaded", flush=True)
    except KeyboardInterrupt as exc:
        print("interrupted", exc, flush=True)
        sys.exit(130)
    print("not interrupted", flush=True)
    """
)


@pytest.mark.parametrize("name", ["INT", "TERM", "HUP"])
def test_a_signal_while_loading_waits_until_the_code_is_loaded(name):
    proc = subprocess.run([sys.executable, "-c", HELD_IMPORT.format(name=name)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 130, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["loaded", f"interrupted SIG{name}"]
    assert "Traceback" not in proc.stderr


def test_a_signal_outside_held_code_interrupts_at_once():
    code = HELD_IMPORT.format(name="INT").replace("with interrupts.held():", "if True:")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 130
    assert proc.stdout.split("\n")[0] == "interrupted SIGINT", "the import ran although the signal came first"


def test_nested_held_blocks_report_once_at_the_outer_end():
    code = textwrap.dedent(
        """
        import os, signal
        from harness import interrupts
        interrupts.install()
        try:
            with interrupts.held():
                with interrupts.held():
                    os.kill(os.getpid(), signal.SIGTERM)
                print("inner done", flush=True)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.split() == ["inner", "done", "interrupted"]


def test_the_third_signal_during_startup_aborts_saying_nothing_was_built():
    code = textwrap.dedent(
        """
        import os, signal
        from harness import interrupts
        interrupts.install()
        with interrupts.held():
            for _ in range(3):
                os.kill(os.getpid(), signal.SIGINT)
            print("still here", flush=True)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 130
    assert "still here" not in proc.stdout
    assert "startup aborted by a third signal; left behind: nothing" in proc.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_wgh_interrupted_in_its_startup_loads_its_command_and_exits_130(signum):
    """The CLI stops at the start of its held startup; the signal sent there is noted,
    the command's modules load, and the exit is 130 without a traceback."""
    env = dict(os.environ, WGH_TEST_PAUSE_AT="startup")
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from harness.cli import main; sys.exit(main(['schema']))"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    assert proc.stderr.readline().startswith("WGH-CHECKPOINT startup")
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert out == "", "the command itself did not run"
    assert "Traceback" not in err, err


SLOW_IMPORT = textwrap.dedent(
    """
    import sys, time
    class SlowCli:  # the harness's import, as slow as on a loaded machine, and says when it starts
        def find_spec(self, name, path=None, target=None):
            if name == "harness.cli":
                print("importing", flush=True)
                time.sleep(3)
            return None
    sys.meta_path.insert(0, SlowCli())
    sys.argv = ["wgh", "schema"]
    from harness.entry import console_main  # what the `wgh` script runs
    console_main()
    """
)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_wgh_signalled_while_the_harness_is_imported_exits_130_quietly(signum):
    """Before harness.cli is imported, Python's SIGINT handler would raise a
    KeyboardInterrupt traceback from inside the import (a soak under load caught it)
    and SIGTERM would kill wgh without a word: harness.entry notes the signal instead."""
    proc = subprocess.Popen([sys.executable, "-c", SLOW_IMPORT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "importing\n"
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert out == "", "the command itself did not run"
    assert "Traceback" not in err, err


def test_every_command_declares_what_it_imports():
    """What a command imports in its body is loaded, held, before it runs."""
    import ast
    import inspect

    from harness.cli import build_parser

    preloaded = {"harness.errors", "harness.interrupts", "harness.backends"}  # cli's own imports
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # argparse keeps no public map
    for name, sub in commands.items():
        func = sub.get_default("func")
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module.startswith("harness"):
                # `from harness import caps` imports the module harness.caps
                imported |= {f"harness.{a.name}" for a in node.names} if node.module == "harness" else {node.module}
        missing = imported - set(getattr(func, "loads", ())) - preloaded
        assert not missing, f"`wgh {name}` imports {sorted(missing)} without declaring them in @loads"


SWALLOWED = textwrap.dedent(
    """
    import os, signal, sys, time, weakref
    from harness import interrupts
    interrupts.install()

    class Held:
        pass

    held = Held()
    # the signal arrives while a weakref callback runs (as importlib's module-lock
    # cleanup does): Python prints "Exception ignored" there and drops the exception
    ref = weakref.ref(held, lambda _: os.kill(os.getpid(), signal.SIG{name}))
    try:
        del held
        deadline = time.monotonic() + 5  # it takes effect within milliseconds, not at once
        while time.monotonic() < deadline:
            pass
        print("signal lost", flush=True)
    except KeyboardInterrupt as exc:
        print("interrupted", exc, flush=True)
        sys.exit(130)
    """
)


@pytest.mark.parametrize("name", ["INT", "TERM"])
def test_a_signal_swallowed_by_a_callback_is_delivered_again(name):
    proc = subprocess.run([sys.executable, "-c", SWALLOWED.format(name=name)], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == f"interrupted SIG{name}", proc.stdout + proc.stderr
    assert proc.returncode == 130
    assert "Exception ignored" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_other_unraisable_exceptions_still_reach_the_previous_hook():
    code = textwrap.dedent(
        """
        import weakref
        from harness import interrupts
        interrupts.install()

        class Held:
            pass

        def broken(_):
            raise ValueError("a callback's own bug")

        held = Held()
        ref = weakref.ref(held, broken)
        del held
        print("went on", flush=True)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "went on"
    assert "ValueError: a callback's own bug" in proc.stderr
