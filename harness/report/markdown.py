"""A Markdown summary for a CI job summary ($GITHUB_STEP_SUMMARY): the summary table
and the environment, no images (those are in the HTML report)."""

from __future__ import annotations

from harness.report.inputs import RunInput
from harness.report.tables import OUTCOME_WORDS, environment_rows, format_value, kernel_trend_rows, summary_rows


def _cell(text: str) -> str:
    """Table cells cannot hold pipes or newlines; HTML-ish text is shown literally."""
    return " ".join(text.split()).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def render_markdown(runs: list[RunInput], title: str = "wgharness report") -> str:
    counts: dict[str, int] = {}
    for run in runs:
        for scenario in run.scenarios:
            counts[scenario.status] = counts.get(scenario.status, 0) + 1
    lines = [f"## {_cell(title)}", ""]
    lines.append(
        f"{len(runs)} input{'s' if len(runs) != 1 else ''}: "
        + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        + ("" if counts else "no scenarios")
    )
    lines.append("")
    header = ["scenario", "case"] + [_cell(run.label) for run in runs]
    lines += [_row(header), _row(["---"] * len(header))]
    for row in summary_rows(runs):
        cells = [_cell(row.name), _cell(row.case or "-")]
        for status, shown, why in row.cells:
            word = OUTCOME_WORDS.get(status, status)
            text = f"**{word}**" if status in ("failed", "error") else word
            if shown:
                text += "<br>" + "<br>".join(f"{_cell(name)} {_cell(value)}" for name, value in shown)
            if why:
                text += "<br>" + _cell(why)
            cells.append(text)
        lines.append(_row(cells))
    lines += _kernel_trend(runs)
    lines += ["", "<details><summary>Environment</summary>", ""]
    lines += [_row(["", *[_cell(run.label) for run in runs]]), _row(["---"] * (len(runs) + 1))]
    for title_, values in environment_rows(runs):
        lines.append(_row([_cell(title_), *[_cell(v) for v in values]]))
    lines += ["", "</details>", ""]
    return "\n".join(lines)


def _kernel_trend(runs: list[RunInput]) -> list[str]:
    """Each measurement across kernels, oldest to newest, and the change from the
    first kernel to the last (the HTML report draws these as lines)."""
    kernels, rows = kernel_trend_rows(runs)
    if len(kernels) < 2 or not rows:
        return []
    lines = ["", f"### Across kernels ({len(kernels)}, oldest to newest)", ""]
    header = ["scenario", "measurement", "backend", *[_cell(k) for k in kernels], "first → last"]
    lines += [_row(header), _row(["---"] * len(header))]
    for sid, name, backend, values, sample in rows:
        present = [v for v in values if v is not None]
        change = f"{(present[-1] - present[0]) / present[0]:+.0%}" if len(present) >= 2 and present[0] else "-"
        cells = [format_value(v, sample.unit) if v is not None else "-" for v in values]
        lines.append(_row([_cell(sid), _cell(name), _cell(backend), *[_cell(c) for c in cells], change]))
    return lines
