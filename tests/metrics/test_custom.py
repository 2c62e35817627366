"""python:FILE.py:FUNCTION metrics: a user's own scoring function."""

from __future__ import annotations

import pytest
from metric_helpers import ex, score

from promptmill.errors import ConfigError, PromptmillError
from promptmill.metrics import Score, get_metric

USER_METRICS = '''
from promptmill.metrics import Score

def starts_right(prediction, example):
    return prediction.startswith(example.target)

def graded(prediction, example):
    return (0.5, "half right")

def as_score(prediction, example):
    return Score(0.25, "a quarter")

def too_generous(prediction, example):
    return Score(2.0, "too generous")

def negative(prediction, example):
    return -0.5

def not_a_number(prediction, example):
    return float("nan")

def infinite(prediction, example):
    return (float("inf"), "way too generous")

def rounding_noise(prediction, example):
    return 0.1 + 0.2 + 0.7  # 1.0000000000000002

def leaves(prediction, example):
    import sys
    sys.exit(3)

class Stop(BaseException):
    pass

def base_exception(prediction, example):
    raise Stop("not an Exception")

def length_ok(prediction, example, limit=5):
    return len(prediction) <= limit

def broken(prediction, example):
    return 1 / 0

def wrong_type(prediction, example):
    return "yes"
'''


@pytest.fixture
def metrics_file(tmp_path):
    path = tmp_path / "my_metrics.py"
    path.write_text(USER_METRICS)
    return path


def test_python_metric_return_kinds(metrics_file):
    example = ex("Par")
    assert score(f"python:{metrics_file}:starts_right", "Paris", example) == Score(1.0)
    assert score(f"python:{metrics_file}:graded", "x", example) == Score(0.5, "half right")
    assert score(f"python:{metrics_file}:as_score", "x", example) == Score(0.25, "a quarter")
    assert score(f"python:{metrics_file}:rounding_noise", "x", example) == Score(1.0)


@pytest.mark.parametrize(("function", "shown"), [
    ("too_generous", "returned the score 2, outside [0, 1]"),
    ("negative", "returned the score -0.5, outside [0, 1]"),
    ("not_a_number", "returned the score nan"),
    ("infinite", "returned the score inf"),
])
def test_python_metric_out_of_range_is_an_error_never_a_clamp(metrics_file, function, shown):
    with pytest.raises(PromptmillError) as err:
        score(f"python:{metrics_file}:{function}", "x", ex())
    message = str(err.value)
    assert f"{metrics_file}:{function}" in message and shown in message
    assert "for example 'e1'" in message and "Fix:" in message


@pytest.mark.parametrize(("function", "shown"), [
    ("leaves", "the metric function called sys.exit(3) (example 'e1')"),
    ("base_exception", "the metric function raised Stop: not an Exception (example 'e1')"),
])
def test_python_metric_that_exits_is_a_one_line_error(metrics_file, function, shown):
    with pytest.raises(PromptmillError) as err:
        score(f"python:{metrics_file}:{function}", "x", ex())
    assert f"{metrics_file}:{function}" in str(err.value) and shown in str(err.value)


def test_python_metric_file_that_exits_on_import(tmp_path):
    bad = tmp_path / "exits.py"
    bad.write_text("import sys\nsys.exit('bye')\n")
    with pytest.raises(ConfigError, match=r"importing the metric file failed \(it called "
                                          r"sys.exit\('bye'\)\)"):
        get_metric(f"python:{bad}:f")


def test_python_metric_file_that_is_a_directory(tmp_path):
    (tmp_path / "metrics.py").mkdir()
    with pytest.raises(ConfigError, match="this is a directory, not a metric file"):
        get_metric("python:metrics.py:score", base_dir=tmp_path)


def test_python_metric_relative_to_base_dir_with_params(metrics_file, tmp_path, monkeypatch):
    metric = get_metric("python:my_metrics.py:length_ok", {"limit": 3}, base_dir=tmp_path)
    assert metric.score("abcd", ex()).value == 0.0
    monkeypatch.chdir(tmp_path)
    assert get_metric("python:my_metrics.py:length_ok").score("abcd", ex()).value == 1.0
    assert metric.describe() == f"python:{metrics_file}:length_ok"


def test_python_metric_missing_file_or_function(metrics_file, tmp_path):
    with pytest.raises(ConfigError, match="metric file not found.*'nope'") as err:
        get_metric("python:nowhere.py:nope", base_dir=tmp_path)
    assert str(tmp_path / "nowhere.py") in str(err.value)
    with pytest.raises(ConfigError, match="no function 'nope'.*starts_right"):
        get_metric(f"python:{metrics_file}:nope")
    with pytest.raises(ConfigError, match="write python:FILE.py:FUNCTION"):
        get_metric(f"python:{metrics_file}")


def test_python_metric_bad_params_or_import_error(metrics_file, tmp_path):
    with pytest.raises(ConfigError, match="cannot be called as starts_right"):
        get_metric(f"python:{metrics_file}:starts_right", {"limit": 3})
    bad = tmp_path / "bad.py"
    bad.write_text("import not_a_module_anywhere\n")
    with pytest.raises(ConfigError, match="importing the metric file failed.*ModuleNotFound"):
        get_metric(f"python:{bad}:f")


def test_python_metric_bugs_raise_errors_naming_the_function(metrics_file):
    with pytest.raises(PromptmillError, match=r"broken: the metric function raised "
                                              r"ZeroDivisionError"):
        score(f"python:{metrics_file}:broken", "x", ex())
    with pytest.raises(PromptmillError, match="wrong_type: the metric function returned 'yes'"):
        score(f"python:{metrics_file}:wrong_type", "x", ex())
