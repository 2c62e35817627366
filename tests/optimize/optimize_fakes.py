"""Fakes for optimizer tests: the conformance suite's fakes, as shipped in promptmill.testing,
and the small tasks the real-model tests use."""

from __future__ import annotations

from promptmill.task import Example, Task
from promptmill.testing.fakes import (
    ANTONYMS,
    GOOD_PROPOSALS,
    SEED,
    PromptSensitiveModel,
    ScriptedProposer,
    antonym_task,
    fresh_context,
)

__all__ = ["ANTONYMS", "GOOD_PROPOSALS", "PLURALS", "SEED", "WORDS", "PromptSensitiveModel",
           "ScriptedProposer", "antonym_task", "fresh_context", "plural_task", "uppercase_task"]

WORDS = ["cat", "dog", "box", "car", "book", "tree", "bus", "pen", "bird", "cup", "hat", "fox",
         "lamp", "door", "ship", "desk", "key", "bell", "chair", "apple", "star", "rock", "coin",
         "frog", "dish", "boat", "road", "song"]


def uppercase_task() -> Task:
    """8 train, 10 validation, 10 test. Exact match ignores case, so what the 135M model must
    learn here is the format: the word alone, not a sentence about it."""
    examples = [Example(f"w{i}", {"input": w}, w.upper()) for i, w in enumerate(WORDS)]
    return Task("uppercase", train=examples[:8], validation=examples[8:18], test=examples[18:])


PLURALS = [("cat", "cats"), ("dog", "dogs"), ("car", "cars"), ("tree", "trees"),
           ("book", "books"), ("cup", "cups"), ("bird", "birds"), ("hat", "hats"),
           ("pen", "pens"), ("lamp", "lamps"), ("door", "doors"), ("road", "roads"),
           ("ship", "ships"), ("desk", "desks"), ("coat", "coats"), ("ring", "rings"),
           ("shoe", "shoes"), ("cake", "cakes"), ("bell", "bells"), ("kite", "kites"),
           ("frog", "frogs"), ("lake", "lakes"), ("star", "stars"), ("boat", "boats"),
           ("hill", "hills"), ("drum", "drums"), ("sock", "socks"), ("nest", "nests")]


def plural_task() -> Task:
    """8 train, 10 validation, 10 test: a mapping a 135M model gets right once it sees how."""
    examples = [Example(f"p{i}", {"input": w}, p) for i, (w, p) in enumerate(PLURALS)]
    return Task("plurals", train=examples[:8], validation=examples[8:18], test=examples[18:])
