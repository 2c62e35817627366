"""The task config's context section, through the API and the CLI, on the fake model."""

import json

import pytest
import yaml
from helpers import write_jsonl
from typer.testing import CliRunner

from promptmill.api import evaluate, load_task, segment_scores
from promptmill.cli.app import app, main
from promptmill.errors import ConfigError
from promptmill.models.fake import FakeModel
from promptmill.store.db import Store

FRUIT = {"apple": "red", "banana": "yellow", "lime": "green", "cherry": "red",
         "lemon": "yellow", "kiwi": "green", "plum": "purple", "grape": "purple"}


def _rows():
    rows = []
    for fruit, colour in FRUIT.items():
        for j in range(4):
            rows.append({"id": f"{fruit}-{j}", "text": f"what colour is a {fruit} {j}",
                         "label": colour})
    return rows


def _task(tmp_path, context, prompt=None):
    write_jsonl(tmp_path / "data.jsonl", _rows())
    (tmp_path / "manual").mkdir(exist_ok=True)
    (tmp_path / "manual" / "fruit.md").write_text(
        "# Plums\nA plum is purple when ripe.\n\n# Kiwis\nA kiwi is green inside.\n")
    config = {"name": "fruit", "data": {"path": "data.jsonl", "input": ["text"],
                                        "target": "label", "id": "id"},
              "splits": {"train": 0.5, "validation": 0.25, "test": 0.25, "seed": 0},
              "metric": "exact", "model": {"name": "fake", "params": {"default": "red"}},
              "prompt": prompt or {"instruction": "Name the colour.", "template": "{{ text }}"},
              "context": context}
    (tmp_path / "task.yaml").write_text(yaml.safe_dump(config))
    return tmp_path / "task.yaml"


def _echo_model():
    """Answers with the last demo's answer: right exactly when the nearest demo is the same
    fruit, which is what retrieval should give."""
    def answer(text):
        return text
    model = FakeModel(fn=answer)
    original = model.generate

    def generate(request, params):
        demos = [m["content"] for m in request if m["role"] == "assistant"]
        model.fn = lambda _: demos[-1] if demos else "none"
        return original(request, params)
    model.generate = generate
    return model


def test_demos_from_the_config_are_retrieved_per_example(tmp_path):
    config = _task(tmp_path, {"demos": {"method": "bm25", "k": 2, "mmr_lambda": 1.0}})
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    retrieved = evaluate(config, model=_echo_model(), store=store)
    assert retrieved.score.mean == 1.0  # the nearest demo is always the same fruit
    cfg, task = load_task(config)
    assert all(not set(r["context_notes"]).isdisjoint("demos") for r in
               store.iter_results(retrieved.run_id))
    random_config = _task(tmp_path, {"demos": {"method": "random", "k": 2}})
    drawn = evaluate(random_config, model=_echo_model(), store=store)
    assert drawn.score.mean < retrieved.score.mean


def test_knowledge_and_situation_fill_their_slots(tmp_path):
    prompt = {"instruction": "Answer from the manual.", "template": "{{ text }}",
              "context_slots": ["knowledge", "situation"]}
    config = _task(tmp_path, {"knowledge": {"path": "manual", "k": 1},
                              "situation": {"audience": "children", "locale": "en-GB"}},
                   prompt)
    seen = []
    model = FakeModel(fn=lambda text: seen.append(text) or "purple")
    evaluate(config, model=model, store=Store(f"sqlite:///{tmp_path / 's.db'}"), split="all")
    plum = next(t for t in seen if "plum" in t)
    assert "[fruit.md#1] Plums" in plum and "A plum is purple" in plum
    assert "Audience: children" in plum and "Locale: en-GB" in plum


