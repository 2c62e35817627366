"""End to end on the real embedded model: the bundled example, cache and the OpenAI backend."""

import pytest

from promptmill.api import evaluate, load_task
from promptmill.cli.scaffold import example_dir
from promptmill.store.db import Store

pytestmark = [pytest.mark.real_model, pytest.mark.slow]


def test_bundled_task_evaluates_and_caches(embedded_model, sqlite_url):
    store = Store(sqlite_url)
    config = example_dir() / "task.yaml"
    first = evaluate(config, str(example_dir() / "prompts/labelled.yaml"),
                     model=embedded_model, store=store, limit=12)
    assert first.n == 12 and first.n_errors == 0 and first.ledger.calls == 12
    assert 0.0 <= first.score.mean <= 1.0
    again = evaluate(config, str(example_dir() / "prompts/labelled.yaml"),
                     model=embedded_model, store=store, limit=12)
    assert again.ledger.cache_hits == 12 and again.scores == first.scores
    outputs = [r["output"] for r in store.iter_results(first.run_id)]
    assert all(isinstance(o, str) and o for o in outputs)


def test_embedded_scores_the_labelled_prompt_above_the_plain_one(embedded_model, sqlite_url):
    """The bundled demo's claim, checked: a format note helps this model."""
    from promptmill.api import compare

    store = Store(sqlite_url)
    config = example_dir() / "task.yaml"
    plain = evaluate(config, str(example_dir() / "prompts/plain.yaml"), model=embedded_model,
                     store=store)
    labelled = evaluate(config, str(example_dir() / "prompts/labelled.yaml"),
                        model=embedded_model, store=store)
    verdict = compare(plain.run_id, labelled.run_id, store=store)
    assert labelled.score.mean > plain.score.mean
    assert verdict.n == len(load_task(config)[1].test)
