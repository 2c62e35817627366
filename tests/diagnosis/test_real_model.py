"""Diagnose on runs of the real embedded model."""

import pytest

from promptmill.api import evaluate
from promptmill.cli.scaffold import example_dir
from promptmill.diagnosis import diagnose
from promptmill.diagnosis.actions import check_robustness, save_applied
from promptmill.diagnosis.data import load_run
from promptmill.store.db import Store

pytestmark = [pytest.mark.real_model, pytest.mark.slow]


def test_diagnose_a_real_run_and_apply_its_fix(embedded_model, sqlite_url):
    store = Store(sqlite_url)
    config = example_dir() / "task.yaml"
    plain = evaluate(config, str(example_dir() / "prompts/plain.yaml"), model=embedded_model,
                     store=store, limit=12)
    d = diagnose(plain.run_id, store=store)
    assert d.n == 12 and d.n_failures == sum(c["count"] for c in d.categories)
    assert d.n_failures > 0  # the plain prompt gets chatter, not labels, from this model
    assert d.confusion is not None and d.confusion["labels"] == ["negative", "positive"]
    fixes = [s for s in d.suggestions if s.action == {"kind": "output_format"}]
    assert fixes, [s.message for s in d.suggestions]
    saved, _ = save_applied(store, d, [fixes[0].id])
    fixed = evaluate(config, f"plain@{saved['version']}", model=embedded_model, store=store,
                     limit=12)
    after = diagnose(fixed.run_id, store=store)
    # constrained decoding: every answer is now one of the labels
    assert not any(c["category"] in ("format_violation", "truncated") for c in after.categories)
    assert sum(after.confusion["matrix"][i][-1] for i in range(2)) == 0


def test_robustness_on_the_real_model(embedded_model, sqlite_url):
    store = Store(sqlite_url)
    config = example_dir() / "task.yaml"
    run = evaluate(config, str(example_dir() / "prompts/labelled.yaml"), model=embedded_model,
                   store=store, limit=6).run_id
    results = check_robustness(store, load_run(store, run), n=4, variants=1,
                               kinds=("paraphrase", "casing"), model=embedded_model)
    by_kind = {r["kind"]: r for r in results}
    assert by_kind["casing"]["applicable"] and by_kind["casing"]["n"] == 4
    assert 0.0 <= by_kind["casing"]["flip_rate"] <= 1.0
    if by_kind["paraphrase"]["applicable"]:  # the 135M model may write no usable paraphrase
        assert by_kind["paraphrase"]["variants"] == 1