def test_intent_routing_reports_scores_per_segment(tmp_path, capsys):
    (tmp_path / "citrus.yaml").write_text("instruction: Citrus colours.\ntemplate: '{{ text }}'\n")
    context = {"intent": {"variants": {"citrus": "citrus.yaml",
                                       "other": {"instruction": "Colours.",
                                                 "template": "{{ text }}"}},
                          "rules": [{"intent": "citrus", "keywords": ["lemon", "lime"]}],
                          "default": "other"}}
    config = _task(tmp_path, context)
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    model = FakeModel(fn=lambda text: "yellow" if "lemon" in text else "red")
    result = evaluate(config, model=model, store=store, split="all")
    by_segment = segment_scores(result.run_id, store=store)
    assert set(by_segment) == {"citrus", "other"}
    assert by_segment["citrus"].n == 8 and by_segment["citrus"].mean == 0.5
    db = f"sqlite:///{tmp_path / 's.db'}"
    out = CliRunner().invoke(app, ["--db", db, "eval", str(config), "--split", "all", "-q"])
    assert out.exit_code == 0, out.output
    assert "by intent segment" in out.output and "citrus" in out.output


def test_bad_context_sections_fail_with_the_line_and_exit_2(tmp_path, capsys, monkeypatch):
    config = _task(tmp_path, {"demos": {"method": "bm25", "k": 500}})
    with pytest.raises(ConfigError, match="demo pool has 16 examples, k=500"):
        evaluate(config, model=FakeModel(default="x"),
                 store=Store(f"sqlite:///{tmp_path / 's.db'}"))
    config = _task(tmp_path, {"demos": {"metod": "bm25"}})
    monkeypatch.setattr("sys.argv", ["promptmill", "--db", f"sqlite:///{tmp_path / 's.db'}",
                                     "eval", str(config)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert "task.yaml:3: unknown field 'context.demos.metod'" in err
    assert "use one of: method, k, mmr_lambda" in err
    config = _task(tmp_path, {"intent": {"variants": {"a": "missing.yaml"}}})
    with pytest.raises(ConfigError, match="missing prompt file"):
        evaluate(config, model=FakeModel(default="x"),
                 store=Store(f"sqlite:///{tmp_path / 's.db'}"))
    config = _task(tmp_path, {"knowledge": {"path": "nowhere"}},
                   {"instruction": "x", "template": "{{ text }}", "context_slots": ["knowledge"]})
    with pytest.raises(Exception, match="nowhere"):
        evaluate(config, model=FakeModel(default="x"),
                 store=Store(f"sqlite:///{tmp_path / 's.db'}"))


def test_context_is_recorded_so_a_replay_rebuilds_it(tmp_path):
    config = _task(tmp_path, {"demos": {"method": "bm25", "k": 2}})
    db = f"sqlite:///{tmp_path / 's.db'}"
    store = Store(db)
    result = evaluate(config, model=_echo_model(), store=store)
    record = json.loads(store.get_run(result.run_id)["config"])
    assert record["context"]["demos"]["k"] == 2
    out = CliRunner().invoke(app, ["--db", db, "replay", str(result.run_id)])
    assert out.exit_code == 0, out.output
    assert "replayed exactly" in out.output


def test_optimize_and_its_replay_use_the_context_section(tmp_path):
    prompt = {"instruction": "Name the colour.", "template": "{{ text }}",
              "context_slots": ["situation"]}
    config = _task(tmp_path, {"situation": {"audience": "painters"}}, prompt)
    data = yaml.safe_load(config.read_text())
    data["model"] = {"name": "fake", "params": {"answers": {"painters": "red"},
                                                "default": "no context"}}
    data["splits"] = {"train": 12, "validation": 10, "test": 10, "seed": 0}
    config.write_text(yaml.safe_dump(data))
    db = f"sqlite:///{tmp_path / 's.db'}"
    out = CliRunner().invoke(app, ["--db", db, "optimize", str(config), "--method", "fewshot",
                                   "--budget-calls", "60", "--quiet"])
    assert out.exit_code == 0, out.output
    store = Store(db)
    search = next(r for r in store.list_runs() if r["kind"] == "optimize")
    outputs = {row["output"] for child in store.child_runs(search["id"])
               for row in store.iter_results(child["id"])}
    assert outputs == {"red"}  # every test answer was given with the situation in the prompt
    replay = CliRunner().invoke(app, ["--db", db, "replay", str(search["id"])])
    assert replay.exit_code == 0, replay.output
