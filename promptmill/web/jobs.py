"""Background evaluations and optimizations: start, watch progress, cancel.

Each job runs ``promptmill.web.worker`` in a subprocess and is recorded in the ``jobs`` table.
The worker writes its own status; a watcher thread here catches the crashes it could not write.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from ..store.db import Store
from ..store.paths import home_dir
from . import queries
from .common import not_found, page_args, render, store_of

if TYPE_CHECKING:
    from ..store.workbench import JobRow

router = APIRouter()

FINISHED = ("done", "failed", "cancelled")


class JobManager:
    """The subprocesses of this server's jobs, by job id."""

    def __init__(self, store: Store):
        self.store = store
        self.procs: dict[int, subprocess.Popen] = {}
        self.cancelled: set[int] = set()
        self.lock = threading.Lock()

    def log_path(self, job_id: int) -> Path:
        folder = home_dir() / "jobs"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"job-{job_id}.log"

    def start(self, kind: str, config: dict[str, Any]) -> int:
        job_id = queries.create_job(self.store, kind, config)
        log = self.log_path(job_id).open("wb")
        proc = subprocess.Popen([sys.executable, "-m", "promptmill.web.worker", self.store.url,
                                 str(job_id)], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        log.close()
        with self.lock:
            self.procs[job_id] = proc
        threading.Thread(target=self._watch, args=(job_id, proc), daemon=True).start()
        return job_id

    def _watch(self, job_id: int, proc: subprocess.Popen) -> None:
        code = proc.wait()
        job = queries.get_job(self.store, job_id)
        if job is None:
            return
        if job_id in self.cancelled:
            queries.update_job(self.store, job_id, status="cancelled")
        elif job["status"] not in FINISHED:  # the worker died before it could say so
            queries.update_job(self.store, job_id, status="failed" if code else "done",
                               error=self.last_line(job_id) if code else None)
        with self.lock:
            self.procs.pop(job_id, None)

    def last_line(self, job_id: int) -> str:
        path = self.log_path(job_id)
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()] \
            if path.exists() else []
        return lines[-1].strip() if lines else "the job stopped without a message"

    def cancel(self, job_id: int) -> bool:
        with self.lock:
            proc = self.procs.get(job_id)
        if proc is None or proc.poll() is not None:
            return False
        self.cancelled.add(job_id)
        proc.terminate()  # the worker turns SIGTERM into KeyboardInterrupt and commits
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        return True

    def shutdown(self) -> None:
        for job_id in list(self.procs):
            self.cancel(job_id)


def progress(store: Store, job: JobRow) -> dict[str, Any]:
    """How far a job is: examples done for an evaluation, budget calls spent for a search."""
    info: dict[str, Any] = {"fraction": 1.0 if job["status"] == "done" else 0.0, "text": ""}
    if job["run_id"] is None:
        return info
    run = queries.get_run(store, job["run_id"])
    if run is None:
        return info
    config = json.loads(job["config"])
    if run["kind"] == "optimize" and config.get("budget_calls"):
        steps = store.steps(run["id"])
        calls = steps[-1]["calls"] if steps else 0
        fraction, info["text"] = calls / config["budget_calls"], \
            f"{calls}/{config['budget_calls']} calls"
    else:
        done = queries.count_results(store, run["id"])  # n_done is only set when a run ends
        fraction, info["text"] = done / max(1, run["n_examples"]), \
            f"{done}/{run['n_examples']} examples"
    info["fraction"] = 1.0 if job["status"] == "done" else min(1.0, fraction)
    info["run"] = run
    return info


def _need_job(request: Request, job_id: int) -> JobRow:
    job = queries.get_job(store_of(request), job_id)
    if job is None:
        raise not_found(f"job {job_id} does not exist")
    return job


@router.get("/jobs", response_class=HTMLResponse)
def job_list(request: Request):
    page, per_page = page_args(request)
    return render(request, "jobs.html", listing=queries.list_jobs(store_of(request), page,
                                                                   per_page))


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_detail(request: Request, job_id: int):
    job = _need_job(request, job_id)
    return render(request, "job.html", job=job, config=json.loads(job["config"]),
                  progress=progress(store_of(request), job), finished=job["status"] in FINISHED)


@router.get("/api/jobs/{job_id}")
def job_json(request: Request, job_id: int):
    job = _need_job(request, job_id)
    info = progress(store_of(request), job)
    return JSONResponse({"id": job["id"], "kind": job["kind"], "status": job["status"],
                         "run_id": job["run_id"], "error": job["error"],
                         "progress": info["fraction"], "text": info["text"]})


@router.post("/jobs/{job_id}/cancel")
def job_cancel(request: Request, job_id: int):
    job = _need_job(request, job_id)
    if job["status"] not in FINISHED:
        request.app.state.jobs.cancel(job_id)
    return RedirectResponse(f"/jobs/{job_id}", status_code=303)
