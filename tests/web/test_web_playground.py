"""Playground runs, saved versions and background jobs (real subprocesses, fake models)."""

from __future__ import annotations

import pytest
import yaml

pytest.importorskip("fastapi")

from helpers import wait_for, write_jsonl

from promptmill.store.db import Store
from promptmill.web import queries

PROMPT = "instruction: Label the review.\ntemplate: 'Review: {{ text }}'\n"


def form(web_store, **changes) -> dict:
    return {"config_path": str(web_store.config), "prompt_yaml": PROMPT, "split": "test",
            "examples": "0-2", "model": "", "action": "run", **changes}


def test_playground_runs_a_prompt_on_chosen_examples(client, web_store):
    response = client.post("/playground", data=form(web_store, model="fake:neutral"))
    assert response.status_code == 200
    run_id = int(response.text.split('href="/runs/')[1].split('"')[0])
    store = Store(web_store.url)
    rows = list(store.iter_results(run_id))
    assert len(rows) == 3 and {r["output"] for r in rows} == {"neutral"}
    assert response.text.count('<td class="text output">neutral</td>') == 3


def test_playground_picks_examples_by_id(client, web_store):
    response = client.post("/playground", data=form(web_store, examples="r1 r5"))
    run_id = int(response.text.split('href="/runs/')[1].split('"')[0])
    assert sorted(Store(web_store.url).done_example_ids(run_id)) == ["r1", "r5"]


@pytest.mark.parametrize("changes, field, message", [
    ({"prompt_yaml": "instruction: [unclosed"}, "prompt_yaml", "line 1: not valid YAML"),
    ({"prompt_yaml": "instruction: hi\nbogus: 1"}, "prompt_yaml", "bogus: Extra inputs"),
    ({"prompt_yaml": "template: '{{ nope }}'"}, "run", "uses &#39;nope&#39;"),
    ({"config_path": "no/such/task.yaml"}, "config_path", "no file at no/such/task.yaml"),
    ({"config_path": "/no/such/task.yaml"}, "config_path", "config must be a file under /"),
    ({"examples": "0-99"}, "examples", "position 12 is past the end"),
    ({"examples": "zz"}, "examples", "no example &#39;zz&#39;"),
    ({"action": "save", "name": "bad name!"}, "name", "name the prompt with"),
    ({"action": "optimize_job", "budget_calls": "lots"}, "budget_calls", "whole number"),
])
def test_bad_playground_input_shows_inline_errors(client, web_store, changes, field, message):
    response = client.post("/playground", data=form(web_store, **changes))
    assert response.status_code == 422
    assert message in response.text
    if field != "run":
        assert f'data-field="{field}"' in response.text


def test_saving_makes_a_new_version_with_its_parent(client, web_store):
    text = "instruction: Say positive, negative or neutral.\ntemplate: 'Review: {{ text }}'\n"
    response = client.post("/playground", data=form(web_store, action="save", name="sentiment",
                                                   prompt_yaml=text, note="terser"))
    assert response.status_code == 200 and 'id="saved"' in response.text
    store = Store(web_store.url)
    latest = store.get_prompt("sentiment")
    assert latest["note"] == "terser" and latest["parent_id"] is not None
    assert f"sentiment@{latest['version']}" in response.text


def test_a_prompt_opens_in_the_playground_from_the_registry(client):
    html = client.get("/playground?prompt=sentiment@1").text
    assert "instruction: Label the review." in html


def _wait_job(store, job_id, timeout=60.0):
    assert wait_for(lambda: queries.get_job(store, job_id)["status"] in
                    ("done", "failed", "cancelled"), timeout=timeout)
    return queries.get_job(store, job_id)


def test_an_evaluation_job_runs_in_the_background(client, web_store):
    response = client.post("/playground", data=form(web_store, action="eval_job", examples="5",
                                                   model="fake:positive"),
                           follow_redirects=False)
    assert response.status_code == 303
    job_id = int(response.headers["location"].rsplit("/", 1)[1])
    store = Store(web_store.url)
    job = _wait_job(store, job_id)
    assert job["status"] == "done", job["error"]
    run = store.get_run(job["run_id"])
    assert run["n_done"] == 5 and run["status"] == "finished"
    data = client.get(f"/api/jobs/{job_id}").json()
    assert data["progress"] == 1.0 and data["text"] == "5/5 examples"
    assert f'href="/runs/{run["id"]}"' in client.get(f"/jobs/{job_id}").text


