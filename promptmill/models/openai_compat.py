"""A model behind an OpenAI-compatible HTTP API: llama.cpp's server, vLLM, Ollama, OpenAI itself.

The spec is ``openai:MODEL_NAME``. The API key is read only from an environment variable (named by
``api_key_env``), never from a config file or option, so it cannot end up in a saved task, a
ledger or a log line.

The identity is ``openai:BASE_URL#MODEL_NAME``. It cannot see which weights file the server
loaded: two different models served under the same name at the same URL would share cached
answers. Give every model a distinct name (llama_cpp.server: ``--model_alias``).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeGuard

from ..errors import ConfigError, ModelError
from ..redact import redact, redact_url, register_secret, url_password
from .base import (
    Generation,
    GenerationParams,
    Model,
    Request,
    count_words,
    describe_value,
    request_text,
)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
# Local servers ignore the key, but the SDK refuses to start without one.
PLACEHOLDER_KEY = "not-needed"
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 8.0
SERVER_MESSAGE_LIMIT = 200
KNOWN_PARAMS = ("base_url", "api_key_env", "timeout", "max_retries", "concurrency", "extra_body",
                "constraint_mode")
# How an output spec reaches the server: OpenAI's json_schema response format; JSON mode with a
# schema (llama.cpp's server); or a GBNF grammar in the body (llama.cpp's extension). "auto"
# starts with json_schema and falls back to JSON mode once if the server rejects it.
CONSTRAINT_MODES = ("auto", "json_schema", "json_object", "grammar")
# What the SDK raises, outside its own APIError, when a 200 reply is not a completion at all
# (a JSON list or string, invalid JSON, an HTML page).
MALFORMED_REPLY_ERRORS = (ValueError, TypeError, AttributeError, KeyError, IndexError)
_MISSING = object()


class OpenAICompatModel(Model):
    """Calls ``/chat/completions`` for chat messages and ``/completions`` for a plain string.

    Retries its own way (exponential backoff with jitter on 429, 5xx, connection errors and
    timeouts) so that the final error can say what to fix; the SDK's own retries are off. At
    most ``concurrency`` calls are in flight, however many threads call ``generate``.
    """

    def __init__(self, model_name: str, *, base_url: str = DEFAULT_BASE_URL,
                 api_key_env: str = DEFAULT_API_KEY_ENV, timeout: float = 60.0,
                 max_retries: int = 4, concurrency: int = 4,
                 extra_body: dict[str, Any] | None = None, constraint_mode: str = "auto"):
        _check_settings(model_name, timeout, max_retries, concurrency, extra_body)
        if constraint_mode not in CONSTRAINT_MODES:
            raise ModelError(f"unknown constraint_mode '{constraint_mode}'",
                             where="model.params.constraint_mode",
                             fix="use one of " + ", ".join(CONSTRAINT_MODES))
        self.constraint_mode = constraint_mode
        openai = _import_openai()
        self._openai = openai
        self.model_name = model_name
        self.base_url = base_url.rstrip("/")
        # what identities, errors and the store show: a password or key in the URL as ***
        self.shown_url = redact_url(self.base_url)
        self.api_key_env = api_key_env
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.concurrency = int(concurrency)
        self.extra_body = dict(extra_body) if extra_body else None
        self.identity = f"openai:{self.shown_url}#{model_name}"
        self._slots = threading.BoundedSemaphore(self.concurrency)
        key = os.environ.get(api_key_env)
        for secret in (key, url_password(self.base_url)):
            register_secret(secret)  # a server that echoes a key must not get it into output
        self._client = openai.OpenAI(
            base_url=self.base_url,
            api_key=key or PLACEHOLDER_KEY,
            timeout=self.timeout,
            max_retries=0,
        )

    def generate(self, request: Request, params: GenerationParams) -> Generation:
        # The slot stays held through backoff, so retries do not add load to a struggling server.
        with self._slots:
            response, seconds = self._call_with_retries(lambda: self._send(request, params))
        return self._to_generation(response, request, params, seconds)

    def close(self) -> None:
        self._client.close()

    # -- requests ---------------------------------------------------------------------------

    def _send(self, request: Request, params: GenerationParams) -> Any:
        if isinstance(request, str):
            return self._client.completions.create(**self._completion_args(request, params))
        args = self._chat_args(request, params)
        try:
            return self._client.chat.completions.create(**args)
        except self._openai.APIStatusError as exc:
            if not (params.constraint and self.constraint_mode == "auto"
                    and _rejects_response_format(exc)):
                raise
            # this server does not know OpenAI's json_schema format: use JSON mode from now on
            self.constraint_mode = "json_object"
            return self._client.chat.completions.create(**self._chat_args(request, params))

    def _constraint_args(self, params: GenerationParams, chat: bool) -> dict[str, Any]:
        if not params.constraint:
            return {}
        from ..constrain import OutputSpec

        spec = OutputSpec.from_key(params.constraint)
        if self.constraint_mode == "grammar" or not chat:
            return {"extra_body": {**(self.extra_body or {}), "grammar": spec.to_gbnf()}}
        response_format = spec.response_format()
        if self.constraint_mode == "json_object":
            response_format = {"type": "json_object",
                               "schema": response_format["json_schema"]["schema"]}
        return {"response_format": response_format}

    def _common_args(self, params: GenerationParams) -> dict[str, Any]:
        args: dict[str, Any] = {
            "model": self.model_name,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "seed": params.seed,
            "stop": list(params.stop) or None,
        }
        if self.extra_body:
            args["extra_body"] = self.extra_body
        return args

    def _chat_args(self, messages: list[dict[str, str]],
                   params: GenerationParams) -> dict[str, Any]:
        args = {**self._common_args(params), "messages": messages,
                **self._constraint_args(params, chat=True)}
        if params.logprobs:
            # llama.cpp's server returns chat logprobs only when top_logprobs is set too;
            # 0 alternatives still gives the chosen tokens' logprobs.
            args.update(logprobs=True, top_logprobs=0)
        return args

    def _completion_args(self, prompt: str, params: GenerationParams) -> dict[str, Any]:
        args = {**self._common_args(params), "prompt": prompt,
                **self._constraint_args(params, chat=False)}
        if params.logprobs:
            # The legacy API counts alternatives; the chosen token's logprob comes regardless.
            args["logprobs"] = 0
        return args

    # -- retries ----------------------------------------------------------------------------

    def _call_with_retries(self, call: Callable[[], Any]) -> tuple[Any, float]:
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            start = time.perf_counter()
            try:
                return call(), time.perf_counter() - start
            except self._openai.APIError as exc:
                if attempt + 1 == attempts or not self._is_retryable(exc):
                    # from None: the SDK's exception may echo the request, key included
                    raise self._model_error(exc, attempt + 1) from None
                time.sleep(_backoff_seconds(attempt, _retry_after(exc)))
            except MALFORMED_REPLY_ERRORS as exc:  # not transient: a retry gets the same
                raise self._bad_reply(f"a reply that is not an OpenAI completion "
                                      f"({type(exc).__name__}: {exc})") from None
        raise AssertionError("unreachable: the loop returns or raises")

    def _is_retryable(self, exc: Exception) -> bool:
        if isinstance(exc, self._openai.APIConnectionError):  # includes APITimeoutError
            return True
        status = getattr(exc, "status_code", None)
        return status == 429 or (status is not None and status >= 500)

    # -- errors -----------------------------------------------------------------------------

    def _model_error(self, exc: Exception, attempts: int) -> ModelError:
        tried = f"after {attempts} attempt{'s' if attempts > 1 else ''}"
        where = f"model openai:{self.model_name} at {self.shown_url}"
        if isinstance(exc, self._openai.APITimeoutError):
            message = f"the server timed out after {self.timeout:g}s {tried}"
            fix = "raise model.params.timeout, or lower generation.max_tokens"
        elif isinstance(exc, self._openai.APIConnectionError):
            message = f"cannot connect {tried} ({_cause_text(exc)})"
            fix = (f"check the server is running at {self.shown_url}, "
                   "or set model.params.base_url / OPENAI_BASE_URL")
        elif isinstance(exc, self._openai.APIStatusError):
            message = f"HTTP {exc.status_code} {tried}: {_server_message(exc)}"
            fix = self._status_fix(exc.status_code)
        else:
            message = f"unexpected response {tried}: {exc}"
            fix = "check that the server speaks the OpenAI API"
        return ModelError(self._redact(message), where=where, fix=fix)

    def _status_fix(self, status: int) -> str:
        if status in (401, 403):
            return f"put a valid API key in the environment variable {self.api_key_env}"
        if status == 404:
            return (f"check the model name and URL; "
                    f"the server lists its models at {self.shown_url}/models")
        if status == 429 or status >= 500:
            return "retry later, or lower model.params.concurrency"
        return "check the model name and generation settings against what the server accepts"

    def _redact(self, text: str) -> str:
        # A server may echo the request back in its error; the key must never reach a log.
        return redact(text, [os.environ.get(self.api_key_env)])

    def _bad_reply(self, what: str) -> ModelError:
        return ModelError(self._redact(f"the server returned {what}"),
                          where=f"model openai:{self.model_name} at {self.shown_url}",
                          fix="check that the server speaks the OpenAI API and its log for "
                              "errors")

    # -- responses --------------------------------------------------------------------------

    def _to_generation(self, response: Any, request: Request, params: GenerationParams,
                       seconds: float) -> Generation:
        choice = self._first_choice(response)
        text = self._choice_text(choice, chat=not isinstance(request, str))
        if params.constraint and not isinstance(request, str) and \
                self.constraint_mode != "grammar":
            from ..constrain import OutputSpec

            text = OutputSpec.from_key(params.constraint).unwrap(text)
        input_tokens, output_tokens = _token_counts(getattr(response, "usage", None), request,
                                                    text)
        finish_reason = getattr(choice, "finish_reason", None)
        return Generation(
            text=text,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            seconds=seconds,
            finish_reason=finish_reason if isinstance(finish_reason, str) else None,
            logprobs=self._logprobs(choice) if params.logprobs else None,
        )

    # The SDK builds its response objects without validating them, so whatever JSON the server
    # sent is what these read: each value is checked before it is used.
    def _first_choice(self, response: Any) -> Any:
        choices = getattr(response, "choices", _MISSING)
        if choices is _MISSING:  # the SDK hands back a body that is not an object as it is
            raise self._bad_reply(f"{_describe(response)}, not an OpenAI completion")
        if not isinstance(choices, list) or not choices:
            raise self._bad_reply(f"no choices (choices is {_describe(choices)})")
        return choices[0]

    def _choice_text(self, choice: Any, chat: bool) -> str:
        if not chat:
            return self._checked_text(getattr(choice, "text", _MISSING), "choices[0].text", choice)
        message = getattr(choice, "message", _MISSING)
        if message is _MISSING:
            raise self._bad_reply(f"choices[0] without a message ({_describe(choice)})")
        if not hasattr(message, "content"):
            raise self._bad_reply(f"{_describe(message)} as choices[0].message, not a message")
        content = message.content
        refusal = getattr(message, "refusal", None)
        if content is None and isinstance(refusal, str) and refusal:
            raise self._bad_reply(f"a refusal instead of text in choices[0].message.content: "
                                  f"{refusal[:100]}")
        return self._checked_text(content, "choices[0].message.content", choice)

    def _checked_text(self, content: Any, field_name: str, choice: Any) -> str:
        if isinstance(content, str):
            return content
        if content is _MISSING:
            raise self._bad_reply(f"no {field_name} (choices[0] is {_describe(choice)})")
        raise self._bad_reply(f"{_describe(content)} in {field_name}, not a string")

    def _logprobs(self, choice: Any) -> list[float] | None:
        try:
            return _token_logprobs(choice)
        except (TypeError, ValueError, AttributeError):
            raise self._bad_reply("logprobs that are not numbers") from None


def openai_model(argument: str = "", **params: Any) -> OpenAICompatModel:
    """Entry point for ``openai:MODEL_NAME``."""
    if "api_key" in params:
        raise ConfigError("an API key is never read from a config or option",
                          where="model.params.api_key",
                          fix="put the key in an environment variable and name it in "
                              f"model.params.api_key_env (default {DEFAULT_API_KEY_ENV})")
    unknown = sorted(set(params) - set(KNOWN_PARAMS))
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(unknown)} for the openai model",
                          where="model.params", fix=f"use only: {', '.join(KNOWN_PARAMS)}")
    base_url = params.pop("base_url", None) or os.environ.get("OPENAI_BASE_URL")
    return OpenAICompatModel(argument, base_url=base_url or DEFAULT_BASE_URL, **params)


def _rejects_response_format(exc: Any) -> bool:
    """A server that does not know OpenAI's json_schema format: a 400/422, or (llama.cpp's
    server) a 500 whose validation message names response_format."""
    status = getattr(exc, "status_code", None)
    return status in (400, 422) or (status == 500 and "response_format" in str(exc))


def _check_settings(model_name: str, timeout: float, max_retries: int, concurrency: int,
                    extra_body: Any) -> None:
    if not model_name:
        raise ConfigError("the openai model needs a model name", where="model.name",
                          fix="write 'openai:MODEL_NAME', e.g. 'openai:gpt-4o-mini'")
    checks = [
        (_is_number(timeout) and timeout > 0, "timeout", "a number of seconds above 0"),
        (_is_int(max_retries) and max_retries >= 0, "max_retries", "a whole number, 0 or more"),
        (_is_int(concurrency) and concurrency >= 1, "concurrency", "a whole number, 1 or more"),
        (extra_body is None or isinstance(extra_body, dict), "extra_body", "a mapping"),
    ]
    for ok, name, expected in checks:
        if not ok:
            raise ConfigError(f"invalid value for {name}", where=f"model.params.{name}",
                              fix=f"use {expected}")


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _import_openai():
    try:
        import openai
    except ImportError as exc:
        raise ModelError("the openai package is not installed", where="model openai",
                         fix="pip install 'openai>=1.40'") from exc
    return openai


def _backoff_seconds(attempt: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return min(retry_after, BACKOFF_CAP_SECONDS)
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt)
    # Jitter keeps a pool of threads from retrying in lockstep.
    return ceiling * random.uniform(0.5, 1.0)


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    header = response.headers.get("retry-after") if response is not None else None
    try:
        return max(0.0, float(header)) if header else None
    except ValueError:  # an HTTP date instead of seconds: fall back to our own backoff
        return None


def _cause_text(exc: Exception) -> str:
    cause = exc.__cause__ or exc
    return str(cause) or type(cause).__name__


def _server_message(exc: Any) -> str:
    body = exc.body
    if isinstance(body, dict):
        body = body.get("message") or body.get("detail") or body
    text = " ".join(str(body if body is not None else exc.message).split())
    if len(text) > SERVER_MESSAGE_LIMIT:
        text = text[:SERVER_MESSAGE_LIMIT] + "..."
    return text


def _token_counts(usage: Any, request: Request, text: str) -> tuple[int, int]:
    # Some servers omit usage (or send junk in it); a word count is a rough but never-zero
    # estimate.
    prompt_tokens = getattr(usage, "prompt_tokens", None)
    completion_tokens = getattr(usage, "completion_tokens", None)
    if not (_is_int(prompt_tokens) and prompt_tokens >= 0):
        prompt_tokens = count_words(request_text(request))
    if not (_is_int(completion_tokens) and completion_tokens >= 0):
        completion_tokens = count_words(text)
    return prompt_tokens, completion_tokens


def _describe(value: Any) -> str:
    """What the server sent, for a one-line error."""
    return "nothing" if value is _MISSING else describe_value(value)


def _token_logprobs(choice: Any) -> list[float] | None:
    logprobs = getattr(choice, "logprobs", None)
    if logprobs is None:
        return None
    content = getattr(logprobs, "content", None)  # chat: one entry per token
    if content is not None:
        return [float(token.logprob) for token in content]
    values = getattr(logprobs, "token_logprobs", None)  # legacy completions
    return [float(v) for v in values if v is not None] if values is not None else None
