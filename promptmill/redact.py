"""Secret redaction: the one place that scrubs API keys from text on its way out.

A model can say anything, including a key: a server that echoes the ``Authorization`` header, a
prompt that leaks an environment variable, a test fixture pasted into training data. Whatever a
backend returns passes through :func:`redact` (see ``Model.__init_subclass__``) before the
Evaluator, the cache, an optimizer, diagnose or ``serve`` sees it. Two kinds of secret go:

- *known* secrets, replaced wherever they appear: the keys promptmill was configured with
  (:func:`register_secret`: the ``openai:`` backend's key, the key ``serve`` clients present)
  and the values of environment variables whose names say they hold one (``*_API_KEY``,
  ``*_TOKEN``, ``*_SECRET``, ``*_PASSWORD``);
- *key-shaped* text, whoever issued it: ``sk-...`` style keys and other vendors' prefixes,
  ``Bearer <token>``, a long random value after ``api_key=``/``token=``/``key=`` (or ``:``),
  JWTs (``eyJ...`` triples), and any value of a key-named URL query parameter.

The shapes ask for length and randomness (digits among letters, or a long high-entropy run), so
ordinary answers ("the key: remember it", "Bearer bonds", "token=next") are left alone.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json
import math
import os
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any
from urllib.parse import quote, unquote, unquote_plus, urlsplit, urlunsplit

MASK = "***"
MIN_REGISTERED_LENGTH = 4  # a configured key shorter than this is not worth mangling text for
MIN_ENV_LENGTH = 8  # env values are guessed secrets: short ones ("1", "true") are settings
MIN_ASSIGNED_LENGTH = 16  # "token: ZX12AB34" is a short code, not a credential
HIGH_ENTROPY_LENGTH = 24  # a letters-only run this long is random if its entropy is high
HIGH_ENTROPY_BITS = 4.0  # bits per character; English phrases stay below, random keys above
RANDOM_RUN_LENGTH = 16  # a letters-only run this long is judged by its letters

_SECRET_ENV_NAME = re.compile(r"(?:^|_)(?:API_?KEY|KEY|TOKEN|SECRET|PASSWORD|PASSWD)$",
                              re.IGNORECASE)
# Names of fields and query parameters that carry a credential: api_key, x-api-key, key,
# access_token, client_secret, OPENAI_API_KEY, password ... A prefix before the name
# ("OPENAI_" in OPENAI_API_KEY) is matched by the lookbehinds below, never by a repetition:
# nested repetitions would make redaction quadratic on a long hyphenated input.
_KEY_NAME = (r"(?:api[_-]?key|apikey|access[_-]?key|key|"
             r"(?:access|auth|id|refresh|session|bearer)?[_-]?token|secret|password|passwd|"
             r"pwd|auth|signature|sig|credentials?)")
_VALUE = r"[A-Za-z0-9._~+/\-]+=*"  # base64, base64url, hex, and the usual key punctuation
# Vendor prefixes: each is a key whatever follows, so no randomness check is needed.
_PREFIXED = re.compile(r"(?<![A-Za-z0-9])(?:" + "|".join([
    r"sk-[A-Za-z0-9_\-]{16,}",  # OpenAI, Anthropic (sk-ant-), sk-proj-, sk-live-
    r"(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}",  # Stripe
    r"gh[pousr]_[A-Za-z0-9]{30,}",  # GitHub tokens
    r"github_pat_[A-Za-z0-9_]{30,}",
    r"xox[abposr]-[A-Za-z0-9\-]{10,}",  # Slack
    r"hf_[A-Za-z0-9]{30,}",  # Hugging Face
    r"AIza[0-9A-Za-z_\-]{35}",  # Google API keys
    r"(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Za-z0-9])",  # AWS access key ids
    r"glpat-[A-Za-z0-9_\-]{20,}",  # GitLab
]) + ")")
# Substrings (lower case) without which each pattern cannot match, to skip a pass cheaply.
_PREFIX_HINTS = ("sk-", "sk_", "rk_", "pk_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_",
                 "github_pat_", "xox", "hf_", "aiza", "akia", "asia", "glpat-")
# header.payload.signature, base64url: every JWT starts with eyJ ('{"' encoded)
_JWT = re.compile(r"(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\."
                  r"[A-Za-z0-9_\-]*")
# Authorization: <scheme> <credentials>: the header says it is a secret, so mask any value
_AUTH_SCHEMES = ("bearer", "basic", "token", "digest")
_AUTH_HEADER = re.compile(r"(?i)(\bauthorization[\"']?[ \t]*[:=][ \t]*[\"']?"
                          r"(?:(?:" + "|".join(_AUTH_SCHEMES) + r")[ \t]+)?)(" + _VALUE + ")")
_BEARER = re.compile(r"(?i)(\bbearer[ \t]+)(" + _VALUE + ")")
# a value in a URL query: ?api_key=..., &token=...; the name alone makes it secret
_QUERY_PARAM = re.compile(r"(?i)([?&;](?:[A-Za-z0-9_.\-]*[_.\-])?" + _KEY_NAME + r"=)"
                          r"([^&#\s\"'<>]+)")
# api_key=..., "token": "...", password: ...
_KEY_NAME_ONLY = re.compile(r"(?i)(?:^|.*[_.\-])" + _KEY_NAME)
_ASSIGNED = re.compile(r"(?i)(?<![A-Za-z0-9])(" + _KEY_NAME + r"[\"']?[ \t]*[:=][ \t]*[\"']?)("
                       + _VALUE + ")")

_NAME_HINTS = ("key", "token", "secret", "passw", "pwd", "auth", "sig", "credential")

_lock = threading.Lock()
_registered: set[str] = set()


def register_secret(value: str | None) -> None:
    """Scrub ``value`` from every model output and log line of this process from now on."""
    if value and len(value) >= MIN_REGISTERED_LENGTH:
        with _lock:
            _registered.add(value)


def known_secrets() -> tuple[str, ...]:
    """The registered keys and the secret-named environment variables' values."""
    with _lock:
        found = set(_registered)
    found.update(v for k, v in os.environ.items()
                 if len(v) >= MIN_ENV_LENGTH and _SECRET_ENV_NAME.search(k))
    return tuple(sorted(found))


