"""harness.units: the human units of scenario files."""

import math

import pytest

from harness.units import format_duration, parse_duration, parse_percent


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("20ms", 0.02),
        ("3s", 3.0),
        ("1.5s", 1.5),
        ("250us", 250e-6),
        ("250µs", 250e-6),
        ("2m", 120.0),
        ("2min", 120.0),
        ("1h", 3600.0),
        ("7", 7.0),  # a bare number in a string is seconds too
        (" 500 ms ", 0.5),
        (0, 0.0),
        (2, 2.0),
        (0.25, 0.25),
    ],
)
def test_parse_duration_accepts(text, seconds):
    result = parse_duration(text)
    assert isinstance(result, float)
    assert result == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["3 parsecs", "ms", "", "-1s", "1.s", "3S", "1d", None, [1], {"s": 1}])
def test_parse_duration_rejects_garbage_with_example_in_message(bad):
    with pytest.raises(ValueError) as exc:
        parse_duration(bad)
    assert str(exc.value) == f"expected a duration like '500ms' or '3s', got {bad!r}"


@pytest.mark.parametrize("flag", [True, False])
def test_parse_duration_rejects_booleans(flag):
    # bool is an int subclass: `within: yes` must not silently mean 1 second
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(flag)


def test_parse_duration_rejects_negative_numbers():
    with pytest.raises(ValueError, match=r"finite number ≥ 0, got -1"):
        parse_duration(-1)
    with pytest.raises(ValueError, match="finite number"):
        parse_duration(-0.5)


def test_parse_duration_rejects_nan():
    # YAML `.nan` arrives as float('nan'): a NaN timeout compares false with everything
    with pytest.raises(ValueError):
        parse_duration(math.nan)


@pytest.mark.parametrize(
    ("text", "points"),
    [("1%", 1.0), ("0.5%", 0.5), ("0%", 0.0), ("100%", 100.0), (" 25 % ", 25.0), (3, 3.0), (0.1, 0.1), (100, 100.0)],
)
def test_parse_percent_accepts(text, points):
    assert parse_percent(text) == pytest.approx(points)


@pytest.mark.parametrize("bad", ["1", "%", "1 percent", "-1%", "one%", None, [1]])
def test_parse_percent_rejects_garbage(bad):
    with pytest.raises(ValueError) as exc:
        parse_percent(bad)
    assert str(exc.value) == f"expected a percentage like '1%', got {bad!r}"


@pytest.mark.parametrize("bad", ["100.1%", "150%", 101, -1, -0.01])
def test_parse_percent_rejects_out_of_range(bad):
    with pytest.raises(ValueError) as exc:
        parse_percent(bad)
    assert str(exc.value) == f"percentage must be within 0%..100%, got {bad!r}"


def test_parse_percent_rejects_booleans():
    with pytest.raises(ValueError, match="expected a percentage"):
        parse_percent(True)


def test_parse_percent_rejects_nan():
    with pytest.raises(ValueError):
        parse_percent(math.nan)


def test_format_duration():
    assert format_duration(0.02) == "20ms"
    assert format_duration(3.0) == "3s"
    assert format_duration(1.5) == "1.5s"
