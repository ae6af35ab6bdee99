"""harness.scenario.yamlsource: YAML with a line for every value."""

import pytest

from harness.errors import Problem, ScenarioError
from harness.scenario.yamlsource import SourceDoc, format_path, parse_yaml

TEXT = """\
name: demo
nodes:
  a: {}
  b:
    router: true
links:
  - ends: [a, b]
    mtu: 1400
  - {ends: [b, a]}
"""


def test_data_matches_safe_load():
    import yaml

    doc = parse_yaml(TEXT, "f.yaml")
    assert doc.data == yaml.safe_load(TEXT)
    assert doc.file == "f.yaml"


def test_line_map_for_scalars_sequences_and_nested_values():
    doc = parse_yaml(TEXT, "f.yaml")
    assert doc.lines[("name",)] == 1
    assert doc.lines[("nodes", "a")] == 3
    assert doc.lines[("nodes", "b", "router")] == 5
    assert doc.lines[("links", 0, "ends")] == 7
    assert doc.lines[("links", 0, "ends", 1)] == 7
    assert doc.lines[("links", 0, "mtu")] == 8
    assert doc.lines[("links", 1)] == 9
    assert doc.lines[("links", 1, "ends", 0)] == 9


def test_line_of_falls_back_to_nearest_existing_parent():
    doc = parse_yaml(TEXT, "f.yaml")
    # a key that is not in the file (e.g. a missing required field) → its parent's line
    assert doc.line_of(("links", 0, "addresses")) == doc.lines[("links", 0)]
    assert doc.line_of(("links", 1, "nope", 3)) == 9
    assert doc.line_of(("nowhere",)) == doc.lines[()]


def test_problem_formats_file_line_field_message():
    doc = parse_yaml(TEXT, "scenarios/f.yaml")
    problem = doc.problem(("links", 0, "mtu"), "too big")
    assert problem == Problem("scenarios/f.yaml", 8, "links[0].mtu", "too big")
    assert str(problem) == "scenarios/f.yaml:8: links[0].mtu: too big"


def test_format_path():
    assert format_path(("links", 2, "ends")) == "links[2].ends"
    assert format_path(("steps", 0, "ping", "from")) == "steps[0].ping.from"
    assert format_path(()) == ""
    assert format_path((0, "x")) == "[0].x"


def test_problem_without_line_or_field():
    assert str(Problem("f.yaml", None, "", "cannot read")) == "f.yaml: cannot read"
    assert str(Problem("f.yaml", 3, "", "bad")) == "f.yaml:3: bad"


def test_merge_keys_are_resolved_and_lines_point_at_the_anchor():
    text = """\
defaults: &fast
  delay: 1ms
  mtu: 1400
links:
  - <<: *fast
    ends: [a, b]
"""
    doc = parse_yaml(text, "f.yaml")
    assert doc.data["links"][0] == {"delay": "1ms", "mtu": 1400, "ends": ["a", "b"]}
    assert doc.lines[("links", 0, "ends")] == 6
    assert doc.lines[("links", 0, "mtu")] == 3  # merged value: where it was written


def test_merge_key_overridden_by_explicit_key():
    # YAML merge semantics (and yaml.safe_load): keys written in the mapping override merged ones
    text = """\
defaults: &fast
  delay: 1ms
  mtu: 1400
links:
  - <<: *fast
    mtu: 9000
    ends: [a, b]
"""
    doc = parse_yaml(text, "f.yaml")
    assert doc.data["links"][0] == {"delay": "1ms", "mtu": 9000, "ends": ["a", "b"]}
    assert doc.lines[("links", 0, "mtu")] == 6


def test_merge_of_several_anchors_with_a_common_key():
    import yaml

    text = """\
one: &one {mtu: 1400, delay: 1ms}
two: &two {mtu: 9000}
link:
  <<: [*one, *two]
"""
    doc = parse_yaml(text, "f.yaml")
    assert doc.data == yaml.safe_load(text)
    # PyYAML (the reference users get from yaml.safe_load) lets the later anchor win
    assert doc.data["link"] == {"mtu": 9000, "delay": "1ms"}


def test_duplicate_key_error_names_line_and_path():
    text = """\
nodes:
  a: {}
  b: {}
  a: {router: true}
"""
    with pytest.raises(ScenarioError) as exc:
        parse_yaml(text, "scenarios/dup.yaml")
    assert str(exc.value) == "scenarios/dup.yaml:4: nodes.a: duplicate key"
    assert exc.value.problems == [Problem("scenarios/dup.yaml", 4, "nodes.a", "duplicate key")]


def test_duplicate_top_level_key():
    with pytest.raises(ScenarioError) as exc:
        parse_yaml("name: x\nsteps: []\nname: y\n", "f.yaml")
    assert str(exc.value) == "f.yaml:3: name: duplicate key"


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("nodes:\n  a: {}\n b: {}\n", 3, "invalid YAML: "),
        ("name: x\nnodes: {a: [1, 2}\n", 2, "invalid YAML: "),
        ("name: x\n\nnodes: *missing\n", 3, "invalid YAML: found undefined alias"),
        ("name: x\n---\nname: y\n", 2, "invalid YAML: but found another document"),
    ],
)
def test_invalid_yaml_error_has_the_line(text, line, what):
    with pytest.raises(ScenarioError) as exc:
        parse_yaml(text, "scenarios/bad.yaml")
    (problem,) = exc.value.problems
    assert problem.file == "scenarios/bad.yaml"
    assert problem.line == line
    assert problem.field == ""
    assert problem.message.startswith(what)
    assert str(exc.value).startswith(f"scenarios/bad.yaml:{line}: invalid YAML: ")


@pytest.mark.parametrize("text, line", [("", 1), ("# only\n# comments\n", 2)])
def test_empty_document_is_an_error_with_a_line(text, line):
    with pytest.raises(ScenarioError) as err:
        parse_yaml(text, "f.yaml")
    (problem,) = err.value.problems
    assert problem.line == line and "no content" in problem.message


def test_complex_mapping_key_is_rejected_with_location():
    with pytest.raises(ScenarioError) as exc:
        parse_yaml("nodes:\n  ? [a, b]\n  : {}\n", "f.yaml")
    assert "mapping keys must be plain values" in str(exc.value)
    assert str(exc.value).startswith("f.yaml:2: nodes: ")