def redact(text: Any, extra: Iterable[str | None] = ()) -> Any:
    """``text`` with every known secret, every ``extra`` one and every key shape as ``***``.

    Anything that is not a non-empty string is returned unchanged.
    """
    if not isinstance(text, str) or not text:
        return text
    secrets = known_secrets()
    registered = tuple(s for s in extra if s and len(s) >= MIN_REGISTERED_LENGTH)
    if registered:
        secrets = tuple(sorted(set(secrets) | set(registered)))
    return _redacted(text, secrets)


def _redacted(text: Any, secrets: tuple[str, ...]) -> Any:
    if not isinstance(text, str) or not text:
        return text
    return redact_shapes(_known_pattern(secrets).sub(MASK, text) if secrets else text)


def redact_shapes(text: str) -> str:
    """Only the key shapes. Each pass runs only when its hint is in the text: most answers
    contain none, and a substring test costs far less than a regex scan."""
    lower = text.lower()
    if "authorization" in lower:
        text = _AUTH_HEADER.sub(_mask_header_value, text)
    if "=" in text and _has(lower, _NAME_HINTS):
        text = _QUERY_PARAM.sub(_mask_value, text)
    if "eyJ" in text:
        text = _JWT.sub(MASK, text)
    if _has(lower, _PREFIX_HINTS):
        text = _PREFIXED.sub(MASK, text)
    if "bearer" in lower:
        text = _BEARER.sub(_mask_random_value, text)
    if ("=" in text or ":" in text) and _has(lower, _NAME_HINTS):
        text = _ASSIGNED.sub(_mask_random_value, text)
    return text


def _has(text: str, hints: tuple[str, ...]) -> bool:
    return any(h in text for h in hints)