def _task(folder, rows, model_params, train=0, validation=0):
    write_jsonl(folder / "data.jsonl", rows)
    config = {"name": folder.name, "data": {"path": "data.jsonl", "input": ["text"],
                                            "target": "label", "id": "id"},
              "splits": {"train": train, "validation": validation,
                         "test": len(rows) - train - validation, "seed": 0},
              "metric": "exact", "model": {"name": "fake", "params": model_params},
              "prompt": {"instruction": "Label it.", "template": "{{ text }}"}}
    (folder / "task.yaml").write_text(yaml.safe_dump(config))
    return folder / "task.yaml"


def test_a_failed_job_shows_its_error_and_keeps_partial_results(client, web_store, tmp_path):
    rows = ([{"id": f"ok{i}", "text": f"fine {i}", "label": "x"} for i in range(3)]
            + [{"id": f"b{i}", "text": f"BOOM {i}", "label": "x"} for i in range(20)])
    config = _task(tmp_path, rows, {"default": "x", "fail_on": "BOOM"})
    response = client.post("/playground", data=form(web_store, config_path=str(config),
                                                   prompt_yaml="template: '{{ text }}'",
                                                   action="eval_job", examples=""))
    job_id = int(str(response.url).rsplit("/", 1)[1])
    store = Store(web_store.url)
    job = _wait_job(store, job_id)
    assert job["status"] == "failed" and "calls in a row failed" in job["error"]
    assert store.get_run(job["run_id"])["status"] == "failed"
    kept = list(store.iter_results(job["run_id"]))
    assert kept and len(kept) < len(rows)
    assert "calls in a row failed" in client.get(f"/jobs/{job_id}").text


def test_cancelling_a_job_stops_it_and_keeps_what_it_finished(client, web_store, tmp_path):
    rows = [{"id": f"s{i}", "text": f"slow {i}", "label": "x"} for i in range(60)]
    config = _task(tmp_path, rows, {"default": "x", "delay": 0.25})
    response = client.post("/playground", data=form(web_store, config_path=str(config),
                                                   prompt_yaml="template: '{{ text }}'",
                                                   action="eval_job", examples=""))
    job_id = int(str(response.url).rsplit("/", 1)[1])
    store = Store(web_store.url)

    def some_done() -> bool:
        job = queries.get_job(store, job_id)
        return bool(job["run_id"]) and queries.count_results(store, job["run_id"]) > 0

    assert wait_for(some_done, timeout=60)
    assert 'id="cancel-form"' in client.get(f"/jobs/{job_id}").text
    client.post(f"/jobs/{job_id}/cancel")
    job = _wait_job(store, job_id, timeout=20)
    assert job["status"] == "cancelled"
    run = store.get_run(job["run_id"])
    assert run["status"] == "interrupted"
    assert 0 < queries.count_results(store, run["id"]) < len(rows)


def test_an_optimization_job_records_its_search(client, web_store, tmp_path):
    rows = [{"id": f"w{i}", "text": f"word {i}", "label": "x"} for i in range(16)]
    config = _task(tmp_path, rows, {"default": "x"}, train=5, validation=6)
    response = client.post("/playground", data=form(web_store, config_path=str(config),
                                                   prompt_yaml="template: '{{ text }}'",
                                                   action="optimize_job", method="ape",
                                                   budget_calls="40"))
    job_id = int(str(response.url).rsplit("/", 1)[1])
    store = Store(web_store.url)
    job = _wait_job(store, job_id, timeout=120)
    assert job["status"] == "done", job["error"]
    run = store.get_run(job["run_id"])
    assert run["kind"] == "optimize" and run["status"] == "finished"
    assert store.steps(run["id"]) and store.candidates(run["id"])
    assert f'href="/runs/{run["id"]}/optimize"' in client.get(f"/jobs/{job_id}").text
