"""`wgh report` from synthetic results: four kernel × backend inputs behind a matrix
summary, parsed back with html.parser; the Markdown summary; rendering once in
headless Chromium with the screenshot kept."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.cli import main
from harness.report.html import render_html
from harness.report.inputs import ReportInputError, load_inputs
from harness.report.markdown import render_markdown
from harness.report.tables import format_value

COMBOS = [("6.1", "6.1.0-56-amd64", "kernel"), ("6.1", "6.1.0-56-amd64", "wireguard-go"),
          ("6.12", "6.12.117+deb12-amd64", "kernel"), ("6.12", "6.12.117+deb12-amd64", "wireguard-go")]
LOSSES, DELAYS = ["0%", "1%", "4%"], ["2ms", "20ms"]


def _step(index: int, kind: str, measurements: dict, outcome: str = "pass") -> dict:
    return {"index": index, "kind": kind, "title": kind, "expect": "pass", "expected_cause": None, "observed": "pass",
            "outcome": outcome, "message": "", "seconds": 0.1, "measurements": measurements, "diagnosis": None}


def _scenario(sid: str, name: str, steps: list[dict], *, matrix: dict | None = None, case: str | None = None,
              status: str = "passed", error: str | None = None, backend: str = "kernel") -> dict:
    return {"id": sid, "name": name, "file": f"scenarios/{name}.yaml", "file_sha256": "0" * 64, "case": case,
            "matrix": matrix or {}, "status": status, "error": error, "backends": {"a": backend, "b": backend},
            "timing": {"build": {"value": 0.1, "unit": "s"}}, "steps": steps}


def _results(kernel: str, backend: str, speed: float) -> dict:
    """One run's results.json: the numbers depend on `speed`, so inputs differ."""
    scenarios = [
        _scenario("direct", "direct", [
            _step(0, "handshake", {"time_to_handshake": {"value": 0.02 / speed, "unit": "s"}}),
            _step(1, "ping", {"loss": {"value": 0.0, "unit": "%"}, "rtt_avg": {"value": 0.6 / speed, "unit": "ms"}}),
            _step(2, "ping", {"loss": {"value": 0.0, "unit": "%"}, "rtt_avg": {"value": 0.7 / speed, "unit": "ms"}}),
        ], backend=backend),
        _scenario("peer-restart", "peer-restart", [
            _step(0, "wait_until", {"recovered.time": {"value": 15.1 / speed, "unit": "s"}}),
            _step(1, "stop", {"restart.recovery": {"value": 15.0 / speed, "unit": "s"},
                              "restart.rtt": {"value": None, "unit": "ms", "samples": [0.5 / speed + i * 0.01 for i in range(40)]}}),
        ], backend=backend),
        _scenario("no-endpoint", "no-endpoint <script>alert(1)</script>", [], status="failed",
                  error="step 1 <b>handshake</b> | failed", backend=backend),
    ]
    for loss in LOSSES:
        for delay in DELAYS:
            rate = 20e6 * speed / (1 + 4 * float(loss.rstrip("%"))) / (1 + int(delay.rstrip("ms")) / 20)
            case = f"loss={loss},delay={delay}"
            scenarios.append(_scenario(
                f"throughput-conditions[{case}]", "throughput-conditions",
                [_step(1, "iperf3", {"tunnel.throughput": {"value": round(rate), "unit": "bit/s", "samples": [rate] * 3}})],
                matrix={"links.0.loss": loss, "links.0.delay": delay}, case=case, backend=backend))
    return {"schema_version": 1, "run_id": f"run-{kernel}-{backend}", "started": "2026-11-25T14:00:00+00:00",
            "environment": {"kernel_release": kernel, "backend_requested": backend, "backend_auto_resolves_to": "kernel",
                            "wireguard_go_version": "v0.0.20220316", "wireguard_tools_version": "v1.0.20210914",
                            "harness_version": "0.1.0", "cpu": "QEMU TCG", "cpus": 2, "netem": True},
            "scenarios": scenarios, "wall_seconds": 30.0, "summary": {"passed": len(scenarios) - 1, "failed": 1}}


@pytest.fixture(scope="module")
def matrix_summary(tmp_path_factory) -> Path:
    tmp_path = tmp_path_factory.mktemp("matrix")
    combos = []
    for number, (spec, release, backend) in enumerate(COMBOS):
        folder = tmp_path / f"stamp-{spec}-{backend}"
        folder.mkdir()
        (folder / "results.json").write_text(json.dumps(_results(release, backend, speed=1.0 + number)))
        combos.append({"kernel_spec": spec, "kernel_release": release, "backend": backend,
                       "results": str(folder / "results.json"), "exit_code": 1, "error": None, "seconds": 60})
    path = tmp_path / "stamp-matrix.json"
    path.write_text(json.dumps({"kernels": ["6.1", "6.12"], "backends": ["kernel", "wireguard-go"], "combinations": combos}))
    return path


