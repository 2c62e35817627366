"""Build the contextualizer chain a task config's ``context:`` section asks for.

Kept apart from the schema (``context/config.py``) so a task config can be read and checked
without importing the contextualizers, retrieval and prompts that building one needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..prompt import Prompt
from .base import Chain
from .config import BudgetConfig, ContextConfig, DemoSelection, IntentConfig, KnowledgeConfig

if TYPE_CHECKING:
    from ..models.base import Model
    from ..task import Task


def build_contextualizer(context: ContextConfig | None, task: Task, model: Model, *,
                         base_dir: Path = Path("."), reserve_output: int = 64,
                         source: str = "task config") -> Chain | None:
    """The chain a task config asks for, or None when it asks for no context."""
    if context is None:
        return None
    steps = [
        _intent(context.intent, model, base_dir, source) if context.intent else None,
        _situation(context.situation) if context.situation else None,
        _demos(context.demos, task) if context.demos else None,
        _knowledge(context.knowledge, base_dir) if context.knowledge else None,
        _budget(context.budget, model, reserve_output) if context.budget else None,
    ]
    present = [s for s in steps if s is not None]
    return Chain(*present) if present else None


def _intent(cfg: IntentConfig, model: Model, base_dir: Path, source: str):
    from .intent import IntentRouter, IntentRule

    variants = {}
    for name, ref in cfg.variants.items():
        if isinstance(ref, dict):
            variants[name] = Prompt.model_validate({"name": name, **ref})
        else:
            path = Path(ref) if Path(ref).is_absolute() else base_dir / ref
            if not path.is_file():
                raise ConfigError(f"intent variant '{name}' names a missing prompt file {path}",
                                  where=f"{source}: context.intent.variants.{name}",
                                  fix="give a prompt YAML path relative to the task config")
            loaded = Prompt.from_file(path)
            variants[name] = loaded if loaded.name else loaded.model_copy(update={"name": name})
    # a rule has exactly one of pattern and keywords (IntentRuleConfig checks it)
    rules = [IntentRule(r.intent, r.pattern if r.pattern is not None else r.keywords or [],
                        field=r.field) for r in cfg.rules]
    return IntentRouter(variants, rules, classifier=model if cfg.classifier else None,
                        labels=cfg.labels if cfg.classifier else None, default=cfg.default)


def _situation(data: dict[str, Any]):
    from .situation import SituationContext

    data = dict(data)
    slot = data.pop("slot", "situation")
    return SituationContext(data, slot=slot)


def _demos(cfg: DemoSelection, task: Task):
    from .demos import DemoSelector

    return DemoSelector.from_selection(task.train, cfg, seed=task.seed)


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
