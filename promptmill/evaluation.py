"""The evaluator: run a prompt over examples, score every answer, keep everything in the store.

Design choices, each for speed or safety:
- Examples are processed in chunks, so memory stays flat for 100k examples.
- One prompt's examples run back to back, and every request puts the shared part (instruction,
  demos) first: llama.cpp then reuses that computed prefix from one call to the next. (Sorting
  requests by content to share even more was measured: it made llama.cpp slower, not faster.)
- Every call is cached by (model identity, request, parameters, sample index).
- Results are committed in small batches as they finish; a killed run resumes from the store
  and never redoes or duplicates a finished example.
- The same evaluation started twice at once runs once: the second process waits for the
  first's lease on the run fingerprint, then finds every answer in the cache.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any

from .attempts import Attempt
from .context.base import Chain, Contextualizer, Prepared
from .distributed import Executor, LocalExecutor
from .errors import ModelError, PromptmillError, StoreError
from .extract import extract_answer
from .hashing import canonical_json, sha256_hex
from .ledger import Ledger
from .metrics import Metric
from .models.base import Generation, GenerationParams, Model, Request
from .progress import PlainTicker, eta_words, is_terminal
from .prompt import Prompt
from .rendering import Renderer
from .stats import Estimate, mean_ci
from .store.db import Store, utcnow
from .task import Example

ContextFn = Callable[[Example], dict[str, Any]]


class _ContextFnStep:
    """Adapts a plain ``example -> context dict`` function to the contextualizer interface."""

    def __init__(self, fn: ContextFn):
        self.fn = fn

    def prepare(self, prepared: Prepared, example: Example) -> Prepared:
        prepared.context.update(self.fn(example) or {})
        return prepared

    def describe(self) -> dict[str, Any]:
        # a bare function has no identity that survives a restart; like before contextualizers
        # existed, it stays out of the run fingerprint so an interrupted run can resume
        return {}


def as_contextualizer(contextualizer: Contextualizer | None,
                      context_fn: ContextFn | None) -> Contextualizer | None:
    if contextualizer is not None and context_fn is not None:
        return Chain(_ContextFnStep(context_fn), contextualizer)
    return contextualizer or (_ContextFnStep(context_fn) if context_fn else None)


def cached_generate(store: Store, model: Model, request: Request, params: GenerationParams,
                    before_call: Callable[[], None] | None = None) -> Generation:
    """One call through the store's cache: an answer already paid for is never asked again.

    ``before_call`` runs only when the model is really called (e.g. a budget check).
    """
    key = call_key(model.identity, request, params)
    hit = store.cached_calls([key]).get(key)
    if hit is not None:
        return _from_cache(hit)
    if before_call is not None:
        before_call()
    gen = model.generate(request, params)
    with store.transaction() as conn:
        store.add_calls(conn, [{
            "key": key, "model_identity": model.identity, "request": canonical_json(request),
            "params": canonical_json(params.to_dict()), "sample": 0, "text": gen.text,
            "tokens_in": gen.input_tokens, "tokens_out": gen.output_tokens,
            "seconds": gen.seconds, "finish_reason": gen.finish_reason,
            "logprobs": json.dumps(gen.logprobs) if gen.logprobs is not None else None,
            "created_at": utcnow()}])
    return gen


def announce_wait(doing: str) -> Callable[[dict[str, Any]], None]:
    """What a process waiting for another one's lease tells the user, once per holder."""
    def say(holder: dict[str, Any]) -> None:
        run = f"run {holder['run_id']}" if holder.get("run_id") else "a new run"
        print(f"waiting for {run}, being {doing} by pid {holder['owner_pid']} on "
              f"{holder['owner_host']} with the same settings; its results will be reused",
              file=sys.stderr, flush=True)

    return say


def call_key(model_identity: str, request: Request, params: GenerationParams,
             sample: int = 0) -> str:
    """The cache key: everything that can change a model's answer."""
    return sha256_hex(canonical_json({"model": model_identity, "request": request,
                                      "params": params.to_dict(), "sample": sample}))


@dataclass
class EvalResult:
    run_id: int
    task: str
    split: str
    prompt_hash: str
    n: int
    n_errors: int
    score: Estimate
    ledger: Ledger
    resumed_from: int = 0
    scores: dict[str, float] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "task": self.task, "split": self.split,
                "prompt_hash": self.prompt_hash, "n": self.n, "n_errors": self.n_errors,
                "mean": self.score.mean, "ci_low": self.score.low, "ci_high": self.score.high,
                "ledger": self.ledger.to_dict(), "resumed_from": self.resumed_from}


