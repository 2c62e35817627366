"""The ``context:`` section of a task config, as a schema (``context/factory.py`` builds it).

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

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DemoSelection(BaseModel):
    """Demos retrieved per input from the task's training split, instead of fixed ones.

    One schema for a prompt's ``demo_selection:`` and a task's ``context.demos:``: both say
    "pick ``k`` demos from the training split by ``method``". Defined here because this module
    imports nothing from promptmill, so ``prompt.py`` can import it without a cycle; build a
    selector from one with ``DemoSelector.from_selection``. Frozen, so it is hashable: a
    renderer keeps one selector per distinct selection.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    method: Literal["bm25", "embedding", "random"] = "bm25"
    k: int = Field(default=4, ge=1)
    mmr_lambda: float = Field(default=0.7, ge=0.0, le=1.0)
    balance_labels: bool = False
    max_tokens: int | None = Field(default=None, ge=1, description="token budget of the demos")

    @model_serializer(mode="wrap")
    def _unset_budget_left_out(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # prompts gained max_tokens with the merge: left out while unset, a prompt's content
        # (and so its hash) stays what it was before
        data = handler(self)
        if self.max_tokens is None:
            data.pop("max_tokens", None)
        return data


DemosConfig = DemoSelection  # the name ``context.demos`` had before the merge


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


Priority = Literal["passages", "demos"]
DEFAULT_PRIORITY: tuple[Priority, ...] = ("passages", "demos")


class BudgetConfig(_Strict):
    max_tokens: int | None = Field(default=None, ge=16)
    reserve_output: int | None = Field(default=None, ge=0)
    priority: list[Priority] = Field(default_factory=lambda: list(DEFAULT_PRIORITY))


class ContextConfig(_Strict):
    intent: IntentConfig | None = None
    situation: dict[str, Any] | None = None
    demos: DemoSelection | None = None
    knowledge: KnowledgeConfig | None = None
    budget: BudgetConfig | None = None
