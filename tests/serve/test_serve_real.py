"""Serving and injection checks through the real embedded model (SmolLM2-135M)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from serve_helpers import SERVER_KEY, client, running, save

import promptmill
from promptmill.constrain import OutputSpec
from promptmill.injection import run_injection
from promptmill.prompt import DemoSelection, Prompt
from promptmill.serve import create_app, load_served_prompt
from promptmill.serve.traces import list_traces

pytestmark = [pytest.mark.real_model, pytest.mark.slow, pytest.mark.server]

SENTIMENT = Path(promptmill.__file__).parent / "examples" / "sentiment" / "task.yaml"
LABELS = ("positive", "negative")


def test_served_prompt_with_retrieved_demos_and_output_spec(store, embedded_model):
    prompt = Prompt(name="sentiment", instruction="Classify the sentiment of the review.",
                    template="Review: {{ text }}", output_spec=OutputSpec(labels=LABELS),
                    demo_selection=DemoSelection(k=2))
    save(store, prompt, "production")
    served = load_served_prompt(store, "sentiment@production", config=SENTIMENT,
                                model=embedded_model)
    reviews = ["Terrible, it broke after one day and support never answered.",
               "I love it, works perfectly and the battery lasts forever."]
    with running(create_app(served, store, api_key=SERVER_KEY)) as url:
        c = client(url)
        answers = [c.chat.completions.create(model="x", messages=[
            {"role": "user", "content": r}]).choices[0].message.content for r in reviews]
        streamed = "".join(ch.choices[0].delta.content or "" for ch in
                           c.chat.completions.create(model="x", stream=True, messages=[
                               {"role": "user", "content": reviews[1]}]))
    assert set(answers) <= set(LABELS)  # the grammar held on the real model
    assert streamed == answers[1]  # temperature 0: the same answer streamed
    traces = list_traces(store)
    assert [t["status"] for t in traces] == [200, 200, 200]
    sent = json.loads(traces[0]["messages"])
    assert len(sent) == 1 + 2 * 2 + 1 and sent[-1]["content"] == f"Review: {reviews[0]}"
    assert traces[0]["tokens_in"] > 20 and traces[0]["tokens_out"] >= 1


def test_injection_suite_against_the_real_model(store, embedded_model):
    instruction = "Classify the sentiment of the product review. Answer positive or negative."
    save(store, Prompt(name="open", instruction=instruction, template="{{ text }}",
                       max_tokens=24), "live")
    served = load_served_prompt(store, "open@live", model=embedded_model)
    with running(create_app(served, store, api_key=SERVER_KEY)) as url:
        report = run_injection(url, api_key=SERVER_KEY, instruction=instruction,
                               fields=["text"], concurrency=2).to_dict()
    print(json.dumps({k: report[k] for k in ("attacks", "succeeded", "attack_success_rate",
                                             "ci_low", "ci_high", "wilson_low",
                                             "wilson_high")}))
    print([(o["id"], o["output"][:60]) for o in report["got_through"]])
    assert report["errors"] == 0 and report["judged"] == report["attacks"]
    assert report["ci_low"] <= report["attack_success_rate"] <= report["ci_high"]
    assert len(report["got_through"]) == report["succeeded"]