@pytest.fixture(scope="module")
def page(matrix_summary: Path) -> str:
    """The page for the four inputs, drawn once (plots take seconds on a busy host)."""
    return render_html(load_inputs([matrix_summary]))


class PageParser(HTMLParser):
    """Collects tables (rows of cell texts), images, every attribute value, headings and
    the no-data notes."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[dict[str, str]] = []
        self.attribute_values: list[str] = []
        self.headings: list[str] = []
        self.nodata: list[str] = []
        self.text: list[str] = []
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._capture: str | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        self.attribute_values += [v for _, v in attrs if v]
        if tag == "table":
            self._table = attributes.get("class", "")
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "img":
            self.images.append(attributes)
        elif tag == "h2":
            self._capture, self.headings = "h2", self.headings + [""]
        elif tag == "p" and attributes.get("class") == "nodata":
            self._capture, self.nodata = "nodata", self.nodata + [""]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None
        elif tag in ("h2", "p"):
            self._capture = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data + " ")
        if self._capture == "h2":
            self.headings[-1] += data
        elif self._capture == "nodata":
            self.nodata[-1] += data


def _parse(page: str) -> PageParser:
    parser = PageParser()
    parser.feed(page)
    parser.close()
    return parser


def test_matrix_summary_expands_to_its_four_combinations(matrix_summary: Path) -> None:
    runs = load_inputs([matrix_summary])
    assert [run.label for run in runs] == [f"{release} / {backend}" for _, release, backend in COMBOS]
    assert all(run.matrix_summary == matrix_summary for run in runs)
    direct = runs[0].scenarios[0]
    # two unnamed pings both record rtt_avg: told apart by their step
    assert [m.name for m in direct.metrics] == ["time_to_handshake", "step2.loss", "step2.rtt_avg", "step3.loss", "step3.rtt_avg"]


def test_html_summary_table_environment_and_embedded_plots(matrix_summary: Path, page: str) -> None:
    runs = load_inputs([matrix_summary])
    parsed = _parse(page)

    summary = parsed.tables["summary"]
    header, body = summary[0], summary[1:]
    assert header == ["scenario", "case"] + [run.label for run in runs]
    assert len(body) == 3 + len(LOSSES) * len(DELAYS)  # one row per case
    direct = next(row for row in body if row[0] == "direct")
    assert direct[2].startswith("passed") and "handshake 20 ms" in direct[2]  # 0.02 s at speed 1
    assert "handshake 5 ms" in direct[5]  # speed 4: the inputs' own numbers, not one copied across
    throughput = next(row for row in body if row[1] == "loss=0%,delay=2ms")
    assert throughput[0] == "throughput-conditions" and "tunnel.throughput 18.2 Mbit/s" in throughput[2]  # 20 Mbit/s / (1 + 2/20)
    failed = next(row for row in body if row[0].startswith("no-endpoint"))
    assert all(cell.startswith("FAILED") for cell in failed[2:]) and "<b>handshake</b>" in failed[2]

    environment = {row[0]: row[1:] for row in parsed.tables["environment"]}
    assert environment["kernel"] == [release for _, release, _ in COMBOS]
    assert environment["backend used"] == [backend for _, _, backend in COMBOS]
    assert environment["wireguard-go"] == ["v0.0.20220316"] * 4

    # every plot has data here, each a PNG embedded in the page
    assert parsed.headings[2:7] == ["Throughput against loss and delay", "RTT distributions", "Recovery-time distributions", "Across kernels", "Side by side"]
    assert parsed.nodata == []
    assert len(parsed.images) == 5
    for image in parsed.images:
        assert image["src"].startswith("data:image/png;base64,")
        png = base64.b64decode(image["src"].split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000

    # self-contained: nothing to fetch, no scripts; results text is escaped
    assert "http://" not in page and "https://" not in page
    assert not any(v.startswith(("//", "http")) for v in parsed.attribute_values)
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>handshake" not in page


def test_plots_are_left_out_with_a_note_when_there_is_no_data(tmp_path: Path) -> None:
    data = _results("6.1.0-56-amd64", "kernel", 1.0)
    data["scenarios"] = data["scenarios"][:1]  # `direct` only: no matrix, no samples, no recovery
    (tmp_path / "results.json").write_text(json.dumps(data))
    parsed = _parse(render_html(load_inputs([tmp_path])))
    assert parsed.images == []
    assert len(parsed.nodata) == 5
    assert any("loss or delay" in note for note in parsed.nodata)
    assert any("Fewer than two kernels" in note for note in parsed.nodata)
    assert any("Only one input" in note for note in parsed.nodata)


def test_repeats_are_merged_into_medians(tmp_path: Path) -> None:
    data = _results("6.1.0-56-amd64", "kernel", 1.0)
    first = data["scenarios"][1]
    repeats = []
    for n, recovery in enumerate([15.0, 16.0, 30.0], 1):
        entry = json.loads(json.dumps(first))
        entry.update(key=first["id"], repeat=n, repeats=3)
        entry["steps"][1]["measurements"]["restart.recovery"]["value"] = recovery
        repeats.append(entry)
    data["scenarios"] = repeats
    (tmp_path / "results.json").write_text(json.dumps(data))
    (run,) = load_inputs([tmp_path / "results.json"])
    (record,) = run.scenarios
    recovery = record.metric("restart.recovery")
    assert recovery.value == 16.0 and recovery.repeat_values == [15.0, 16.0, 30.0]
    assert len(record.metric("restart.rtt").samples) == 120  # every RTT of every repeat


def test_markdown_summary(matrix_summary: Path) -> None:
    runs = load_inputs([matrix_summary])
    text = render_markdown(runs)
    lines = text.split("### Across kernels")[0].splitlines()
    header = next(line for line in lines if line.startswith("| scenario"))
    assert header == "| scenario | case | " + " | ".join(run.label for run in runs) + " |"
    rows = [line for line in lines if line.startswith("| ") and not line.startswith(("| scenario", "| ---"))]
    table_rows = [r for r in rows if r.split(" | ")[0] in ("| direct", "| peer-restart", "| throughput-conditions") or "no-endpoint" in r]
    assert len(table_rows) == 3 + len(LOSSES) * len(DELAYS)
    failed = next(r for r in rows if "no-endpoint" in r)
    # one row per line and the right number of cells: pipes and tags in results are escaped
    assert failed.count(" | ") == len(runs) + 1 and "\\|" in failed and "<script>" not in failed
    assert "**FAILED**" in failed
    assert "<details><summary>Environment</summary>" in text


def _trend_inputs(tmp_path: Path, releases: list[str]) -> list:
    """One input per kernel, given out of order; each kernel's handshake takes a step
    longer than the last one's: speed 1 / (release's rank + 1)."""
    ranked = sorted(releases, key=lambda r: [int(n) for n in r.replace("+deb", "-").replace("-amd64", "").replace("-", ".").split(".")])
    paths = []
    for release in releases:
        data = _results(release, "kernel", speed=1.0 / (ranked.index(release) + 1))
        data["scenarios"] = data["scenarios"][:1]  # `direct`: a handshake time and two ping RTTs
        (tmp_path / release).mkdir()
        (tmp_path / release / "results.json").write_text(json.dumps(data))
        paths.append(tmp_path / release)
    return load_inputs(paths)


def test_across_kernels_a_trend_per_measurement_oldest_to_newest(tmp_path: Path) -> None:
    from harness.report.tables import kernel_trend_rows

    runs = _trend_inputs(tmp_path, ["6.12.100+deb12-amd64", "6.1.0-9-amd64", "6.1.0-47-amd64"])
    kernels, rows = kernel_trend_rows(runs)
    assert kernels == ["6.1.0-9-amd64", "6.1.0-47-amd64", "6.12.100+deb12-amd64"]  # versions, not strings
    handshake = next(r for r in rows if r[1] == "time_to_handshake")
    assert handshake[:3] == ("direct", "time_to_handshake", "kernel")
    assert handshake[3] == pytest.approx([0.02, 0.04, 0.06])
    markdown = render_markdown(runs)
    table = markdown.split("### Across kernels (3, oldest to newest)")[1]
    assert "| scenario | measurement | backend | 6.1.0-9-amd64 | 6.1.0-47-amd64 | 6.12.100+deb12-amd64 | first → last |" in table
    assert "| direct | time_to_handshake | kernel | 20 ms | 40 ms | 60 ms | +200% |" in table
    parsed = _parse(render_html(runs))
    assert "Across kernels" in parsed.headings and not any("Fewer than two kernels" in note for note in parsed.nodata)
    # one kernel only: no trend, and the page says why
    one = _parse(render_html(runs[:1]))
    assert any("Fewer than two kernels" in note for note in one.nodata)
    assert "### Across kernels" not in render_markdown(runs[:1])


def test_cli_writes_html_and_markdown(matrix_summary: Path, tmp_path: Path, capsys) -> None:
    html_path, md_path = tmp_path / "out" / "report.html", tmp_path / "summary.md"
    one_input = matrix_summary.parent / "stamp-6.1-kernel"  # a run folder; one input draws fewer plots
    assert main(["report", str(one_input), "-o", str(html_path), "--markdown", str(md_path)]) == 0
    assert _parse(html_path.read_text()).tables["summary"][0][2] == "6.1.0-56-amd64 / kernel"
    assert md_path.read_text().startswith("## wgharness report")
    assert main(["report", str(matrix_summary), "--format", "markdown", "-o", "-"]) == 0
    assert "| scenario | case |" in capsys.readouterr().out


def test_cli_rejects_what_is_not_results(tmp_path: Path, capsys) -> None:
    bogus = tmp_path / "bogus.json"
    bogus.write_text('{"hello": 1}')
    assert main(["report", str(bogus), "-o", str(tmp_path / "r.html")]) == 2
    assert "bogus.json" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()
    with pytest.raises(ReportInputError):
        load_inputs([tmp_path / "missing"])


@pytest.mark.parametrize(
    "value, unit, shown",
    [(18388805, "bit/s", "18.4 Mbit/s"), (0.0124, "s", "12.4 ms"), (15.0985, "s", "15.1 s"), (2.0, "%", "2.0 %"), (334, "probes", "334 probes"), (None, "s", "-")],
)
def test_values_are_shown_with_scaled_units(value, unit, shown) -> None:
    assert format_value(value, unit) == shown


def _distinct_colours(png: Path) -> tuple[int, float]:
    """(distinct colours on a coarse grid, share of pixels that are not white)."""
    import matplotlib.image

    pixels = matplotlib.image.imread(png)[..., :3]
    grid = pixels[::8, ::8].reshape(-1, 3)
    colours = {tuple((c * 255).round().astype(int)) for c in grid}
    not_white = float((grid.min(axis=1) < 0.94).mean())
    return len(colours), not_white


def test_page_renders_in_headless_chromium(page: str, tmp_path_factory) -> None:
    """Rendered by a real browser with no network: the screenshot is kept (path printed)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium): the page is not rendered")
    out = tmp_path_factory.mktemp("report-render")
    page_path = out / "report.html"
    page_path.write_text(page)
    screenshot = out / "report-screenshot.png"
    argv = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
            f"--user-data-dir={out / 'profile'}", f"--screenshot={screenshot}", "--window-size=1400,3000", page_path.as_uri()]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and screenshot.is_file(), done.stderr[-2000:]
    print(f"report screenshot: {screenshot}")
    colours, not_white = _distinct_colours(screenshot)
    # a blank or unstyled page has a handful of colours; tables, status badges and four
    # plots in the input colours have many
    assert colours > 50, colours
    assert not_white > 0.05, not_white


