"""A suite's assertions, scored by the metric registry: one :class:`Check` per assertion.

There is no second scoring path: every assertion type becomes a metric from
:func:`promptmill.metrics.get_metric` (the promptfoo-style ones live in
:mod:`promptmill.metrics.assertions`) and an :class:`Example` whose accepted answers are the
assertion's value. This module adds only what a suite needs on top: the pass rule per type
(``threshold``), ``not-`` negation, weights and the case's own threshold, and reasons written
for the person reading a failed build.

:class:`CaseChecks` is the one metric a suite run uses: 1.0 when a case passes, else 0.0, so a
run's mean is its pass rate and the paired tests compare passes.
"""

from __future__ import annotations

import difflib
import functools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, PromptmillError
from ..metrics import Metric, Score, get_metric
from ..metrics.base import MetricError, clip, digest, quote, resolve_path
from ..metrics.custom import PYTHON_PREFIX, PythonMetric
from ..models.base import Generation, GenerationParams, Model, Request
from ..task import Example, check_user_file
from .model import NEGATION, Assertion, Case
from .results import Check

if TYPE_CHECKING:
    from ..store.db import Store

ASSERTION_TYPES: frozenset[str] = frozenset({
    "equals", "contains", "icontains", "contains-any", "contains-all", "icontains-any",
    "icontains-all", "starts-with", "regex", "is-json", "contains-json", "json-schema",
    "levenshtein", "similar", "rouge-n", "rouge-l", "bleu", "llm-rubric", "python", "latency",
    "cost",
})
# Types whose threshold is a ceiling in their own unit, not a score in [0, 1].
CEILING_TYPES: frozenset[str] = frozenset({"levenshtein", "latency", "cost"})

_JUDGE_INSTEAD = ("model-graded evaluations other than llm-rubric are not built in",
                  "use llm-rubric with a rubric that says what to check")
_NO_TOOLS = ("promptmill's models return text, not function or tool calls",
             "check the text with is-json/json-schema, or write a python:FILE.py:FUNCTION")
_MARKUP = ("this format has no built-in parser here",
           "use regex, or a python:FILE.py:FUNCTION that parses it")
_HOSTED = ("it needs a hosted classification service",
           "use llm-rubric with a local judge, or a python:FILE.py:FUNCTION")
_UNSUPPORTED: dict[str, tuple[str, str]] = {
    "javascript": ("promptmill runs no JavaScript",
                   "rewrite the check in Python: type: python:FILE.py:FUNCTION"),
    "webhook": ("checks make no HTTP calls", "call the service from a python:FILE.py:FUNCTION"),
    "assert-set": ("nested assertion sets are not supported",
                   "list the assertions in the case and set the case's threshold"),
    "select-best": ("it compares outputs across prompts, not one output",
                    "compare prompts with --baseline and a gate"),
    "max-score": ("it compares outputs across prompts, not one output",
                  "compare prompts with --baseline and a gate"),
    "perplexity": ("it needs token log-probabilities", "use similar or llm-rubric"),
    "perplexity-score": ("it needs token log-probabilities", "use similar or llm-rubric"),
    "rouge-s": ("only ROUGE-N (unigrams) and ROUGE-L are built in", "use rouge-n or rouge-l"),
    **dict.fromkeys(("model-graded-closedqa", "factuality", "g-eval", "answer-relevance",
                     "context-faithfulness", "context-recall", "context-relevance",
                     "search-rubric", "pi", "model-graded-factuality"), _JUDGE_INSTEAD),
    **dict.fromkeys(("is-valid-openai-function-call", "is-valid-openai-tools-call",
                     "is-valid-function-call", "tool-call-f1"), _NO_TOOLS),
    **dict.fromkeys(("is-sql", "contains-sql", "is-xml", "contains-xml", "is-html",
                     "contains-html"), _MARKUP),
    **dict.fromkeys(("moderation", "classifier", "guardrails"), _HOSTED),
}

_DEFAULT_THRESHOLD = {"similar": 0.75, "rouge-n": 0.75, "rouge-l": 0.75, "bleu": 0.5,
                      "llm-rubric": 0.5}
_DEFAULT_MAX_EDITS = 5
_DEFAULT_JUDGE = "embedded"
_FILE = "file://"
_PROMPTFOO_PYTHON_FUNCTION = "get_assert"
_MAX_REASON = 300


