import pytest

from promptmill.api import evaluate
from promptmill.diagnosis import DiagnoseError, diagnose
from promptmill.diagnosis.actions import save_applied
from promptmill.diagnosis.suggest import apply_action
from promptmill.prompt import Prompt
from promptmill.task import Example


def test_format_violations_suggest_an_output_spec_that_apply_saves(store):
    from crafted import evaluate_crafted

    table = {f"review {i}": ("good" if i % 2 else "bad", "I think it is fine overall")
             for i in range(10)}
    table.update({"review 10": ("good", "good"), "review 11": ("bad", "bad")})
    run = evaluate_crafted(store, table, "Label the review.").run_id
    d = diagnose(run, store=store)
    assert d.categories[0]["category"] == "format_violation"
    fix = next(s for s in d.suggestions if s.id == "fix-format-violation")
    assert fix.message.startswith("100% of failures are format violations")
    assert fix.action == {"kind": "output_format"}
    saved, chosen = save_applied(store, d, ["fix-format-violation"])
    assert [s.id for s in chosen] == ["fix-format-violation"]
    assert saved["version"] == 2 and saved["parent_id"] == d.run["prompt_id"]
    assert "diagnose run" in saved["note"]
    new = Prompt.model_validate_json(saved["body"])
    # no task config in this run, so the labels come from the run's own answers
    assert new.output_spec is not None or new.output_format


def test_apply_rejects_unknown_and_advice_only_suggestions(store, labelled_run):
    d = diagnose(labelled_run, store=store)
    with pytest.raises(DiagnoseError, match="no suggestion 'nope'"):
        save_applied(store, d, ["nope"])


def test_actions_change_the_prompt_as_described():
    base = Prompt(instruction="Do it.")
    train = [Example(str(i), {"input": f"x{i}"}, "yes" if i % 2 else "no") for i in range(6)]
    assert apply_action(base, {"kind": "output_format"}, train).output_spec.labels == \
        ("no", "yes")
    assert apply_action(base, {"kind": "answer_only"}, train).extract == "first_line"
    assert apply_action(base, {"kind": "max_tokens"}, train).max_tokens == 128
    assert "Answer in French." in apply_action(base, {"kind": "language", "language": "fr"},
                                               train).output_format
    demos = apply_action(base, {"kind": "confused_demos"}, train, ["no", "yes"]).demos
    assert sorted(d.output for d in demos) == ["no", "yes"]
    retrieved = apply_action(base, {"kind": "retrieved_demos"}, train)
    assert retrieved.demo_selection.method == "bm25" and retrieved.demo_selection.balance_labels


def test_apply_uses_the_training_split_when_the_task_is_known(store, tmp_path):
    from helpers import write_jsonl

    rows = [{"id": str(i), "text": f"item {i}", "label": "up" if i % 2 else "down"}
            for i in range(40)]
    write_jsonl(tmp_path / "d.jsonl", rows)
    (tmp_path / "t.yaml").write_text(
        "name: updown\ndata: {path: d.jsonl, input: [text], target: label, id: id}\n"
        "splits: {train: 20, validation: 0, test: 20, seed: 0}\nmetric: exact\n"
        "model: {name: fake, params: {default: 'it goes sideways'}}\n"
        "prompt: {name: ud, instruction: Say up or down., template: '{{ text }}'}\n")
    run = evaluate(tmp_path / "t.yaml", store=store).run_id
    d = diagnose(run, store=store)
    saved, _ = save_applied(store, d, ["all"])
    new = Prompt.model_validate_json(saved["body"])
    assert new.output_spec.labels == ("down", "up")
    assert evaluate(tmp_path / "t.yaml", f"ud@{saved['version']}", store=store).score.mean > 0
    again, _ = save_applied(store, diagnose(run, store=store), ["all"])
    assert again["version"] == saved["version"]  # same content: the same version
