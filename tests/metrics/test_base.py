"""What every metric shares: text normalization."""

from __future__ import annotations

from promptmill.metrics import normalize


def test_normalize_is_squad_style():
    assert normalize("  The Eiffel-Tower! ") == "eiffeltower"


# --- every Metric subclass's score is checked: no silent clamp, whoever wrote the metric ----

import math  # noqa: E402

import pytest  # noqa: E402
from metric_helpers import ex  # noqa: E402

from promptmill.metrics import Metric, Score  # noqa: E402
from promptmill.metrics.base import MetricError  # noqa: E402


class Returns(Metric):
    """A third-party metric that returns whatever it was built with."""

    name = "returns"

    def __init__(self, value):
        self.value = value

    def score(self, prediction, example):
        return self.value if not isinstance(self.value, float | int) else Score(self.value)


class Child(Returns):
    def score(self, prediction, example):
        return super().score(prediction, example)


@pytest.mark.parametrize(("value", "shown"), [
    (1.5, "returned the score 1.5, outside [0, 1]"),
    (-0.01, "returned the score -0.01, outside [0, 1]"),
    (7, "returned the score 7, outside [0, 1]"),
    (math.nan, "returned the score nan"),
    (math.inf, "returned the score inf"),
    (-math.inf, "returned the score -inf"),
    (Score("high"), "returned Score('high'), not a Score with a number"),
    (0.5, None),
    ("0.5", "returned '0.5', not a Score with a number"),
    (None, "returned None, not a Score with a number"),
])
@pytest.mark.parametrize("cls", [Returns, Child])
def test_any_metric_returning_a_bad_score_is_an_error_naming_metric_and_example(cls, value,
                                                                               shown):
    metric = cls(value)
    if shown is None:
        assert metric.score("x", ex()) == Score(0.5)
        return
    with pytest.raises(MetricError) as err:
        metric.score("x", ex())
    assert f"metric 'returns' {shown} for example 'e1'" in str(err.value)


def test_numpy_and_rounding_noise_are_accepted_as_plain_floats():
    np = pytest.importorskip("numpy")
    assert Returns(Score(np.float32(0.25))).score("x", ex()) == Score(0.25)
    assert Returns(1 + 1e-12).score("x", ex()).value == 1.0


def test_a_huge_integer_score_is_an_error_and_feedback_is_kept_as_text():
    with pytest.raises(MetricError, match="returned a score too large for a float"):
        Returns(Score(10**400)).score("x", ex())
    assert Returns(Score(1, {"why": "dict"})).score("x", ex()) == Score(1.0, "{'why': 'dict'}")
