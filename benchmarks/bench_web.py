"""Workbench page speed at scale: the runs list and a run's detail page, paginated.

Builds two stores by bulk insert: a large one with 10,000 runs, one of which has 10,000 examples,
and a small baseline one with 100 runs and a 100-example run. Each page is requested through the
app (FastAPI TestClient) several times; the figure is the median server time from the
``Server-Timing`` header the app sets, so client overhead is left out. Ratios compare each page
on the large store with the same page on the small store, measured in the same run, and with a
bare SELECT of one page of rows.

Usage: python benchmarks/bench_web.py [--runs 10000] [--examples 10000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import emit

TASKS = [f"task-{i}" for i in range(20)]
LABELS = ["positive", "negative", "neutral"]
FLOOR_MS = 1000.0


def build_store(url: str, n_runs: int, n_examples: int, seed: int = 0) -> int:
    """``n_runs`` runs plus one run of ``n_examples`` results; returns that run's id."""
    import sqlalchemy as sa

    from promptmill.store import schema
    from promptmill.store.db import Store

    rng = random.Random(seed)
    store = Store(url)
    now = datetime(2026, 1, 1)
    prompt = store.save_prompt("bench", {"instruction": "Label it.", "template": "{{ text }}"},
                               "benchhash")
    runs = []
    for i in range(n_runs):
        n = rng.randint(20, 200)
        runs.append({"kind": "eval" if i % 10 else "optimize", "task": rng.choice(TASKS),
                     "split": "test", "model": "embedded", "model_identity": "smollm2",
                     "metric": "exact", "prompt_id": prompt["id"], "prompt_hash": "benchhash",
                     "fingerprint": f"fp{i}", "config": "{}", "seed": 0, "status": "finished",
                     "n_examples": n, "n_done": n, "n_errors": 0,
                     "score_sum": rng.random() * n, "calls": n, "cache_hits": 0,
                     "tokens_in": n * 40, "tokens_out": n * 3, "model_seconds": n * 0.1,
                     "wall_seconds": n * 0.12, "created_at": now + timedelta(minutes=i)})
    with store.engine.begin() as conn:
        conn.execute(schema.runs.insert(), runs)
        big = conn.execute(sa.select(sa.func.max(schema.runs.c.id))).scalar_one()
        conn.execute(schema.runs.update().where(schema.runs.c.id == big)
                     .values(n_examples=n_examples, n_done=n_examples, task=TASKS[0],
                             kind="eval"))
        rows = []
        for j in range(n_examples):
            target = rng.choice(LABELS)
            output = target if rng.random() < 0.7 else rng.choice(LABELS)
            rows.append({"run_id": big, "example_id": f"ex{j:05d}", "idx": j,
                         "inputs": json.dumps({"text": f"review number {j} " + "words " * 8}),
                         "target": target, "answers": None, "output": output,
                         "score": float(output == target), "feedback": None, "error": None,
                         "tokens_in": 40, "tokens_out": 3, "seconds": 0.1, "cached": False})
        conn.execute(schema.results.insert(), rows)
    store.close()
    return big


def server_ms(client, path: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        times.append(float(response.headers["server-timing"].split("dur=")[1]))
    return statistics.median(times)


def bare_select_ms(url: str, run_id: int, repeat: int) -> float:
    """One page of results by a plain SELECT: the floor a page cannot go below."""
    import sqlalchemy as sa

    from promptmill.store import schema
    from promptmill.store.db import Store

    store = Store(url)
    t = schema.results
    query = sa.select(t).where(t.c.run_id == run_id).order_by(t.c.idx).limit(50)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        with store.engine.connect() as conn:
            conn.execute(query).all()
        times.append((time.perf_counter() - start) * 1000)
    store.close()
    return statistics.median(times)


def pages(run_id: int, n_runs: int, n_examples: int) -> dict[str, str]:
    last_runs, last_results = max(1, n_runs // 50), max(1, n_examples // 50)
    return {
        "runs list, page 1": "/runs",
        "runs list, last page": f"/runs?page={last_runs}",
        "runs list, sorted by mean": "/runs?sort=mean&order=desc",
        "runs list, filtered by task": f"/runs?task={TASKS[3]}&kind=eval",
        "run detail, page 1": f"/runs/{run_id}",
        "run detail, last page": f"/runs/{run_id}?page={last_results}",
        "run detail, failures only": f"/runs/{run_id}?failures=1&page=10",
        "run detail, search": f"/runs/{run_id}?q=number%20777",
    }


def measure(url: str, n_runs: int, n_examples: int, repeat: int) -> dict:
    from fastapi.testclient import TestClient

    from promptmill.web import create_app

    started = time.perf_counter()
    run_id = build_store(url, n_runs, n_examples)
    build_s = time.perf_counter() - started
    with TestClient(create_app(url)) as client:
        figures = {name: server_ms(client, path, repeat)
                   for name, path in pages(run_id, n_runs, n_examples).items()}
    return {"runs": n_runs, "examples_in_big_run": n_examples, "build_seconds": round(build_s, 2),
            "bare_select_ms": round(bare_select_ms(url, run_id, repeat), 3),
            "pages_ms": {k: round(v, 1) for k, v in figures.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PROMPTMILL_HOME"] = tmp
        large = measure(f"sqlite:///{tmp}/large.db", args.runs, args.examples, args.repeat)
        small = measure(f"sqlite:///{tmp}/small.db", 100, 100, args.repeat)
    ratios = {name: round(ms / small["pages_ms"][name], 2)
              for name, ms in large["pages_ms"].items()}
    slowest = max(large["pages_ms"].values())
    emit("bench_web", {
        "benchmark": "web workbench page server time (median of repeats, Server-Timing)",
        "large": large, "baseline_small": small,
        "ratio_large_to_small": ratios,
        "ratio_to_bare_select": {name: round(ms / large["bare_select_ms"], 1)
                                 for name, ms in large["pages_ms"].items()},
        "floor_ms": FLOOR_MS, "slowest_ms": slowest, "all_under_floor": slowest < FLOOR_MS,
    })
    if slowest >= FLOOR_MS:
        sys.exit(1)


if __name__ == "__main__":
    main()