@dataclass
class ScoredExample:
    """One example's outcome under a prompt."""

    example: Example
    output: str | None
    score: float
    feedback: str | None
    error: str | None
    generation: Generation | None = field(default=None, repr=False)


@dataclass
class _Pending:
    index: int
    example: Example
    request: Request
    key: str
    prompt: Prompt
    params: GenerationParams
    segment: str | None = None
    notes: list[str] = field(default_factory=list)


class Evaluator:
    """Evaluates one prompt at a time with one model and one metric."""

    def __init__(self, model: Model, metric: Metric, store: Store | None = None, *,
                 params: GenerationParams | None = None, cache: bool = True,
                 mode: str = "chat", progress: bool = True, chunk_size: int = 256,
                 retries: int = 2, max_consecutive_errors: int = 5,
                 commit_every: int = 32, commit_seconds: float = 2.0,
                 demo_pool: Sequence[Example] | None = None,
                 executor: Executor | None = None, sample: int = 0):
        self.model = model
        self.metric = metric
        self.store = store or Store()
        # sample i of a repeated evaluation: its own cache entries, and its own seed, so a
        # sampling temperature gives a different answer per sample, reproducibly
        self.sample = sample
        self.params = _for_sample(params or GenerationParams(), sample)
        self.cache = cache
        self.mode = mode
        self.progress = progress
        self.chunk_size = chunk_size
        self.retries = retries
        self.max_consecutive_errors = max_consecutive_errors
        self.commit_every = commit_every
        self.commit_seconds = commit_seconds
        # one renderer for every example: prompts with a demo_selection retrieve their demos
        # from demo_pool, the training split
        self.renderer = Renderer(mode=mode, params=self.params, demo_pool=demo_pool)
        # where uncached calls run: in this process, or on Ray workers (promptmill.distributed)
        self.executor = executor or LocalExecutor()

    # --- public ---------------------------------------------------------------------------
    def evaluate(self, examples: Sequence[Example], prompt: Prompt, *, task: str = "task",
                 split: str = "test", prompt_name: str | None = None,
                 config: dict[str, Any] | None = None, resume: bool = True,
                 context_fn: ContextFn | None = None,
                 parent_run_id: int | None = None,
                 contextualizer: Contextualizer | None = None) -> EvalResult:
        """Evaluate ``prompt`` on ``examples``; resume an unfinished identical run if any.

        ``contextualizer`` shapes the prompt per example (demos, passages, intent variant);
        ``context_fn`` is the simple form that only fills context slots.
        """
        if not examples:
            raise PromptmillError(f"the {split} split of task '{task}' has no examples",
                                  where="splits", fix="give that split a size above 0")
        contextualizer = as_contextualizer(contextualizer, context_fn)
        self._check_renders(prompt, examples[0], contextualizer)
        fingerprint = self._fingerprint(examples, prompt, task, split, contextualizer)
        # the same evaluation started twice at once: the second waits here, then finds every
        # answer in the cache instead of paying for each call a second time
        with self.store.lease(f"eval:{fingerprint}", on_wait=announce_wait("evaluated")) \
                as lease:
            run, done = self._open_run(examples, prompt, task, split, prompt_name, config,
                                       fingerprint, resume, parent_run_id)
            lease.attach(run["id"])
            return self._run(run, done, examples, prompt, contextualizer, task, split)

    def _run(self, run: dict[str, Any], done: set[str], examples: Sequence[Example],
             prompt: Prompt, contextualizer: Contextualizer | None, task: str,
             split: str) -> EvalResult:
        run_id = run["id"]
        ledger = Ledger.from_run(run)
        self._start(len(examples) - len(done))
        started = time.perf_counter()
        bar = _Progress(self.progress, len(examples), len(done), task, split)
        writer = _BatchWriter(self.store, run_id, ledger, self.commit_every,
                              self.commit_seconds, bar)
        try:
            with bar:
                for chunk in _chunks(list(enumerate(examples)), self.chunk_size):
                    todo = [(i, ex) for i, ex in chunk if ex.id not in done]
                    if todo:
                        self._run_chunk(todo, prompt, contextualizer, writer)
                writer.flush()
        except BaseException as exc:
            self._stop(run_id, started, run["wall_seconds"], writer, exc)
            raise
        self._finish(run_id, started, run["wall_seconds"], "finished")
        return self.result(run_id, resumed_from=len(done))

    def result(self, run_id: int, resumed_from: int = 0) -> EvalResult:
        run = self.store.get_run(run_id)
        scores = self.store.scores_by_example(run_id)
        return EvalResult(run_id, run["task"], run["split"], run["prompt_hash"],
                          run["n_done"], run["n_errors"], mean_ci(list(scores.values())),
                          Ledger.from_run(run), resumed_from, scores)

    # --- run bookkeeping ------------------------------------------------------------------
    def _fingerprint(self, examples: Sequence[Example], prompt: Prompt, task: str,
                     split: str, contextualizer: Contextualizer | None = None) -> str:
        ids = sha256_hex("\n".join(ex.id for ex in examples))
        body: dict[str, Any] = {
            "task": task, "split": split, "model": self.model.identity, "prompt": prompt.hash,
            "metric": self.metric.describe(), "params": self.params.to_dict(),
            "mode": self.mode, "examples": ids}
        described = contextualizer.describe() if contextualizer is not None else None
        if described:
            body["context"] = described
        if prompt.demo_selection is not None:
            body["demo_pool"] = self.renderer.demo_selector(prompt).pool_fingerprint()
        if self.sample:
            body["sample"] = self.sample
        return sha256_hex(canonical_json(body))[:32]

    def _open_run(self, examples, prompt, task, split, prompt_name, config, fingerprint,
                  resume, parent_run_id=None) -> tuple[dict[str, Any], set[str]]:
        existing = self.store.find_resumable_run(fingerprint) if resume else None
        if existing is not None:
            self.store.drop_failed_results(existing["id"])
            totals = self.store.run_totals(existing["id"])
            self.store.update_run(existing["id"], status="running", error=None, **totals)
            return self.store.get_run(existing["id"]), self.store.done_example_ids(existing["id"])
        saved = self.store.save_prompt(prompt_name or prompt.name or task,
                                       prompt.content(), prompt.hash)
        run_id = self.store.create_run(
            task=task, split=split, model=getattr(self.model, "spec", self.model.identity),
            model_identity=self.model.identity, metric=self.metric.describe(),
            prompt_id=saved["id"], prompt_hash=prompt.hash, fingerprint=fingerprint,
            config=json.dumps({**(config or {}), "params": self.params.to_dict(),
                               "mode": self.mode, "cache": self.cache,
                               **({"sample": self.sample} if self.sample else {})},
                              default=str),
            seed=self.params.seed, n_examples=len(examples), parent_run_id=parent_run_id)
        return self.store.get_run(run_id), set()

    def _finish(self, run_id: int, started: float, previous_wall: float, status: str,
                error: str | None = None) -> None:
        totals = self.store.run_totals(run_id)
        self.store.update_run(run_id, status=status, error=error, finished_at=utcnow(),
                              wall_seconds=previous_wall + time.perf_counter() - started,
                              **totals)

    def _stop(self, run_id: int, started: float, previous_wall: float, writer: _BatchWriter,
              exc: BaseException) -> None:
        """Keep what finished and say why the run stopped, as far as the store still allows.

        On a full disk even these writes may fail; the original error is then the one shown,
        and the run, still 'running' with no live owner, is later shown as interrupted.
        """
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        message = exc.one_line() if isinstance(exc, PromptmillError) else str(exc)
        with contextlib.suppress(StoreError):
            writer.flush()  # whatever finished is kept, so a rerun resumes after it
        with contextlib.suppress(StoreError):
            self._finish(run_id, started, previous_wall, status, error=message)

    # --- the work -------------------------------------------------------------------------
    def prepare(self, prompt: Prompt, example: Example,
                contextualizer: Contextualizer | None = None) -> Prepared:
        """The prompt's own retrieved demos first, then the contextualizer chain."""
        return self.renderer.prepare(prompt, example, contextualizer)

    def render(self, prompt: Prompt, example: Example,
               contextualizer: Contextualizer | None = None) -> Request:
        return self.renderer.render(prompt, example, contextualizer)

    def _check_renders(self, prompt: Prompt, example: Example,
                       contextualizer: Contextualizer | None) -> None:
        """Fail before any call when the template cannot render the data."""
        self.render(prompt, example, contextualizer)

    def _run_chunk(self, todo: list[tuple[int, Example]], prompt: Prompt,
                   contextualizer: Contextualizer | None, writer: _BatchWriter) -> None:
        for item, generation, error in self._outcomes(todo, prompt, contextualizer):
            fresh = generation is not None and not generation.cached and self.cache
            call = self._call_row(item, generation) if fresh and generation else None
            writer.add(self._result_row(item, generation, error), call)

    def _outcomes(self, todo: list[tuple[int, Example]], prompt: Prompt,
                  contextualizer: Contextualizer | None
                  ) -> Iterator[tuple[_Pending, Generation | None, str | None]]:
        """Answers for each example: from the cache when possible, else from the model."""
        pending = []
        for index, example in todo:
            built = self.renderer.build(prompt, example, contextualizer, self.params)
            prepared = built.prepared
            pending.append(_Pending(index, example, built.request,
                                    call_key(self.model.identity, built.request, built.params,
                                             self.sample),
                                    prepared.prompt, built.params, prepared.segment,
                                    prepared.notes))
        cached = self.store.cached_calls(p.key for p in pending) if self.cache else {}
        misses = []
        for item in pending:
            hit = cached.get(item.key)
            if hit is None:
                misses.append(item)
            else:
                yield item, _from_cache(hit), None
        for item, (generation, error) in zip(misses, self._generate_all(misses), strict=True):
            yield item, generation, error
            self._check_streak(error)

    def score_examples(self, prompt: Prompt, examples: Sequence[Example],
                       context_fn: ContextFn | None = None,
                       contextualizer: Contextualizer | None = None) -> list[ScoredExample]:
        """Score a prompt on examples without recording a run: for optimizers' inner loops.

        Calls still go through the cache, so a repeated or resumed search costs nothing twice.
        """
        contextualizer = as_contextualizer(contextualizer, context_fn)
        self._start(len(examples))
        scored, calls = [], []
        for item, generation, error in self._outcomes(list(enumerate(examples)), prompt,
                                                      contextualizer):
            row = self._result_row(item, generation, error)
            scored.append(ScoredExample(item.example, row["output"], row["score"],
                                        row["feedback"], error, generation))
            if generation is not None and not generation.cached and self.cache:
                calls.append(self._call_row(item, generation))
        if calls:
            with self.store.transaction() as conn:
                self.store.add_calls(conn, calls)
        return scored

    def _start(self, pending: int) -> None:
        self._streak, self._pending = 0, pending
        self._reached_backend = False

    def _generate_all(self, items: list[_Pending]
                      ) -> Iterator[tuple[Generation | None, str | None]]:
        work = [(item.request, item.params) for item in items]
        for attempt in self.executor.generate(self.model, work, self.retries):
            yield self._settle(attempt)

    def _settle(self, attempt: Attempt) -> tuple[Generation | None, str | None]:
        """The run's policy for one call: keep an answer or an error, or stop the run."""
        if attempt.answered:
            self._reached_backend = True
            return attempt.generation, None
        if attempt.failure is not None:
            # a backend that never answered once is dead or misconfigured: stop now; any
            # other promptmill error is bad input, which no retry fixes
            if not attempt.backend_gave_up or not self._reached_backend:
                raise attempt.failure
        return None, attempt.error

    def _check_streak(self, error: str | None) -> None:
        """Stop a run whose backend keeps failing, instead of recording every example as lost.

        A small run stops when every call so far failed: that is a dead backend, not bad luck.
        """
        self._streak = 0 if error is None else self._streak + 1
        if self._streak >= min(self.max_consecutive_errors, self._pending):
            last = error.split(". Fix:")[0] if error else ""
            raise ModelError(f"{self._streak} calls in a row failed (last: {last})",
                             where=self.model.identity,
                             fix="check the model or server, then rerun: finished examples "
                                 "are kept and the run resumes")

    def _result_row(self, item: _Pending, generation: Generation | None,
                    error: str | None) -> dict[str, Any]:
        ex = item.example
        row = {"example_id": ex.id, "idx": item.index,
               "inputs": json.dumps(ex.inputs, ensure_ascii=False, default=str),
               "target": ex.target, "answers": json.dumps(list(ex.answers)) if ex.answers
               else None, "call_key": item.key, "segment": item.segment,
               "context_notes": json.dumps(item.notes) if item.notes else None,
               "raw_output": None}
        if generation is None:
            return {**row, "output": None, "score": 0.0, "feedback": None, "error": error,
                    "tokens_in": 0, "tokens_out": 0, "seconds": 0.0, "cached": False}
        answer = extract_answer(item.prompt.extract, generation.text)
        if answer != generation.text:
            row["raw_output"] = generation.text
        scored = self.metric.score_call(answer, ex, generation)
        return {**row, "output": answer, "score": min(1.0, max(0.0, scored.value)),
                "feedback": scored.feedback, "error": None,
                "tokens_in": generation.input_tokens, "tokens_out": generation.output_tokens,
                "seconds": generation.seconds, "cached": generation.cached}

    def _call_row(self, item: _Pending, g: Generation) -> dict[str, Any]:
        return {"key": item.key, "model_identity": self.model.identity,
                "request": canonical_json(item.request), "params":
                canonical_json(item.params.to_dict()), "sample": self.sample, "text": g.text,
                "tokens_in": g.input_tokens, "tokens_out": g.output_tokens, "seconds": g.seconds,
                "finish_reason": g.finish_reason,
                "logprobs": json.dumps(g.logprobs) if g.logprobs is not None else None,
                "created_at": utcnow()}


