"""One self-contained HTML page: inline CSS, plots as base64 PNG, no scripts, nothing
fetched from anywhere. Every piece of text from the results goes through escape()."""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from html import escape

from harness.report import plots
from harness.report.inputs import RunInput
from harness.report.tables import OUTCOME_WORDS, environment_rows, measurement_rows, summary_rows

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto; max-width: 1400px; padding: 0 16px; color: #1d2330; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #d8dde6; padding-bottom: 4px; }
.meta { color: #5b6473; margin: 0 0 12px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13px; }
th, td { border: 1px solid #d8dde6; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f2f4f8; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 5px; }
.status { font-weight: 600; border-radius: 3px; padding: 0 5px; }
.passed { background: #e1f5e6; color: #17612c; }
.failed, .error { background: #fde4e4; color: #9b1c1c; }
.skipped, .absent { background: #eef0f3; color: #5b6473; }
.inconclusive { background: #fdf3d8; color: #7a5200; }
td.case { font-size: 12px; max-width: 260px; overflow-wrap: anywhere; color: #3b4352; }
table.environment th { white-space: nowrap; }
.m { font-size: 12px; white-space: nowrap; }
.m .k { color: #5b6473; }
.why { color: #9b1c1c; font-size: 12px; }
figure { margin: 10px 0 22px; }
figure img { max-width: 100%; border: 1px solid #e3e7ee; }
figcaption { color: #5b6473; font-size: 12px; }
.nodata { color: #5b6473; font-style: italic; }
details summary { cursor: pointer; color: #33508a; }
"""


def _input_header(runs: list[RunInput], colour: dict[str, str]) -> str:
    return "".join(
        f'<th><span class="swatch" style="background:{escape(colour[run.label])}"></span>{escape(run.label)}</th>' for run in runs
    )


def _summary_table(runs: list[RunInput], colour: dict[str, str]) -> str:
    out = ['<table class="summary"><thead><tr><th>scenario</th><th>case</th>', _input_header(runs, colour), "</tr></thead><tbody>"]
    for row in summary_rows(runs):
        out.append(f'<tr><td>{escape(row.name)}</td><td class="case">{escape(row.case or "-")}</td>')
        for status, shown, why in row.cells:
            cell = f'<span class="status {escape(status)}">{escape(OUTCOME_WORDS.get(status, status))}</span>'
            for name, value in shown:
                cell += f'<div class="m"><span class="k">{escape(name)}</span> {escape(value)}</div>'
            if why:
                cell += f'<div class="why">{escape(why)}</div>'
            out.append(f"<td>{cell}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _environment_table(runs: list[RunInput], colour: dict[str, str]) -> str:
    out = ['<table class="environment"><thead><tr><th></th>', _input_header(runs, colour), "</tr></thead><tbody>"]
    for title, values in environment_rows(runs):
        out.append(f"<tr><th>{escape(title)}</th>" + "".join(f"<td>{escape(v)}</td>" for v in values) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _measurements_table(runs: list[RunInput], colour: dict[str, str]) -> str:
    rows = measurement_rows(runs)
    if not rows:
        return '<p class="nodata">No measurements recorded.</p>'
    out = [f"<details><summary>{len(rows)} measurements</summary>"]
    out.append('<table class="measurements"><thead><tr><th>scenario</th><th>measurement</th>' + _input_header(runs, colour) + "</tr></thead><tbody>")
    for sid, key, values in rows:
        out.append(f"<tr><td>{escape(sid)}</td><td>{escape(key)}</td>" + "".join(f'<td class="num">{escape(v)}</td>' for v in values) + "</tr>")
    out.append("</tbody></table></details>")
    return "".join(out)


PLOT_SECTIONS = (
    ("Throughput against loss and delay", plots.throughput_vs_conditions,
     "No matrix cases vary loss or delay with a throughput measurement (a scenario with a matrix over a link's loss or delay and an iperf3 step makes this plot)."),
    ("RTT distributions", plots.rtt_distributions, "No RTT samples recorded (probe streams stopped with `stop:` record them)."),
    ("Recovery-time distributions", plots.recovery_distributions, "No recovery times recorded (timeline scenarios with probe streams or `wait_until` record them)."),
    ("Across kernels", plots.kernel_trends,
     "Fewer than two kernels, or no measurement shared by two (wgh matrix --kernels 6.1.0-47..6.1.0-57 makes this plot)."),
    ("Side by side", plots.side_by_side, "Only one input, or no measurement shared by two inputs: nothing to put side by side."),
)


def _plot_section(title: str, plot: plots.Plot | None, missing: str) -> str:
    if plot is None:
        return f'<h2>{escape(title)}</h2><p class="nodata">{escape(missing)}</p>'
    data = base64.b64encode(plot.png).decode("ascii")
    return (
        f"<h2>{escape(title)}</h2><figure>"
        f'<img alt="{escape(plot.title)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{escape(plot.caption)}</figcaption></figure>"
    )


def render_html(runs: list[RunInput], title: str = "wgharness report") -> str:
    colour = plots.colours(runs)
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cases = len({s.id for run in runs for s in run.scenarios})
    groups = sorted({run.group for run in runs})
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">{len(runs)} input{"s" if len(runs) != 1 else ""}, {cases} scenario case{"s" if cases != 1 else ""}; '
        f"kernel × backend: {escape('; '.join(groups))}. Generated {escape(generated)}.</p>",
        "<h2>Summary</h2>",
        f'<div class="scroll">{_summary_table(runs, colour)}</div>',
        "<h2>Environment</h2>",
        f'<div class="scroll">{_environment_table(runs, colour)}</div>',
    ]
    for section, make, missing in PLOT_SECTIONS:
        parts.append(_plot_section(section, make(runs), missing))
    parts += ["<h2>All measurements</h2>", _measurements_table(runs, colour), "</body></html>"]
    return "\n".join(parts) + "\n"
