"""One background job in its own process: ``python -m promptmill.web.worker STORE_URL JOB_ID``.

A process per job keeps the web server responsive and makes cancelling simple: SIGTERM becomes
KeyboardInterrupt, the evaluation commits what it finished and marks its run interrupted, so the
partial results stay in the store (and a rerun resumes after them).
"""

from __future__ import annotations

import json
import signal
import sys
from typing import Any

from ..errors import PromptmillError
from ..store.db import Store
from . import queries


class JobStore(Store):
    """A store that links the first run the job opens or resumes to the job, as soon as it
    exists (an optimization's own run, not the test evaluations it starts later)."""

    def __init__(self, url: str, job_id: int):
        super().__init__(url)
        self.job_id = job_id
        self.linked = False

    def _link(self, run_id: int) -> None:
        if not self.linked:
            self.linked = True
            queries.update_job(self, self.job_id, run_id=run_id)

    def create_run(self, **fields: Any) -> int:
        run_id = super().create_run(**fields)
        self._link(run_id)
        return run_id

    def find_resumable_run(self, fingerprint: str) -> dict[str, Any] | None:
        found = super().find_resumable_run(fingerprint)
        if found is not None:
            self._link(found["id"])
        return found


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


def run_eval(store: Store, cfg: dict[str, Any]) -> None:
    from ..api import evaluate
    from ..prompt import Prompt

    prompt = Prompt.model_validate(cfg["prompt"]) if cfg.get("prompt") else None
    evaluate(cfg["config_path"], prompt, model=cfg.get("model") or None,
             split=cfg.get("split", "test"), store=store, limit=cfg.get("limit"),
             progress=False)


def run_optimize(store: Store, cfg: dict[str, Any]) -> None:
    from ..api import setup
    from ..optimize import Budget
    from ..optimize import optimize as optimize_prompt
    from ..prompt import Prompt

    seed = Prompt.model_validate(cfg["prompt"]) if cfg.get("prompt") else None
    with setup(cfg["config_path"], prompt=seed, model=cfg.get("model") or None,
               store=store) as s:
        optimize_prompt(s.task, s.prompt, s.model, metric=s.metric,
                        budget=Budget(calls=cfg.get("budget_calls")),
                        method=cfg.get("method", "auto"), store=store, params=s.params,
                        mode=s.cfg.model.mode, config=s.record(),
                        contextualizer=s.contextualizer)


def main(argv: list[str]) -> int:
    url, job_id = argv[0], int(argv[1])
    signal.signal(signal.SIGTERM, _interrupt)
    store = JobStore(url, job_id)
    job = queries.get_job(store, job_id)
    if job is None:
        print(f"error: job {job_id} does not exist", file=sys.stderr)
        return 2
    queries.update_job(store, job_id, status="running")
    runner = run_optimize if job["kind"] == "optimize" else run_eval
    try:
        runner(store, json.loads(job["config"]))
    except KeyboardInterrupt:
        queries.update_job(store, job_id, status="cancelled")
        return 130
    except PromptmillError as exc:
        queries.update_job(store, job_id, status="failed", error=exc.one_line())
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - any crash is the job's error, shown on its page
        queries.update_job(store, job_id, status="failed", error=f"{type(exc).__name__}: {exc}")
        raise
    queries.update_job(store, job_id, status="done", progress=1.0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
