"""Distributed evaluation on a real two-node Ray cluster: same results as a local run, nothing lost
or duplicated when a worker dies, cached calls never sent, clear errors for a missing cluster."""

from __future__ import annotations

import os
import signal
import time

import pytest
from helpers import free_port, run_main

from promptmill.distributed import LocalExecutor, RayExecutor, make_executor
from promptmill.errors import ConfigError, ModelError
from promptmill.evaluate import Evaluator
from promptmill.metrics import get_metric
from promptmill.models.registry import load_model
from promptmill.prompt import Prompt
from promptmill.store.db import Store
from promptmill.task import Example, Task

ANSWERS = {f"<w{i}>": ("yes" if i % 3 else "no") for i in range(60)}
PROMPT = Prompt(name="ask", instruction="Answer yes or no.", template="Word: <{{ word }}>")


def examples(n: int = 60) -> list[Example]:
    return [Example(f"e{i}", {"word": f"w{i}"}, "yes") for i in range(n)]


def fake_params(delay: float = 0.0) -> dict:
    return {"answers": ANSWERS, "default": "maybe", "delay": delay}


def run(tmp_path, name: str, executor=None, n: int = 60, delay: float = 0.0):
    """Evaluate the fake task in a fresh store; the rows it wrote, in example order."""
    store = Store(f"sqlite:///{tmp_path / name}.db")
    model = load_model("fake", **fake_params(delay))
    evaluator = Evaluator(model, get_metric("exact"), store, progress=False, executor=executor)
    result = evaluator.evaluate(examples(n), PROMPT, task="words")
    return result, rows(store, result.run_id), model


def rows(store: Store, run_id: int) -> list[tuple]:
    from sqlalchemy import text

    with store.engine.connect() as conn:
        found = conn.execute(text("SELECT example_id, idx, output, score, error, call_key "
                                  "FROM results WHERE run_id = :r ORDER BY idx"),
                             {"r": run_id}).all()
    return [tuple(r) for r in found]


# --- no cluster needed ----------------------------------------------------------------------
def test_executor_choices_and_bad_addresses():
    assert isinstance(make_executor(None, "fake"), LocalExecutor)
    assert isinstance(make_executor("local", "fake"), LocalExecutor)
    ray_exec = make_executor("ray://127.0.0.1:6379", "embedded")
    assert isinstance(ray_exec, RayExecutor) and ray_exec.address == "127.0.0.1:6379"
    assert ray_exec.params == {"n_threads": 1}  # one llama.cpp thread per reserved CPU
    for bad in ("spark", "ray://nohost", "ray://host:port"):
        with pytest.raises(ConfigError) as info:
            make_executor(bad, "fake")
        assert "--executor" in str(info.value) and "Fix:" in str(info.value)


def test_unreachable_cluster_fails_fast_with_a_clear_error(tmp_path):
    address = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(ModelError) as info:
        run(tmp_path, "dead", RayExecutor("fake", fake_params(), address=address))
    assert time.monotonic() - started < 10
    message = str(info.value)
    assert f"Ray cluster at {address} is unreachable" in message
    assert "ray start --head" in message


def test_cli_reports_an_unreachable_cluster_in_one_line(capitals_task, capsys):
    address = f"127.0.0.1:{free_port()}"
    code, out = run_main(["eval", capitals_task, "-q", "--executor", f"ray://{address}"], capsys)
    assert code == 2
    assert f"error: --executor: the Ray cluster at {address} is unreachable" in out
    assert "Traceback" not in out


# --- on the cluster -------------------------------------------------------------------------


