"""Distributed evaluation on a real two-node Ray cluster: same results as a local run, nothing lost
or duplicated when a worker dies, cached calls never sent, clear errors for a missing cluster."""

from __future__ import annotations

import json
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from helpers import free_port, run_main

from promptmill.distributed import LocalExecutor, RayExecutor, make_executor
from promptmill.errors import ConfigError, ModelError
from promptmill.evaluation import Evaluator
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


@pytest.mark.ray  # needs the ray package, not a cluster
def test_unreachable_cluster_fails_fast_with_a_clear_error(tmp_path, monkeypatch):
    import ray

    joins = []  # ray.init on a dead address retries for minutes: it must never be reached
    monkeypatch.setattr(ray, "init", lambda *a, **k: joins.append(k))
    address = f"127.0.0.1:{free_port()}"
    with pytest.raises(ModelError) as info:
        run(tmp_path, "dead", RayExecutor("fake", fake_params(), address=address))
    assert joins == []
    message = str(info.value)
    assert f"Ray cluster at {address} is unreachable" in message
    assert "ray start --head" in message


@pytest.mark.ray  # needs the ray package, not a cluster
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


class InFlightServer:
    """An OpenAI-style chat endpoint on loopback that counts the requests it holds at once.

    Each request is held until ``target`` requests are in flight together (or ``patience``
    seconds after the first one came), then answered from ANSWERS. A client that sends one
    call at a time so never reaches the target, however fast the machine; one that overlaps
    its calls reaches it, however loaded the machine. Concurrency is counted, not timed.
    """

    def __init__(self, target: int, patience: float = 60.0):
        self.target, self.patience = target, patience
        self.in_flight = self.peak = self.requests = 0
        self.opened = False
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def _hold(self) -> None:
        with self._changed:
            self.requests += 1
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self.opened = self.opened or self.in_flight >= self.target
            self._changed.notify_all()
            self._changed.wait_for(lambda: self.opened, timeout=self.patience)
            self.opened = True  # waited long enough: never hold a later request
            self.in_flight -= 1

    def _answer(self, body: dict) -> bytes:
        question = body["messages"][-1]["content"]
        text = next((a for key, a in ANSWERS.items() if key in question), "maybe")
        return json.dumps({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "stub",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}).encode()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                server._hold()
                payload = server._answer(body)
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format, *args):
                pass

        return Handler

    def __enter__(self) -> InFlightServer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._changed:
            self.opened = True
            self._changed.notify_all()
        self._server.shutdown()
        self._server.server_close()


def test_the_in_flight_server_tells_sequential_from_concurrent_clients():
    import httpx

    body = {"model": "stub", "messages": [{"role": "user", "content": "Word: <w1>"}]}
    with InFlightServer(target=2, patience=0.5) as server:  # sequential: never 2 at once
        for _ in range(2):
            httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=30)
    assert server.requests == 2 and server.peak == 1
    with InFlightServer(target=4) as server, ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda _: httpx.post(f"{server.base_url}/chat/completions",
                                                     json=body, timeout=120), range(4)))
    assert server.peak == 4 and {r.json()["choices"][0]["message"]["content"]
                                 for r in replies} == {ANSWERS["<w1>"]}


@pytest.mark.ray
@pytest.mark.slow
def test_http_style_backends_run_concurrently_inside_a_worker(tmp_path, ray_cluster):
    """A worker in front of a remote server (vLLM, OpenAI) keeps several calls in flight."""
    with InFlightServer(target=8) as server:
        params = {"base_url": server.base_url, "concurrency": 8, "max_retries": 0,
                  "timeout": 300}
        with RayExecutor("openai:stub", params, address=ray_cluster, workers=1, chunk_size=8,
                         in_flight=1) as executor:
            store = Store(f"sqlite:///{tmp_path / 'http.db'}")
            evaluator = Evaluator(load_model("openai:stub", **params), get_metric("exact"),
                                  store, progress=False, executor=executor)
            result = evaluator.evaluate(examples(16), PROMPT, task="words")
            worker_calls = sum(w["calls"] for w in executor.worker_info())
    _, local_rows, _ = run(tmp_path, "local", n=16)
    # the same answers as the local fake, from 16 calls, all made by the one worker
    assert [r[:5] for r in rows(store, result.run_id)] == [r[:5] for r in local_rows]
    assert server.requests == worker_calls == 16
    # a whole chunk (8 calls) was in flight at once, and never more: in_flight=1 chunk
    assert server.peak == 8


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