def check_assertion_type(a: Assertion, where: str) -> None:
    """ConfigError unless ``a.type`` is a known type, ``not-TYPE`` or ``python:FILE:FUNCTION``."""
    base = a.base_type
    if base in ASSERTION_TYPES or base.startswith(PYTHON_PREFIX):
        return
    if base in _UNSUPPORTED:
        reason, fix = _UNSUPPORTED[base]
        raise ConfigError(f"assertion type '{a.type}' is not supported: {reason}",
                          where=where, fix=fix)
    close = difflib.get_close_matches(base, sorted(ASSERTION_TYPES), n=1, cutoff=0.5)
    hint = f"did you mean '{NEGATION if a.negated else ''}{close[0]}'? " if close else ""
    raise ConfigError(f"unknown assertion type '{a.type}'", where=where,
                      fix=f"{hint}use one of {', '.join(sorted(ASSERTION_TYPES))} or "
                          f"python:FILE.py:FUNCTION; any of them may take the prefix "
                          f"'{NEGATION}'")


# --- what each assertion type means -----------------------------------------------------------


class _BadValue(Exception):
    """An assertion's value or threshold that its type cannot use; becomes a ConfigError."""

    def __init__(self, message: str, fix: str):
        super().__init__(message)
        self.message, self.fix = message, fix


@dataclass(frozen=True)
class _Plan:
    """An assertion type's metric, expected values and pass rule, before the metric exists."""

    metric: str  # a registry name, or python:FILE.py:FUNCTION
    params: dict[str, Any]
    values: tuple[str, ...]  # the example's accepted answers
    expectation: str  # "to contain 'Paris'": what a passing output does
    threshold: float | None = 1.0  # passes at score >= threshold; None: at any score above 0
    graded: bool = False  # the score is a degree (similarity), shown next to its threshold
    user_code: bool = False  # a python check: its errors fail the check, not the run
    detail: bool = True  # the metric's feedback says more than "expected X; the output was Y"


@dataclass(frozen=True)
class _Item:
    """One assertion of one case, ready to score."""

    assertion: Assertion
    plan: _Plan
    metric: Metric
    example: Example


def _stable_json(value: Any) -> str:
    # default=str: a YAML date in a case's vars is hashed as its text, not refused
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _one_value(a: Assertion) -> str:
    if a.value is None:
        raise _BadValue(f"'{a.base_type}' needs a value", "add value: with the expected text")
    if isinstance(a.value, list | dict) and a.base_type != "equals":
        other = ", or use contains-any or contains-all" if "contains" in a.base_type else ""
        raise _BadValue(f"'{a.base_type}' takes one string, not a list",
                        f"give one string{other}")
    return _text(a.value)


def _many_values(a: Assertion) -> tuple[str, ...]:
    """A list, or promptfoo's comma-separated string."""
    if isinstance(a.value, str):
        values = [v.strip() for v in a.value.split(",")]
    elif isinstance(a.value, list):
        values = [_text(v) for v in a.value]
    else:
        raise _BadValue(f"'{a.base_type}' needs a list of strings as its value",
                        "write value: [first, second] or value: 'first, second'")
    if not values or not all(values):
        raise _BadValue(f"'{a.base_type}' needs non-empty strings in its value",
                        "drop the empty entries")
    return tuple(values)


def _references(a: Assertion) -> tuple[str, ...]:
    return _many_values(a) if isinstance(a.value, list) else (_one_value(a),)


def _schema(value: Any) -> Any:
    return value.removeprefix(_FILE) if isinstance(value, str) else value


def _threshold(a: Assertion) -> float:
    return a.threshold if a.threshold is not None else _DEFAULT_THRESHOLD[a.base_type]


def _listed(values: tuple[str, ...]) -> str:
    return ", ".join(quote(v, 40) for v in values[:4]) + (" ..." if len(values) > 4 else "")


def _plan_equals(a: Assertion) -> _Plan:
    if isinstance(a.value, dict | list):
        return _Plan("equals", {"as_json": True}, (json.dumps(a.value),),
                     f"to equal the JSON {quote(json.dumps(a.value), 60)}")
    value = _one_value(a)
    return _Plan("equals", {}, (value,), f"to equal {quote(value)}")


def _plan_contains(a: Assertion) -> _Plan:
    ignore_case = a.base_type.startswith("i")
    case = " (ignoring case)" if ignore_case else ""
    if a.base_type.endswith(("-any", "-all")):
        values, require = _many_values(a), a.base_type[-3:]
        what = "one" if require == "any" else "all"
        return _Plan("substring", {"require": require, "ignore_case": ignore_case}, values,
                     f"to contain {what} of {_listed(values)}{case}")
    value = _one_value(a)
    return _Plan("substring", {"ignore_case": ignore_case}, (value,),
                 f"to contain {quote(value)}{case}")


