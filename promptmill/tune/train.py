"""The tuning loop: PEFT training with completion-only loss, per-epoch validation by generation
with the task's own metric, early stopping, and checkpoints a killed run resumes from.

Memory: the base model is held in fp32 (the embedded 135M model: about 0.55 GB, plus a copy
per run). Every result reports the process's peak RSS (``peak_rss_mb``); measured ceilings are
in ``promptmill tune run --help`` (plan for 3 GB with the embedded model at batch 8 x 96).
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import Any, cast

from ..evaluation import Evaluator
from ..metrics import Metric
from ..models.base import GenerationParams, Messages
from ..prompt import Prompt
from ..rendering import Renderer
from ..store.db import Store
from ..task import Task
from . import batch_eval, checkpoint, data, registry
from .base import fresh_copy, import_torch, load_base
from .errors import TuneError, is_out_of_memory, out_of_memory
from .peft_setup import trainable_parameters, wrap
from .settings import TuneSettings

EpochHook = Callable[[int, float], None]
# settings that may change between a run and its resume: they extend or watch the run
RESUMABLE_CHANGES = {"epochs", "max_steps", "patience", "eval_limit", "checkpoint_every"}
LOSS_PROBE = 16  # training sequences whose loss is measured before and after


@dataclass
class TuneResult:
    name: str
    method: str
    path: str
    best_epoch: int | None
    best_score: float | None
    history: list[dict[str, Any]]
    steps: int
    seconds: float
    peak_rss_mb: float
    initial_loss: float
    final_loss: float
    stopped_early: bool
    resumed_at_step: int = 0
    losses: list[float] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "losses"}


def peak_rss_mb() -> float:
    """The process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def check_splits(task: Task) -> None:
    if not task.train:
        raise TuneError(f"task '{task.name}' has no training examples", where="splits.train",
                        fix="give the train split a size above 0 in the task config")
    missing = [ex.id for ex in task.train if ex.target is None]
    if missing:
        raise TuneError(f"training example '{missing[0]}' has no target", where="data.target",
                        fix="map data.target to the answer field")


def run_config(settings: TuneSettings, base: str, prompt: Prompt, task: Task) -> dict[str, Any]:
    return {"settings": settings.model_dump(mode="json"), "base": base,
            "prompt": prompt.content(), "prompt_hash": prompt.hash, "task": task.name,
            "train_ids": len(task.train)}


def _same_run(old: dict[str, Any], new: dict[str, Any]) -> bool:
    def core(cfg: dict[str, Any]) -> dict[str, Any]:
        s = {k: v for k, v in cfg.get("settings", {}).items() if k not in RESUMABLE_CHANGES}
        return {**cfg, "settings": s}

    return core(old) == core(new)


def tune(task: Task, prompt: Prompt, metric: Metric, *, name: str, base: str = "embedded",
         settings: TuneSettings | None = None, store: Store | None = None,
         params: GenerationParams | None = None, resume: bool = True, progress: bool = False,
         threads: int | None = None, on_epoch: EpochHook | None = None) -> TuneResult:
    """Train an adapter NAME on ``task.train`` under ``prompt``; keep the best on validation.

    A run with the same NAME and settings resumes from its last checkpoint; ``resume=False``
    starts over. ``on_epoch(epoch, validation_score)`` may raise to stop (Optuna pruning).
    """
    settings = settings or TuneSettings()
    store = store or Store()
    check_splits(task)
    torch = import_torch()
    if threads:
        torch.set_num_threads(threads)
    loaded = load_base(base)
    config = run_config(settings, base, prompt, task)
    folder = registry.adapter_dir(name)
    _prepare_folder(store, name, folder, config, resume)
    registry.start_adapter(store, name, settings.method, base, task.name, folder, config)
    loop = _Loop(task, prompt, metric, settings, loaded, store, name, folder,
                 params or GenerationParams(), progress, on_epoch)
    try:
        result = loop.run()
    except BaseException as exc:
        status = ("interrupted" if isinstance(exc, KeyboardInterrupt) else
                  "pruned" if type(exc).__name__ == "TrialPruned" else "failed")
        registry.update_adapter(store, name, status=status, metrics=loop.metrics())
        if is_out_of_memory(exc):
            raise out_of_memory(settings.batch_size, settings.max_length) from None
        raise
    registry.update_adapter(store, name, status="finished", metrics=loop.metrics(),
                            finished=True)
    return result


