"""DemoSelector: relevance, self-exclusion, MMR diversity, label balance and the token budget."""

from __future__ import annotations

import json

import pytest

from promptmill.context.base import Chain, Contextualizer, Prepared
from promptmill.context.demos import DemoSelector, estimate_tokens, query_text
from promptmill.errors import ConfigError
from promptmill.prompt import Demo, Prompt
from promptmill.task import Example

PROMPT = Prompt(instruction="Classify the review.", template="Review: {{ text }}",
                demos=(Demo(inputs={"text": "fixed"}, output="positive"),))


def ex(id_: str, text: str, label: str = "positive") -> Example:
    return Example(id=id_, inputs={"text": text}, target=label)


POOL = [
    ex("p1", "the battery life is superb and lasts all day"),
    ex("p2", "great screen, bright colours, love it"),
    ex("n1", "the battery died after an hour, terrible", "negative"),
    ex("n2", "screen cracked on day one, awful", "negative"),
    ex("n3", "shipping was slow and the box was damaged", "negative"),
]


def run(selector: DemoSelector, example: Example, prompt: Prompt = PROMPT) -> Prepared:
    return selector.prepare(Prepared(prompt), example)


def demo_ids(prepared: Prepared, pool=POOL) -> list[str]:
    by_inputs = {json.dumps(e.inputs, sort_keys=True): e.id for e in pool}
    return [by_inputs[json.dumps(d.inputs, sort_keys=True)] for d in prepared.prompt.demos]


def test_selector_is_a_contextualizer_and_describes_itself(tmp_path):
    selector = DemoSelector(POOL, k=2, index_root=tmp_path)
    assert isinstance(selector, Contextualizer)
    info = selector.describe()
    json.dumps(info)  # goes into run fingerprints
    assert info["method"] == "bm25" and info["k"] == 2 and info["mmr_lambda"] == 0.7
    assert info["balance_labels"] is False and info["pool_size"] == 5
    other = DemoSelector(POOL[:4], k=2, index_root=tmp_path).describe()
    assert other["pool"] != info["pool"]


def test_most_relevant_demo_comes_last_next_to_the_query(tmp_path):
    selector = DemoSelector(POOL, k=2, mmr_lambda=1.0, index_root=tmp_path)
    prepared = run(selector, ex("q", "is the battery life superb"))
    ids = demo_ids(prepared)
    assert len(ids) == 2 and set(ids) == {"p1", "n1"}
    assert ids[-1] == "p1"  # it shares the most words: the closest match sits last
    assert prepared.prompt.demos[-1].output == "positive"
    assert prepared.notes == ["demos: bm25 k=2 ids=[n1, p1]"]
    assert PROMPT.demos[0].inputs == {"text": "fixed"}  # the frozen original is untouched


def test_an_example_is_never_its_own_demo(tmp_path):
    selector = DemoSelector(POOL, k=4, mmr_lambda=1.0, index_root=tmp_path)
    assert "p1" not in demo_ids(run(selector, POOL[0]))
    # same inputs under another id (a duplicate row) is excluded too
    twin = ex("copy-of-n1", POOL[2].inputs["text"], "negative")
    assert "n1" not in demo_ids(run(selector, twin))
    for method in ("random", "bm25"):
        chosen = DemoSelector(POOL, k=4, method=method, index_root=tmp_path)
        assert all("n3" not in demo_ids(run(chosen, POOL[4])) for _ in range(3))


def test_mmr_skips_a_near_duplicate_for_a_diverse_demo(tmp_path):
    pool = [ex("a", "battery life battery life is great"),
            ex("b", "battery life battery life is great indeed"),
            ex("c", "battery life was short", "negative"),
            ex("d", "the lid hinge squeaks")]
    query = ex("q", "battery life")
    relevant = DemoSelector(pool, k=2, mmr_lambda=1.0, index_root=tmp_path)
    assert set(demo_ids(run(relevant, query), pool)) == {"a", "b"}
    diverse = DemoSelector(pool, k=2, mmr_lambda=0.5, index_root=tmp_path)
    assert set(demo_ids(run(diverse, query), pool)) == {"a", "c"}


def test_balance_labels_mixes_labels_the_ranking_would_not(tmp_path):
    pool = [ex(f"n{i}", f"battery terrible number {i}", "negative") for i in range(4)]
    pool.append(ex("p", "lovely colours", "positive"))
    query = ex("q", "battery terrible")
    plain = DemoSelector(pool, k=2, mmr_lambda=1.0, index_root=tmp_path)
    assert [d.output for d in run(plain, query).prompt.demos] == ["negative", "negative"]
    balanced = DemoSelector(pool, k=2, mmr_lambda=1.0, balance_labels=True,
                            index_root=tmp_path)
    assert sorted(d.output for d in run(balanced, query).prompt.demos) == \
        ["negative", "positive"]
    rand = DemoSelector(pool, k=2, method="random", balance_labels=True, seed=3)
    assert sorted(d.output for d in run(rand, query).prompt.demos) == ["negative", "positive"]