def _plan_starts_with(a: Assertion) -> _Plan:
    value = _one_value(a)
    return _Plan("starts_with", {}, (value,), f"to start with {quote(value)}")


def _plan_regex(a: Assertion) -> _Plan:
    pattern = _one_value(a)
    return _Plan("regex", {"pattern": pattern}, (), f"to match the pattern {pattern!r}",
                 detail=False)


def _plan_json(a: Assertion) -> _Plan:
    if a.base_type == "contains-json":
        if a.value is None:
            return _Plan("contains_json", {}, (), "to contain JSON")
        return _Plan("contains_json", {"schema": _schema(a.value)}, (),
                     "to contain JSON matching the schema")
    if a.value is None:
        if a.base_type == "json-schema":
            raise _BadValue("'json-schema' needs the schema as its value",
                            "write the schema inline, or value: file://schema.json")
        return _Plan("json_valid", {}, (), "to be valid JSON")
    return _Plan("json_schema", {"schema": _schema(a.value)}, (),
                 "to be JSON matching the schema")


def _plan_levenshtein(a: Assertion) -> _Plan:
    value = _one_value(a)
    edits = a.threshold if a.threshold is not None else _DEFAULT_MAX_EDITS
    return _Plan("levenshtein", {"max_distance": edits}, (value,),
                 f"to be within {edits:g} edits of {quote(value)}")


def _plan_similar(a: Assertion) -> _Plan:
    values = _references(a)
    params = {"model": a.provider} if a.provider else {}
    return _Plan("embedding", params, values, f"to mean the same as {_listed(values)}",
                 threshold=_threshold(a), graded=True, detail=False)


def _plan_overlap(a: Assertion) -> _Plan:
    values = _references(a)
    if a.base_type == "bleu":
        return _Plan("bleu", {}, values, f"to overlap {_listed(values)} by BLEU",
                     threshold=_threshold(a), graded=True, detail=False)
    variant, shown = ("rouge1", "ROUGE-1") if a.base_type == "rouge-n" else ("rougeL", "ROUGE-L")
    return _Plan("rouge", {"variant": variant}, values, f"to overlap {_listed(values)} by "
                 f"{shown}", threshold=_threshold(a), graded=True, detail=False)


def _plan_rubric(a: Assertion) -> _Plan:
    rubric = _one_value(a)
    return _Plan("llm_judge", {"rubric": rubric}, (),
                 f"to satisfy the rubric {quote(rubric, 60)}", threshold=_threshold(a),
                 graded=True)


def _plan_python(a: Assertion) -> _Plan:
    """``python:FILE.py:FUNCTION`` (promptmill), or promptfoo's ``python`` with a file:// value."""
    if a.base_type.startswith(PYTHON_PREFIX):
        values = () if a.value is None else (_text(a.value),)
        return _Plan(a.base_type, {}, values, f"to pass {a.base_type.removeprefix(PYTHON_PREFIX)}",
                     threshold=a.threshold, user_code=True)
    if not isinstance(a.value, str) or not a.value.startswith(_FILE):
        raise _BadValue("inline Python code is not run",
                        "put the function in a file and write value: file://check.py (it calls "
                        f"{_PROMPTFOO_PYTHON_FUNCTION}(output, context)), or type: "
                        "python:check.py:FUNCTION")
    return _Plan(a.value, {}, (), f"to pass {a.value.removeprefix(_FILE)}",
                 threshold=a.threshold, user_code=True)


def _plan_latency(a: Assertion) -> _Plan:
    if a.threshold is None:
        raise _BadValue("'latency' needs a threshold",
                        "set threshold: the most milliseconds a call may take, e.g. 2000")
    return _Plan("latency", {"max_ms": a.threshold}, (),
                 f"to answer within {a.threshold:g} ms")


def _plan_cost(a: Assertion) -> _Plan:
    if a.threshold is None:
        raise _BadValue("'cost' needs a threshold",
                        "set threshold: the most tokens (input + output) a call may use")
    if a.threshold < 1:
        raise _BadValue(f"'cost' threshold {a.threshold:g} looks like dollars; promptmill "
                        "counts tokens (input + output), not money",
                        "give the most tokens a call may use, e.g. 500")
    return _Plan("cost", {"max_tokens": a.threshold}, (),
                 f"to use at most {a.threshold:g} tokens")


