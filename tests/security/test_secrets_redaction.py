"""The shared redaction module: key shapes go, ordinary answers stay, known keys go in every
spelling, and every backend's output passes through it before anything else sees it."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from urllib.parse import quote

import pytest
from helpers import free_port

from promptmill.errors import ModelError
from promptmill.evaluation import Evaluator, cached_generate
from promptmill.metrics import get_metric
from promptmill.models import Generation, GenerationParams, Model
from promptmill.models.fake import FakeModel
from promptmill.prompt import Prompt
from promptmill.redact import (
    Redactor,
    looks_random,
    redact,
    redact_target,
    redact_url,
    register_secret,
)
from promptmill.task import Example

PARAMS = GenerationParams(max_tokens=64)
ASK = [{"role": "user", "content": "What is the key?"}]

# name -> (text, the part that must disappear)
KEY_SHAPES = {
    "openai": ("use sk-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z now",
               "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"),
    "openai-project": ("sk-proj-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe",
                       "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe"),
    "openai-live": ("the key is sk-live-0a1b2c3d4e5f6a7b8c9d.", "0a1b2c3d4e5f6a7b8c9d"),
    "anthropic": ("sk-ant-api03-AbCdEf012345_ghIJkl-678", "AbCdEf012345_ghIJkl-678"),
    "stripe": ("sk_live_51HabcDEFghi789JKLmno", "51HabcDEFghi789JKLmno"),
    "github": ("ghp_1234567890abcdefghijABCDEFGHIJ123456", "1234567890abcdefghijABCDEFGHIJ"),
    "github-pat": ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv",
                   "11ABCDEFG0123456789_abcdefghijklmnopqrstuv"),
    "slack": ("xoxb-123456789012-abcdefABCDEF", "123456789012-abcdefABCDEF"),
    "huggingface": ("hf_abcdefghijklmnopqrstuvwxyzABCDEFGH", "abcdefghijklmnopqrstuvwxyzABCDEFGH"),
    "google": ("AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q", "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q"),
    "aws-access-key-id": ("id AKIAIOSFODNN7EXAMPLE here", "AKIAIOSFODNN7EXAMPLE"),
    "gitlab": ("glpat-abcDEF123456ghiJKL78", "abcDEF123456ghiJKL78"),
    "jwt": ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n"
            " done", "dozjgNryP4J3jVmNHl0w5N_XgL0n"),
    "jwt-unsigned": ("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "eyJzdWIiOiJ4In0"),
    "bearer": ("header: Bearer 9f8e7d6c5b4a39281706abcd", "9f8e7d6c5b4a39281706abcd"),
    "bearer-lowercase": ("bearer q1w2e3r4t5y6u7i8o9p0", "q1w2e3r4t5y6u7i8o9p0"),
    "authorization-basic": ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA"),
    "authorization-json": ('{"Authorization": "Bearer abc"}', "abc\""),
    "authorization-any-scheme": ("authorization=Token 1a2b3c4d", "1a2b3c4d"),
    "api-key-assignment": ("api_key=ab12cd34ef56gh78ij90", "ab12cd34ef56gh78ij90"),
    "apikey-camel": ('apiKey: "Qw3rTy8uIo2pAs5dFg7h"', "Qw3rTy8uIo2pAs5dFg7h"),
    "env-style": ("OPENAI_API_KEY=abcdefabcdef1234567890", "abcdefabcdef1234567890"),
    "x-api-key-header": ("x-api-key: 0123456789abcdefABCDEF", "0123456789abcdefABCDEF"),
    "token-json": ('{"access_token": "ya29a0AfH6SMBx3j2kL9mN"}', "ya29a0AfH6SMBx3j2kL9mN"),
    "key-colon": ("key: 5d41402abc4b2a76b9719d911017c592", "5d41402abc4b2a76b9719d911017c592"),
    "client-secret": ("client_secret = 'GOCSPX-1a2B3c4D5e6F7g8H'", "1a2B3c4D5e6F7g8H"),
    "password": ("password: hunter2hunter2hunter2", "hunter2hunter2hunter2"),
    "letters-only-mixed-case": ("token=QwErTyUiOpAsDfGhJkLz", "QwErTyUiOpAsDfGhJkLz"),
    "letters-only-consonants": ("secret=xkcdqrtzplmvbnwsgh", "xkcdqrtzplmvbnwsgh"),
    "url-query": ("GET https://api.example.com/v1/x?api_key=abc&q=paris", "abc&"),
    "url-query-token": ("see /cb?code=1&token=short#top", "short"),
    "url-query-signature": ("https://s3/x?X-Amz-Signature=ffee00&X-Amz-Date=1", "ffee00"),
}

ORDINARY = [
    "The capital of France is Paris.",
    "The key: remember to water the plants.",
    "Bearer bonds were common in the 1920s.",
    "He was the bearer of bad news.",
    "token=next; key=value; Primary key: id",
    "sk-learn is a common misspelling of scikit-learn.",
    "Press the key: Ctrl+Shift+P to open the palette.",
    "password: required",
    "My secret is: ZXA1B2C3",  # an injection canary is short: a leak detector must still see it
    "The md5 is 5d41402abc4b2a76b9719d911017c592, the uuid 123e4567-e89b-12d3-a456-426614174000.",
    "ISBN 978-3-16-148410-0, version 2024-01-01.",
    "https://example.com/search?q=paris&page=2",
    "api_key = os.environ['OPENAI_API_KEY']",
    "token: <your token here>",
    "key = internationalization",
    "Set the header to 'Authorization: Bearer ***' in production.",
    "hey Jude, eyJust a word",
    "The token: remember-to-water-plants.",
]


@pytest.mark.parametrize("name", KEY_SHAPES, ids=list(KEY_SHAPES))
def test_key_shapes_are_redacted(name):
    text, secret = KEY_SHAPES[name]
    out = redact(text)
    assert secret not in out and "***" in out, out


@pytest.mark.parametrize("text", ORDINARY, ids=[f"ordinary-{i}" for i in range(len(ORDINARY))])
def test_ordinary_answers_are_left_alone(text):
    assert redact(text) == text


def test_a_registered_key_goes_in_every_spelling():
    key = "not shaped/like+a key <\u00e9>"
    register_secret(key)
    b64 = base64.b64encode(key.encode()).decode()
    spellings = [key, quote(key, safe=""), json.dumps(key)[1:-1],
                 json.dumps(key, ensure_ascii=False)[1:-1], html.escape(key), b64,
                 b64.rstrip("="), base64.urlsafe_b64encode(key.encode()).decode()]
    for spelled in spellings:
        assert redact(f"a {spelled} b") == "a *** b"


def test_a_secret_containing_another_is_replaced_whole():
    out = Redactor(["abcd", "abcdefgh-long"])("x abcdefgh-long y abcd")
    assert out == "x *** y ***"


def test_secret_named_environment_variables_are_known(monkeypatch):
    monkeypatch.setenv("SOME_VENDOR_API_KEY", "plainlettersvalue")
    monkeypatch.setenv("HF_TOKEN", "another-plain-value")
    monkeypatch.setenv("FEATURE_KEY", "on")  # too short to be a secret: left alone
    out = redact("plainlettersvalue another-plain-value on")
    assert out == "*** *** on"


def test_non_strings_pass_through():
    for value in (None, "", 3, ["sk-" + "a" * 20]):
        assert redact(value) == value


@pytest.mark.parametrize("value,expected", [
    ("a1B2c3D4e5F6g7H8", True), ("QwErTyUiOpAsDfGh", True), ("version", False),
    ("internationalization", False), ("remember-to-water-plants", False),
    ("com.example.application.release", False), ("1234567890123456", False)])
def test_looks_random(value, expected):
    assert looks_random(value) is expected


@pytest.mark.parametrize("target,hidden", [
    ("/v1/models?api_key=abc", "abc"), ("/v1/models?api%5Fkey=abc&q=1", "abc"),
    ("/v1/models?token=t0k&key=k3y", "t0k"), ("/p?apiKey=z&b", "z"),
    ("/v1/sk-abcdefghijklmnop1234/x", "abcdefghijklmnop1234"),
    ("/v1/models?q=Bearer%20abcdef1234567890abcd", "abcdef1234567890abcd")])
def test_request_targets_lose_their_secrets(target, hidden):
    out = redact_target(target)
    assert hidden not in out and out.startswith(target.split("?")[0][:3])


@pytest.mark.parametrize("url,shown", [
    ("http://user:pw-9x8y7z@10.0.0.2:8080/v1", "http://user:***@10.0.0.2:8080/v1"),
    ("https://proxy.example/v1?key=abc123&region=eu", "https://proxy.example/v1?key=***&region=eu"),
    ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1")],
    ids=["password", "query-key", "plain"])
def test_urls_lose_their_credentials(url, shown):
    assert redact_url(url) == shown


def test_an_openai_base_url_with_credentials_never_shows_them():
    from promptmill.models.openai_compat import openai_model

    password = "Pw-0123456789-zz"
    model = openai_model("m", base_url=f"http://user:{password}@127.0.0.1:{free_port()}/v1"
                         "?key=k3y", max_retries=0, timeout=2)
    assert password not in model.identity and "k3y" not in model.identity
    with pytest.raises(ModelError) as caught:  # nothing listens there
        model.generate(ASK, PARAMS)
    assert password not in caught.value.one_line() and "k3y" not in caught.value.one_line()
    assert redact(f"echo {password}") == "echo ***"  # registered for outputs too
    model.close()


# --- every backend's output is redacted where its Generation is made -------------------------
LEAK = "sk-live-0a1b2c3d4e5f6a7b8c9d0e1f"


class PluginModel(Model):
    """A third-party backend that knows nothing about redaction."""

    identity = "plugin:1"

    def generate(self, request, params):
        return Generation(text=f"here you go: {LEAK}", extra={"raw": LEAK},
                          finish_reason=f"stop {LEAK}")

    def generate_many(self, requests, params, batch_size=8):
        return [self.generate(r, params) for r in requests]


class FakeSubclass(FakeModel):
    def generate(self, request, params):
        generation = super().generate(request, params)
        return Generation(text=generation.text + f" and {LEAK}")


class RaisingModel(Model):
    identity = "raising:1"

    def __init__(self, error: Exception):
        self.error = error

    def generate(self, request, params):
        raise self.error


@pytest.mark.parametrize("model", [FakeModel(default=f"the key is {LEAK}"), PluginModel(),
                                   FakeSubclass(default="ok")],
                         ids=["fake", "plugin", "subclass"])
def test_every_backend_returns_redacted_text(model):
    generation = model.generate(ASK, PARAMS)
    assert LEAK not in generation.text and "***" in generation.text
    assert LEAK not in json.dumps(generation.extra) + str(generation.finish_reason)


def test_batched_generation_is_redacted_too():
    generations = PluginModel().generate_many([ASK, ASK], PARAMS)
    assert len(generations) == 2 and all(LEAK not in g.text for g in generations)


@pytest.mark.parametrize("error", [RuntimeError(f"server said {LEAK}"),
                                   ModelError(f"bad key {LEAK}", where="x", fix=f"not {LEAK}")],
                         ids=["runtime-error", "model-error"])
def test_backend_errors_are_redacted_and_keep_their_type(error):
    with pytest.raises(type(error)) as caught:
        RaisingModel(error).generate(ASK, PARAMS)
    assert LEAK not in str(caught.value) and LEAK not in repr(caught.value.args)


def test_the_cache_and_the_store_only_see_redacted_text(store, sqlite_url):
    model = FakeModel(default=f"the key is {LEAK}")
    cached_generate(store, model, ASK, PARAMS)
    evaluator = Evaluator(model, get_metric("exact"), store, params=PARAMS, progress=False)
    prompt = Prompt(name="p", instruction="Answer.", template="{{ q }}")
    evaluator.evaluate([Example(id="a", inputs={"q": "x"}, target="y")], prompt, task="t",
                       split="test")
    store.close()
    database = Path(sqlite_url.removeprefix("sqlite:///"))
    stored = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*")
                      if p.suffix != ".lock")
    assert b"the key is ***" in stored  # the answers were written, redacted
    assert LEAK.encode() not in stored
