"""Every model backend passes the same suite: promptmill.testing.models, as plugin authors run it.

The fake runs always; the embedded SmolLM2 model under the ``real_model`` marker.
"""

import pytest

from promptmill.models.fake import FakeModel
from promptmill.testing.models import MAX_TOKENS, ModelConformance, generate

LONG_ANSWER = "red, green, blue, yellow, purple, orange, pink, brown"


class TestFakeModel(ModelConformance):
    @pytest.fixture
    def model(self):
        return FakeModel(default=LONG_ANSWER)


class TestFakeModelBuiltByItsSpec(ModelConformance):
    """As a task config builds it: through the registry, with a plain completion request."""

    request = "Colours: "

    @pytest.fixture
    def model(self):
        from promptmill.models import load_model

        return load_model(f"fake:{LONG_ANSWER}")


def test_the_fake_really_cuts_a_long_answer_at_max_tokens():
    # The max_tokens check is meaningful only if the answer would have been longer.
    gen = generate(FakeModel(default=LONG_ANSWER))
    assert len(LONG_ANSWER.split()) > MAX_TOKENS
    assert gen.output_tokens == MAX_TOKENS and gen.finish_reason == "length"


@pytest.mark.real_model
class TestEmbeddedModel(ModelConformance):
    @pytest.fixture
    def model(self, embedded_model):
        return embedded_model

    def model_to_close(self, model):
        # a model of its own: closing the session's would break the tests that follow
        from promptmill.models import load_model

        return load_model("embedded", n_ctx=512)

    def test_it_scores_options(self, model):
        assert model.can_score_options  # so the suite checks its scores, not the refusal
