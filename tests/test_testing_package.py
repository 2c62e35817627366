"""promptmill.testing, as a plugin author uses it: a sound third-party optimizer passes the
shipped suite, broken ones fail it with a message naming the rule, and so do broken models."""

import json
import subprocess
import sys
import uuid

import pytest

from promptmill.models.base import Generation, Model
from promptmill.models.fake import FakeModel
from promptmill.optimize import Optimizer
from promptmill.testing import (
    ConformanceFailure,
    OptimizerConformance,
    antonym_task,
    check_model,
    check_optimizer,
)
from promptmill.testing.optimizers import (
    check_budget_respected,
    check_deterministic,
    check_protocol_budget_and_records,
    check_search_saw_no_test_input,
    run_on_antonyms,
    sqlite_store,
)


class OneByOne(Optimizer):
    """What a plugin might ship: each proposal as the instruction, offered to the gate in turn."""

    name = "one-by-one"

    def __init__(self, proposals: int = 6):
        super().__init__(proposals=proposals)
        self.proposals = proposals

    def optimize(self, ctx):
        ask = [{"role": "user", "content": "Write a better instruction than: "
                + ctx.incumbent.prompt.instruction}]
        for text in ctx.propose(ask, n=self.proposals):
            prompt = ctx.incumbent.prompt.model_copy(update={"instruction": text.strip()})
            cand = ctx.add(prompt, parents=[ctx.incumbent.index], origin="one-by-one")
            if cand is not None:
                ctx.consider(cand)


class PeeksAtTheTestSplit(OneByOne):
    """Loads the task itself and scores on its test split: the leak the protocol forbids."""

    def optimize(self, ctx):
        super().optimize(ctx)
        ctx.evaluate(ctx.incumbent, antonym_task().test)


class CallsTheModelDirectly(OneByOne):
    """Bypasses the context to call the task model: calls the budget never sees."""

    def optimize(self, ctx):
        for ex in ctx.validation * 15:
            ctx.model.generate([{"role": "user", "content": ex.inputs["input"]}], ctx.params)
        super().optimize(ctx)


class CrownsWithoutTheGate(OneByOne):
    """Makes a candidate the incumbent by hand, neither fully scored nor accepted."""

    def optimize(self, ctx):
        prompt = ctx.incumbent.prompt.model_copy(update={"instruction": "Answer in one word."})
        ctx.incumbent = ctx.add(prompt, parents=[0], origin="by hand")


class Unseeded(OneByOne):
    """Draws its randomness from outside ctx.rng: the same seed gives another search."""

    def optimize(self, ctx):
        prompt = ctx.incumbent.prompt.model_copy(
            update={"instruction": f"Answer in one word ({uuid.uuid4().hex[:6]})."})
        cand = ctx.add(prompt, parents=[0], origin="unseeded")
        ctx.consider(cand)


class DoesNothing(Optimizer):
    """Keeps the seed: sound, but it misses the gain every method finds on the antonym task."""

    name = "does-nothing"

    def optimize(self, ctx):
        return None


class TestAThirdPartyOptimizer(OptimizerConformance):
    """The whole shipped suite, exactly as a plugin author writes it."""

    @pytest.fixture(params=["class", "factory"])
    def optimizer(self, request):
        return OneByOne if request.param == "class" else (lambda: OneByOne(proposals=5))


@pytest.fixture
def suite_store(tmp_path):
    store = sqlite_store(tmp_path)
    yield store
    store.close()


def test_reading_the_test_split_fails_the_protocol_check(suite_store):
    run = run_on_antonyms(PeeksAtTheTestSplit, suite_store)
    with pytest.raises(ConformanceFailure, match="sent a test input to the model"):
        check_search_saw_no_test_input(run)
    check_budget_respected(run)  # the leak is the only thing wrong with it


def test_overspending_by_calling_the_model_directly_fails_the_budget_check(suite_store):
    run = run_on_antonyms(CallsTheModelDirectly, suite_store)
    assert run.result.spend["calls"] <= 200  # what the context counted looks fine...
    with pytest.raises(ConformanceFailure, match=r"the models received \d+ calls .* 200"):
        check_budget_respected(run)  # ...but the models saw more


def test_an_incumbent_crowned_by_hand_fails_the_records_checks(suite_store):
    with pytest.raises(ConformanceFailure, match="never accepted by the gate"):
        check_protocol_budget_and_records(CrownsWithoutTheGate, suite_store)


def test_an_optimizer_that_keeps_the_seed_fails_only_the_gain_check(suite_store):
    with pytest.raises(ConformanceFailure, match="no better than the seed"):
        check_protocol_budget_and_records(DoesNothing, suite_store)


def test_randomness_outside_ctx_rng_fails_the_determinism_check(tmp_path):
    with pytest.raises(ConformanceFailure, match="different candidates"):
        check_deterministic(Unseeded, tmp_path)


def test_check_optimizer_runs_the_whole_suite_without_pytest(tmp_path):
    check_optimizer(OneByOne(), tmp_path / "good")  # an instance: copied for every run
    with pytest.raises(ConformanceFailure, match="test input"):
        check_optimizer(PeeksAtTheTestSplit, tmp_path / "bad")


def test_something_that_is_not_an_optimizer_is_refused(suite_store):
    with pytest.raises(TypeError, match="not a promptmill.optimize.Optimizer"):
        run_on_antonyms(lambda: "ape", suite_store)


class Chatterbox(Model):
    """Ignores max_tokens and forgets its identity once used."""

    identity = "chatterbox"

    def generate(self, request, params):
        self.identity = "chatterbox, used"
        return Generation("word " * 50, input_tokens=3, output_tokens=50)


class CannotCloseTwice(FakeModel):
    def close(self):
        if getattr(self, "closed", False):
            raise RuntimeError("already closed")
        self.closed = True


class ScoresAsProbabilities(FakeModel):
    def score_options(self, request, options):
        return [0.5 for _ in options]


def test_check_model_passes_the_fake():
    check_model(FakeModel(default="red, green and blue"))


@pytest.mark.parametrize("model, problem", [
    (Chatterbox(), "asked for at most 4 tokens, the model wrote 50"),
    (CannotCloseTwice(default="red"), r"close\(\) raised on its second call .*already closed"),
    (ScoresAsProbabilities(default="red"), "not a finite log-likelihood"),
])
def test_broken_backends_fail_the_model_checks(model, problem):
    with pytest.raises(ConformanceFailure, match=problem):
        check_model(model)


def test_a_backend_that_changes_its_identity_fails():
    from promptmill.testing.models import check_identity

    with pytest.raises(ConformanceFailure, match="identity changed"):
        check_identity(Chatterbox())


LIGHT = """
import json, sys
import promptmill
light = "promptmill.testing" not in sys.modules
import promptmill.testing.models, promptmill.testing.optimizers, promptmill.testing.fakes
from promptmill.testing import OptimizerConformance, ModelConformance, check_model
print(json.dumps({"light": light, "pytest": "pytest" in sys.modules}))
"""


def test_import_promptmill_does_not_load_the_suite_and_the_suite_does_not_load_pytest():
    done = subprocess.run([sys.executable, "-c", LIGHT], capture_output=True, text=True,
                          check=True, timeout=120)
    assert json.loads(done.stdout) == {"light": True, "pytest": False}
