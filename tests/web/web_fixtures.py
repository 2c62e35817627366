"""The workbench test store: real evaluations and a real search, with fake models."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from helpers import write_jsonl

HOSTILE = "<script>alert(1)</script><b>bold</b>"

# (id, text, label): a three-label task, so the confusion matrix has something to show
REVIEWS = [
    ("r0", "great food, lovely staff", "positive"), ("r1", "awful, cold and late", "negative"),
    ("r2", "it was fine, nothing special", "neutral"), ("r3", "superb and friendly", "positive"),
    ("r4", "rude waiter, never again", "negative"), ("r5", "average, okay prices", "neutral"),
    ("r6", "loved every bite", "positive"), ("r7", "dirty tables, slow", "negative"),
    ("r8", "ordinary lunch", "neutral"), ("r9", "fantastic dessert", "positive"),
    ("r10", "terrible coffee", "negative"), ("r11", "so-so service", "neutral"),
]
GOOD = ("great", "awful", "fine", "superb", "rude", "average", "loved", "dirty")


def answer_for(text: str, careful: bool) -> str:
    """Right on the GOOD words; the careful prompt also gets two more right; one output is
    hostile HTML, to check that no page renders model output as markup."""
    for rid, review, label in REVIEWS:
        if review in text:
            if rid == "r10":
                return HOSTILE
            if any(w in review for w in GOOD) or (careful and rid in ("r8", "r9")):
                return label
            return "positive"
    return "unknown"


@dataclass
class WebStore:
    url: str
    config: Path
    run_a: int
    run_b: int
    optimize_run: int
    prompt_name: str


def write_task(folder: Path) -> Path:
    write_jsonl(folder / "reviews.jsonl",
                [{"id": i, "text": t, "label": lab} for i, t, lab in REVIEWS])
    config = {
        "name": "reviews",
        "data": {"path": "reviews.jsonl", "input": ["text"], "target": "label", "id": "id"},
        "splits": {"train": 0, "validation": 0, "test": 12, "seed": 0},
        "metric": "exact",
        "model": {"name": "fake", "params": {"default": "positive"}},
        "generation": {"max_tokens": 8},
        "prompt": {"name": "sentiment", "instruction": "Label the review.",
                   "template": "Review: {{ text }}"},
    }
    (folder / "task.yaml").write_text(yaml.safe_dump(config))
    return folder / "task.yaml"


def _search(store) -> int:
    """A real APE search over the same reviews, recorded step by step."""
    from promptmill.metrics import get_metric
    from promptmill.models.fake import FakeModel
    from promptmill.optimize import Budget, optimize
    from promptmill.prompt import Prompt
    from promptmill.task import Example, Task

    examples = [Example(i, {"text": t}, lab) for i, t, lab in REVIEWS]
    task = Task("reviews", train=examples[:6], validation=examples[6:], test=examples[6:])
    model = FakeModel(fn=lambda text: answer_for(text, False))
    seed = Prompt(instruction="Label the review.", template="Review: {{ text }}",
                  name="sentiment-opt")
    result = optimize(task, seed, model, metric=get_metric("exact"), budget=Budget(calls=80),
                      method="ape", store=store,
                      proposer=FakeModel(default="Answer with one word: the label."))
    return result.run_id


def build_store(folder: Path) -> WebStore:
    from promptmill.api import evaluate
    from promptmill.models.fake import FakeModel
    from promptmill.prompt import Prompt
    from promptmill.store.db import Store

    url = f"sqlite:///{folder / 'web.db'}"
    config = write_task(folder)
    store = Store(url)
    plain = Prompt(name="sentiment", instruction="Label the review.",
                   template="Review: {{ text }}")
    careful = plain.model_copy(update={"instruction": "Label the review carefully: positive, "
                                                      "negative or neutral.",
                                       "template": "Review (careful): {{ text }}"})
    a = evaluate(config, plain, model=FakeModel(fn=lambda t: answer_for(t, False)), store=store)
    b = evaluate(config, careful, model=FakeModel(fn=lambda t: answer_for(t, "(careful)" in t)),
                 store=store)
    opt = _search(store)
    store.close()
    return WebStore(url, config, a.run_id, b.run_id, opt, "sentiment")
