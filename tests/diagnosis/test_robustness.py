import random

import pytest

from promptmill.api import evaluate
from promptmill.diagnosis import DiagnoseError, perturb
from promptmill.diagnosis.actions import check_robustness
from promptmill.diagnosis.data import load_run
from promptmill.prompt import Demo, Prompt
from promptmill.task import Example


def test_input_noise_keeps_ids_and_targets_and_is_seeded():
    ex = Example("1", {"input": "The quick brown foxes jumped over lazy dogs"}, "x")
    for noise in perturb.INPUT_NOISE.values():
        a, b = noise(ex, random.Random(3)), noise(ex, random.Random(3))
        assert a == b and a.id == "1" and a.target == "x"
    assert perturb.whitespace(ex, random.Random(0)).inputs["input"].split() == \
        ex.inputs["input"].split()
    assert perturb.casing(ex, random.Random(0)).inputs["input"].lower() == \
        ex.inputs["input"].lower()
    assert perturb.typos(ex, random.Random(1), rate=1.0).inputs["input"] != ex.inputs["input"]


def test_option_shuffle_moves_texts_and_relabels_a_letter_target():
    ex = Example("1", {"q": "Which is a fruit?\nA) car\nB) apple\nC) road"}, "B")
    moved = perturb.shuffle_options(ex, random.Random(0))
    lines = moved.inputs["q"].split("\n")
    assert [line[:2] for line in lines[1:]] == ["A)", "B)", "C)"]  # letters stay in place
    assert sorted(line[3:] for line in lines[1:]) == ["apple", "car", "road"]
    apple_letter = next(line[0] for line in lines[1:] if line.endswith("apple"))
    assert moved.target == apple_letter
    assert perturb.shuffle_options(Example("2", {"q": "no options"}, "x"),
                                   random.Random(0)) is None


def test_demo_shuffle_changes_order_only():
    demos = tuple(Demo(inputs={"input": str(i)}, output=str(i)) for i in range(4))
    prompt = Prompt(instruction="x", demos=demos)
    shuffled = perturb.shuffle_demos(prompt, random.Random(0))
    assert shuffled.demos != demos and sorted(shuffled.demos, key=lambda d: d.output) == \
        list(demos)
    assert perturb.shuffle_demos(Prompt(instruction="x"), random.Random(0)) is None


def test_robustness_finds_a_case_sensitive_model(store, capitals_task):
    # the fake model matches country names case-sensitively: casing and typos break it,
    # extra whitespace between words does not
    run = evaluate(capitals_task, store=store).run_id
    results = {r["kind"]: r for r in check_robustness(store, load_run(store, run), n=12,
                                                      variants=2)}
    assert results["casing"]["applicable"] and results["casing"]["flip_rate"] > 0.3
    assert results["casing"]["delta"] < 0 and results["casing"]["delta_high"] < 0
    assert results["whitespace"]["flip_rate"] == 0.0
    assert results["typos"]["flip_rate"] > 0
    assert results["paraphrase"]["applicable"]  # the fake proposer's text is a paraphrase
    assert not results["demo_order"]["applicable"]
    assert "fewer than 2 fixed demos" in results["demo_order"]["note"]
    assert not results["option_order"]["applicable"]
    flips = results["casing"]["samples"]
    assert flips and flips[0]["before"] == 1.0 and flips[0]["after"] == 0.0
    # the calls are cached: a second check makes no new model call
    again = check_robustness(store, load_run(store, run), n=12, variants=2)
    assert [r["flip_rate"] for r in again] == [r["flip_rate"] for r in results.values()]


def test_unknown_perturbation_is_a_clear_error(store, capitals_task):
    run = evaluate(capitals_task, store=store).run_id
    with pytest.raises(DiagnoseError, match="unknown perturbation 'upside_down'"):
        check_robustness(store, load_run(store, run), kinds=("upside_down",))