_PLANS: dict[str, Callable[[Assertion], _Plan]] = {
    "equals": _plan_equals, "starts-with": _plan_starts_with, "regex": _plan_regex,
    **dict.fromkeys(("contains", "icontains", "contains-any", "contains-all", "icontains-any",
                     "icontains-all"), _plan_contains),
    **dict.fromkeys(("is-json", "contains-json", "json-schema"), _plan_json),
    "levenshtein": _plan_levenshtein, "similar": _plan_similar,
    **dict.fromkeys(("rouge-n", "rouge-l", "bleu"), _plan_overlap),
    "llm-rubric": _plan_rubric, "python": _plan_python, "latency": _plan_latency,
    "cost": _plan_cost,
}


def _plan(a: Assertion, where: str) -> _Plan:
    check_assertion_type(a, where)
    if a.threshold is not None and a.base_type not in CEILING_TYPES \
            and not 0 <= a.threshold <= 1:
        raise ConfigError(f"threshold {a.threshold:g} is outside [0, 1]", where=where,
                          fix="give the score the check needs, from 0 to 1")
    build = _PLANS["python" if a.base_type.startswith(PYTHON_PREFIX) else a.base_type]
    try:
        return build(a)
    except _BadValue as exc:
        raise ConfigError(exc.message, where=where, fix=exc.fix) from None


# --- values that use the case's vars ----------------------------------------------------------

@functools.cache
def _environment() -> Any:
    """The prompts' sandbox, strict: a var no case gives is an error, not an empty string."""
    from jinja2 import StrictUndefined

    from ..templating import sandboxed_environment

    return sandboxed_environment(undefined=StrictUndefined)


def _render(value: Any, variables: dict[str, Any], where: str) -> Any:
    """promptfoo renders ``{{ var }}`` in assertion values with the case's vars; so do we."""
    if isinstance(value, list):
        return [_render(v, variables, where) for v in value]
    if not isinstance(value, str) or ("{{" not in value and "{%" not in value):
        return value
    from jinja2 import TemplateError

    from ..templating import render_limited

    try:
        return render_limited(_environment().from_string(value), variables)
    except TemplateError as exc:
        raise ConfigError(f"the assertion value {quote(value, 60)} cannot be rendered ({exc})",
                          where=where, fix="use only the case's vars in {{ ... }}") from None


# --- the judge --------------------------------------------------------------------------------


class _SharedJudge(Model):
    """A judge model loaded on first use and shared by every llm-rubric check; with a store,
    its calls go through the call cache, so a re-run asks the judge nothing twice."""

    def __init__(self, source: Model | str, store: Store | None):
        self._model = source if isinstance(source, Model) else None
        self._spec = source if isinstance(source, str) else None
        self._store = store
        self.identity = source.identity if isinstance(source, Model) else source
        self._lock = threading.Lock()

    def model(self) -> Model:
        with self._lock:
            if self._model is None:
                from ..models import load_model

                self._model = load_model(str(self._spec))
                self.identity = self._model.identity
            return self._model

    def generate(self, request: Request, params: GenerationParams) -> Generation:
        model = self.model()
        if self._store is None:
            return model.generate(request, params)
        from ..evaluation import cached_generate

        return cached_generate(self._store, model, request, params)


def _check_model_spec(spec: str, where: str) -> None:
    """An unknown judge is a bad suite: say so before any model runs, not at the first call."""
    from ..models import available_models

    name = spec.partition(":")[0]
    if name not in available_models():
        raise ConfigError(f"unknown judge model '{spec}'", where=where,
                          fix=f"set provider to a model spec: {', '.join(available_models())}"
                              " (e.g. 'embedded', 'openai:MODEL')")


# --- promptfoo's python assertion -------------------------------------------------------------


class PromptfooPython(PythonMetric):
    """promptfoo's ``type: python, value: file://check.py[:fn]``: ``fn(output, context)``
    returns a bool, a number, or a dict with ``pass``, ``score`` and ``reason``."""

    def score(self, prediction: str, example: Example) -> Score:
        context = {"vars": dict(example.inputs), "test": {"vars": dict(example.inputs)},
                   "prompt": None, "config": {}}
        try:
            result = self.fn(prediction, context)
        except Exception as exc:
            raise PromptmillError(f"the check function raised {type(exc).__name__}: "
                                  f"{clip(str(exc), 200)}", where=self.where,
                                  fix="fix the function; it is called as "
                                      f"{self.function}(output: str, context: dict)") from exc
        return self._to_score(_grading_result(result))


