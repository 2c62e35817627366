"""The batch engine's pure parts, thread settings and the streaming redactor: fast, no model."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promptmill.errors import ConfigError
from promptmill.models.base import Generation, GenerationParams, Model
from promptmill.models.batching import _common_prefix, _first_stop
from promptmill.models.llamacpp import _width_setting
from promptmill.models.threads import THREADS_ENV, thread_settings, usable_cpus
from promptmill.redact import StreamRedactor, prefix_at_end, redact, register_secret


def test_common_prefix_and_stops():
    assert _common_prefix([1, 2, 3], [1, 2, 4, 5]) == 2
    assert _common_prefix([], [1]) == 0 and _common_prefix([1, 2], [1, 2]) == 2
    assert _first_stop("say hi. then\n", ("\n", ".")) == 6
    assert _first_stop("nothing", ("\n",)) is None
    assert prefix_at_end("the end<|im", "<|im_end|>") == 4
    assert prefix_at_end("done", "<|im_end|>") == 0


@pytest.mark.parametrize("value", ["0", 0, -3, "eight", 65, 2.5])
def test_a_bad_batch_width_is_a_clear_error(value):
    with pytest.raises(ConfigError, match="batch width") as info:
        _width_setting(value)
    assert info.value.where == "model.params.batch_width"


def test_batch_width_from_parameter_or_environment(monkeypatch):
    assert _width_setting(8) == 8 and _width_setting("auto") is None
    monkeypatch.setenv("PROMPTMILL_BATCH_WIDTH", "4")
    assert _width_setting(None) == 4
    monkeypatch.setenv("PROMPTMILL_BATCH_WIDTH", "lots")
    with pytest.raises(ConfigError) as info:
        _width_setting(None)
    assert info.value.where == "PROMPTMILL_BATCH_WIDTH"


def test_thread_settings_prefer_parameters_then_environment(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    default = thread_settings()
    assert default.n_threads == usable_cpus() == default.n_threads_batch
    assert default.source == "cpus"
    monkeypatch.setenv(THREADS_ENV, "1")
    assert (thread_settings().n_threads, thread_settings().source) == (1, THREADS_ENV)
    chosen = thread_settings(n_threads=3, n_threads_batch=2)
    assert (chosen.n_threads, chosen.n_threads_batch, chosen.source) == (3, 2, "parameter")
    monkeypatch.setenv(THREADS_ENV, "many")
    with pytest.raises(ConfigError, match=THREADS_ENV):
        thread_settings()
    with pytest.raises(ConfigError, match="n_threads_batch"):
        thread_settings(n_threads=2, n_threads_batch=0)


def test_promptmill_asks_openmp_for_a_short_spin(monkeypatch):
    import os

    import promptmill.models.llamacpp  # noqa: F401 - importing it sets the policy
    from promptmill.models import threads

    settings = thread_settings().to_dict()
    assert settings["wait_policy"] == os.environ.get("OMP_WAIT_POLICY", "default")
    assert settings["spin_count"] == os.environ.get("GOMP_SPINCOUNT", "default")
    # in a fresh process with nothing set, both are set; a user's own setting is kept
    for user in ({}, {"OMP_WAIT_POLICY": "active"}, {"GOMP_SPINCOUNT": "5"}):
        for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
            monkeypatch.delenv(name, raising=False)
        for name, value in user.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(threads, "_PRESET", {})
        monkeypatch.delitem(__import__("sys").modules, "llama_cpp", raising=False)
        threads.prepare_openmp()
        expected = {"OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": None, **user} if user else \
            {"OMP_WAIT_POLICY": "passive", "GOMP_SPINCOUNT": threads.SPIN_COUNT}
        assert {n: os.environ.get(n) for n in expected} == expected


_text = st.lists(st.sampled_from(["the", " answer", " is", " sk-", "abcDEF123456", "ghij7890",
                                  "klmnopqrst", " ", "\n", "Bearer ", "token=", "x"]),
                 max_size=30).map("".join)


@settings(max_examples=200, deadline=None)
@given(_text, st.lists(st.integers(1, 7), min_size=1, max_size=40))
def test_streamed_pieces_are_always_a_prefix_of_the_redacted_whole(text, cuts):
    pieces, start = [], 0
    for size in cuts:
        pieces.append(text[start:start + size])
        start += size
    pieces.append(text[start:])
    sent: list[str] = []
    redactor = StreamRedactor(sent.append)
    for piece in pieces:
        redactor.feed(piece)
        assert redact(text).startswith("".join(sent))
    redactor.finish(redact(text))
    assert "".join(sent) == redact(text)


def test_a_registered_key_never_leaves_a_stream_even_in_pieces():
    key = "correct-horse-battery-staple-42"
    register_secret(key)
    sent: list[str] = []
    redactor = StreamRedactor(sent.append)
    for i in range(0, len(f"my key is {key} ok"), 3):
        redactor.feed(f"my key is {key} ok"[i:i + 3])
        assert "correct-horse" not in "".join(sent)
    redactor.finish(redact(f"my key is {key} ok"))
    assert "".join(sent) == "my key is *** ok"


class _Words(Model):
    identity = "words"

    def generate(self, request, params):
        return Generation(text="one two three")


def test_default_batch_and_stream_verbs_fall_back_on_generate():
    model = _Words()
    params = GenerationParams()
    assert [g.text for g in model.generate_many(["a", "b"], params)] == ["one two three"] * 2
    pieces: list[str] = []
    assert model.stream("a", params, pieces.append).text == "one two three"
    assert pieces == ["one two three"] and not model.can_stream and model.batch_width == 1
    assert model.runtime_settings() == {"concurrency": 1, "batch_width": 1}
