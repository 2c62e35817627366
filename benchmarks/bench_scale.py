"""Scale benchmarks: the served endpoint under 50 concurrent clients (and Ray, when present).

Serve: `promptmill serve` runs as its own process on loopback with a fake backend (instant,
deterministic answers), so the figures measure the serving path itself: auth, body limit, JSON
parsing, prompt rendering, the concurrency queue, the worker thread and trace logging. In the
same run the same load goes to a bare FastAPI endpoint on uvicorn that returns a fixed chat
completion and does nothing else: the ratio says what promptmill's path costs over the
framework's floor. The load generator is one asyncio process with 50 keep-alive connections
speaking raw HTTP/1.1, each sending its requests back to back; it shares the machine's cores
with the server, as loopback tests do (raw, because a client library would use more CPU than the
server under test). A request counts as an error unless it gets 200 and a complete answer.
On a busy machine wall-clock throughput swings from round to round, so the server process's CPU
time per request is reported too: it is the steadier measure of what the serving path costs.

Ray: the distributed-evaluation half lives in bench_scale_ray.py (`bench_ray`); `--part ray`
runs it from here when that file exists.

Engine (issue 18): `promptmill serve` on the real embedded model, which decodes concurrent
requests together, against `python -m llama_cpp.server` serving the same GGUF with the same
good thread settings (every usable CPU, passive wait policy): requests/s at 1, 4 and 8
concurrent clients (floor at 8: 1.3x), whether both gave the same greedy answers, and time to
first token with `stream: true` against the whole-answer time (one client, one at a time).

Usage: python benchmarks/bench_scale.py [--part serve|engine|ray|all] [--clients 50]
       [--requests 40] (requests per client, split over --rounds 4)
       engine: [--engine-requests 6] [--engine-rounds 2] [--engine-clients 1,4,8]
       [--max-tokens 32] [--ttft-requests 8]
"""

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import emit, load_average

BENCH_KEY_ENV = "PROMPTMILL_BENCH_KEY"
BENCH_KEY = "bench-key-not-secret"