@pytest.mark.ray
@pytest.mark.slow
def test_results_on_the_cluster_equal_a_local_run(tmp_path, ray_cluster):
    local, local_rows, _ = run(tmp_path, "local")
    with RayExecutor("fake", fake_params(), address=ray_cluster, chunk_size=4) as executor:
        remote, remote_rows, driver_model = run(tmp_path, "ray", executor)
        workers = executor.worker_info()
        again, _, _ = run(tmp_path, "ray-again", executor)
        after = executor.worker_info()
    assert remote_rows == local_rows and len(remote_rows) == 60
    assert remote.score.mean == local.score.mean == pytest.approx(40 / 60)
    assert again.score.mean == local.score.mean
    assert driver_model.calls == 0  # every call ran on a worker
    assert len(workers) == 2 and len({w["node"] for w in workers}) == 2  # one per node
    assert sum(w["calls"] for w in workers) == 60
    # the same processes answered the second run: each worker loaded its model once
    assert [w["pid"] for w in after] == [w["pid"] for w in workers]
    assert sum(w["calls"] for w in after) == 120


@pytest.mark.ray
@pytest.mark.slow
def test_cached_calls_are_never_sent_to_workers(tmp_path, ray_cluster):
    store = Store(f"sqlite:///{tmp_path / 'cache.db'}")
    model = load_model("fake", **fake_params())
    with RayExecutor("fake", fake_params(), address=ray_cluster) as executor:
        evaluator = Evaluator(model, get_metric("exact"), store, progress=False,
                              executor=executor)
        first = evaluator.evaluate(examples(20), PROMPT, task="words")
        calls = sum(w["calls"] for w in executor.worker_info())
        second = evaluator.evaluate(examples(30), PROMPT, task="words", resume=False)
        more = sum(w["calls"] for w in executor.worker_info())
    assert calls == 20
    assert more == 30  # only the 10 new examples left the driver
    assert second.ledger.cache_hits == 20 and first.score.mean == pytest.approx(13 / 20)


@pytest.mark.ray
@pytest.mark.slow
def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(tmp_path, ray_cluster):
    _, local_rows, _ = run(tmp_path, "local")
    killed: list[int] = []

    def kill_one_worker(executor: RayExecutor, chunk: int) -> None:
        if not killed:  # the first finished chunk: the others are still in flight
            pid = executor.worker_info()[-1]["pid"]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    with RayExecutor("fake", fake_params(delay=0.02), address=ray_cluster, chunk_size=4,
                     on_chunk=kill_one_worker) as executor:
        result, remote_rows, _ = run(tmp_path, "ray", executor, delay=0.02)
        survivors = executor.worker_info()
        rescheduled = executor.rescheduled
    assert killed and rescheduled >= 1
    assert killed[0] not in [w["pid"] for w in survivors]
    assert remote_rows == local_rows  # every example once, same answers, same order
    assert len({r[0] for r in remote_rows}) == 60
    assert result.n == 60 and result.n_errors == 0 and result.ledger.calls == 60


@pytest.mark.ray
@pytest.mark.slow
def test_optimizer_candidate_scoring_runs_on_the_cluster(tmp_path, ray_cluster):
    from promptmill.models.fake import FakeModel
    from promptmill.optimize import Budget, optimize

    exs = examples(36)
    task = Task("words", train=exs[:12], validation=exs[12:24], test=exs[24:])

    def search(name: str, executor=None):
        model = load_model("fake", **fake_params())
        proposer = FakeModel(default="Say yes or no about the word.", name="proposer")
        store = Store(f"sqlite:///{tmp_path / name}.db")
        result = optimize(task, PROMPT, model, metric=get_metric("exact"),
                          budget=Budget(calls=120), method="ape", proposer=proposer,
                          store=store, executor=executor)
        return result, model

    local, _ = search("local")
    with RayExecutor("fake", fake_params(), address=ray_cluster) as executor:
        remote, driver_model = search("ray", executor)
        worker_calls = sum(w["calls"] for w in executor.worker_info())
    assert driver_model.calls == 0 and worker_calls > len(task.validation) + 2 * len(task.test)
    assert [c.prompt.hash for c in remote.candidates] == [c.prompt.hash for c in
                                                          local.candidates]
    assert [c.scores for c in remote.candidates] == [c.scores for c in local.candidates]
    assert remote.best_test.scores == local.best_test.scores


