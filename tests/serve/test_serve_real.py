"""Serving and injection checks through the real embedded model (SmolLM2-135M)."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
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


COUNTRIES = ["France", "Japan", "Italy", "Egypt", "Canada", "Brazil", "Kenya", "Norway"]


def capital_served(store, model, max_tokens: int = 16,
                   instruction: str = "Name the capital city of the country, then say one "
                                      "sentence about it."):
    save(store, Prompt(name="capital", instruction=instruction, template="Country: {{ country }}",
                       max_tokens=max_tokens), "production")
    return load_served_prompt(store, "capital@production", model=model)


def test_streamed_chunks_arrive_token_by_token(store, embedded_model):
    assert embedded_model.can_stream
    served = capital_served(store, embedded_model, max_tokens=48,
                            instruction="Describe the country in three sentences.")
    with running(create_app(served, store, api_key=SERVER_KEY)) as url:
        c = client(url)
        whole = c.chat.completions.create(model="x", messages=[
            {"role": "user", "content": "France"}]).choices[0].message.content
        started, arrivals = time.perf_counter(), []
        for chunk in c.chat.completions.create(model="x", stream=True, messages=[
                {"role": "user", "content": "France"}]):
            if chunk.choices and chunk.choices[0].delta.content:
                arrivals.append((time.perf_counter() - started, chunk.choices[0].delta.content))
    times = [t for t, _ in arrivals]
    print(json.dumps({"chunks": len(arrivals), "first_s": round(times[0], 3),
                      "last_s": round(times[-1], 3), "whole_tokens": len(whole.split())}))
    assert "".join(p for _, p in arrivals) == whole  # temperature 0: the same answer
    assert len(arrivals) >= 8  # piece by piece (a word at a time), not one piece at the end
    # the first piece went out while the rest was still being decoded
    assert times[-1] - times[0] > 0.2 and times[0] < 0.5 * times[-1]
    traces = list_traces(store)
    assert [t["status"] for t in traces] == [200, 200] and traces[1]["output"] == whole


def test_eight_concurrent_clients_get_the_sequential_answers(store):
    from promptmill.models import load_model

    sequential = load_model("embedded", n_ctx=1024, batch_width=1)
    batched = load_model("embedded", n_ctx=1024, batch_width=8)
    try:
        with running(create_app(capital_served(store, sequential), store,
                                api_key=SERVER_KEY)) as url:
            c = client(url)
            expected = [c.chat.completions.create(model="x", temperature=0, messages=[
                {"role": "user", "content": country}]).choices[0].message.content
                for country in COUNTRIES]
        with running(create_app(capital_served(store, batched), store, api_key=SERVER_KEY,
                                max_concurrency=8)) as url:
            c = client(url)

            def ask(country: str, stream: bool) -> str:
                if not stream:
                    return c.chat.completions.create(model="x", temperature=0, messages=[
                        {"role": "user", "content": country}]).choices[0].message.content
                return "".join(ch.choices[0].delta.content or "" for ch in
                               c.chat.completions.create(model="x", temperature=0,
                                                         stream=True, messages=[
                                                             {"role": "user",
                                                              "content": country}]))

            with ThreadPoolExecutor(8) as pool:
                plain = list(pool.map(lambda country: ask(country, False), COUNTRIES))
                streamed = list(pool.map(lambda country: ask(country, True), COUNTRIES))
            health = httpx.get(url.removesuffix("/v1") + "/healthz").json()
    finally:
        sequential.close()
        batched.close()
    print(json.dumps({"expected": expected, "health": health}))
    assert len(set(expected)) > 1  # eight different questions, not one canned answer
    if (plain != expected or streamed != expected) and _row_count_kernels():
        pytest.xfail("llama-cpp-python was built with LLAMAFILE or REPACK kernels, which sum "
                     "a row differently in a batch; build it with `make install` "
                     "(docs/inference.md, Determinism)")
    assert plain == expected and streamed == expected
    assert health["batch_width"] == 8 and health["queue"]["max_in_flight"] > 1


def _row_count_kernels() -> bool:
    """Whether this llama.cpp build picks its matrix kernels by row count (answers then depend
    on how a prompt is split into decode calls)."""
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode()
    return "LLAMAFILE = 1" in info or "REPACK = 1" in info
