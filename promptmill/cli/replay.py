"""``promptmill replay RUN``: recompute a run's scores from its record and the call cache."""

from __future__ import annotations

import json

import typer

from .common import State, console


def replay(run: str = typer.Argument(..., help="Run id (an eval or an optimize run).")) -> None:
    """Re-run from the record with cache-only models and check every score is identical."""
    from ..errors import PromptmillError

    store = State.store()
    info = store.get_run(run)
    if info["kind"] == "optimize":
        mismatches = _replay_optimization(store, info)
    elif info["kind"] == "eval":
        mismatches = _replay_eval(store, info)
    else:
        raise PromptmillError(f"run {info['id']} is a '{info['kind']}' run, which cannot be "
                              "replayed", fix="replay an eval or optimize run")
    if mismatches:
        for line in mismatches[:20]:
            console.print(f"[red]{line}[/]")
        raise typer.Exit(1)
    console.print(f"[green]run {info['id']} replayed exactly[/] from the record and the cache")


def _recorded(store, info, record, prompt):
    """The Setup of the run's recorded task and ``prompt`` with a cache-only model, so the
    same context chain and the same calls come back."""
    from ..api import setup, task_config_from_record
    from ..models.replay import CacheOnlyModel

    return setup(task_config_from_record(record), prompt=prompt,
                 model=CacheOnlyModel(info["model_identity"]), store=store)


def _replay_eval(store, info) -> list[str]:
    from ..prompt import Prompt

    stored = store.get_prompt_by_id(info["prompt_id"])
    prompt = Prompt.from_stored(stored["body"], f"{stored['name']}@{stored['version']}")
    s = _recorded(store, info, json.loads(info["config"]), prompt)
    recorded = store.scores_by_example(info["id"])
    examples = [ex for ex in s.examples("all") if ex.id in recorded]
    replayed = {x.example.id: x.score for x in s.evaluator(progress=False).score_examples(
        s.prompt, examples, contextualizer=s.contextualizer)}
    return [f"example {k}: recorded {v} replayed {replayed.get(k)}"
            for k, v in recorded.items() if replayed.get(k) != v]


def _replay_optimization(store, info) -> list[str]:
    from ..metrics.human import WithReviewerComments
    from ..models.replay import CacheOnlyModel
    from ..optimize import Budget, optimize
    from ..prompt import Prompt

    record = json.loads(info["config"])
    s = _recorded(store, info, record, Prompt.from_stored(record["seed_prompt"],
                                                          "the run's seed prompt"))
    if record.get("limit"):  # the run cut its validation and test splits (--limit)
        s.task = s.task.limited(record["limit"])
    metric = s.metric
    if record.get("human_feedback"):  # the comments the search saw, not today's
        metric = WithReviewerComments(metric, record["human_feedback"])
    opt = dict(record["optimizer"])
    method = opt.pop("method")
    proposer = record["proposer"]
    result = optimize(s.task, s.prompt, s.model, metric=metric,
                      budget=Budget(**record["budget"]), method=method, options=opt,
                      proposer=None if proposer == info["model_identity"]
                      else CacheOnlyModel(proposer), store=store,
                      params=s.params, alpha=record["alpha"], gate=record["gate"],
                      seed=info["seed"], mode=s.cfg.model.mode, resume=False,
                      prompt_name=record.get("prompt_name"), config=record,
                      contextualizer=s.contextualizer)
    return _compare_searches(store.candidates(info["id"]), store.candidates(result.run_id),
                             record.get("result", {}), result.summary())


def _compare_searches(old, new, old_summary, new_summary) -> list[str]:
    problems = []
    if [c["hash"] for c in old] != [c["hash"] for c in new]:
        problems.append("the candidates differ")
    for a, b in zip(old, new, strict=False):
        if a["val_mean"] != b["val_mean"]:
            problems.append(f"candidate {a['idx']}: validation {a['val_mean']} vs "
                            f"{b['val_mean']}")
    for key in ("seed_test", "best_test"):
        before = old_summary.get(key, {}).get("mean")
        after = new_summary[key]["mean"]
        if before is not None and before != after:
            problems.append(f"{key}: recorded {before} replayed {after}")
    return problems


def register(app: typer.Typer) -> None:
    app.command("replay")(replay)