@pytest.mark.ray
@pytest.mark.slow
def test_cli_eval_with_a_ray_executor_matches_local(capitals_task, tmp_path, capsys,
                                                    ray_cluster):
    outputs = {}
    for choice in ("local", f"ray://{ray_cluster}"):
        db = f"sqlite:///{tmp_path / (choice[:3] + '.db')}"
        code, out = run_main(["--db", db, "eval", capitals_task, "-q", "--executor", choice],
                             capsys)
        assert code in (0, None), out
        table = [line for line in out.splitlines() if "ask" in line]
        outputs[choice] = table[0].split("│")[3:6]  # score, n, errors
    assert outputs["local"] == outputs[f"ray://{ray_cluster}"]
    assert "0.667" in outputs["local"][0]


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.real_model
def test_the_embedded_model_on_a_ray_worker_answers_like_a_local_one(tmp_path, ray_cluster,
                                                                     embedded_model):
    pairs = [("hot", "cold"), ("big", "small"), ("up", "down"), ("fast", "slow"),
             ("happy", "sad"), ("wet", "dry")]
    exs = [Example(f"a{i}", {"word": w}, a) for i, (w, a) in enumerate(pairs)]
    prompt = Prompt(name="antonym", instruction="Give the opposite of the word. Answer with "
                    "one word.", template="{{ word }}", max_tokens=6)

    def evaluate(name: str, executor=None):
        store = Store(f"sqlite:///{tmp_path / name}.db")
        evaluator = Evaluator(embedded_model, get_metric("exact"), store, progress=False,
                              executor=executor)
        result = evaluator.evaluate(exs, prompt, task="antonyms")
        return result, rows(store, result.run_id)

    local, local_rows = evaluate("local")
    # one worker: the rule is never two llama.cpp models computing at once in a test
    with RayExecutor("embedded", {"n_ctx": 1024}, address=ray_cluster, workers=1) as executor:
        remote, remote_rows = evaluate("ray", executor)
        info = executor.worker_info()
    assert info[0]["identity"] == embedded_model.identity and info[0]["calls"] == len(exs)
    assert remote_rows == local_rows
    assert all(r[2] for r in remote_rows)  # real, non-empty answers
    assert remote.score.mean == local.score.mean


@pytest.mark.ray
@pytest.mark.slow
def test_http_style_backends_run_concurrently_inside_a_worker(tmp_path, ray_cluster):
    """A worker in front of a remote server (vLLM, OpenAI) keeps several calls in flight."""
    params = {**fake_params(delay=0.3), "concurrency": 8}
    with RayExecutor("fake", params, address=ray_cluster, workers=1, chunk_size=8,
                     in_flight=1) as executor:
        store = Store(f"sqlite:///{tmp_path / 'http.db'}")
        evaluator = Evaluator(load_model("fake", **params), get_metric("exact"), store,
                              progress=False, executor=executor)
        started = time.monotonic()
        result = evaluator.evaluate(examples(16), PROMPT, task="words")
        seconds = time.monotonic() - started
    _, local_rows, _ = run(tmp_path, "local", n=16)
    assert rows(store, result.run_id) == local_rows
    assert seconds < 16 * 0.3 / 2  # one call at a time would take 4.8 s; 8 at a time, ~0.6 s


@pytest.mark.ray
@pytest.mark.slow
def test_when_the_only_worker_dies_a_replacement_finishes_the_run(tmp_path, ray_cluster):
    _, local_rows, _ = run(tmp_path, "local", n=24)
    killed: list[int] = []

    def kill_the_worker(executor: RayExecutor, chunk: int) -> None:
        if not killed:
            killed.append(executor.worker_info()[0]["pid"])
            os.kill(killed[0], signal.SIGKILL)

    with RayExecutor("fake", fake_params(delay=0.02), address=ray_cluster, workers=1,
                     chunk_size=4, on_chunk=kill_the_worker) as executor:
        result, remote_rows, _ = run(tmp_path, "ray", executor, n=24, delay=0.02)
        replacement = executor.worker_info()[0]["pid"]
        replacements = executor.replacements
    assert replacements == 1 and replacement != killed[0]
    assert remote_rows == local_rows and result.n == 24 and result.n_errors == 0
