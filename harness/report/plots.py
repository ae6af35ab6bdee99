"""The report's plots, drawn with matplotlib (Agg, no display) into PNG bytes.

Each function returns a `Plot` or None when the inputs hold no data for it, so the
page can say so instead of showing an empty frame. One colour per input throughout.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display, no GUI toolkit
import matplotlib.pyplot as plt  # noqa: E402

from harness.report.inputs import Metric, RunInput, ScenarioRecord  # noqa: E402
from harness.report.tables import BAR_LEAVES, comparable, metric_label, trend_metrics  # noqa: E402
from harness.units import parse_duration, parse_percent  # noqa: E402

DPI = 100
# matplotlib 3.10 replaced boxplot's `vert=False` with `orientation="horizontal"`
HORIZONTAL = {"orientation": "horizontal"} if tuple(int(p) for p in matplotlib.__version__.split(".")[:2]) >= (3, 10) else {"vert": False}


@dataclass
class Plot:
    title: str
    png: bytes
    caption: str


def colours(runs: list[RunInput]) -> dict[str, str]:
    palette = plt.get_cmap("tab10").colors
    return {run.label: matplotlib.colors.to_hex(palette[i % len(palette)]) for i, run in enumerate(runs)}


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


# --- throughput against loss and delay ---------------------------------------------------

def _condition(key: str, value: object) -> tuple[str, float] | None:
    """A matrix parameter that varies loss or delay, as (kind, number in % or ms)."""
    leaf = key.rsplit(".", 1)[-1]
    try:
        if leaf == "loss":
            return "loss", parse_percent(value)
        if leaf == "delay":
            return "delay", parse_duration(value) * 1000
    except ValueError:
        return None
    return None


def throughput_vs_conditions(runs: list[RunInput]) -> Plot | None:
    """Throughput of matrix cases whose parameters vary loss or delay, one line per
    input × measurement × the other parameters' values."""
    series: dict[str, dict[tuple, list[tuple[float, float]]]] = {"loss": {}, "delay": {}}
    for run in runs:
        for scenario in run.scenarios:
            conditions = {k: c for k, v in scenario.matrix.items() if (c := _condition(k, v))}
            for key, (kind, x) in conditions.items():
                others = tuple(sorted((k.rsplit(".", 1)[-1], str(v)) for k, v in scenario.matrix.items() if k != key))
                for metric in scenario.metrics:
                    if metric.leaf == "throughput" and metric.value is not None:
                        series[kind].setdefault((run.label, scenario.name, metric.name, others), []).append((x, metric.value / 1e6))
    kinds = [k for k in ("loss", "delay") if any(len({x for x, _ in points}) > 1 for points in series[k].values())]
    if not kinds:
        return None
    colour = colours(runs)
    fig, axes = plt.subplots(1, len(kinds), figsize=(6.5 * len(kinds), 4.2), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        styles = ["-", "--", ":", "-."]
        # colour: the input; line style: the other parameters' values (e.g. the delay
        # on the loss plot); scenario and measurement named only when there are several
        variants = sorted({others for (_, _, _, others) in series[kind]})
        measured = {(name, key) for (_, name, key, _) in series[kind]}
        for (label, name, key, others), points in sorted(series[kind].items()):
            points.sort()
            text = label + (f": {name} {key}" if len(measured) > 1 else "")
            if others:
                text += " (" + ", ".join(f"{k}={v}" for k, v in others) + ")"
            ax.plot(
                [x for x, _ in points], [y for _, y in points], styles[variants.index(others) % len(styles)], marker="o",
                color=colour[label], label=text,
            )
        ax.set_xlabel("loss (%)" if kind == "loss" else "one-way delay (ms)")
        ax.set_ylabel("throughput (Mbit/s)")
        ax.set_title(f"throughput against {kind}" + (f" ({next(iter(measured))[0]})" if len(measured) == 1 else ""))
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        # below the axes, not over the lines
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=1 if len(kinds) > 1 else 2, frameon=False)
    return Plot("Throughput against loss and delay", _png(fig), "Matrix cases varying loss or delay; each point is one case's iperf3 result.")


# --- distributions ------------------------------------------------------------------------

RTT_LEAVES = ("rtt", "rtts", "rtt_samples")
MAX_ROWS = 32


