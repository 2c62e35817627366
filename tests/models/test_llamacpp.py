"""The embedded backend on the real SmolLM2 model."""

import pytest

from promptmill.errors import ModelError
from promptmill.models import GenerationParams, load_model
from promptmill.models.llamacpp import embedded_gguf_path, file_sha256

pytestmark = [pytest.mark.real_model]

ASK = [{"role": "system", "content": "Answer with one word."},
       {"role": "user", "content": "What color is the sky on a clear day?"}]


def test_generate_returns_text_tokens_and_seconds(embedded_model):
    out = embedded_model.generate(ASK, GenerationParams(max_tokens=8))
    assert out.text.strip() and out.input_tokens > 10 and 0 < out.output_tokens <= 8
    assert out.seconds > 0 and out.finish_reason in ("stop", "length")


def test_temperature_zero_is_deterministic(embedded_model):
    params = GenerationParams(max_tokens=12)
    assert embedded_model.generate(ASK, params).text == embedded_model.generate(ASK, params).text


def test_completion_mode_and_logprobs(embedded_model):
    out = embedded_model.generate("The capital of France is",
                                  GenerationParams(max_tokens=4, logprobs=True))
    assert out.text and out.logprobs and all(lp <= 0 for lp in out.logprobs)
    chat = embedded_model.generate(ASK, GenerationParams(max_tokens=4, logprobs=True))
    assert chat.logprobs and len(chat.logprobs) == chat.output_tokens


def test_option_scoring_prefers_the_sensible_answer(embedded_model):
    question = [{"role": "user", "content": "Is fire hot or cold? Answer hot or cold."}]
    hot, cold = embedded_model.score_options(question, ["hot", "cold"])
    assert embedded_model.can_score_options and hot > cold


def test_identity_contains_the_file_hash(embedded_model):
    digest = file_sha256(embedded_gguf_path())
    assert digest[:16] in embedded_model.identity and len(digest) == 64


def test_gguf_path_errors(tmp_path):
    with pytest.raises(ModelError, match="GGUF file not found"):
        load_model(f"gguf:{tmp_path}/nope.gguf")
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load"):
        load_model(f"gguf:{junk}")
