"""Contextualization: shape each prompt to the example, the user and what the task knows.

A :class:`Contextualizer` takes the prompt and one example and returns the prompt to use and
the context-slot values, so demos, knowledge passages and prompt variants can differ per input.
Chain several with :class:`Chain` (route by intent, pick demos, add passages, then budget); the
evaluator takes one through ``contextualizer=``. Names load on first use: retrieval pulls in
bm25s and, for embeddings, sentence-transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "Chain": ".base", "Contextualizer": ".base", "Prepared": ".base",
    "ContextBudget": ".budget", "DemoSelector": ".demos",
    "IntentRouter": ".intent", "IntentRule": ".intent", "scores_by_segment": ".intent",
    "KnowledgeBase": ".kb", "KnowledgeContext": ".kb", "Passage": ".kb",
    "Situation": ".situation", "SituationContext": ".situation",
}

__all__ = [
    "Chain",
    "ContextBudget",
    "Contextualizer",
    "DemoSelector",
    "IntentRouter",
    "IntentRule",
    "KnowledgeBase",
    "KnowledgeContext",
    "Passage",
    "Prepared",
    "Situation",
    "SituationContext",
    "scores_by_segment",
]

__getattr__, __dir__ = lazy_exports("promptmill.context", globals(), _EXPORTS)

if TYPE_CHECKING:
    from .base import Chain, Contextualizer, Prepared
    from .budget import ContextBudget
    from .demos import DemoSelector
    from .intent import IntentRouter, IntentRule, scores_by_segment
    from .kb import KnowledgeBase, KnowledgeContext, Passage
    from .situation import Situation, SituationContext
