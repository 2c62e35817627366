"""format_variants: the shapes learned from the answers as a grammar and as a note."""

from __future__ import annotations

import re

import pytest
from optimize_fakes import antonym_task

from promptmill.constrain import OutputSpec
from promptmill.optimize.mutations import format_variants
from promptmill.prompt import Prompt
from promptmill.task import Example, Task

SEED = Prompt(instruction="Do the task.")


def variants(train, prompt=SEED):
    return dict(format_variants(prompt, train))


def test_a_one_word_task_gets_the_grammar_variant():
    found = variants(antonym_task().train)
    grammar = found["format:grammar:one-lowercase-word"]
    assert grammar.output_spec is not None and grammar.output_spec.pattern is not None
    assert "Answer with one lowercase word." in grammar.system_text()
    assert grammar.instruction == SEED.instruction and grammar.demos == SEED.demos
    assert all(re.fullmatch(grammar.output_spec.pattern, ex.target)
               for ex in antonym_task().train)
    assert grammar.output_spec.to_gbnf().startswith("root ::=")
    assert list(found)[:2] == ["format:answer-only", "format:shape"]  # as before, first
    assert len(found) <= 4  # at most two new variants


def test_a_label_task_keeps_exactly_the_variants_it_had():
    labels = [Example(str(i), {"input": f"review {i}"}, "good" if i % 2 else "bad")
              for i in range(8)]
    found = variants(labels)
    assert list(found) == ["format:answer-only", "format:labels"]
    assert found["format:labels"].output_spec == OutputSpec(labels=("bad", "good"))


def test_a_prompt_with_its_own_spec_gets_no_grammar_variant():
    own = SEED.model_copy(update={"output_spec": OutputSpec(pattern="[a-z]{1,9}")})
    assert not any(o.startswith("format:grammar") for o in variants(antonym_task().train, own))


def test_a_relational_shape_becomes_a_note_only_variant():
    sentences = ["John is running to the car.", "Mary has never kissed him.",
                 "I prefer a cat.", "We all went home early.", "They sang loudly today."]
    train = [Example(str(i), {"input": s}, s.split()[2].strip("."))
             for i, s in enumerate(sentences)]
    found = variants(train)
    note = found["format:note:word-of-input"]
    assert note.output_spec is None
    assert "Answer with one word copied from the input." in note.system_text()
    assert note.output_format.startswith(found["format:shape"].output_format)
    assert "format:grammar:one-lowercase-word" in found


def test_a_note_that_says_less_than_the_grammar_is_not_offered():
    words = ["cat", "dog", "box", "car", "tree", "bus"]
    train = [Example(str(i), {"input": w}, w[0]) for i, w in enumerate(words)]
    found = variants(train)  # a first letter is a substring of the input, and one letter
    assert "format:grammar:one-lowercase-letter" in found
    assert not any(o.startswith("format:note") for o in found)


def test_no_grammar_when_the_answers_share_only_a_line():
    train = [Example(str(i), {"input": str(i)}, text) for i, text in enumerate(
        ["It rained all day, said Tom.", "Nobody came to the party at all that night.",
         "Fine, we will go tomorrow if the weather holds up, or maybe not.", "Who knows?"])]
    assert not any(o.startswith("format:grammar") for o in variants(train))


@pytest.mark.real_model
@pytest.mark.slow
def test_the_grammar_variant_holds_the_embedded_model_to_the_shape(embedded_model, store):
    from optimize_fakes import WORDS, plural_task

    from promptmill.evaluation import Evaluator
    from promptmill.metrics import get_metric
    from promptmill.models.base import GenerationParams

    letters = [Example(f"l{i}", {"input": w}, w[0]) for i, w in enumerate(WORDS)]
    cases = [(plural_task(), "Write the plural of the word.", "one-lowercase-word"),
             (Task("letters", letters[:8], letters[8:16], []),
              "Write the first letter of the word.", "one-lowercase-letter")]
    evaluator = Evaluator(embedded_model, get_metric("exact"), store,
                          params=GenerationParams(max_tokens=16), progress=False)
    for task, instruction, shape in cases:
        seed = Prompt(instruction=instruction)
        grammar = variants(task.train, seed)[f"format:grammar:{shape}"]
        scored = evaluator.score_examples(grammar, task.validation)
        outputs = [s.output for s in scored]
        assert all(s.error is None for s in scored), [s.error for s in scored]
        assert all(re.fullmatch(grammar.output_spec.pattern, o.strip()) for o in outputs), outputs
        plain = [s.output for s in evaluator.score_examples(seed, task.validation)]
        assert not all(re.fullmatch(grammar.output_spec.pattern, o.strip()) for o in plain), \
            "the unconstrained model already answers in the shape: this checks nothing"