# --- servers --------------------------------------------------------------------------------------
def bare_app():
    """The floor: FastAPI returning a fixed chat completion, no auth, no prompt, no store."""
    from fastapi import FastAPI, Request

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    reply = {"id": "chatcmpl-bare", "object": "chat.completion", "created": 0, "model": "bare",
             "choices": [{"index": 0, "message": {"role": "assistant", "content": "positive"},
                          "finish_reason": "stop"}],
             "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}

    # no `from __future__ import annotations` in this file: FastAPI must see Request itself
    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        await request.json()
        return reply

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    return app


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(cmd: list[str], port: int, env: dict[str, str], health: str = "/healthz",
          log: Path | None = None) -> subprocess.Popen:
    """Start a server and wait until ``health`` answers 200; with ``log``, its stderr goes to
    that file (a long run's log would fill an unread pipe and stall the server)."""
    import httpx

    if log is None:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    else:
        with log.open("wb") as err:  # the child holds its own copy
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = log.read_text(errors="replace") if log is not None else \
                proc.communicate()[1].decode()
            sys.exit(f"server did not start: {text[-800:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{health}", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    sys.exit(f"server on port {port} did not answer {health} within 60 s")


def stop(proc: subprocess.Popen) -> None:
    import signal

    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()


def served_setup(folder: Path) -> tuple[str, Path]:
    """A store with one tagged prompt and a task config with an instant fake backend."""
    import yaml

    from promptmill.prompt import Prompt
    from promptmill.store.db import Store

    db_url = f"sqlite:///{folder / 'store.db'}"
    store = Store(db_url)
    prompt = Prompt(name="review", instruction="Classify the sentiment of the review.",
                    template="Review: {{ text }}",
                    output_format="Answer with one word: positive or negative.")
    row = store.save_prompt("review", prompt.content(), prompt.hash)
    store.tag_prompt("review", row["version"], "production")
    store.close()
    (folder / "data.jsonl").write_text('{"id": "a", "text": "fine", "label": "positive"}\n')
    config = folder / "task.yaml"
    config.write_text(yaml.safe_dump({
        "name": "review", "data": {"path": "data.jsonl", "input": ["text"], "target": "label",
                                   "id": "id"},
        "splits": {"train": 0, "validation": 0, "test": 1},
        "model": {"name": "fake", "params": {"default": "positive", "concurrency": 64}},
        "generation": {"max_tokens": 8}}))
    return db_url, config


# --- load ---------------------------------------------------------------------------------------
async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP/1.1 response: a Content-Length body or a chunked (streamed) one."""
    status = int((await reader.readline()).split()[1])
    headers = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        return status, await reader.readexactly(int(headers["content-length"]))
    parts = []
    while True:  # chunked transfer encoding
        size = int((await reader.readline()).split(b";")[0], 16)
        if size == 0:
            await reader.readline()
            return status, b"".join(parts)
        parts.append((await reader.readexactly(size + 2))[:-2])


async def _post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host_port: str,
                auth: str, body: bytes) -> tuple[int, bytes, float]:
    """One chat completion on a keep-alive connection: status, body and seconds."""
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host_port}\r\n{auth}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    started = time.perf_counter()
    writer.write(head.encode() + body)
    await writer.drain()
    status, answer = await _read_response(reader)
    return status, answer, time.perf_counter() - started


async def _one_client(url: str, c: int, per_client: int, key: str | None, stream: bool,
                      latencies: list[float], errors: list[str]) -> None:
    """A keep-alive connection sending requests back to back (raw HTTP/1.1: a client library
    would spend more CPU than the server under test, on the same cores)."""
    host_port = url.split("//")[1].split("/")[0]
    host, port = host_port.split(":")
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        for i in range(per_client):
            body = json.dumps({"model": "m", "stream": stream, "messages": [
                {"role": "user", "content": f"Review number {c}-{i}: works well, love it."}]}
            ).encode()
            status, answer, seconds = await _post(reader, writer, host_port, auth, body)
            latencies.append(seconds)
            done = answer.rstrip().endswith(b"[DONE]") if stream else b'"choices"' in answer
            if status != 200 or not done:
                errors.append(f"{status}: {answer[:80]!r}")
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        writer.close()


async def _load(url: str, clients: int, per_client: int, key: str | None,
                stream: bool) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    started = time.perf_counter()
    await asyncio.gather(*(_one_client(url, c, per_client, key, stream, latencies, errors)
                           for c in range(clients)))
    return {"latencies": latencies, "errors": errors, "seconds": time.perf_counter() - started}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the server process has used so far."""
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def measure(url: str, clients: int, per_client: int, key: str | None = None,
            stream: bool = False, pid: int | None = None) -> dict:
    """One load run; with ``pid``, also the server's CPU seconds, which (unlike wall time)
    barely move when other work competes for the cores."""
    before, client_before = (cpu_seconds(pid) if pid else 0.0), time.process_time()
    result = asyncio.run(_load(url, clients, per_client, key, stream))
    result["cpu"] = cpu_seconds(pid) - before if pid else 0.0
    result["client_cpu"] = time.process_time() - client_before
    return result


def summary(rounds: list[dict]) -> dict:
    """Pooled latencies and per-round throughput of one configuration."""
    latencies = sorted(x for r in rounds for x in r["latencies"])
    errors = [e for r in rounds for e in r["errors"]]
    rps = [len(r["latencies"]) / r["seconds"] for r in rounds]
    cpu_ms = 1000 * sum(r["cpu"] for r in rounds) / max(1, len(latencies))
    client_ms = 1000 * sum(r["client_cpu"] for r in rounds) / max(1, len(latencies))
    return {"requests": len(latencies), "errors": len(errors), "error_samples": errors[:5],
            "server_cpu_ms_per_request": round(cpu_ms, 3),
            "load_generator_cpu_ms_per_request": round(client_ms, 3),
            "requests_per_second": round(statistics.median(rps), 1),
            "requests_per_second_by_round": [round(x, 1) for x in rps],
            "p50_ms": round(1000 * statistics.median(latencies), 2),
            "p99_ms": round(1000 * latencies[min(len(latencies) - 1,
                                                 int(0.99 * len(latencies)))], 2)}


def count_traces(db_url: str) -> dict[int, int]:
    from promptmill.serve.traces import list_traces
    from promptmill.store.db import Store

    store = Store(db_url)
    counts: dict[int, int] = {}
    for row in list_traces(store):
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    store.close()
    return counts


def bench_serve(clients: int = 50, per_client: int = 40, rounds: int = 4) -> dict:
    """Requests/s and p50/p99 latency of `promptmill serve` against a bare FastAPI floor.

    Both servers run side by side and the configurations take turns, round after round, so
    a burst of load from elsewhere on the machine hits all of them alike; each ratio is the
    median of the per-round ratios.
    """
    env = {**os.environ, BENCH_KEY_ENV: BENCH_KEY}
    python = sys.executable
    per_round = max(1, per_client // rounds)
    with tempfile.TemporaryDirectory() as tmp:
        db_url, config = served_setup(Path(tmp))
        bare_port, served_port = free_port(), free_port()
        bare = start([python, __file__, "--bare-server", str(bare_port)], bare_port, env)
        served = start([python, "-m", "promptmill.cli.app", "--db", db_url, "serve",
                        "--prompt", "review@production", "--config", str(config),
                        "--port", str(served_port), "--api-key-env", BENCH_KEY_ENV,
                        "--max-concurrency", "64"], served_port, env)
        bare_url, served_url = (f"http://127.0.0.1:{p}/v1" for p in (bare_port, served_port))
        configs = {"bare_fastapi": (bare_url, None, False, bare.pid),
                   "promptmill_serve": (served_url, BENCH_KEY, False, served.pid),
                   "promptmill_serve_streaming": (served_url, BENCH_KEY, True, served.pid)}
        runs: dict[str, list[dict]] = {name: [] for name in configs}
        try:
            for url, key, stream, _pid in configs.values():  # warm-up, not counted
                measure(url, clients, 2, key, stream)
            for _ in range(rounds):
                for name, (url, key, stream, pid) in configs.items():
                    runs[name].append(measure(url, clients, per_round, key, stream, pid))
        finally:
            stop(bare)
            stop(served)
        traces = count_traces(db_url)
    ratios = [len(s["latencies"]) / s["seconds"] / (len(b["latencies"]) / b["seconds"])
              for s, b in zip(runs["promptmill_serve"], runs["bare_fastapi"], strict=True)]
    figures = {name: summary(r) for name, r in runs.items()}
    served_requests = (figures["promptmill_serve"]["requests"]
                       + figures["promptmill_serve_streaming"]["requests"])
    return {
        "benchmark": "serve", "clients": clients, "requests_per_client": per_round * rounds,
        "rounds": rounds, "backend": "fake (instant answers)", **figures,
        "ratio_rps_serve_vs_bare": round(statistics.median(ratios), 3),
        "ratio_rps_serve_vs_bare_by_round": [round(x, 3) for x in ratios],
        "ratio_p50_serve_vs_bare": round(figures["promptmill_serve"]["p50_ms"]
                                         / figures["bare_fastapi"]["p50_ms"], 3),
        # None when a run is too short for the CPU clock (10 ms ticks) to see the bare server
        "ratio_server_cpu_per_request_serve_vs_bare": round(
            figures["promptmill_serve"]["server_cpu_ms_per_request"]
            / figures["bare_fastapi"]["server_cpu_ms_per_request"], 3)
        if figures["bare_fastapi"]["server_cpu_ms_per_request"] else None,
        "traces_stored": traces,
        "traces_expected": served_requests + 2 * 2 * clients,
        "environment": {"python": platform.python_version(), "cpus": os.cpu_count(),
                        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
                        "load_generator": "raw HTTP/1.1 keep-alive clients, asyncio, "
                                          "one process, same machine"},
    }


# --- engine: promptmill serve on the real model against llama_cpp.server (issue 18) -------------
ENGINE_PROMPT = {"name": "rewrite", "template": "Review: {{ text }}",
                 "instruction": "Rewrite the product review in your own words, in one sentence."}
ENGINE_CLIENTS = (1, 4, 8)
ENGINE_FLOOR = 1.3  # promptmill serve / llama_cpp.server requests/s at 8 clients
SENTIMENT_DATA = Path(__file__).resolve().parent.parent / "promptmill" / "examples" / \
    "sentiment" / "data.jsonl"


def engine_setup(folder: Path, max_tokens: int) -> tuple[str, Path, list[str], list]:
    """A store with the served prompt, a task config on the embedded model, the reviews the
    clients send, and the messages promptmill renders from each (what llama_cpp.server gets)."""
    import yaml

    from promptmill.models import GenerationParams
    from promptmill.prompt import Prompt
    from promptmill.rendering import Renderer
    from promptmill.store.db import Store
    from promptmill.task import Example

    db_url = f"sqlite:///{folder / 'store.db'}"
    store = Store(db_url)
    prompt = Prompt(name=ENGINE_PROMPT["name"], instruction=ENGINE_PROMPT["instruction"],
                    template=ENGINE_PROMPT["template"])
    row = store.save_prompt(ENGINE_PROMPT["name"], prompt.content(), prompt.hash)
    store.tag_prompt(ENGINE_PROMPT["name"], row["version"], "production")
    store.close()
    config = folder / "task.yaml"
    config.write_text(yaml.safe_dump({
        "name": "rewrite", "data": {"path": str(SENTIMENT_DATA), "input": ["text"],
                                    "target": "label", "id": "id"},
        "splits": {"train": 0, "validation": 0, "test": 1.0}, "model": "embedded",
        "generation": {"max_tokens": max_tokens, "temperature": 0.0, "seed": 0}}))
    reviews = [json.loads(line)["text"] for line in SENTIMENT_DATA.read_text().splitlines()
               if line.strip()]
    renderer = Renderer(mode="chat", params=GenerationParams(max_tokens=max_tokens))
    rendered = [renderer.render(prompt, Example(f"r{i}", {"text": text}))
                for i, text in enumerate(reviews)]
    return db_url, config, reviews, rendered


def engine_bodies(side: str, reviews: list[str], rendered: list, max_tokens: int,
                  stream: bool = False) -> list[bytes]:
    """The same requests for both servers: the review for promptmill (it renders the prompt),
    the rendered messages for llama_cpp.server, with greedy settings spelled out (its
    defaults add a repeat penalty that promptmill's calls do not have)."""
    bodies = []
    for text, messages in zip(reviews, rendered, strict=True):
        body: dict = {"model": "rewrite", "max_tokens": max_tokens, "temperature": 0.0,
                      "stream": stream}
        if side == "promptmill":
            body["messages"] = [{"role": "user", "content": text}]
        else:
            body.update(messages=messages, top_p=1.0, repeat_penalty=1.0, seed=0)
        bodies.append(json.dumps(body).encode())
    return bodies


async def _engine_client(host_port: str, bodies: list[tuple[int, bytes]], key: str | None,
                         out: dict) -> None:
    """One keep-alive connection sending its bodies back to back, keeping each answer by the
    index of its review."""
    host, port = host_port.split(":")
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        for index, body in bodies:
            status, answer, seconds = await _post(reader, writer, host_port, auth, body)
            out["latencies"].append(seconds)
            try:
                text = json.loads(answer)["choices"][0]["message"]["content"]
            except (ValueError, KeyError, IndexError, TypeError):
                text = None
            if status != 200 or text is None:
                out["errors"].append(f"{status}: {answer[:120]!r}")
            out["answers"][index] = text
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        out["errors"].append(f"{type(exc).__name__}: {exc}")
    finally:
        writer.close()


async def _engine_load(host_port: str, per_client: list[list[tuple[int, bytes]]],
                       key: str | None) -> dict:
    out: dict = {"latencies": [], "errors": [], "answers": {}}
    started = time.perf_counter()
    await asyncio.gather(*(_engine_client(host_port, bodies, key, out) for bodies in per_client))
    out["seconds"] = time.perf_counter() - started
    return out


def engine_round(host_port: str, bodies: list[bytes], clients: int, per_client: int,
                 key: str | None, pid: int, offset: int) -> dict:
    """``clients`` connections, ``per_client`` requests each, from ``offset`` in the bodies."""
    indices = [[(offset + c * per_client + i) % len(bodies) for i in range(per_client)]
               for c in range(clients)]
    picked = [[(i, bodies[i]) for i in row] for row in indices]
    before = cpu_seconds(pid)
    out = asyncio.run(_engine_load(host_port, picked, key))
    out["cpu"] = cpu_seconds(pid) - before
    return out


def engine_summary(rounds: list[dict]) -> dict:
    latencies = sorted(x for r in rounds for x in r["latencies"])
    errors = [e for r in rounds for e in r["errors"]]
    rps = [len(r["latencies"]) / r["seconds"] for r in rounds]
    return {"requests": len(latencies), "errors": len(errors), "error_samples": errors[:3],
            "requests_per_second": round(statistics.median(rps), 3),
            "requests_per_second_by_round": [round(x, 3) for x in rps],
            "p50_ms": round(1000 * statistics.median(latencies), 1),
            "server_cpu_ms_per_request": round(1000 * sum(r["cpu"] for r in rounds)
                                               / max(1, len(latencies)), 1)}


def stream_timing(url: str, body: bytes, key: str | None) -> dict:
    """One request with ``stream: true`` (OpenAI's server-sent events): seconds to the first
    chunk carrying answer text, to the end of the stream, and how many text chunks came."""
    import httpx

    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"}
                                                       if key else {})}
    first, chunks, text = None, 0, []
    started = time.perf_counter()
    with httpx.Client(timeout=120) as client, \
            client.stream("POST", url, content=body, headers=headers) as response:
        if response.status_code != 200:
            return {"error": f"{response.status_code}: {response.read()[:120]!r}"}
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            choices = json.loads(line[6:]).get("choices") or [{}]
            piece = (choices[0].get("delta") or {}).get("content")
            if piece:
                first = first if first is not None else time.perf_counter() - started
                chunks += 1
                text.append(piece)
    return {"ttft": first, "total": time.perf_counter() - started, "chunks": chunks,
            "text": "".join(text)}


def whole_timing(url: str, body: bytes, key: str | None) -> tuple[float, str]:
    """One request without streaming: seconds to the whole answer, and its text."""
    import httpx

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    started = time.perf_counter()
    response = httpx.post(url, content=body, headers={"Content-Type": "application/json",
                                                      **headers}, timeout=120)
    seconds = time.perf_counter() - started
    response.raise_for_status()
    return seconds, response.json()["choices"][0]["message"]["content"]


def ttft_figures(url: str, streamed: list[bytes], whole: list[bytes], key: str | None) -> dict:
    """One client, one request at a time, streamed and whole answers alternating."""
    runs = []
    for s_body, w_body in zip(streamed, whole, strict=True):
        seconds, text = whole_timing(url, w_body, key)
        runs.append({**stream_timing(url, s_body, key), "whole": seconds, "whole_text": text})
    good = [r for r in runs if r.get("ttft") is not None]
    if not good:
        return {"error": "no streamed answer carried text",
                "samples": [r.get("error") for r in runs][:3]}
    ttft = statistics.median(r["ttft"] for r in good)
    whole_s = statistics.median(r["whole"] for r in good)
    return {"requests": len(runs), "with_text": len(good),
            "ttft_ms_p50": round(1000 * ttft, 1),
            "stream_total_ms_p50": round(1000 * statistics.median(r["total"] for r in good), 1),
            "whole_answer_ms_p50": round(1000 * whole_s, 1),
            "ttft_vs_whole_answer": round(ttft / whole_s, 3),
            "text_chunks_per_answer_p50": statistics.median(r["chunks"] for r in good),
            "streamed_text_equals_whole_answer": sum(r["text"] == r["whole_text"]
                                                     for r in good)}


def engine_servers(folder: Path, db_url: str, config: Path, concurrency: int) -> dict:
    """Both servers on loopback: promptmill serve (promptmill picks its thread settings) and
    llama_cpp.server with the same good settings (every usable CPU, the wait policy and spin
    count promptmill sets)."""
    from common import child_thread_settings

    from promptmill.models.llamacpp import embedded_gguf_path
    from promptmill.models.threads import usable_cpus

    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    base[BENCH_KEY_ENV] = BENCH_KEY
    base["PROMPTMILL_HOME"] = str(folder / "home")  # the measured batch width lands here
    from promptmill.models.threads import SPIN_COUNT

    llama_env = {**base, "OMP_WAIT_POLICY": "passive", "GOMP_SPINCOUNT": SPIN_COUNT}
    cpus = str(usable_cpus())
    ports = {"promptmill": free_port(), "llama_cpp_server": free_port()}
    python = sys.executable
    cmds = {
        "promptmill": ([python, "-m", "promptmill.cli.app", "--db", db_url, "serve",
                        "--prompt", "rewrite@production", "--config", str(config),
                        "--port", str(ports["promptmill"]), "--api-key-env", BENCH_KEY_ENV,
                        "--max-concurrency", str(concurrency)], base, "/healthz"),
        "llama_cpp_server": ([python, "-m", "llama_cpp.server", "--model",
                              str(embedded_gguf_path()), "--host", "127.0.0.1", "--port",
                              str(ports["llama_cpp_server"]), "--n_ctx", "2048",
                              "--n_threads", cpus, "--n_threads_batch", cpus, "--seed", "0",
                              "--verbose", "False", "--interrupt_requests", "False"],
                             llama_env, "/v1/models")}
    servers: dict = {}
    try:
        for name, (cmd, env, health) in cmds.items():
            proc = start(cmd, ports[name], env, health, log=folder / f"{name}.log")
            servers[name] = {"proc": proc, "host_port": f"127.0.0.1:{ports[name]}",
                             "key": BENCH_KEY if name == "promptmill" else None}
    except BaseException:
        stop_all(servers)
        raise
    servers["promptmill"]["settings"] = child_thread_settings(base)
    servers["llama_cpp_server"]["settings"] = {
        "n_threads": int(cpus), "n_threads_batch": int(cpus),
        "OMP_WAIT_POLICY": llama_env["OMP_WAIT_POLICY"],
        "GOMP_SPINCOUNT": llama_env["GOMP_SPINCOUNT"]}
    return servers


def stop_all(servers: dict) -> None:
    for server in servers.values():
        stop(server["proc"])


def agreement(answers: dict[str, dict[int, str | None]]) -> dict:
    """How many reviews got the same greedy answer from both servers."""
    ours, theirs = answers["promptmill"], answers["llama_cpp_server"]
    return {"compared": len(ours), "equal": sum(ours[r] == theirs.get(r) for r in ours)}


def bench_engine(per_client: int = 6, rounds: int = 2, max_tokens: int = 32,
                 ttft_requests: int = 8, clients_list: tuple[int, ...] = ENGINE_CLIENTS
                 ) -> dict:
    """Requests/s of promptmill serve (batched decoding of concurrent requests) against
    llama_cpp.server on the same GGUF at 1, 4 and 8 clients, and time to first token.

    The two servers take turns, round after round, so a burst of load from elsewhere on the
    machine hits both alike; each ratio is the median of the per-round ratios."""
    loads = [load_average()]
    with tempfile.TemporaryDirectory(prefix="promptmill-bench-engine-") as tmp:
        folder = Path(tmp)
        db_url, config, reviews, rendered = engine_setup(folder, max_tokens)
        bodies = {side: engine_bodies(side, reviews, rendered, max_tokens)
                  for side in ("promptmill", "llama_cpp_server")}
        servers = engine_servers(folder, db_url, config, max(16, max(clients_list)))
        runs: dict[str, dict[int, list[dict]]] = {s: {c: [] for c in clients_list}
                                                  for s in bodies}
        ttft: dict[str, dict] = {}
        try:
            for side, server in servers.items():  # warm-up: the batch width is measured here
                engine_round(server["host_port"], bodies[side], 2, 2, server["key"],
                             server["proc"].pid, 0)
            for rnd in range(rounds):
                for clients in clients_list:
                    order = list(servers) if rnd % 2 == 0 else list(servers)[::-1]
                    for side in order:
                        server = servers[side]
                        print(f"engine: {side}, {clients} clients (round {rnd + 1})",
                              file=sys.stderr)
                        runs[side][clients].append(engine_round(
                            server["host_port"], bodies[side], clients, per_client,
                            server["key"], server["proc"].pid, rnd * 97 + clients))
                        loads.append(load_average())
            for side, server in servers.items():
                url = f"http://{server['host_port']}/v1/chat/completions"
                streamed = engine_bodies(side, reviews, rendered, max_tokens, stream=True)
                ttft[side] = ttft_figures(url, streamed[:ttft_requests],
                                          bodies[side][:ttft_requests], server["key"])
        finally:
            stop_all(servers)
    return engine_report(runs, ttft, servers, loads, per_client, rounds, max_tokens)


def engine_report(runs: dict, ttft: dict, servers: dict, loads: list, per_client: int,
                  rounds: int, max_tokens: int) -> dict:
    by_clients = {}
    for clients in runs["promptmill"]:
        ours, theirs = runs["promptmill"][clients], runs["llama_cpp_server"][clients]
        ratios = [len(a["latencies"]) / a["seconds"] / (len(b["latencies"]) / b["seconds"])
                  for a, b in zip(ours, theirs, strict=True)]
        answers = {"promptmill": {k: v for r in ours for k, v in r["answers"].items()},
                   "llama_cpp_server": {k: v for r in theirs for k, v in r["answers"].items()}}
        by_clients[str(clients)] = {
            "promptmill_serve": engine_summary(ours), "llama_cpp_server": engine_summary(theirs),
            "ratio_rps": round(statistics.median(ratios), 3),
            "ratio_rps_by_round": [round(x, 3) for x in ratios],
            "same_answers": agreement(answers)}
    top = by_clients[str(max(runs["promptmill"]))]
    return {
        "benchmark": "serve_engine", "model": "embedded (SmolLM2-135M-Instruct Q4_1)",
        "prompt": ENGINE_PROMPT, "max_tokens": max_tokens, "requests_per_client": per_client,
        "rounds": rounds, "by_clients": by_clients,
        "ratio_rps_at_most_clients": top["ratio_rps"], "floor": ENGINE_FLOOR,
        "meets_floor": top["ratio_rps"] >= ENGINE_FLOOR,
        "time_to_first_token": ttft,
        "thread_settings": {side: s["settings"] for side, s in servers.items()},
        "environment": {"python": platform.python_version(), "cpus": os.cpu_count(),
                        "load_average": {"before": loads[0], "after_each_round": loads[1:]},
                        "load_generator": "raw HTTP/1.1 keep-alive clients, asyncio, one "
                                          "process; TTFT with httpx, one request at a time"},
    }


def ray_part():
    """`bench_ray` from bench_scale_ray.py, or None while that half does not exist."""
    try:
        from bench_scale_ray import bench_ray
    except ImportError:
        return None
    return bench_ray


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=["serve", "engine", "ray", "all"], default="serve")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=40, help="requests per client")
    parser.add_argument("--rounds", type=int, default=4, help="serve part: alternating rounds")
    parser.add_argument("--tasks", default="antonyms,synonyms,first_word_letter",
                        help="Ray part: instruction-induction tasks")
    parser.add_argument("--n", type=int, default=60, help="Ray part: examples per task")
    parser.add_argument("--engine-requests", type=int, default=6,
                        help="engine part: requests per client per round")
    parser.add_argument("--engine-rounds", type=int, default=2, help="engine part: rounds")
    parser.add_argument("--engine-clients", default="1,4,8",
                        help="engine part: concurrent clients, comma-separated")
    parser.add_argument("--max-tokens", type=int, default=32, help="engine part: answer limit")
    parser.add_argument("--ttft-requests", type=int, default=8,
                        help="engine part: streamed requests for time to first token")
    parser.add_argument("--bare-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare_server:
        import uvicorn

        uvicorn.run(bare_app(), host="127.0.0.1", port=args.bare_server, log_level="warning",
                    access_log=False)
        return
    results = {}
    if args.part in ("serve", "all"):
        results["serve"] = bench_serve(args.clients, args.requests, args.rounds)
    if args.part in ("engine", "all"):
        results["engine"] = bench_engine(
            args.engine_requests, args.engine_rounds, args.max_tokens, args.ttft_requests,
            tuple(int(c) for c in args.engine_clients.split(",")))
    if args.part in ("ray", "all"):
        bench_ray = ray_part()
        if bench_ray is None:
            sys.exit("the Ray half (benchmarks/bench_scale_ray.py) is not present")
        results["ray"] = bench_ray(args.tasks.split(","), args.n)
    emit("bench_scale" if args.part == "all" else f"bench_scale_{args.part}",
         results if len(results) > 1 else next(iter(results.values())))


if __name__ == "__main__":
    main()