def test_token_budget_drops_the_least_relevant_demos(tmp_path):
    selector = DemoSelector(POOL, k=3, mmr_lambda=1.0, max_demo_tokens=25,
                            index_root=tmp_path)
    prepared = run(selector, ex("q", "battery life lasts"))
    ids = demo_ids(prepared)
    assert ids[-1] == "p1"  # the best demo survives
    costs = [estimate_tokens(f"{query_text(d.inputs)}\n{d.output}")
             for d in prepared.prompt.demos]
    assert sum(costs) <= 25 and len(ids) < 3
    assert any("over the 25-token budget" in note for note in prepared.notes)


def test_token_budget_takes_a_tokenizer_callable(tmp_path):
    def one_per_char(text: str) -> int:
        return len(text)

    selector = DemoSelector(POOL, k=3, max_demo_tokens=10, count_tokens=one_per_char,
                            index_root=tmp_path)
    prepared = run(selector, ex("q", "battery"))
    assert prepared.prompt.demos == ()  # every demo is longer than 10 characters
    assert selector.describe()["token_counter"] == "one_per_char"


def test_random_selection_is_seeded_per_example():
    a = DemoSelector(POOL, k=2, method="random", seed=1)
    b = DemoSelector(POOL, k=2, method="random", seed=1)
    query = ex("q", "anything")
    assert demo_ids(run(a, query)) == demo_ids(run(b, query))
    assert a.describe()["method"] == "random"
    draws = {tuple(demo_ids(run(DemoSelector(POOL, k=2, method="random", seed=s), query)))
             for s in range(8)}
    assert len(draws) > 1


def test_k_larger_than_the_pool_is_a_clear_error():
    with pytest.raises(ConfigError, match="demo pool has 5 examples, k=6") as info:
        DemoSelector(POOL, k=6)
    assert "lower k or add training examples" in str(info.value)


def test_empty_pool_and_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="demo pool is empty"):
        DemoSelector([], k=1)
    unlabelled = [Example(id="u", inputs={"text": "x"})]
    with pytest.raises(ConfigError, match="none has a target"):
        DemoSelector(unlabelled, k=1)
    with pytest.raises(ConfigError, match="unknown demo selection method 'knn'"):
        DemoSelector(POOL, method="knn")
    with pytest.raises(ConfigError, match="k must be a whole number"):
        DemoSelector(POOL, k=0)
    with pytest.raises(ConfigError, match="mmr_lambda must be a number from 0 to 1"):
        DemoSelector(POOL, mmr_lambda=1.5)
    with pytest.raises(ConfigError, match="max_demo_tokens"):
        DemoSelector(POOL, max_demo_tokens=0)


def test_selected_demos_render_and_chain(tmp_path):
    selector = DemoSelector(POOL, k=2, index_root=tmp_path)
    prepared = Chain(selector)(PROMPT, ex("q", "screen colours"))
    messages = prepared.prompt.render_messages({"text": "screen colours"},
                                               prepared.context_values())
    assert messages[-1]["content"] == "Review: screen colours"
    assert [m["role"] for m in messages[1:]] == ["user", "assistant"] * 2 + ["user"]


def test_the_pool_index_is_built_once(tmp_path):
    DemoSelector(POOL, k=2, index_root=tmp_path)
    DemoSelector(POOL, k=3, mmr_lambda=0.2, index_root=tmp_path)  # same texts: same index
    assert len(list(tmp_path.glob("bm25-*"))) == 1


@pytest.mark.slow
def test_embedding_selection_finds_a_paraphrase(tmp_path):
    pytest.importorskip("sentence_transformers")
    pool = [ex("cat", "A cat naps on the couch."),
            ex("rates", "Interest rates rose by half a percent.", "negative"),
            ex("rain", "Heavy rain is expected tomorrow.", "negative")]
    selector = DemoSelector(pool, k=2, method="embedding", index_root=tmp_path)
    prepared = run(selector, ex("q", "The kitten is sleeping on the sofa."))
    assert demo_ids(prepared, pool)[-1] == "cat"
    assert prepared.notes[0].startswith("demos: embedding k=2 ids=[")


def test_a_pool_of_one_never_shows_the_example_itself(tmp_path):
    only = ex("solo", "hello world")
    for method in ("bm25", "random"):
        selector = DemoSelector([only], k=1, method=method, index_root=tmp_path)
        prepared = run(selector, only)
        assert prepared.prompt.demos == ()
        assert prepared.notes == [f"demos: {method} k=1 ids=[]"]
