"""The ``context:`` section of a task config, and the contextualizer chain it builds.

```yaml
context:
  intent:                       # route each input to a prompt variant (first in the chain)
    variants: {refund: prompts/refund.yaml, other: prompts/general.yaml}
    rules: [{intent: refund, keywords: [refund, money back]}]
    default: other
    classifier: true            # ask the task model when no rule matches
  situation: {audience: customers, locale: en-GB, channel: email}
  demos: {method: bm25, k: 4, mmr_lambda: 0.7, balance_labels: true}
  knowledge: {path: manual/, k: 3, slot: knowledge}   # a source folder/JSONL or a built KB
  budget: {max_tokens: 2048, priority: [passages, demos]}
```

The chain always runs intent, situation, demos, knowledge, then budget: routing replaces the
prompt, so it goes first; the budget trims what the others added, so it goes last. Demos come
from the training split only, so validation and test answers can never leak into a prompt.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from ..models.base import Model
    from ..task import Task
    from .base import Chain


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DemosConfig(_Strict):
    method: Literal["bm25", "embedding", "random"] = "bm25"
    k: int = Field(default=4, ge=1)
    mmr_lambda: float = Field(default=0.7, ge=0.0, le=1.0)
    balance_labels: bool = False
    max_tokens: int | None = Field(default=None, ge=1)


class KnowledgeConfig(_Strict):
    path: str
    slot: str = "knowledge"
    k: int = Field(default=3, ge=1)
    kind: Literal["bm25", "embedding", "hybrid"] = "bm25"
    chunk_words: int = Field(default=120, ge=10)
    query_fields: list[str] | None = None


class IntentRuleConfig(_Strict):
    intent: str
    pattern: str | None = None
    keywords: list[str] | None = None
    field: str | None = None

    @model_validator(mode="after")
    def _one_matcher(self) -> IntentRuleConfig:
        if (self.pattern is None) == (self.keywords is None):
            raise ValueError("give a rule either 'pattern' (a regex) or 'keywords' (a list)")
        return self


class IntentConfig(_Strict):
    variants: dict[str, str | dict[str, Any]]
    rules: list[IntentRuleConfig] = Field(default_factory=list)
    default: str | None = None
    classifier: bool = False
    labels: list[str] | dict[str, str] | None = None


class BudgetConfig(_Strict):
    max_tokens: int | None = Field(default=None, ge=16)
    reserve_output: int | None = Field(default=None, ge=0)
    priority: list[Literal["passages", "demos"]] = Field(
        default_factory=lambda: ["passages", "demos"])


class ContextConfig(_Strict):
    intent: IntentConfig | None = None
    situation: dict[str, Any] | None = None
    demos: DemosConfig | None = None
    knowledge: KnowledgeConfig | None = None
    budget: BudgetConfig | None = None


def build_contextualizer(context: ContextConfig | None, task: Task, model: Model, *,
                         base_dir: Path = Path("."), reserve_output: int = 64,
                         source: str = "task config") -> Chain | None:
    """The chain a task config asks for, or None when it asks for no context."""
    if context is None:
        return None
    from .base import Chain

    steps = [
        _intent(context.intent, model, base_dir, source) if context.intent else None,
        _situation(context.situation) if context.situation else None,
        _demos(context.demos, task) if context.demos else None,
        _knowledge(context.knowledge, base_dir) if context.knowledge else None,
        _budget(context.budget, model, reserve_output) if context.budget else None,
    ]
    steps = [s for s in steps if s is not None]
    return Chain(*steps) if steps else None


def _intent(cfg: IntentConfig, model: Model, base_dir: Path, source: str):
    from ..prompt import Prompt
    from .intent import IntentRouter, IntentRule

    variants = {}
    for name, ref in cfg.variants.items():
        if isinstance(ref, dict):
            variants[name] = Prompt.model_validate({"name": name, **ref})
        else:
            path = Path(ref) if Path(ref).is_absolute() else base_dir / ref
            if not path.is_file():
                from ..errors import ConfigError

                raise ConfigError(f"intent variant '{name}' names a missing prompt file {path}",
                                  where=f"{source}: context.intent.variants.{name}",
                                  fix="give a prompt YAML path relative to the task config")
            loaded = Prompt.from_file(path)
            variants[name] = loaded if loaded.name else loaded.model_copy(update={"name": name})
    rules = [IntentRule(r.intent, r.pattern if r.pattern is not None else r.keywords,
                        field=r.field) for r in cfg.rules]
    return IntentRouter(variants, rules, classifier=model if cfg.classifier else None,
                        labels=cfg.labels if cfg.classifier else None, default=cfg.default)


def _situation(data: dict[str, Any]):
    from .situation import SituationContext

    data = dict(data)
    slot = data.pop("slot", "situation")
    return SituationContext(data, slot=slot)


def _demos(cfg: DemosConfig, task: Task):
    from .demos import DemoSelector

    return DemoSelector(task.train, cfg.k, cfg.method, cfg.mmr_lambda, cfg.balance_labels,
                        cfg.max_tokens, seed=task.seed)


def _knowledge(cfg: KnowledgeConfig, base_dir: Path):
    from .kb import MANIFEST, KnowledgeBase, KnowledgeContext

    path = Path(cfg.path) if Path(cfg.path).is_absolute() else base_dir / cfg.path
    if (path / MANIFEST).is_file():
        kb = KnowledgeBase.load(path)
    else:  # a source: chunk and index it now (indexes are cached, so this is quick next time)
        kb = KnowledgeBase.build(path, chunk_words=cfg.chunk_words, kind=cfg.kind)
    return KnowledgeContext(kb, slot=cfg.slot, k=cfg.k, query_fields=cfg.query_fields)


def _budget(cfg: BudgetConfig, model: Model, reserve_output: int):
    from .budget import ContextBudget

    reserve = cfg.reserve_output if cfg.reserve_output is not None else reserve_output
    if cfg.max_tokens is not None:  # a budget below the window, e.g. to save cost: the smaller
        window = min(cfg.max_tokens, model.context_window or cfg.max_tokens)
        return ContextBudget(window, reserve_output=reserve, priority=tuple(cfg.priority))
    return ContextBudget.from_model(model, reserve_output=reserve, priority=tuple(cfg.priority))