class StreamRedactor:
    """Redacts a stream of text pieces as the one text they make, handing on only what is final.

    Every key shape is a run without whitespace, and redaction masks only such runs, so text up
    to the last whitespace is final: the run being written is held back until whitespace
    follows, as is any tail that could begin a known secret.
    What is handed on is always a prefix of the redacted whole; ``finish`` sends the rest of
    the final (already redacted) text.
    """

    def __init__(self, emit: Callable[[str], None], extra: Iterable[str] = ()):
        self.emit = emit
        self.extra = tuple(s for s in extra if s and len(s) >= MIN_REGISTERED_LENGTH)
        self.raw = ""
        self.sent = ""

    def feed(self, piece: str) -> None:
        if not piece:
            return
        self.raw += piece
        clean = redact(self.raw, self.extra)
        self._send(clean, self._final_end(clean))

    def finish(self, text: str) -> None:
        self._send(text, len(text))

    def _final_end(self, clean: str) -> int:
        cut = max(clean.rfind(c) for c in " \t\n\r")
        end = cut + 1 if cut >= 0 else 0
        hold = max((prefix_at_end(clean, secret)
                    for secret in (*known_secrets(), *self.extra)), default=0)
        return min(end, len(clean) - hold)

    def _send(self, clean: str, end: int) -> None:
        if end <= len(self.sent) or not clean.startswith(self.sent):
            return  # nothing new, or redaction reached back into text already handed on
        self.emit(clean[len(self.sent):end])
        self.sent = clean[:end]


def prefix_at_end(text: str, word: str) -> int:
    """How many trailing characters of ``text`` begin ``word`` (a secret, a stop string): what
    a stream holds back until the next piece says whether ``word`` is really there."""
    for n in range(min(len(word) - 1, len(text)), 0, -1):
        if text.endswith(word[:n]):
            return n
    return 0


def redact_generation(generation):
    """A Generation whose text, finish reason and any text in ``extra`` are redacted; the same
    object when nothing changed, so the common case costs no copy."""
    secrets = known_secrets()  # once per call: it reads the environment
    changes = {"text": _redacted(generation.text, secrets),
               "finish_reason": _redacted(generation.finish_reason, secrets)}
    if generation.extra:
        changes["extra"] = {k: _redacted(v, secrets) for k, v in generation.extra.items()}
    changes = {k: v for k, v in changes.items() if v != getattr(generation, k)}
    return dataclasses.replace(generation, **changes) if changes else generation


def redact_url(url: str) -> str:
    """A URL fit to show and store (a model identity, an error): its password and the values
    of key-named query parameters become ``***``. ``http://u:pw@h/v1?key=k`` ->
    ``http://u:***@h/v1?key=***``."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not a URL after all
        return redact(url)
    netloc = parts.netloc
    if password is not None:
        userinfo, _, host = netloc.rpartition("@")
        netloc = f"{userinfo.split(':', 1)[0]}:{MASK}@{host}"
    target = redact_target(parts.path + (f"?{parts.query}" if parts.query else ""))
    path, _, query = target.partition("?")
    return urlunsplit((parts.scheme, netloc, path, query, parts.fragment))


def url_password(url: str) -> str | None:
    """The password in a URL's userinfo, if any: a secret to register."""
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def redact_exception(exc: BaseException) -> None:
    """Scrub an exception's message in place, keeping its type (callers may catch on it)."""
    from .errors import PromptmillError

    if isinstance(exc, PromptmillError):
        exc.message, exc.where, exc.fix = (redact(exc.message), redact(exc.where),
                                           redact(exc.fix))
        exc.args = (exc.one_line(),)
        return
    try:
        exc.args = tuple(redact(a) for a in exc.args)
    except (AttributeError, TypeError):  # an exception type with read-only args
        pass


def redact_target(target: str, extra: Iterable[str | None] = ()) -> str:
    """A request target (``/path?query``) fit for a log: a key-named query parameter's value,
    and any path segment or value that holds a secret once URL-decoded, become ``***``.

    Decoding first means ``?api%5Fkey=...`` or a key spelled with ``%2D`` for ``-`` is caught
    as surely as the plain form.
    """
    if not isinstance(target, str) or not target:
        return target
    path, mark, query = target.partition("?")
    path = "/".join(_redact_component(seg, unquote, extra) for seg in path.split("/"))
    if not mark:
        return path
    return path + "?" + "&".join(_redact_param(p, extra) for p in query.split("&"))