def _for_sample(params: GenerationParams, sample: int) -> GenerationParams:
    if sample and params.seed is not None:
        return replace(params, seed=params.seed + sample)
    return params


def _from_cache(row: dict[str, Any]) -> Generation:
    return Generation(text=row["text"], input_tokens=row["tokens_in"],
                      output_tokens=row["tokens_out"], seconds=row["seconds"],
                      finish_reason=row["finish_reason"],
                      logprobs=json.loads(row["logprobs"]) if row["logprobs"] else None,
                      cached=True)


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class _BatchWriter:
    """Commits results and cache entries in small batches, with the run's ledger."""

    def __init__(self, store: Store, run_id: int, ledger: Ledger, every: int, seconds: float,
                 bar: _Progress):
        self.store, self.run_id, self.ledger = store, run_id, ledger
        self.every, self.seconds, self.bar = every, seconds, bar
        self.results: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []
        self.last_commit = time.perf_counter()

    def add(self, result: dict[str, Any], call: dict[str, Any] | None) -> None:
        self.results.append({**result, "run_id": self.run_id})
        if call is not None:
            self.calls.append(call)
        if result["error"] is not None:
            self.ledger.errors += 1
        else:
            self.ledger.add_call(result["tokens_in"], result["tokens_out"], result["seconds"],
                                 result["cached"])
        self.bar.advance(result["score"])
        if (len(self.results) >= self.every
                or time.perf_counter() - self.last_commit >= self.seconds):
            self.flush()

    def flush(self) -> None:
        if not self.results:
            return
        with self.store.transaction() as conn:
            self.store.add_calls(conn, self.calls)
            self.store.add_results(conn, self.results)
        self.results, self.calls = [], []
        self.last_commit = time.perf_counter()


