"""One retry function for every executor; its outcomes keep an error's where and fix."""

import pickle

from promptmill.attempts import Attempt, call_with_retries
from promptmill.errors import ConfigError, MissingExtraError, ModelError, PromptmillError
from promptmill.models.base import Generation, GenerationParams, Model


class _Flaky(Model):
    identity = "flaky"

    def __init__(self, failures: list[Exception]):
        self.failures = list(failures)
        self.calls = 0

    def generate(self, request, params):
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return Generation(text="ok", input_tokens=1, output_tokens=1)


def test_unexpected_failures_are_retried_then_answered():
    model = _Flaky([RuntimeError("blip")])
    attempt = call_with_retries(model, [{"role": "user", "content": "x"}], GenerationParams(), 2)
    assert attempt.answered and attempt.generation.text == "ok" and model.calls == 2


def test_retries_run_out_into_a_kept_error():
    model = _Flaky([RuntimeError("a"), RuntimeError("b")])
    attempt = call_with_retries(model, "x", GenerationParams(), 1)
    assert not attempt.answered and attempt.error == "RuntimeError: b"
    assert attempt.failure is None and model.calls == 2


def test_a_backend_error_is_not_retried_and_is_marked():
    model = _Flaky([ModelError("down", where="openai:x", fix="start it")])
    attempt = call_with_retries(model, "x", GenerationParams(), 3)
    assert model.calls == 1 and attempt.backend_gave_up
    assert attempt.error == "openai:x: down. Fix: start it"


def test_input_errors_are_carried_not_retried():
    model = _Flaky([ConfigError("bad", where="prompt", fix="fix it")])
    attempt = call_with_retries(model, "x", GenerationParams(), 3)
    assert model.calls == 1 and not attempt.backend_gave_up
    assert isinstance(attempt.failure, ConfigError)


def test_an_attempt_pickles_with_the_errors_fields():
    # what a Ray worker sends back: the driver must read the same where and fix
    attempt = Attempt(error="e", failure=ModelError("down", where="w", fix="f"))
    back = pickle.loads(pickle.dumps(attempt))
    assert isinstance(back.failure, ModelError) and back.backend_gave_up
    assert (back.failure.where, back.failure.fix) == ("w", "f")
    assert back.failure.one_line() == "w: down. Fix: f"


def test_every_promptmill_error_pickles_whatever_its_init_takes():
    error = MissingExtraError("ray", "ray", "distributed evaluation")
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is MissingExtraError and str(back) == str(error)
    plain = pickle.loads(pickle.dumps(PromptmillError("m", where="w")))
    assert plain.one_line() == "w: m"
