"""`wgh report` on the command line (registered by harness/cli.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_OK, EXIT_INVALID = 0, 2


def add_parser(sub) -> None:
    report = sub.add_parser(
        "report",
        help="one self-contained HTML report (and/or a Markdown summary) from results",
        description="Inputs are results folders, results.json files, `wgh matrix` summaries (each expands to its "
        "combinations) or folders of runs (e.g. the shards of one run: merged into one input).",
    )
    report.add_argument("inputs", nargs="+", metavar="RESULTS", help="results/<run-id>, a results.json, results/<stamp>-matrix.json, or a folder of runs")
    report.add_argument("-o", "--output", help="the HTML file to write (default report.html; '-' for stdout)")
    report.add_argument("--markdown", metavar="FILE", help="also write a Markdown summary here (e.g. $GITHUB_STEP_SUMMARY, appended to)")
    report.add_argument("--format", choices=["html", "markdown"], default="html", help="what -o (or stdout) gets (default html)")
    report.add_argument("--title", default="wgharness report")
    report.set_defaults(func=cmd_report)


def _soak_documents(paths: list[str]) -> list[dict] | None:
    """The inputs, if they are soak summaries (benchmarks/soak.py); None if none is."""
    import json

    from harness.results.flakes import is_soak_document

    found = []
    for path in paths:
        if not path.endswith(".json") or not Path(path).is_file():
            continue
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            continue
        if is_soak_document(data):
            found.append(data)
    if found and len(found) != len(paths):
        raise ValueError("a soak summary is reported on its own (or with other soak summaries), not beside results")
    return found or None


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report.html import render_html
    from harness.report.inputs import ReportInputError, load_inputs
    from harness.report.markdown import render_markdown
    from harness.report.soak import render_soak_html, render_soak_markdown

    try:
        soaks = _soak_documents(args.inputs)
        runs = soaks if soaks is not None else load_inputs(args.inputs)
    except (ReportInputError, ValueError) as exc:
        print(f"wgh report: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if soaks is not None:
        render_html, render_markdown = render_soak_html, render_soak_markdown  # noqa: F811
    else:
        for note in dict.fromkeys(note for run in runs for note in run.notes):
            print(f"wgh report: note: {note}", file=sys.stderr)
    render = render_markdown if args.format == "markdown" else render_html
    output = args.output
    if output is None and args.markdown is None:
        output = "report.html" if args.format == "html" else "-"
    if output == "-":
        sys.stdout.write(render(runs, args.title))
    elif output is not None:
        path = Path(output)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(runs, args.title))
        print(f"wgh report: {path} ({len(runs)} input{'s' if len(runs) != 1 else ''})", file=sys.stderr)
    if args.markdown:
        import os

        path = Path(args.markdown)
        # a CI job's summary file is shared by its steps: add to it, do not replace it
        mode = "a" if os.environ.get("GITHUB_STEP_SUMMARY") == args.markdown else "w"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open(mode) as out:
            out.write(render_markdown(runs, args.title))
        print(f"wgh report: {path} (Markdown)", file=sys.stderr)
    return EXIT_OK


# imported by `wgh` with signals held before the command runs (see cli.loads)
cmd_report.loads = ("harness.report.html", "harness.report.inputs", "harness.report.markdown", "harness.report.soak")  # type: ignore[attr-defined]
