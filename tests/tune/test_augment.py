"""Augmentation: rule edits keep labels, paraphrases are label-checked, duplicates go."""

from __future__ import annotations

import pytest

from promptmill.models.fake import FakeModel
from promptmill.task import Example
from promptmill.tune.augment import augment, dedupe, label_kept, paraphrases, rule_variants

SENTENCES = [Example("s1", {"input": "The quick brown fox jumps over the lazy dog."}, "fox"),
             Example("s2", {"input": "Cats sleep during most of the afternoon."}, "cats"),
             Example("s3", {"input": "strawberry"}, "s")]


def test_typos_keep_word_edges_and_answer_words():
    made = rule_variants(SENTENCES * 5, rules=["typo"], seed=3)
    assert made.examples and made.stats["rule:typo"] == len(made.examples)
    for ex in made.examples:
        original = next(s for s in SENTENCES if ex.id.startswith(s.id + "~"))
        assert ex.target == original.target and ex.inputs != original.inputs
        for old, new in zip(original.inputs["input"].split(), ex.inputs["input"].split(),
                            strict=True):
            assert (old[0], old[-1], sorted(old)) == (new[0], new[-1], sorted(new))


def test_an_edit_that_loses_an_answer_word_is_dropped():
    ex = SENTENCES[0]
    assert not label_kept(ex, {"input": "The quick brown dog jumps."})
    assert not label_kept(ex, {"input": ex.inputs["input"]})  # unchanged is not new
    assert label_kept(ex, {"input": "A quick brown fox leaps over a lazy dog"})


def test_paraphrases_are_kept_only_when_the_label_survives():
    model = FakeModel(answers={"quick brown": "A fast brown fox leaps over a lazy dog.",
                               "Cats sleep": "Dogs nap all afternoon long."},
                      default="strawberry!")
    made = paraphrases(SENTENCES, model)
    assert [ex.id for ex in made.examples] == ["s1~para", "s3~para"]
    assert made.stats == {"paraphrase": 2, "dropped:paraphrase": 1}


def test_dedupe_drops_repeats_but_keeps_case_and_punctuation_variants():
    a = Example("a", {"input": "Hello, World"}, "x")
    b = Example("b", {"input": " Hello, World "}, "x")
    c = Example("c", {"input": "hello world"}, "x")
    kept, dropped = dedupe([a, b, c, SENTENCES[2], SENTENCES[2]])
    assert [e.id for e in kept] == ["a", "c", "s3"] and dropped == 2


def test_augment_keeps_originals_first_and_counts_everything():
    made = augment(SENTENCES, rules=["case", "punct"], per_example=2, seed=0)
    assert made.examples[:3] == SENTENCES
    assert made.stats["original"] == 3 and made.stats["total"] == len(made.examples)
    assert made.stats["duplicates_dropped"] >= 1  # two edits by the same rule coincide
    assert made.stats["total"] > 3


def test_unknown_rules_are_refused():
    from promptmill.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown augmentation rule 'shout'"):
        augment(SENTENCES, rules=["shout"])