def _grading_result(result: Any) -> Any:
    """promptfoo's GradingResult dict as a Score; anything else as it came."""
    if not isinstance(result, dict):
        return result
    passed = bool(result.get("pass", True))
    value = float(result.get("score", 1.0 if passed else 0.0)) if passed else 0.0
    reason = result.get("reason")
    return Score(value, None if reason is None else str(reason))


def _promptfoo_python(reference: str, base_dir: Path) -> PromptfooPython:
    ref = reference.removeprefix(_FILE)
    file, function = ref, _PROMPTFOO_PYTHON_FUNCTION
    if not ref.endswith(".py") and ":" in ref:
        file, _, function = ref.rpartition(":")
    path = resolve_path(file, base_dir)
    check_user_file(path, what="python check file", error=ConfigError,
                    missing_fix="check the file:// path; it is relative to the suite file")
    return PromptfooPython(path.resolve(), function)


# --- the case metric --------------------------------------------------------------------------


class CaseChecks(Metric):
    """Every assertion of every case; a case scores 1.0 when it passes, else 0.0.

    ``cases`` are the cases as they run (``defaultTest`` merged), by case id. Each distinct
    metric is built once, here, so a bad assertion fails before any model call.
    """

    name = "suite-checks"

    def __init__(self, cases: dict[str, Case], *, base_dir: Path,
                 judge: Model | str | None = None, store: Store | None = None):
        self.cases = cases
        self.base_dir = Path(base_dir)
        self._judge_source = judge if judge is not None else _DEFAULT_JUDGE
        self._store = store
        self._judges: dict[str, _SharedJudge] = {}
        self._metrics: dict[str, Metric] = {}
        self._described: str | None = None
        self._memo: dict[tuple[str, str, tuple[float, int, int] | None], list[Check]] = {}
        self._items = {case_id: self._case_items(case_id, case)
                       for case_id, case in cases.items()}

    # --- building -------------------------------------------------------------------------
    def _case_items(self, case_id: str, case: Case) -> list[_Item]:
        items = []
        for index, assertion in enumerate(case.assertions):
            where = f"case '{case_id}', assert {index + 1} ({assertion.type})"
            rendered = assertion.model_copy(
                update={"value": _render(assertion.value, case.vars, where)})
            plan = _plan(rendered, where)
            example = Example(id=case_id, inputs=case.vars,
                              target=plan.values[0] if plan.values else None,
                              answers=plan.values[1:])
            items.append(_Item(rendered, plan, self._metric(rendered, plan, where), example))
        return items

    def _metric(self, a: Assertion, plan: _Plan, where: str) -> Metric:
        params = dict(plan.params)
        judge = self._judge_for(a, where) if plan.metric == "llm_judge" else None
        key = _stable_json({"metric": plan.metric, "params": params,
                            "judge": judge.identity if judge else None})
        if key not in self._metrics:
            if judge is not None:
                params.update(model=judge.identity, judge_model=judge)
            self._metrics[key] = self._build(plan.metric, params, where)
        return self._metrics[key]

    def _build(self, name: str, params: dict[str, Any], where: str) -> Metric:
        try:
            if name.startswith(_FILE):
                return _promptfoo_python(name, self.base_dir)
            return get_metric(name, params, base_dir=self.base_dir)
        except ConfigError as exc:  # the metric's own words, at the assertion's place
            inner = exc.where if exc.where and not exc.where.startswith("metric") else None
            message = f"{exc.message} ({inner})" if inner else exc.message  # e.g. the file
            raise ConfigError(message, where=where, fix=exc.fix) from None

    def _judge_for(self, a: Assertion, where: str) -> _SharedJudge:
        source = a.provider if a.provider else self._judge_source
        key = source if isinstance(source, str) else source.identity
        if key not in self._judges:
            if isinstance(source, str):
                _check_model_spec(source, where)
            self._judges[key] = _SharedJudge(source, self._store)
        return self._judges[key]

    # --- the interface the runner uses ----------------------------------------------------
    def describe(self) -> str:
        """Changes whenever an assertion, a case threshold or the judge changes."""
        if self._described is None:  # every evaluate() asks; a suite's cases never change
            self._described = self._describe()
        return self._described

    def _describe(self) -> str:
        judge = self._judge_source
        body: dict[str, Any] = {
            "judge": judge if isinstance(judge, str) else judge.identity,
            # vars too: an assertion value may use them ({{ var }})
            "cases": {case_id: {"threshold": case.threshold, "vars": case.vars,
                                "assert": [a.model_dump(mode="json") for a in case.assertions]}
                      for case_id, case in sorted(self.cases.items())}}
        return f"{self.name}:{digest(_stable_json(body), 16)}"

    def checks(self, case_id: str, output: str, generation: Generation | None) -> list[Check]:
        """One check per assertion of the case, in order.

        Remembered per (case, output, call figures): the runner reads back what scoring just
        computed, and a repeated sample with the same answer costs nothing twice.
        """
        key = (case_id, output, _call_figures(generation))
        found = self._memo.get(key)
        if found is None:
            found = [_check(item, output, generation) for item in self._case(case_id)]
            if len(self._memo) < _MEMO_LIMIT:
                self._memo[key] = found
        return list(found)

    def passed(self, case_id: str, checks: list[Check]) -> tuple[bool, float]:
        """(passed, weighted score): every counted check passes, or with the case's threshold,
        the weighted mean reaches it. A weight of 0 reports a check without counting it."""
        counted = [c for c in checks if c.weight > 0]
        total = sum(c.weight for c in counted)
        score = sum(c.weight * c.score for c in counted) / total if total else 1.0
        threshold = self.cases[case_id].threshold
        if threshold is None:
            return all(c.passed for c in counted), score
        return score >= threshold, score

    def score(self, prediction: str, example: Example) -> Score:
        return self._case_score(prediction, example, None)

    def score_call(self, prediction: str, example: Example, generation: Any) -> Score:
        return self._case_score(prediction, example, generation)

    # --- scoring --------------------------------------------------------------------------
    def _case(self, case_id: str) -> list[_Item]:
        if case_id not in self._items:
            raise PromptmillError(f"no case '{clip(case_id)}' in this suite's checks",
                                  where="suite-checks",
                                  fix="score only examples made from the suite's cases")
        return self._items[case_id]

    def _case_score(self, prediction: str, example: Example,
                    generation: Generation | None) -> Score:
        checks = self.checks(example.id, prediction, generation)
        passed, weighted = self.passed(example.id, checks)
        if passed:
            return Score(1.0)
        lines = [f"{c.type}: {c.reason}" for c in checks if not c.passed and c.weight > 0]
        threshold = self.cases[example.id].threshold
        if threshold is not None:
            lines.insert(0, f"weighted score {weighted:.2f} is below the case threshold "
                            f"{threshold:g}")
        return Score(0.0, "\n".join(lines))


