"""The transformers backend: hf:PATH and tuned:NAME, identities, batching, and bad models."""

from __future__ import annotations

import pytest
from tune_helpers import loaded

from promptmill.models.base import GenerationParams

pytestmark = pytest.mark.tune

MESSAGES = [{"role": "system", "content": "Write the first letter of the word."},
            {"role": "user", "content": "banana"}]


@pytest.mark.real_model
def test_hf_embedded_answers_through_the_chat_template(embedded_base):
    from promptmill.models import load_model

    model = load_model("hf:embedded", threads=1)
    out = model.generate(MESSAGES, GenerationParams(max_tokens=6))
    assert out.text.strip() and 0 < out.output_tokens <= 6 and out.input_tokens > 10
    assert model.identity.startswith("hf-gguf:") and model.spec == "hf:embedded"
    stopped = model.generate(MESSAGES, GenerationParams(max_tokens=6, stop=(out.text[:1],)))
    assert stopped.text == "" and stopped.finish_reason == "stop"


@pytest.mark.real_model
def test_batched_answers_equal_one_at_a_time(embedded_base):
    from promptmill.models import load_model

    model = load_model("hf:embedded", threads=1)
    requests = [[MESSAGES[0], {"role": "user", "content": w}]
                for w in ("fig", "strawberry", "kiwi fruit salad")]
    params = GenerationParams(max_tokens=5)
    batched = model.generate_many(requests, params, batch_size=3)
    assert [g.text for g in batched] == [model.generate(r, params).text for r in requests]


def test_tuned_model_loads_from_the_store_with_the_adapter_in_its_identity(
        tiny_task, store, tiny_model_dir):
    from promptmill.models import load_model
    from promptmill.tune.registry import adapter_dir, adapter_hash
    from promptmill.tune.settings import TuneSettings
    from promptmill.tune.train import tune

    task, prompt, metric, params = loaded(tiny_task)
    for name, lr in (("a", 1e-2), ("b", 5e-2)):
        tune(task, prompt, metric, name=name, base=str(tiny_model_dir), store=store,
             params=params, settings=TuneSettings(max_steps=2, batch_size=4, max_length=32,
                                                  learning_rate=lr))
    a = load_model("tuned:a", store_url=store.url)
    b = load_model("tuned:b", store_url=store.url)
    base = load_model(f"hf:{tiny_model_dir}")
    assert adapter_hash(adapter_dir("a") / "best") in a.identity
    assert len({a.identity, b.identity, base.identity}) == 3
    assert isinstance(a.generate(MESSAGES, GenerationParams(max_tokens=3)).text, str)


def test_unknown_adapter_names_the_known_ones(store):
    from promptmill.errors import StoreError
    from promptmill.models import load_model

    with pytest.raises(StoreError, match="no adapter named 'nope'.*promptmill tune"):
        load_model("tuned:nope", store_url=store.url)


def test_a_model_folder_without_weights_is_explained(tmp_path):
    from promptmill.errors import ModelError
    from promptmill.models import load_model

    (tmp_path / "config.json").write_text('{"model_type": "llama"}')
    with pytest.raises(ModelError, match="no weights.*model.safetensors"):
        load_model(f"hf:{tmp_path}")


def test_a_gguf_transformers_cannot_load_is_explained(tmp_path):
    from promptmill.errors import ModelError
    from promptmill.models import load_model

    for name, body in (("bogus.gguf", b"GGUF\x03\x00\x00\x00" + b"\x00" * 64),
                       ("short.gguf", b"GGUF\x03\x00\x00\x00junk")):
        (tmp_path / name).write_bytes(body)
        with pytest.raises(ModelError) as info:
            load_model(f"hf:{tmp_path / name}")
        assert "transformers cannot load this GGUF" in info.value.one_line()
        assert name in info.value.one_line()


def test_missing_paths_and_non_gguf_files_are_explained(tmp_path):
    from promptmill.errors import ModelError
    from promptmill.models import load_model

    with pytest.raises(ModelError, match="model path not found"):
        load_model(f"hf:{tmp_path / 'missing'}")
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ModelError, match="must be a GGUF"):
        load_model(f"hf:{tmp_path / 'weights.bin'}")


def test_soft_prompt_batches_answer_like_single_requests(tiny_model_dir):
    from promptmill.models.transformers_model import TransformersModel
    from promptmill.prompt import Prompt
    from promptmill.tune.base import fresh_copy, load_base
    from promptmill.tune.peft_setup import wrap
    from promptmill.tune.settings import TuneSettings

    base = load_base(str(tiny_model_dir))
    wrapped = wrap(fresh_copy(base), base.tokenizer,
                   TuneSettings(method="prompt-tuning", virtual_tokens=4), Prompt())
    model = TransformersModel(wrapped.eval(), base.tokenizer, "soft", "soft")
    requests = [[MESSAGES[0], {"role": "user", "content": w}]
                for w in ("fig", "kiwi", "a much longer input sentence", "pear", "plum tart")]
    params = GenerationParams(max_tokens=4)
    assert ([g.text for g in model.generate_many(requests, params)]
            == [model.generate(r, params).text for r in requests])


def test_a_valid_gguf_of_an_unsupported_architecture_is_explained(tmp_path):
    import numpy as np

    gguf = pytest.importorskip("gguf")
    from promptmill.errors import ModelError
    from promptmill.models import load_model

    path = tmp_path / "odd.gguf"
    writer = gguf.GGUFWriter(str(path), "notanarch")
    writer.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ModelError, match="architecture notanarch is not supported.*Fix: use"):
        load_model(f"hf:{path}")
