import math

import pytest

from promptmill.diagnosis import DiagnoseError, diagnose
from promptmill.diagnosis.calibration import calibrate
from promptmill.diagnosis.data import load_run
from promptmill.errors import PromptmillError
from promptmill.evaluation import Evaluator
from promptmill.metrics import get_metric
from promptmill.models.base import GenerationParams
from promptmill.models.fake import FakeModel
from promptmill.prompt import Prompt
from promptmill.task import Example


def _run(store, examples, fn, logprobs=False):
    evaluator = Evaluator(FakeModel(fn=fn, name="analysis"), get_metric("exact"), store,
                          progress=False, params=GenerationParams(max_tokens=16,
                                                                  logprobs=logprobs))
    return evaluator.evaluate(examples, Prompt(instruction="Answer."), task="t").run_id


def _two_topics():
    weather = [f"will it rain in town {i} tomorrow with clouds and wind" for i in range(12)]
    maths = [f"what is {i} plus {i + 3} in arithmetic sums" for i in range(12)]
    return [Example(f"w{i}", {"input": t, "kind": "weather"}, "x") for i, t in enumerate(weather)] \
        + [Example(f"m{i}", {"input": t, "kind": "maths"}, "x") for i, t in enumerate(maths)]


def test_failures_cluster_by_topic(store):
    run = _run(store, _two_topics(), lambda text: "wrong")
    d = diagnose(run, store=store)
    assert len(d.clusters) >= 2
    for cluster in d.clusters:
        kinds = {e["input"].split("\n")[0].split()[0] for e in cluster["examples"]}
        assert len(kinds) == 1  # each cluster holds one topic
    assert sum(c["size"] for c in d.clusters) == 24
    terms = " ".join(t for c in d.clusters for t in c["terms"])
    assert "weather" in terms and "maths" in terms


def test_too_few_failures_give_no_clusters(store):
    examples = [Example(str(i), {"input": f"q{i}"}, "a") for i in range(10)]
    run = _run(store, examples, lambda text: "a" if text != "q1" else "b")
    assert diagnose(run, store=store).clusters == []


def test_a_slice_that_is_really_worse_is_flagged(store):
    run = _run(store, _two_topics(), lambda text: "x" if "rain" in text else "wrong")
    d = diagnose(run, store=store)
    maths = next(s for s in d.slices if s["by"] == "field:kind" and s["value"] == "maths")
    weather = next(s for s in d.slices if s["by"] == "field:kind" and s["value"] == "weather")
    assert maths["mean"] == 0.0 and maths["below"] and maths["n"] == 12
    assert weather["mean"] == 1.0 and not weather["below"]
    assert d.slices[0]["mean"] == 0.0  # worst first
    assert any(s.source == "slice" and "maths" in s.message for s in d.suggestions)


def test_calibration_from_logprobs(store):
    # one-word answers get confidence exp(-0.5); two-word answers exp(-1.0)
    examples = [Example(str(i), {"input": f"q{i}"}, "yes") for i in range(20)]
    run = _run(store, examples, lambda t: "yes" if int(t[1:]) < 10 else "no way",
               logprobs=True)
    cal = calibrate(load_run(store, run))
    assert cal.n == 20 and cal.accuracy == 0.5
    high, low = math.exp(-0.5), math.exp(-1.0)
    assert cal.mean_confidence == pytest.approx((high + low) / 2)
    # ECE: half the answers at confidence e^-0.5 all right, half at e^-1 all wrong
    assert cal.ece == pytest.approx(0.5 * (1 - high) + 0.5 * low)
    filled = [b for b in cal.bins if b["count"]]
    assert [b["count"] for b in filled] == [10, 10]
    assert diagnose(run, store=store).calibration["ece"] == pytest.approx(cal.ece)


def test_calibration_without_logprobs_is_a_clear_error(store):
    run = _run(store, [Example("1", {"input": "q"}, "a")], lambda t: "b")
    assert diagnose(run, store=store).calibration is None  # optional: silently absent
    with pytest.raises(DiagnoseError) as info:
        diagnose(run, store=store, calibration=True)
    assert "no log-probabilities" in info.value.one_line()
    assert "--calibration --compute" in info.value.one_line()


def test_unknown_run_is_a_clear_error(store):
    with pytest.raises(PromptmillError) as info:
        diagnose(999, store=store)
    assert "run 999 does not exist" in info.value.one_line()


def test_a_run_without_failures(store):
    examples = [Example(str(i), {"input": f"q{i}"}, "a") for i in range(8)]
    d = diagnose(_run(store, examples, lambda t: "a"), store=store)
    assert d.n_failures == 0 and d.categories == [] and d.suggestions == []
    assert d.mean == 1.0