_MEMO_LIMIT = 200_000  # outcomes remembered per suite run; past it, checks are recomputed


def _call_figures(generation: Generation | None) -> tuple[float, int, int] | None:
    """What latency and cost checks read of a call."""
    if generation is None:
        return None
    return (generation.seconds, generation.input_tokens, generation.output_tokens)


def _check(item: _Item, output: str, generation: Generation | None) -> Check:
    a, plan = item.assertion, item.plan
    try:
        result = item.metric.score_call(output, item.example, generation)
    except PromptmillError as exc:
        if not plan.user_code or isinstance(exc, MetricError):
            raise
        return Check(a.type, False, 0.0, clip(f"the check could not run: {exc.message}",
                                              _MAX_REASON), a.weight, a.metric)
    value = result.value
    base_passed = value > 0 if plan.threshold is None else value >= plan.threshold
    passed = base_passed != a.negated
    reason = _reason(plan, a.negated, passed, value, result.feedback, output)
    return Check(a.type, passed, 1.0 - value if a.negated else value, reason, a.weight,
                 a.metric)


def _reason(plan: _Plan, negated: bool, passed: bool, value: float, feedback: str | None,
            output: str) -> str:
    """Why the check passed or failed, in words a user can act on."""
    expectation = f"not {plan.expectation}" if negated else plan.expectation
    graded = f" (score {value:.2f}, threshold {plan.threshold:g})" if plan.graded else ""
    if passed:
        return f"passed: expected {expectation}{graded}"
    if negated or not feedback or not plan.detail:
        text = f"expected {expectation}{graded}; the output was {quote(output)}"
    elif feedback.startswith("expected"):
        text = f"{feedback}{graded}"
    else:
        text = f"expected {expectation}{graded}; {feedback}"
    return clip(text, _MAX_REASON)
