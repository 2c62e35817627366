"""Repeated samples of one evaluation: each its own cache entries and seed, all reproducible."""

import zlib

from promptmill.evaluation import Evaluator
from promptmill.metrics import get_metric
from promptmill.models.base import Generation, GenerationParams, Model, last_user_text
from promptmill.prompt import Prompt
from promptmill.task import Example

EXAMPLES = [Example(str(i), {"input": f"q{i}"}, "yes") for i in range(6)]
PROMPT = Prompt(instruction="Say yes.", template="{{ input }}")


class SeededCoin(Model):
    """Answers 'yes' or 'no' from the seed and the input: a stand-in for sampling."""

    identity = "seeded-coin"

    def __init__(self):
        self.calls = 0

    def generate(self, request, params):
        self.calls += 1
        text = last_user_text(request)
        heads = zlib.crc32(f"{params.seed}:{text}".encode()) % 2 == 0
        return Generation(text="yes" if heads else "no", input_tokens=1, output_tokens=1)


def evaluate(store, model, sample):
    params = GenerationParams(temperature=0.8, seed=3)
    evaluator = Evaluator(model, get_metric("exact"), store, params=params, progress=False,
                          sample=sample)
    return evaluator, evaluator.evaluate(EXAMPLES, PROMPT, task="coin")


def test_each_sample_is_its_own_run_seed_and_cache_entry(store):
    model = SeededCoin()
    first, run0 = evaluate(store, model, 0)
    second, run1 = evaluate(store, model, 1)
    assert first.params.seed == 3 and second.params.seed == 4
    assert run0.run_id != run1.run_id and model.calls == 12
    assert store.get_run(run1.run_id)["config"].count('"sample": 1') == 1


def test_a_repeated_sample_is_served_from_the_cache(store):
    model = SeededCoin()
    _, run = evaluate(store, model, 2)
    _, again = evaluate(store, model, 2)
    assert model.calls == 6 and again.ledger.cache_hits == 6
    assert again.scores == run.scores


def test_sample_zero_keeps_the_plain_runs_identity(store):
    # runs recorded before samples existed must still resume: sample 0 adds nothing
    model = SeededCoin()
    evaluator, run = evaluate(store, model, 0)
    plain = Evaluator(model, get_metric("exact"), store, progress=False,
                      params=GenerationParams(temperature=0.8, seed=3))
    assert plain._fingerprint(EXAMPLES, PROMPT, "coin", "test") == \
        evaluator._fingerprint(EXAMPLES, PROMPT, "coin", "test")
