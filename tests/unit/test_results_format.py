"""results.json schema 2: what the writer produces validates against the shipped
JSON Schema; schema 1 files are upgraded; metric keys and directions."""

import json
from importlib import resources

import jsonschema
import pytest

from harness.results.load import ResultsError, load_results, upgrade
from harness.results.metrics import Direction, direction, is_timing, metric_keys
from harness.results.store import SCHEMA_VERSION, ResultsFile
from harness.run import ScenarioResult
from harness.scenario.load import load_data
from harness.steps.result import Measurement, StepResult

SCENARIO = {
    "name": "fmt",
    "nodes": {"a": {}, "b": {}},
    "links": [{"ends": ["a", "b"]}],
    "wireguard": {"a": {"peers": {"b": {"endpoint": "b"}}}, "b": {}},
    "steps": [
        {"handshake": {"between": ["a", "b"], "within": "2s"}},
        {"ping": {"from": "a", "to": "b"}},
        {"ping": {"from": "b", "to": "a"}},
        {"iperf3": {"from": "a", "to": "b", "record": "tunnel"}},
    ],
}


def schema() -> dict:
    return json.loads(resources.files("harness").joinpath("schema/results.schema.json").read_text())


def validate(document: dict) -> None:
    jsonschema.Draft202012Validator(schema()).validate(document)


def scenario_result(tmp_path, repeat: int = 1) -> ScenarioResult:
    case = load_data(SCENARIO)[0]
    artifacts = tmp_path / "results" / "run1" / "artifacts" / "abc123"
    artifacts.mkdir(parents=True)
    (artifacts / "wireguard-go-a.log").write_text("log")
    (artifacts / "iperf3-step4-tcp.json").write_text("{}")
    steps = [
        StepResult(0, "handshake", "handshake a ↔ b", True, measurements={"time_to_handshake": Measurement(0.012, "s")}),
        StepResult(1, "ping", "ping a → b", True, measurements={"loss": Measurement(0.0, "%"), "rtt": Measurement(None, "ms", samples=[0.2, 0.3])}),
        StepResult(2, "ping", "ping b → a", True, measurements={"loss": Measurement(0.0, "%")}),
        StepResult(
            3, "iperf3", "iperf3 a → b", True,
            measurements={"tunnel.throughput": Measurement(19e6, "bit/s", samples=[18e6, 20e6])},
            artifacts=[str(artifacts / "iperf3-step4-tcp.json")],
        ),
    ]
    return ScenarioResult(case, steps=steps, backends={"a": "wireguard-go", "b": "wireguard-go"}, run_id="abc123",
                          repeat=repeat, repeats=2, artifacts_dir=artifacts)


def test_written_results_validate_and_carry_keys_samples_and_relative_artifacts(tmp_path):
    results = ResultsFile(tmp_path / "results", "auto", run_id="run1")
    results.add(scenario_result(tmp_path).to_json())
    document = json.loads(results.path.read_text())
    validate(document)
    assert document["schema_version"] == SCHEMA_VERSION == 2
    scenario = document["scenarios"][0]
    assert (scenario["key"], scenario["repeat"], scenario["repeats"]) == ("fmt", 1, 2)
    assert scenario["artifacts"] == ["artifacts/abc123/iperf3-step4-tcp.json", "artifacts/abc123/wireguard-go-a.log"]
    assert scenario["steps"][3]["artifacts"] == ["artifacts/abc123/iperf3-step4-tcp.json"]
    assert (results.directory / scenario["steps"][3]["artifacts"][0]).exists()
    keys = [m["key"] for s in scenario["steps"] for m in s["measurements"].values()]
    assert keys == ["time_to_handshake", "step2.loss", "rtt", "step3.loss", "tunnel.throughput"]
    assert scenario["steps"][1]["measurements"]["rtt"] == {"value": None, "unit": "ms", "samples": [0.2, 0.3], "key": "rtt"}
    assert scenario["steps"][3]["measurements"]["tunnel.throughput"]["samples"] == [18e6, 20e6]


def test_schema_rejects_a_measurement_without_unit(tmp_path):
    results = ResultsFile(None, "auto")
    results.add(scenario_result(tmp_path).to_json())
    del results.data["scenarios"][0]["steps"][0]["measurements"]["time_to_handshake"]["unit"]
    with pytest.raises(jsonschema.ValidationError, match="'unit' is a required property"):
        validate(json.loads(json.dumps(results.data, default=str)))


def test_a_sharded_run_records_its_shard_and_validates(tmp_path):
    results = ResultsFile(tmp_path / "results", "auto", run_id="s2", shard={"index": 2, "count": 3})
    results.add(scenario_result(tmp_path).to_json())
    document = json.loads(results.path.read_text())
    validate(document)
    assert document["environment"]["shard"] == {"index": 2, "count": 3}
    assert "shard" not in ResultsFile(None, "auto").data["environment"]  # only in a sharded run's
    for wrong in ({"index": 0, "count": 3}, {"index": 1}, {"index": 1, "count": 2, "of": 9}):
        document["environment"]["shard"] = wrong
        with pytest.raises(jsonschema.ValidationError):
            validate(document)


