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
    return Score(2.0, "too generous")

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
    assert score(f"python:{metrics_file}:as_score", "x", example) == Score(1.0, "too generous")


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