def _redact_param(param: str, extra: Iterable[str | None]) -> str:
    name, equals, value = param.partition("=")
    if not equals:
        return _redact_component(param, unquote_plus, extra)
    if _KEY_NAME_ONLY.fullmatch(unquote_plus(name)):
        return f"{name}={MASK}"
    name = _redact_component(name, unquote_plus, extra)
    return f"{name}={_redact_component(value, unquote_plus, extra)}"


def _redact_component(part: str, decode, extra: Iterable[str | None]) -> str:
    decoded = decode(part)
    if redact(decoded, extra) != decoded or redact(part, extra) != part:
        return MASK
    return part


class Redactor:
    """Redaction with extra secrets of its own (e.g. the key ``serve`` clients present), as a
    callable: ``Redactor([key])(text)``."""

    def __init__(self, secrets: Iterable[str | None] = ()):
        # longest first, so a secret that contains another is replaced whole
        self.secrets = sorted({s for s in secrets if s and len(s) >= MIN_REGISTERED_LENGTH},
                              key=len, reverse=True)

    def __call__(self, text: str | None) -> str | None:
        return redact(text, self.secrets)


# --- helpers --------------------------------------------------------------------------------------
@lru_cache(maxsize=32)
def _known_pattern(secrets: tuple[str, ...]) -> re.Pattern[str]:
    """One alternation of every secret and its escaped forms, longest first (so a secret that
    contains another is replaced whole)."""
    forms = {form for secret in secrets for form in _forms(secret)}
    return re.compile("|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)))


def _forms(secret: str) -> set[str]:
    """The secret as written, URL-encoded, JSON- and HTML-escaped and in base64: the ways a
    reply may carry it."""
    raw = secret.encode()
    encoded = [base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()]
    return {secret, quote(secret, safe=""), json.dumps(secret)[1:-1],
            json.dumps(secret, ensure_ascii=False)[1:-1], html.escape(secret),
            *encoded, *(e.rstrip("=") for e in encoded)}


def _mask_value(match: re.Match[str]) -> str:
    return match.group(1) + MASK


def _mask_header_value(match: re.Match[str]) -> str:
    # "Authorization: Bearer ***": the scheme alone is left, its credentials are already gone
    if match.group(2).lower() in _AUTH_SCHEMES:
        return match.group(0)
    return match.group(1) + MASK


def _mask_random_value(match: re.Match[str]) -> str:
    value = match.group(2)
    return match.group(1) + MASK if looks_random(value) else match.group(0)


def looks_random(value: str) -> bool:
    """Is ``value`` a credential rather than a word? Long, and digits among letters, or letters
    no language strings together: "a1B2c3D4e5F6g7H8", "QwErTyUiOpAsDfGh", "xkcdqrtzplmvbnws"
    yes; "version", "internationalization", "remember-to-water-plants" no."""
    value = value.rstrip("=")
    if len(value) < MIN_ASSIGNED_LENGTH or value == MASK:
        return False
    if any(c.isdigit() for c in value) and any(c.isalpha() for c in value):
        return True
    longest = max(re.split(r"[._~+/\-]", value), key=len)
    if len(longest) >= RANDOM_RUN_LENGTH and longest.isalpha() and _unlike_words(longest):
        return True
    return len(longest) >= HIGH_ENTROPY_LENGTH and _entropy_bits(longest) >= HIGH_ENTROPY_BITS


def _unlike_words(run: str) -> bool:
    """Case flipping inside the run, too few vowels, or a long consonant cluster."""
    switches = sum(1 for a, b in zip(run, run[1:], strict=False) if a.islower() and b.isupper())
    lower = run.lower()
    vowels = sum(c in "aeiouy" for c in lower)
    cluster = max((len(m) for m in re.findall(r"[^aeiouy]+", lower)), default=0)
    return switches >= 3 or vowels / len(run) < 0.2 or cluster >= 5


def _entropy_bits(value: str) -> float:
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
