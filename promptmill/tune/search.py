"""Hyperparameter search with Optuna, its study kept in the promptmill store's own database.

Every trial trains an adapter and reports its validation score after each epoch, so the
median pruner can stop a poor trial early. The study lives in the same database as the store
(``RDBStorage(store.url)``): running the same search again after a kill marks the trials the
dead process left "running" as failed and carries on until the asked number have finished.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import require
from ..metrics import Metric
from ..models.base import GenerationParams
from ..prompt import Prompt
from ..store.db import Store
from ..task import Task
from .settings import Method, TuneSettings

SPACES = {
    "lora": {"learning_rate": (1e-4, 3e-3), "rank": [4, 8, 16], "alpha": [8, 16, 32]},
    "prompt-tuning": {"learning_rate": (1e-3, 1e-1), "virtual_tokens": [4, 8, 16, 32]},
    "prefix": {"learning_rate": (1e-3, 5e-2), "virtual_tokens": [4, 8, 16, 32]},
}


@dataclass
class SearchResult:
    study: str
    best_value: float | None
    best_params: dict[str, Any]
    best_adapter: str | None
    trials: list[dict[str, Any]] = field(default_factory=list)
    failed_stale: int = 0


def storage(store: Store):
    """Optuna storage on the store's database.

    Optuna and promptmill both keep an alembic version table of the same name; promptmill
    creates the database first, so Optuna's schema check is skipped rather than misread.
    """
    optuna = require("optuna", "tune", "hyperparameter search")
    return optuna.storages.RDBStorage(store.url, skip_compatibility_check=True)


def suggest(trial, method: str, fixed: TuneSettings, max_epochs: int) -> TuneSettings:
    space = SPACES[method]
    low, high = space["learning_rate"]
    values: dict[str, Any] = {"learning_rate": trial.suggest_float("learning_rate", low, high,
                                                                   log=True)}
    for key in ("rank", "alpha", "virtual_tokens"):
        if key in space:
            values[key] = trial.suggest_categorical(key, space[key])
    values["epochs"] = trial.suggest_int("epochs", 1, max_epochs)
    return fixed.model_copy(update={**values, "method": method})


def fail_stale(study) -> int:
    """Trials a killed process left 'running' can never finish: mark them failed."""
    from optuna.trial import TrialState

    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in stale:
        study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
    return len(stale)


def search(task: Task, prompt: Prompt, metric: Metric, *, method: Method = "lora",
           base: str = "embedded", store: Store | None = None, trials: int = 6,
           max_epochs: int = 3, study_name: str | None = None, seed: int = 0,
           fixed: TuneSettings | None = None, params: GenerationParams | None = None,
           threads: int | None = None, progress: bool = False) -> SearchResult:
    """Run (or resume) a study until ``trials`` trials have completed or been pruned."""
    optuna = require("optuna", "tune", "hyperparameter search")
    from optuna.trial import TrialState

    from .train import tune

    store = store or Store()
    name = study_name or f"tune-{task.name}-{method}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=name, storage=storage(store), direction="maximize",
                                load_if_exists=True,
                                sampler=optuna.samplers.TPESampler(seed=seed),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=2,
                                                                   n_warmup_steps=0))
    stale = fail_stale(study)
    finished = (TrialState.COMPLETE, TrialState.PRUNED)
    remaining = trials - len(study.get_trials(deepcopy=False, states=finished))
    base_settings = fixed or TuneSettings(method=method)

    def objective(trial) -> float:
        settings = suggest(trial, method, base_settings, max_epochs)
        adapter = f"{name}-t{trial.number}"
        trial.set_user_attr("adapter", adapter)

        def report(epoch: int, score: float) -> None:
            trial.report(score, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        result = tune(task, prompt, metric, name=adapter, base=base, settings=settings,
                      store=store, params=params, resume=False, threads=threads,
                      progress=progress, on_epoch=report)
        return result.best_score if result.best_score is not None else -result.final_loss

    if remaining > 0:
        study.optimize(objective, n_trials=remaining, catch=())
    return _result(study, name, stale)


def _result(study, name: str, stale: int) -> SearchResult:
    from optuna.trial import TrialState

    rows = [{"number": t.number, "state": t.state.name, "value": t.value, "params": t.params,
             "adapter": t.user_attrs.get("adapter")} for t in study.get_trials(deepcopy=False)]
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if not complete:
        return SearchResult(name, None, {}, None, rows, stale)
    best = study.best_trial
    return SearchResult(name, best.value, best.params, best.user_attrs.get("adapter"), rows,
                        stale)
