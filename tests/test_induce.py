import hashlib
import json

import pytest
from optimize.optimize_fakes import PromptSensitiveModel, ScriptedProposer, antonym_task
from typer.testing import CliRunner

from promptmill.cli.app import app
from promptmill.errors import ConfigError
from promptmill.induce import induce
from promptmill.metrics import get_metric
from promptmill.prompt import Prompt
from promptmill.task import Task

PROPOSALS = ["Instruction: give the opposite word.", "", "Give the opposite word.",
             "Write a single word that means the opposite of the input."]


def test_induced_instructions_are_ranked_on_validation_against_the_seed(store):
    task = antonym_task()
    model = PromptSensitiveModel()
    result = induce(task, model, get_metric("exact"), proposer=ScriptedProposer(PROPOSALS),
                    seed_prompt=Prompt(instruction="Opposites."), n=4, shots=3,
                    strategies=["answer_only"], store=store)
    means = {c.origin: c.mean for c in result.ranked}
    # the model is half right when told "single word" or "answer only", chatty otherwise
    assert means["induced-3"] == 0.5 and means["induced-1+answer_only"] == 0.5
    assert means["induced-1"] == 0.0 and means["seed"] == 0.0
    assert result.best.mean == 0.5 and result.ranked[-1].mean == 0.0
    assert result.best_vs_seed.winner == result.best.origin and result.improved
    assert result.best_vs_seed.alpha == pytest.approx(0.05 / (len(result.ranked) - 1))
    assert len(result.rejected) == 1  # the empty proposal
    assert [c.prompt.instruction for c in result.ranked if c.origin == "induced-1"] == \
        ["give the opposite word."]  # the "Instruction:" label is cleaned off
    assert not model.saw_test_input()
    assert all(c.result.n == len(task.validation) for c in result.ranked)


def test_a_best_that_is_not_significantly_better_than_the_seed_is_not_kept(store):
    full = antonym_task()
    # three examples the terse candidates get right: a real gain, too small to be significant
    wins = [ex for ex in full.validation
            if int(hashlib.sha256(ex.inputs["input"].encode()).hexdigest(), 16) % 2][:3]
    small = Task("t", train=full.train, validation=wins, test=full.test)
    result = induce(small, PromptSensitiveModel(), get_metric("exact"),
                    proposer=ScriptedProposer(PROPOSALS), seed_prompt=Prompt(instruction="Opp."),
                    n=4, shots=3, strategies=["answer_only"], store=store)
    assert result.best.origin != "seed" and result.best.mean > result.seed.mean
    assert not result.improved and result.best_vs_seed.winner is None
    assert result.to_dict()["improved"] is False


def test_induction_is_cached_and_replays_for_free(store):
    task = antonym_task()
    args = dict(proposer=ScriptedProposer(PROPOSALS), n=4, shots=3, store=store)
    first = induce(task, PromptSensitiveModel(), get_metric("exact"), **args)
    again = induce(task, PromptSensitiveModel(), get_metric("exact"), **args)
    assert again.ledger.calls == 0 and again.ledger.cache_hits == first.ledger.calls
    assert [c.mean for c in again.ranked] == [c.mean for c in first.ranked]


def test_too_few_training_examples_and_unknown_strategies_fail_before_any_call(store):
    tiny = Task("t", train=antonym_task().train[:2], validation=antonym_task().validation,
                test=antonym_task().test)
    model = PromptSensitiveModel()
    with pytest.raises(ConfigError, match="shows 5 training examples, the train split has 2"):
        induce(tiny, model, get_metric("exact"), shots=5, store=store)
    with pytest.raises(ConfigError, match="unknown strategy 'cot'"):
        induce(antonym_task(), model, get_metric("exact"), strategies=["cot"], store=store)
    assert model.requests == []


def test_cli_induce_ranks_saves_and_prints_json(tmp_path, monkeypatch):
    rows = [{"id": str(i), "text": f"item {i} {'good' if i % 2 else 'bad'}",
             "label": "positive" if i % 2 else "negative"} for i in range(40)]
    (tmp_path / "data.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "task.yaml").write_text(
        "name: toy\ndata: {path: data.jsonl, input: [text], target: label, id: id}\n"
        "splits: {train: 0.5, validation: 0.25, test: 0.25}\nmetric: exact\n"
        "model: fake:positive\nprompt: {instruction: Label it., template: '{{ text }}'}\n")
    monkeypatch.setenv("PROMPTMILL_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(app, ["induce", str(tmp_path / "task.yaml"), "--n", "2",
                                      "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["ranked"][0]["mean"] >= payload["ranked"][-1]["mean"]
    assert {r["origin"] for r in payload["ranked"]} >= {"seed"}
    bad = CliRunner().invoke(app, ["induce", str(tmp_path / "task.yaml"), "--shots", "500"])
    assert isinstance(bad.exception, ConfigError) and "train split has" in str(bad.exception)
