"""Runs with crafted outputs (a conftest module cannot be imported by name: every test folder
has one, so the helpers live here)."""

from __future__ import annotations

from promptmill.evaluation import Evaluator
from promptmill.metrics import get_metric
from promptmill.models.base import GenerationParams
from promptmill.models.fake import FakeModel
from promptmill.prompt import Prompt
from promptmill.task import Example

# input -> (target, crafted output) on a three-label task
LABELLED = {
    "great film": ("positive", "positive"),
    "loved it": ("positive", "positive"),
    "awful plot": ("negative", "negative"),
    "boring": ("negative", "negative"),
    "fine I guess": ("neutral", "neutral"),
    "it was ok": ("neutral", "neutral"),
    "superb acting": ("positive", "The answer is positive, because the review is upbeat."),
    "dreadful": ("negative", "positive"),
    "terrible pacing": ("negative", "positive"),
    "meh": ("neutral", "negative"),
    "not bad": ("positive", "maybe so"),
    "so so": ("neutral", ""),
    "hateful": ("negative", "I'm sorry, but I cannot help with that request."),
    "long review": ("positive", "this review talks about many things such as the plot the "
                                "actors and the music of the movie"),
    "crash me": ("positive", "boom"),
}
# input -> (target, crafted output) on a free-text task
FREE_TEXT = {
    "q1": ("the cat is on the table", "le chat est sur la table et il dort"),
    "q2": ("the dog is in the garden", "Собака в саду"),
    "q3": ("new york city", "york"),
    "q4": ("paris", "london"),
    "q5": ("rome", "rome"),
}


def _model(table: dict[str, tuple[str, str]]) -> FakeModel:
    def answer(text: str) -> str:
        return table[text.strip()][1]

    return FakeModel(fn=answer, fail_on="crash me", name="crafted")


def evaluate_crafted(store, table, instruction, max_tokens=12, prompt=None):
    examples = [Example(f"e{i}", {"input": text}, target)
                for i, (text, (target, _)) in enumerate(table.items())]
    evaluator = Evaluator(_model(table), get_metric("exact"), store, progress=False,
                          params=GenerationParams(max_tokens=max_tokens), retries=0)
    prompt = prompt or Prompt(instruction=instruction)
    return evaluator.evaluate(examples, prompt, task="crafted", prompt_name="crafted")