def _distribution_plot(
    rows: list[tuple[str, str, list[float]]], runs: list[RunInput], title: str, unit: str, caption: str, log_ok: bool
) -> Plot:
    """Horizontal box plots, one row per (what, input), every sample drawn as a dot."""
    colour = colours(runs)
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(rows) + 1.4))
    positions = list(range(len(rows), 0, -1))
    for y, (what, label, values) in zip(positions, rows):
        if len(values) >= 3:
            box = ax.boxplot([values], positions=[y], widths=0.6, patch_artist=True, showfliers=False, **HORIZONTAL)
            for patch in box["boxes"]:
                patch.set(facecolor=colour[label], alpha=0.35, edgecolor=colour[label])
            for part in ("medians", "whiskers", "caps"):
                for line in box[part]:
                    line.set(color=colour[label])
        spread = [y + ((i * 0.6180339) % 1 - 0.5) * 0.3 for i in range(len(values))] if len(values) > 1 else [y]
        ax.scatter(values, spread, s=8 if len(values) > 20 else 30, color=colour[label], alpha=0.6, zorder=3)
    ax.set_yticks(positions)
    ax.set_yticklabels([f"{what}\n{label}" for what, label, _ in rows], fontsize=7)
    ax.set_xlabel(unit)
    flat = [v for _, _, values in rows for v in values if v > 0]
    if log_ok and flat and max(flat) / min(flat) > 50:
        ax.set_xscale("log")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title)
    return Plot(title, _png(fig), caption)


def _collect(runs: list[RunInput], wanted) -> list[tuple[str, str, list[float], str]]:
    rows = []
    for run in runs:
        for scenario in run.scenarios:
            for metric in scenario.metrics:
                values = wanted(scenario, metric)
                if values:
                    rows.append((f"{scenario.id} {metric_label(metric)}", run.label, values, metric.unit))
    rows.sort(key=lambda r: (r[0], [run.label for run in runs].index(r[1])))
    return rows


def rtt_distributions(runs: list[RunInput]) -> Plot | None:
    def wanted(scenario: ScenarioRecord, metric: Metric) -> list[float]:
        return metric.samples if metric.leaf in RTT_LEAVES and len(metric.samples) > 1 else []

    rows = _collect(runs, wanted)
    if not rows:
        return None
    rows = [(what, label, values) for what, label, values, _ in rows]
    # the largest streams first: a full suite has dozens of short pings
    shown = sorted(rows, key=lambda r: -len(r[2]))[:MAX_ROWS]
    left_out = len(rows) - len(shown)
    shown = [r for r in rows if r in shown]
    total = sum(len(v) for _, _, v in shown)
    caption = f"Every RTT sample of pings and probe streams ({total} in all)"
    caption += f"; {left_out} smaller sample sets left out (see the measurements table)." if left_out else "."
    return _distribution_plot(shown, runs, "RTT distributions", "RTT (ms)", caption, log_ok=True)


def _is_recovery(scenario: ScenarioRecord, metric: Metric) -> list[float]:
    """One recovery time per run (repeats give several)."""
    if metric.leaf == "recovery" or (metric.leaf == "time" and metric.step_kind == "wait_until"):
        return metric.repeat_values
    return []


def recovery_distributions(runs: list[RunInput]) -> Plot | None:
    rows = _collect(runs, _is_recovery)
    if not rows:
        return None
    rows = [(what, label, values) for what, label, values, _ in rows][:MAX_ROWS]
    counts = {len(v) for _, _, v in rows}
    caption = "Recovery after a timeline event (probe streams) and `wait_until` times; each dot is one run"
    caption += "." if counts == {1} else ", boxes where there are three or more repeats."
    return _distribution_plot(rows, runs, "Recovery-time distributions", "seconds", caption, log_ok=True)


# --- side by side --------------------------------------------------------------------------

def _panels(count: int, panel_height: float, margin: float):
    """A grid of up to 4 panels a row for `count` plots (the spare ones blank): the
    figure, its axes and its height in inches (for the legend's room at the top)."""
    columns = min(4, count)
    rows = (count + columns - 1) // columns
    height = panel_height * rows + margin
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, height), squeeze=False)
    for ax in axes.flat[count:]:
        ax.axis("off")
    return fig, axes, height


def _display_unit(unit: str, values: list[float]) -> tuple[str, float]:
    """The unit to draw values in, and the factor: Mbit/s for rates, ms for sub-second times."""
    if unit == "bit/s":
        return "Mbit/s", 1e-6
    if unit == "s" and max(values, default=0) < 1:
        return "ms", 1e3
    return unit, 1.0


MAX_BARS = 16


