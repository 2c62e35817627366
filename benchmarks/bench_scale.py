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

Usage: python benchmarks/bench_scale.py [--part serve|ray|all] [--clients 50]
       [--requests 40] (requests per client, split over --rounds 4)
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
from common import emit

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


def start(cmd: list[str], port: int, env: dict[str, str]) -> subprocess.Popen:
    import httpx

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server did not start: {proc.stderr.read().decode()[-800:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    sys.exit(f"server on port {port} did not answer /healthz within 60 s")


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
            head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host_port}\r\n{auth}"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
            started = time.perf_counter()
            writer.write(head.encode() + body)
            await writer.drain()
            status, answer = await _read_response(reader)
            latencies.append(time.perf_counter() - started)
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
        "ratio_server_cpu_per_request_serve_vs_bare": round(
            figures["promptmill_serve"]["server_cpu_ms_per_request"]
            / figures["bare_fastapi"]["server_cpu_ms_per_request"], 3),
        "traces_stored": traces,
        "traces_expected": served_requests + 2 * 2 * clients,
        "environment": {"python": platform.python_version(), "cpus": os.cpu_count(),
                        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
                        "load_generator": "raw HTTP/1.1 keep-alive clients, asyncio, "
                                          "one process, same machine"},
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
    parser.add_argument("--part", choices=["serve", "ray", "all"], default="serve")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=40, help="requests per client")
    parser.add_argument("--rounds", type=int, default=4, help="serve part: alternating rounds")
    parser.add_argument("--tasks", default="antonyms,synonyms,first_word_letter",
                        help="Ray part: instruction-induction tasks")
    parser.add_argument("--n", type=int, default=60, help="Ray part: examples per task")
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
    if args.part in ("ray", "all"):
        bench_ray = ray_part()
        if bench_ray is None:
            sys.exit("the Ray half (benchmarks/bench_scale_ray.py) is not present")
        results["ray"] = bench_ray(args.tasks.split(","), args.n)
    emit("bench_scale" if args.part == "all" else f"bench_scale_{args.part}",
         results if len(results) > 1 else next(iter(results.values())))


if __name__ == "__main__":
    main()