V1 = {
    "schema_version": 1,
    "run_id": "old",
    "started": "2026-11-25T15:52:54+00:00",
    "wall_seconds": 1.0,
    "summary": {"passed": 1},
    "environment": {
        "kernel_release": "6.1.0", "kernel_version": "#1", "machine": "x86_64", "cpu": "x", "cpus": 2, "python": "3.11.7",
        "harness_version": "0.1.0", "backend_requested": "auto", "backend_auto_resolves_to": "wireguard-go",
        "wireguard_tools_version": None, "wireguard_go_version": None, "kernel_wireguard": False, "netem": False,
    },
    "scenarios": [
        {
            "id": "nat", "name": "nat", "file": "scenarios/nat.yaml", "file_sha256": "0" * 64, "case": None, "matrix": {},
            "status": "passed", "error": None, "backends": {"client": "wireguard-go"},
            "timing": {k: {"value": 0.1, "unit": "s"} for k in ("build", "steps", "teardown")},
            "steps": [
                {"index": i, "kind": "ping", "title": "ping", "expect": "pass", "expected_cause": None, "observed": "pass",
                 "outcome": "pass", "message": "", "seconds": 0.1, "diagnosis": None,
                 "measurements": {"loss": {"value": 0.0, "unit": "%"}}}
                for i in range(2)
            ],
        }
    ],
}


def test_a_run_says_how_many_cases_ran_side_by_side(tmp_path):
    results = ResultsFile(tmp_path / "results", "auto", run_id="j4")
    assert results.data["environment"]["workers"] == 1  # one by one, unless told
    results.set_workers(4)
    results.add(scenario_result(tmp_path).to_json())
    document = json.loads(results.path.read_text())
    validate(document)
    assert document["environment"]["workers"] == 4
    document["environment"]["workers"] = 0
    with pytest.raises(jsonschema.ValidationError):
        validate(document)


def test_schema_1_files_are_upgraded_to_2(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(V1))
    document = load_results(tmp_path)
    validate(document)
    scenario = document["scenarios"][0]
    assert (document["schema_version"], scenario["key"], scenario["repeat"]) == (2, "nat", 1)
    assert [s["measurements"]["loss"]["key"] for s in scenario["steps"]] == ["step1.loss", "step2.loss"]


def test_unknown_schema_versions_and_non_results_are_refused(tmp_path):
    with pytest.raises(ResultsError, match="schema_version 99"):
        upgrade({"schema_version": 99, "scenarios": []})
    (tmp_path / "results.json").write_text('{"benchmarks": []}')
    with pytest.raises(ResultsError, match="not a wgharness results file"):
        load_results(tmp_path / "results.json")


def test_metric_keys_prefix_only_names_recorded_by_several_steps():
    steps = [
        {"index": 0, "measurements": {"time_to_handshake": {}}},
        {"index": 1, "measurements": {"loss": {}, "v4.rtt_avg": {}}},
        {"index": 2, "measurements": {"loss": {}}},
    ]
    assert metric_keys(steps) == {(0, "time_to_handshake"): "time_to_handshake", (1, "loss"): "step2.loss", (1, "v4.rtt_avg"): "v4.rtt_avg", (2, "loss"): "step3.loss"}


@pytest.mark.parametrize(
    ("name", "unit", "expected", "timing"),
    [
        ("tunnel.throughput", "bit/s", Direction.HIGHER, False),
        ("time_to_handshake", "s", Direction.LOWER, True),
        ("restart.recovery", "s", Direction.LOWER, True),
        ("rekeyed.time", "s", Direction.LOWER, True),
        ("roam.outage", "s", Direction.LOWER, True),
        ("tunnel_v4.rtt_avg", "ms", Direction.LOWER, False),
        ("probe.rtt_p99", "ms", Direction.LOWER, False),
        ("udp.loss", "%", Direction.LOWER, False),
        ("udp.jitter", "ms", Direction.LOWER, False),
        ("tunnel.retransmits", "segments", Direction.LOWER, False),
        ("wan.keepalive_interval", "s", Direction.NONE, False),
        ("wan.initiation", "packets", Direction.NONE, False),
        ("roam.sent", "probes", Direction.NONE, False),
        ("wan.largest_frame", "bytes", Direction.NONE, False),
    ],
)
def test_direction_and_timing_of_every_measurement_the_steps_record(name, unit, expected, timing):
    assert direction(name, unit) is expected
    assert is_timing(name, unit) is timing


def test_a_matrix_folder_moved_elsewhere_still_reads(tmp_path):
    """A matrix summary names its runs beside it (relative paths), so the folder reads
    wherever it goes, e.g. as a CI artifact downloaded by another job; summaries written
    with absolute paths are found beside it too."""
    import json

    from harness.results.load import load_result_sets

    document = {"schema_version": 2, "run_id": "r", "environment": {"kernel_release": "6.1.0-57-amd64"}, "scenarios": [], "summary": {}}
    for name, results in (("relative", "r/results.json"), ("absolute", "/gone/elsewhere/r/results.json")):
        folder = tmp_path / name
        (folder / "r").mkdir(parents=True)
        (folder / "r" / "results.json").write_text(json.dumps(document))
        combination = {"kernel_spec": "6.1", "backend": "kernel", "results": results, "exit_code": 0}
        (folder / "x-matrix.json").write_text(json.dumps({"kernels": ["6.1"], "backends": ["kernel"], "combinations": [combination]}))
        (one,) = load_result_sets(folder / "x-matrix.json")
        assert one.path == folder / "r" / "results.json" and one.label == "6.1/kernel"