def _prepare_folder(store: Store, name: str, folder, config: dict[str, Any],
                    resume: bool) -> None:
    import shutil

    row = registry.find_adapter(store, name)
    if not resume or row is None:
        shutil.rmtree(folder, ignore_errors=True)
        return
    if not _same_run(row["config"], config):
        raise TuneError(f"adapter '{name}' already exists with other settings, prompt or "
                        "base model", where=f"--name {name}",
                        fix="choose another --name, or pass --fresh to replace it")


class _Loop:
    """One training run's state; ``run`` trains, validates, checkpoints and stops early."""

    def __init__(self, task: Task, prompt: Prompt, metric: Metric, settings: TuneSettings,
                 loaded, store: Store, name: str, folder, params: GenerationParams,
                 progress: bool, on_epoch: EpochHook | None):
        self.task, self.prompt, self.metric, self.settings = task, prompt, metric, settings
        self.loaded, self.store, self.name, self.folder = loaded, store, name, folder
        self.params, self.progress, self.on_epoch = params, progress, on_epoch
        self.state: dict[str, Any] = {"epoch": 0, "batch": 0, "step": 0, "best_score": None,
                                      "best_epoch": None, "bad_epochs": 0, "history": [],
                                      "losses": [], "seconds": 0.0, "initial_loss": None}
        self.started = time.perf_counter()

    # --- setup ----------------------------------------------------------------------------
    def _build(self) -> None:
        import torch

        torch.manual_seed(self.settings.seed)
        tokenizer = self.loaded.tokenizer
        # training sequences are rendered exactly as evaluation renders its requests
        renderer = Renderer(mode="chat", params=self.params, demo_pool=self.task.train)
        # a chat-mode renderer gives messages, never completion text
        self.sequences = data.encode_all(
            tokenizer, lambda ex: cast("Messages", renderer.render(self.prompt, ex)),
            self.task.train, self.settings.max_length)
        self.model = wrap(fresh_copy(self.loaded), tokenizer, self.settings, self.prompt)
        self.optimizer = torch.optim.AdamW(trainable_parameters(self.model),
                                           lr=self.settings.lr,
                                           weight_decay=self.settings.weight_decay)
        found = checkpoint.find(self.folder / "checkpoint")
        if found is not None:
            self.state = checkpoint.load(found, self.model, self.optimizer)
        self.resumed_at = self.state["step"]

    def metrics(self) -> dict[str, Any]:
        s = self.state
        return {"history": s["history"], "best_score": s["best_score"],
                "best_epoch": s["best_epoch"], "steps": s["step"],
                "seconds": round(s["seconds"] + time.perf_counter() - self.started, 2),
                "peak_rss_mb": round(peak_rss_mb(), 1), "initial_loss": s["initial_loss"],
                "last_losses": s["losses"][-20:]}

    # --- the loop -------------------------------------------------------------------------
    def run(self) -> TuneResult:
        self._build()
        if self.state["initial_loss"] is None:
            self.state["initial_loss"] = self.probe_loss()
        stopped_early = False
        with _Bar(self.progress, self._planned_steps(), self.state["step"], self.name) as bar:
            while self.state["epoch"] < self.settings.epochs and not self._out_of_steps():
                self._train_epoch(bar)
                if self.state["batch"]:  # max_steps reached inside the epoch
                    break
                if self._end_epoch():
                    stopped_early = True
                    break
        if self.state["best_epoch"] is None or self._out_of_steps():
            self._finish_partial()
        return self._result(stopped_early)

    def _planned_steps(self) -> int:
        per_epoch = -(-len(self.sequences) // (self.settings.batch_size *
                                               self.settings.grad_accum))
        total = per_epoch * self.settings.epochs
        return min(total, self.settings.max_steps) if self.settings.max_steps else total

    def _out_of_steps(self) -> bool:
        return bool(self.settings.max_steps) and self.state["step"] >= self.settings.max_steps

    def _train_epoch(self, bar: _Bar) -> None:
        import torch

        s, cfg = self.state, self.settings
        all_batches = data.batches(self.sequences, cfg.batch_size, s["epoch"], cfg.seed)
        self.model.train()
        pending, accumulated = 0, 0.0
        for index in range(s["batch"], len(all_batches)):
            torch.manual_seed(cfg.seed * 1_000_003 + s["step"] * 101 + pending)
            tensors = data.collate(all_batches[index], self.loaded.tokenizer.pad_token_id)
            loss = self.model(**tensors).loss / cfg.grad_accum
            loss.backward()
            pending, accumulated = pending + 1, accumulated + loss.detach().item()
            if pending == cfg.grad_accum or index == len(all_batches) - 1:
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                s["step"] += 1
                s["losses"].append(round(accumulated * cfg.grad_accum / pending, 5))
                s["batch"] = index + 1
                pending, accumulated = 0, 0.0
                bar.step(s["epoch"] + 1, s["losses"][-1])
                if self._out_of_steps():
                    self._checkpoint()
                    return
                if cfg.checkpoint_every and s["step"] % cfg.checkpoint_every == 0:
                    self._checkpoint()
        s["batch"] = 0

    def _end_epoch(self) -> bool:
        """Validate, keep the best, checkpoint; True when it is time to stop early."""
        s = self.state
        score = self.validate()
        epoch = s["epoch"] + 1
        improved = score is None or s["best_score"] is None or score > s["best_score"]
        s["history"].append({"epoch": epoch, "step": s["step"], "validation": score,
                             "train_loss": s["losses"][-1] if s["losses"] else None})
        if improved:
            s["best_score"], s["best_epoch"], s["bad_epochs"] = score, epoch, 0
            checkpoint.save_weights(self.folder / "best", self.model)
        else:
            s["bad_epochs"] += 1
        s["epoch"] = epoch
        self._checkpoint()
        registry.update_adapter(self.store, self.name, metrics=self.metrics())
        if self.on_epoch is not None and score is not None:
            self.on_epoch(epoch, score)
        patience = self.settings.patience
        return bool(patience) and s["bad_epochs"] >= patience

    def _finish_partial(self) -> None:
        """A run cut short by max_steps: its weights are validated once and kept if best."""
        if self.state["history"] and self.state["history"][-1]["step"] == self.state["step"]:
            return
        self._end_epoch_partial()

    def _end_epoch_partial(self) -> None:
        s = self.state
        score = self.validate()
        s["history"].append({"epoch": s["epoch"] + (1 if s["batch"] else 0), "step": s["step"],
                             "validation": score,
                             "train_loss": s["losses"][-1] if s["losses"] else None})
        if s["best_score"] is None or (score is not None and score > s["best_score"]):
            s["best_score"], s["best_epoch"] = score, s["history"][-1]["epoch"]
            checkpoint.save_weights(self.folder / "best", self.model)
        self._checkpoint()

    def _checkpoint(self) -> None:
        self.state["seconds"] = self.state["seconds"] + time.perf_counter() - self.started
        self.started = time.perf_counter()
        checkpoint.save(self.folder / "checkpoint", self.model, self.optimizer, self.state)

    # --- measuring ------------------------------------------------------------------------
    def validate(self) -> float | None:
        """The task's own metric on validation, by greedy generation with the current weights."""
        examples = self.task.validation[: self.settings.eval_limit or None]
        if not examples:
            return None
        from ..models.transformers_model import TransformersModel

        self.model.eval()
        backend = TransformersModel(self.model, self.loaded.tokenizer, "in-training",
                                    f"training:{self.name}")
        evaluator = Evaluator(backend, self.metric, self.store, params=self.params, cache=False,
                              progress=False, demo_pool=self.task.train)
        scores = batch_eval.score(evaluator, self.prompt, examples)
        return round(sum(scores) / len(scores), 4)

    def probe_loss(self) -> float:
        """Mean completion loss on the first training sequences, without dropout."""
        import torch

        probe = self.sequences[:LOSS_PROBE]
        self.model.eval()
        with torch.no_grad():
            tensors = data.collate(probe, self.loaded.tokenizer.pad_token_id)
            return round(float(self.model(**tensors).loss), 5)

    def _result(self, stopped_early: bool) -> TuneResult:
        self.state["final_loss"] = self.probe_loss()
        self._checkpoint()
        s = self.state
        return TuneResult(self.name, self.settings.method, str(self.folder), s["best_epoch"],
                          s["best_score"], s["history"], s["step"], round(s["seconds"], 2),
                          round(peak_rss_mb(), 1), s["initial_loss"], s["final_loss"],
                          stopped_early, self.resumed_at, list(s["losses"]))


class _Bar:
    """A Rich progress bar over optimizer steps with the running loss and an ETA."""

    def __init__(self, enabled: bool, total: int, done: int, name: str):
        self.enabled, self.total, self.done, self.name = enabled, total, done, name

    def __enter__(self) -> _Bar:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                                      MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                                      TimeElapsedColumn(), TextColumn("ETA"),
                                      TimeRemainingColumn())
            self._progress.__enter__()
            self._task = self._progress.add_task(f"tune {self.name}", total=self.total,
                                                 completed=self.done, info="")
        return self

    def step(self, epoch: int, loss: float) -> None:
        if self.enabled:
            self._progress.update(self._task, advance=1, info=f"epoch {epoch} loss {loss:.3f}")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self.enabled:
            self._progress.__exit__(exc_type, exc, traceback)
