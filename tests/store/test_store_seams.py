"""The store's data-access modules for traces, adapters and ratings, and the human metric
fed by its caller."""

from types import SimpleNamespace

import pytest

from promptmill.errors import ConfigError
from promptmill.evaluation import Evaluator
from promptmill.metrics import get_metric
from promptmill.metrics.human import HumanRating
from promptmill.models.fake import FakeModel
from promptmill.prompt import Prompt
from promptmill.ratings_binding import bind_ratings
from promptmill.store import adapters, ratings, traces, workbench
from promptmill.task import Example

EXAMPLES = [Example(str(i), {"input": f"q{i}"}, "yes") for i in range(3)]


def _run(store, task="yn"):
    return Evaluator(FakeModel(default="no"), get_metric("exact"), store,
                     progress=False).evaluate(EXAMPLES, Prompt(instruction="x"), task=task).run_id


def test_human_metric_scores_from_the_lookup_its_caller_gives():
    asked = []

    def lookup(example_id, output, task=None):
        asked.append((example_id, output, task))
        return [(1.0, "good"), (0.5, None)] if output == "yes" else []

    metric = HumanRating(lookup, task="yn", default=0.25)
    assert metric.score("yes", EXAMPLES[0]).value == pytest.approx(0.75)
    unrated = metric.score("no", EXAMPLES[0])
    assert unrated.value == 0.25 and "no human rating" in unrated.feedback
    assert asked == [("0", "yes", "yn"), ("0", "no", "yn")]


def test_an_unbound_human_metric_says_how_to_bind_it():
    with pytest.raises(ConfigError, match="no ratings") as info:
        HumanRating().score("yes", EXAMPLES[0])
    assert info.value.fix


def test_a_task_configs_human_metric_reads_the_store_it_names(store, sqlite_url):
    from promptmill.api import build_metric

    run = _run(store)
    workbench.add_rating(store, run, "1", 0.5, "close")
    cfg = SimpleNamespace(metric=SimpleNamespace(name="human",
                                                 params={"store": sqlite_url, "task": "yn"}),
                          base_dir=None)
    metric = build_metric(cfg)
    assert isinstance(metric, HumanRating) and metric.lookup is not None
    assert metric.score("no", EXAMPLES[1]).value == 0.5
    assert bind_ratings(get_metric("exact")).describe() == "exact"


def test_rating_rows_and_feedback_are_typed_dicts_from_the_store(store):
    run = _run(store)
    workbench.add_rating(store, run, "2", 1.0, "fine", author="ann")
    [row] = workbench.ratings_for(store, run, "2")
    assert set(row) == set(ratings.RatingRow.__annotations__)
    assert ratings.output_ratings(store, "2", "no", "yn") == [(1.0, "fine")]
    assert ratings.output_ratings(store, "2", "no", "other") == []
    assert ratings.rating_feedback(store, "yn") == {
        "2": [{"output": "no", "score": 1.0, "comment": "fine"}]}


def test_traces_round_trip_through_the_store(store):
    from promptmill.serve.traces import trace_row

    traces.add_traces(store, [trace_row(prompt_name="p", model="fake", inputs={"q": 1},
                                        status=200, output="a"),
                              trace_row(prompt_name="p", model="fake", status=500)])
    rows = traces.list_traces(store, "p")
    assert [r["status"] for r in rows] == [200, 500]
    assert set(rows[0]) == set(traces.TraceRow.__annotations__)
    assert [r["output"] for r in traces.list_traces(store, status=200)] == ["a"]
    assert traces.list_traces(store, "other") == []


def test_adapter_rows_are_saved_decoded_updated_and_deleted(store, tmp_path):
    adapters.save_adapter(store, "a1", {"method": "lora", "base_model": "m", "task": "t",
                                        "path": str(tmp_path), "config": '{"r": 8}',
                                        "status": "running", "finished_at": None})
    adapters.update_adapter(store, "a1", status="done", metrics={"loss": 0.5}, finished=True)
    row = adapters.find_adapter(store, "a1")
    assert row["config"] == {"r": 8} and row["metrics"] == {"loss": 0.5}
    assert row["status"] == "done" and row["finished_at"] is not None
    assert set(row) == set(adapters.AdapterRow.__annotations__)
    assert [r["name"] for r in adapters.list_adapters(store)] == ["a1"]
    adapters.delete_adapter(store, "a1")
    assert adapters.find_adapter(store, "a1") is None