def side_by_side(runs: list[RunInput]) -> Plot | None:
    """Bars per measurement, one per input, when there are several inputs to compare
    (kernels, backends, configurations): only measurements at least two inputs have."""
    if len(runs) < 2:
        return None
    found: dict[tuple[str, str], dict[str, Metric]] = {}
    for run in runs:
        for scenario in run.scenarios:
            if scenario.status not in ("passed", "failed"):
                continue
            for metric in scenario.metrics:
                if comparable(metric):
                    found.setdefault((scenario.id, metric.name), {})[run.label] = metric
    shared = [(k, v) for k, v in found.items() if len(v) >= 2]
    if not shared:
        return None
    shared.sort(key=lambda item: (BAR_LEAVES.index(item[1][next(iter(item[1]))].leaf), item[0]))
    shared = shared[:MAX_BARS]
    colour = colours(runs)
    fig, axes, height = _panels(len(shared), panel_height=3.0, margin=0.8)
    for ax, ((sid, key), by_label) in zip(axes.flat, shared):
        sample = next(iter(by_label.values()))
        unit, scale = _display_unit(sample.unit, [m.value or 0 for m in by_label.values()])
        # every input keeps its slot, so a missing measurement shows as a gap
        slots = [i for i, run in enumerate(runs) if run.label in by_label]
        labels = [runs[i].label for i in slots]
        heights = [(by_label[label].value or 0) * scale for label in labels]
        bars = ax.bar(slots, heights, color=[colour[label] for label in labels])
        ax.set_xlim(-0.6, len(runs) - 0.4)
        for label, bar in zip(labels, bars):
            values = by_label[label].repeat_values
            if len(values) > 1:
                low, high = min(values) * scale, max(values) * scale
                ax.plot([bar.get_x() + bar.get_width() / 2] * 2, [low, high], color="black", linewidth=1)
        ax.bar_label(bars, labels=[f"{h:.3g}" for h in heights], fontsize=7)
        ax.set_xticks([])
        ax.set_title(f"{sid}\n{metric_label(sample)} ({unit})", fontsize=8)
        ax.margins(y=0.15)
        ax.tick_params(axis="y", labelsize=7)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colour[run.label]) for run in runs]
    fig.legend(handles, [run.label for run in runs], loc="upper center", ncol=min(4, len(runs)), fontsize=8, frameon=False)
    # fixed spacing: tight_layout on a dozen subplots costs seconds
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.03, top=1 - 0.7 / height, wspace=0.3, hspace=0.45)
    groups = len({run.group for run in runs})
    caption = f"The same measurements across {len(runs)} inputs ({groups} kernel × backend group{'s' if groups != 1 else ''}); "
    caption += "medians where there are repeats, with their range as a line."
    return Plot("Side by side", _png(fig), caption)



# --- trends across kernels ---------------------------------------------------------------

MAX_TRENDS = 16


def kernel_trends(runs: list[RunInput]) -> Plot | None:
    """One line per measurement across kernels (oldest to newest), one per backend: medians where there are repeats, with their range as a bar."""
    kernels, shared = trend_metrics(runs)
    if len(kernels) < 2 or not shared:
        return None
    keys = sorted(shared, key=lambda k: (BAR_LEAVES.index(next(iter(next(iter(shared[k].values())).values())).leaf), k))
    shown = keys[:MAX_TRENDS]
    series_names = sorted({name for key in shown for name in shared[key]})
    palette = plt.get_cmap("tab10").colors
    colour = {name: palette[i % len(palette)] for i, name in enumerate(series_names)}
    fig, axes, height = _panels(len(shown), panel_height=3.2, margin=1.2)
    for ax, key in zip(axes.flat, shown):
        series = shared[key]
        sample = next(iter(next(iter(series.values())).values()))
        unit, scale = _display_unit(sample.unit, [m.value or 0 for by_kernel in series.values() for m in by_kernel.values()])
        for name, by_kernel in sorted(series.items()):
            xs = [i for i, kernel in enumerate(kernels) if kernel in by_kernel]
            ys = [by_kernel[kernels[i]].value * scale for i in xs]
            ax.plot(xs, ys, marker="o", color=colour[name], label=name, linewidth=1.4, markersize=4)
            for x in xs:
                values = by_kernel[kernels[x]].repeat_values
                if len(values) > 1:
                    ax.plot([x, x], [min(values) * scale, max(values) * scale], color=colour[name], linewidth=1, alpha=0.6)
        ax.set_xticks(range(len(kernels)))
        ax.set_xticklabels(kernels, rotation=60, ha="right", fontsize=6)
        ax.set_xlim(-0.5, len(kernels) - 0.5)
        ax.set_title(f"{key[0]}\n{metric_label(sample)} ({unit})", fontsize=8)
        ax.margins(y=0.15)
        ax.set_ylim(bottom=0)  # from zero: a few percent of noise should not look like a cliff
        ax.tick_params(axis="y", labelsize=7)
    handles = [plt.Line2D([0], [0], color=colour[name], marker="o") for name in series_names]
    fig.legend(handles, series_names, loc="upper center", ncol=min(4, len(series_names)), fontsize=8, frameon=False)
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.12, top=1 - 0.7 / height, wspace=0.3, hspace=0.9)
    caption = f"{len(shown)} measurement{'s' if len(shown) != 1 else ''} across {len(kernels)} kernels, oldest to newest"
    if len(keys) > len(shown):
        caption += f" (the first {len(shown)} of {len(keys)}; the Measurements table has them all)"
    caption += "; a line per backend, medians where there are repeats with their range as a bar."
    return Plot("Across kernels", _png(fig), caption)
