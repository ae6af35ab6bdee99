"""A soak's flake budget (benchmarks/soak.py) as a page: `wgh report SOAK.json`.

One row per set of runs (the scenario library, the test suite): runs, verdicts,
flaky verdicts, inconclusive ones, failures and the median CPU stall; then every flaky
case with how often each verdict came, its failure message and cause codes."""

from __future__ import annotations

import statistics
from html import escape
from typing import Any

from harness.report.html import CSS
from harness.results.flakes import summarize, verdicts_from_json

HEADER = ["set", "runs", "verdicts", "flaky", "inconclusive", "failures", "CPU stall (median)"]


def _rows(document: dict[str, Any]) -> tuple[list[list[str]], list[tuple[str, str, str, list[str], list[str]]]]:
    rows, flaky = [], []
    for entry in document.get("sets", []):
        summary = summarize([verdicts_from_json(run["verdicts"]) for run in entry["runs"]])
        stalls = [run["cpu_stall"] for run in entry["runs"] if run.get("cpu_stall") is not None]
        median = f"{statistics.median(stalls):.0%}" if stalls else "-"
        rows.append([entry["name"], str(summary.runs), str(summary.verdicts), str(len(summary.flaky)), str(summary.inconclusive), str(summary.failures), median])
        for case in summary.flaky:
            seen = ", ".join(f"{verdict} ×{n}" for verdict, n in case.verdicts.items())
            flaky.append((entry["name"], case.id, seen, case.messages, case.causes))
    return rows, flaky


def _context(document: dict[str, Any]) -> str:
    machine = document.get("machine", {})
    return (
        f"{document.get('started', '?')}, {document.get('seconds', '?')} s; {machine.get('cpus', '?')} CPUs, kernel "
        f"{machine.get('kernel', '?')}; load: {document.get('load', '?')}; stall threshold {machine.get('stall_threshold', '?')}"
    )


def render_soak_html(documents: list[dict[str, Any]], title: str) -> str:
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{escape(title)}</title><style>{CSS}</style></head><body>", f"<h1>{escape(title)}</h1>"]
    for document in documents:
        rows, flaky = _rows(document)
        parts.append(f'<h2>Flake budget</h2><p class="meta">{escape(_context(document))}</p>')
        commands = document.get("commands", {})
        parts.append("<ul>" + "".join(f"<li>{escape(name)}: <code>{escape(command)}</code></li>" for name, command in commands.items()) + "</ul>")
        parts.append("<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in HEADER) + "</tr>")
        for row in rows:
            parts.append("<tr>" + "".join(f'<td class="num">{escape(cell)}</td>' for cell in row) + "</tr>")
        parts.append("</table>")
        if flaky:
            parts.append("<h2>Flaky verdicts</h2><table><tr><th>set</th><th>case</th><th>verdicts</th><th>why</th></tr>")
            for name, case, seen, messages, causes in flaky:
                why = "<br>".join(escape(m.splitlines()[0][:300]) for m in messages if m) + (f"<br>causes: {escape(', '.join(causes))}" if causes else "")
                parts.append(f"<tr><td>{escape(name)}</td><td>{escape(case)}</td><td>{escape(seen)}</td><td class=\"why\">{why}</td></tr>")
            parts.append("</table>")
        else:
            parts.append("<p>No flaky verdicts.</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def render_soak_markdown(documents: list[dict[str, Any]], title: str) -> str:
    lines = [f"## {title}", ""]
    for document in documents:
        rows, flaky = _rows(document)
        lines += [_context(document), ""]
        lines += [f"- {name}: `{command}`" for name, command in document.get("commands", {}).items()] + [""]
        lines += ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        lines.append("")
        for name, case, seen, messages, causes in flaky:
            first = next((m.splitlines()[0][:300] for m in messages if m), "")
            lines.append(f"- flaky ({name}) `{case}`: {seen}" + (f": {first}" if first else "") + (f" (causes: {', '.join(causes)})" if causes else ""))
        if not flaky:
            lines.append("No flaky verdicts.")
        lines.append("")
    return "\n".join(lines)
