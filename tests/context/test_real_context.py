"""Dynamic few-shot and knowledge context on the real embedded model."""

import json

import pytest

from promptmill.context import DemoSelector, KnowledgeBase, KnowledgeContext
from promptmill.evaluation import Evaluator
from promptmill.metrics import get_metric
from promptmill.models.base import GenerationParams
from promptmill.prompt import Prompt
from promptmill.task import Example

pytestmark = [pytest.mark.real_model, pytest.mark.slow]

MANUAL = {
    "pins.md": "# Default PIN\nThe default PIN of the Zorblax Z9 vault is 4417.\n",
    "battery.md": "# Battery\nThe Zorblax Z9 battery is a Kelvar KX-88 cell that lasts "
                  "19 months.\n",
    "colour.md": "# Casing\nThe Zorblax Z9 casing colour is called Moss Teal.\n",
    "reset.md": "# Reset\nTo reset the Zorblax Z9, hold the Quill button for 12 seconds.\n",
}
QUESTIONS = [("What is the default PIN of the Zorblax Z9 vault?", "4417"),
             ("Which cell does the Zorblax Z9 battery use?", "KX-88"),
             ("What is the Zorblax Z9 casing colour called?", "Moss Teal"),
             ("How many seconds must the Quill button be held to reset the Zorblax Z9?", "12")]


def test_a_knowledge_base_question_is_answered_from_the_knowledge_base(embedded_model, store,
                                                                       tmp_path):
    for name, text in MANUAL.items():
        (tmp_path / name).write_text(text)
    kb = KnowledgeBase.build(tmp_path, kind="bm25")
    examples = [Example(f"q{i}", {"question": q}, a) for i, (q, a) in enumerate(QUESTIONS)]
    evaluator = Evaluator(embedded_model, get_metric("contains"), store, progress=False,
                          params=GenerationParams(max_tokens=24))
    closed = Prompt(instruction="Answer the question briefly.", template="{{ question }}")
    open_book = Prompt(instruction="Answer the question briefly from the manual excerpt.",
                       template="Question: {{ question }}", context_slots=("knowledge",))
    without = evaluator.evaluate(examples, closed, task="kb", split="test")
    with_kb = evaluator.evaluate(examples, open_book, task="kb", split="test",
                                 contextualizer=KnowledgeContext(kb, k=1))
    assert without.score.mean == 0.0  # the facts are invented: no model can know them
    assert with_kb.score.mean >= 0.75
    notes = [json.loads(r["context_notes"]) for r in store.iter_results(with_kb.run_id)]
    assert all(any("pins.md" in n or "battery.md" in n or "colour.md" in n or "reset.md" in n
                   for n in note) for note in notes)


def test_retrieved_demos_are_the_nearest_ones(embedded_model, store):
    pool = [Example(f"t{i}", {"input": text}, label) for i, (text, label) in enumerate([
        ("the cat sat on the mat", "animal"), ("a dog barked at the mailman", "animal"),
        ("stocks fell sharply on wall street", "finance"),
        ("the central bank raised interest rates", "finance"),
        ("the striker scored twice in the final", "sport"),
        ("the tennis match went to five sets", "sport")])]
    selector = DemoSelector(pool, k=2, method="embedding", mmr_lambda=1.0)
    evaluator = Evaluator(embedded_model, get_metric("exact"), store, progress=False,
                          params=GenerationParams(max_tokens=4))
    query = Example("q", {"input": "the bank cut interest rates again"}, "finance")
    [scored] = evaluator.score_examples(Prompt(instruction="Topic?"), [query],
                                        contextualizer=selector)
    assert scored.error is None
    request = evaluator.render(Prompt(instruction="Topic?"), query, selector)
    shown = [m["content"] for m in request if m["role"] == "user"][:-1]
    assert set(shown) == {"stocks fell sharply on wall street",
                          "the central bank raised interest rates"}
    assert shown[-1] == "the central bank raised interest rates"  # the nearest sits last