class _Progress:
    """A Rich progress bar showing the running mean score and the time left; where no terminal
    is attached, a plain progress line every 10 s instead; nothing when disabled."""

    def __init__(self, enabled: bool, total: int, done: int, task: str, split: str):
        self.enabled, self.total, self.done = enabled, total, done
        self.label = f"{task}/{split}"
        self.n = 0
        self.sum = 0.0
        self._ticker: PlainTicker | None = None

    def __enter__(self) -> _Progress:
        if self.enabled and not is_terminal():
            self._ticker = PlainTicker()
        elif self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                                      MofNCompleteColumn(), TextColumn("mean {task.fields[mean]}"),
                                      TimeRemainingColumn(), transient=True)
            self._progress.__enter__()
            self._task = self._progress.add_task(self.label, total=self.total,
                                                 completed=self.done, mean="-")
        return self

    def advance(self, score: float) -> None:
        self.n += 1
        self.sum += score
        if self._ticker is not None:
            self._ticker.tick(self._plain_line)
        elif self.enabled:
            self._progress.update(self._task, advance=1, mean=f"{self.sum / self.n:.3f}")

    def _plain_line(self) -> str:
        assert self._ticker is not None
        done = self.done + self.n
        mean = f"{self.sum / self.n:.3f}" if self.n else "-"
        return (f"{self.label}: {done}/{self.total} examples, mean {mean}, "
                f"{self._ticker.elapsed():.0f} s"
                f"{eta_words(self.n, self.total - self.done, self._ticker.elapsed())}")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._ticker is not None:
            if exc_type is None and self.n:
                self._ticker.finish(self._plain_line)
        elif self.enabled:
            self._progress.__exit__(exc_type, exc, traceback)