def test_a_folder_of_shards_is_one_input(tmp_path: Path, capsys) -> None:
    data = _results("6.1.0-56-amd64", "kernel", 1.0)
    everything = data["scenarios"]
    for index, part in enumerate((everything[::3], everything[1::3]), 1):  # shard 3/3 did not arrive
        shard = json.loads(json.dumps(data))
        shard.update(run_id=f"shard-{index}", scenarios=part)
        shard["environment"]["shard"] = {"index": index, "count": 3}
        (tmp_path / "all" / f"shard-{index}" / "run").mkdir(parents=True)
        (tmp_path / "all" / f"shard-{index}" / "run" / "results.json").write_text(json.dumps(shard))
    (run,) = load_inputs([tmp_path / "all"])
    assert run.run_id == "all" and run.label == "6.1.0-56-amd64 / kernel"
    assert [s.id for s in run.scenarios] == [s["id"] for s in everything[::3] + everything[1::3]]
    assert run.notes == [f"{tmp_path / 'all'}: shard 3/3 missing: their scenarios are absent"]
    environment = dict(_parse(render_html([run])).tables["environment"][1:])
    assert environment.get("merged from") == "2 runs: shards 1/3, 2/3"
    assert main(["report", str(tmp_path / "all"), "-o", str(tmp_path / "r.html")]) == 0
    assert "wgh report: note: " in capsys.readouterr().err
