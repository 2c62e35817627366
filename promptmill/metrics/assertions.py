"""Metrics with promptfoo's assertion semantics, for test suites (``promptmill test``).

The older text metrics normalize (``contains`` matches whole words, case and punctuation
folded), which suits scoring answers to a task. A suite's assertions mean what promptfoo's
mean: raw substrings, exact strings, a string prefix. Each metric reads its expected value(s)
from the example's accepted answers (the suite puts the assertion's value there), so the
metric is built once per assertion and not once per case.

``latency`` and ``cost`` judge the call, not the text: they score through
:meth:`Metric.score_call`, which gets the call's seconds and tokens.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..task import Example
from .base import NO_REFERENCE, Metric, Score, quote

_MAX_JSON_STARTS = 200  # where contains_json tries a parse: enough for any real answer


def _listed(values: tuple[str, ...], limit: int = 4) -> str:
    shown = ", ".join(quote(v, 40) for v in values[:limit])
    more = f" (+{len(values) - limit} more)" if len(values) > limit else ""
    return shown + more


def _was(prediction: str) -> str:
    return f"the output was {quote(prediction)}"


# --- equals -----------------------------------------------------------------------------------


class Equals(Metric):
    """The output is exactly one of the accepted strings; with ``as_json``, equal as JSON."""

    name = "equals"

    def __init__(self, as_json: bool = False):
        self.as_json = bool(as_json)

    def describe(self) -> str:
        return "equals(json)" if self.as_json else "equals"

    def score(self, prediction: str, example: Example) -> Score:
        if not example.accepted:
            return NO_REFERENCE
        if self.as_json:
            return self._json_equal(prediction, example.accepted)
        if prediction in example.accepted:
            return Score(1.0)
        return Score(0.0, f"expected exactly {_listed(example.accepted)}; {_was(prediction)}")

    @staticmethod
    def _json_equal(prediction: str, accepted: tuple[str, ...]) -> Score:
        try:
            value = json.loads(prediction)
        except (ValueError, RecursionError):
            return Score(0.0, f"expected JSON equal to {_listed(accepted)}; the output is "
                              f"not JSON: {quote(prediction)}")
        if any(value == json.loads(a) for a in accepted):
            return Score(1.0)
        return Score(0.0, f"expected JSON equal to {_listed(accepted)}; {_was(prediction)}")


# --- substrings and prefixes ------------------------------------------------------------------


class Substring(Metric):
    """Raw substrings: ``require='any'`` (one of the accepted answers) or ``'all'`` of them."""

    name = "substring"

    def __init__(self, require: str = "any", ignore_case: bool = False):
        if require not in ("any", "all"):
            raise ConfigError(f"'require' must be 'any' or 'all', not {require!r}",
                              where="metric.params.require", fix="use require: any")
        self.require = require
        self.ignore_case = bool(ignore_case)

    def describe(self) -> str:
        return f"substring({self.require}{', ignore_case' if self.ignore_case else ''})"

    def _fold(self, text: str) -> str:
        return text.lower() if self.ignore_case else text

    def score(self, prediction: str, example: Example) -> Score:
        wanted = example.accepted
        if not wanted:
            return NO_REFERENCE
        text = self._fold(prediction)
        found = [w for w in wanted if self._fold(w) in text]
        case = " (ignoring case)" if self.ignore_case else ""
        if self.require == "any":
            if found:
                return Score(1.0)
            what = quote(wanted[0]) if len(wanted) == 1 else f"one of {_listed(wanted)}"
            return Score(0.0, f"expected to contain {what}{case}; {_was(prediction)}")
        missing = tuple(w for w in wanted if w not in found)
        if not missing:
            return Score(1.0)
        return Score(0.0, f"expected to contain all of {_listed(wanted)}{case}; missing "
                          f"{_listed(missing)}; {_was(prediction)}")


class StartsWith(Metric):
    """The output begins with one of the accepted strings, exactly as written."""

    name = "starts_with"

    def score(self, prediction: str, example: Example) -> Score:
        if not example.accepted:
            return NO_REFERENCE
        if prediction.startswith(example.accepted):
            return Score(1.0)
        return Score(0.0, f"expected to start with {_listed(example.accepted)}; "
                          f"{_was(prediction)}")


# --- JSON inside the output -------------------------------------------------------------------


def json_values(text: str) -> list[tuple[Any, str]]:
    """Every JSON object in ``text``, outermost ones only, with its source text.

    Objects, not arrays, as promptfoo's contains-json: "see [1]" is prose, not JSON.
    """
    decoder = json.JSONDecoder()
    found: list[tuple[Any, str]] = []
    position, tries = 0, 0
    while tries < _MAX_JSON_STARTS:
        start = text.find("{", position)
        if start < 0:
            break
        tries += 1
        try:
            value, end = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):
            position = start + 1
            continue
        found.append((value, text[start:end]))
        position = end
    return found


class ContainsJson(Metric):
    """Some JSON object appears in the output; with ``schema``, one that matches it."""

    name = "contains_json"

    def __init__(self, schema: dict[str, Any] | str | None = None, base_dir: Path | None = None):
        self._schema: Metric | None = None
        if schema is not None:
            from .structured import JsonSchema  # jsonschema loads only when a schema is given

            self._schema = JsonSchema(schema, base_dir)

    def describe(self) -> str:
        return f"contains_json({self._schema.describe()})" if self._schema else "contains_json"

    def score(self, prediction: str, example: Example) -> Score:
        values = json_values(prediction)
        if not values:
            return Score(0.0, f"expected to contain JSON; found none in {quote(prediction)}")
        if self._schema is None:
            return Score(1.0)
        first_problem = None
        for _, source in values:
            result = self._schema.score(source, example)
            if result.value >= 1.0:
                return Score(1.0)
            first_problem = first_problem or result.feedback
        return Score(0.0, f"expected to contain JSON matching the schema; none of the "
                          f"{len(values)} JSON object(s) does: {first_problem}")


# --- edit distance ----------------------------------------------------------------------------


def bounded_levenshtein(a: str, b: str, limit: int) -> int:
    """The edit distance of ``a`` and ``b`` if it is at most ``limit``, else ``limit + 1``.

    Only the diagonal band of width 2 * limit + 1 can hold a distance within the limit, so the
    cost is O(limit * len) instead of O(len * len): fast on long outputs.
    """
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    if len(a) < len(b):
        a, b = b, a
    over = limit + 1
    previous = list(range(len(b) + 1))
    for i, char in enumerate(a, start=1):
        low, high = max(1, i - limit), min(len(b), i + limit)
        current = [over] * (len(b) + 1)
        current[0] = i if i <= limit else over
        for j in range(low, high + 1):
            cost = 0 if char == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost, over)
        if min(current) > limit:
            return over
        previous = current
    return min(previous[len(b)], over)


class Levenshtein(Metric):
    """1 if the output is within ``max_distance`` edits of an accepted string, else 0."""

    name = "levenshtein"

    def __init__(self, max_distance: int = 5):
        if isinstance(max_distance, bool) or not isinstance(max_distance, int | float) \
                or max_distance < 0:
            raise ConfigError(f"'max_distance' must be a whole number >= 0, not "
                              f"{max_distance!r}", where="metric.params.max_distance",
                              fix="use e.g. 5")
        self.max_distance = int(max_distance)

    def describe(self) -> str:
        return f"levenshtein(max {self.max_distance})"

    def score(self, prediction: str, example: Example) -> Score:
        if not example.accepted:
            return NO_REFERENCE
        distance, closest = min((bounded_levenshtein(prediction, a, self.max_distance), a)
                                for a in example.accepted)
        if distance <= self.max_distance:
            return Score(1.0)
        edits = "1 edit" if self.max_distance == 1 else f"{self.max_distance} edits"
        return Score(0.0, f"expected at most {edits} from {quote(closest)}; it takes more; "
                          f"{_was(prediction)}")


# --- the call: latency and tokens -------------------------------------------------------------


def _ceiling(value: Any, name: str, unit: str, example: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"'{name}' must be a number of {unit} above 0, not {value!r}",
                          where=f"metric.params.{name}", fix=f"use e.g. {example}")
    return float(value)


_NO_CALL = "was given no model call to measure"


class _CallCeiling(Metric):
    """A ceiling on something the call measured; the text alone cannot be scored."""

    unit = ""

    def __init__(self, limit: float):
        self.limit = limit

    def describe(self) -> str:
        return f"{self.name}(<= {self.limit:g} {self.unit})"

    def measure(self, generation: Any) -> float:
        raise NotImplementedError

    def score(self, prediction: str, example: Example) -> Score:
        return Score(0.0, f"{self.name} {_NO_CALL}: it is checked on the call that produced "
                          "the output")

    def score_call(self, prediction: str, example: Example, generation: Any) -> Score:
        if generation is None:
            return self.score(prediction, example)
        measured = self.measure(generation)
        if measured <= self.limit:
            return Score(1.0)
        return Score(0.0, f"expected at most {self.limit:g} {self.unit}; the call took "
                          f"{measured:g} {self.unit}")


class Latency(_CallCeiling):
    """1 if the call took at most ``max_ms`` milliseconds (a cached call: its first run's time)."""

    name = "latency"
    unit = "ms"

    def __init__(self, max_ms: float):
        super().__init__(_ceiling(max_ms, "max_ms", "milliseconds", "2000"))

    def measure(self, generation: Any) -> float:
        return round(float(generation.seconds) * 1000, 1)


class Cost(_CallCeiling):
    """1 if the call used at most ``max_tokens`` tokens, input and output together.

    promptmill counts tokens, not dollars: local models cost no money per call.
    """

    name = "cost"
    unit = "tokens"

    def __init__(self, max_tokens: float):
        super().__init__(_ceiling(max_tokens, "max_tokens", "tokens", "500"))

    def measure(self, generation: Any) -> float:
        return float(generation.input_tokens + generation.output_tokens)
