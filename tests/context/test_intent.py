"""IntentRouter: rules first, then a constrained classifier, then the default."""

from __future__ import annotations

import json
import math

import pytest

from promptmill.context.base import Chain, Prepared
from promptmill.context.intent import (
    IntentRouter,
    IntentRule,
    first_label,
    scores_by_segment,
)
from promptmill.errors import ConfigError
from promptmill.models.base import Generation, GenerationParams, Request
from promptmill.models.fake import FakeModel
from promptmill.prompt import Prompt
from promptmill.task import Example

VARIANTS = {name: Prompt(instruction=f"You handle {name} requests.", template="{{ text }}",
                         name=name)
            for name in ("billing", "shipping", "general")}


def ex(text: str, id: str = "e1", **extra) -> Example:
    return Example(id=id, inputs={"text": text, **extra}, target="x")


class GenerateOnly(FakeModel):
    """A fake that cannot score options, so the router must generate and parse."""

    score_options = None  # type: ignore[assignment]

    @property
    def can_score_options(self) -> bool:
        return False

    def generate(self, request: Request, params: GenerationParams) -> Generation:
        self.last_request = request
        return super().generate(request, params)


def test_rules_are_tried_in_order_and_noted():
    router = IntentRouter(VARIANTS, rules=[IntentRule("billing", ["invoice", "refund"]),
                                           IntentRule("shipping", r"\btrack(ing)?\b"),
                                           IntentRule("general", ["refund"])],
                          default="general")
    prepared = router.prepare(Prepared(Prompt()), ex("Tracking number for my REFUND?"))
    assert prepared.prompt is VARIANTS["billing"]
    assert prepared.segment == "billing"
    assert prepared.notes == ["intent: billing (rule 1)"]
    assert router.route(ex("where is the tracking page"))[1] == "rule 2"


def test_keywords_match_whole_words_only():
    router = IntentRouter(VARIANTS, rules=[IntentRule("billing", ["bill", "c++"])],
                          default="general")
    assert router.route(ex("my Bill is wrong"))[0] == "billing"
    assert router.route(ex("a billboard fell"))[0] == "general"
    assert router.route(ex("I write c++ code"))[0] == "billing"


def test_rule_on_one_field_and_case_sensitivity():
    rule = IntentRule("shipping", "^SHIP", field="topic", ignore_case=False)
    router = IntentRouter(VARIANTS, rules=[rule], default="general")
    assert router.route(ex("ship it", topic="SHIP-42")) == ("shipping", "rule 1")
    assert router.route(ex("SHIP it", topic="ship-42")) == ("general", "default")


def test_rule_field_missing_from_the_example_is_an_error():
    router = IntentRouter(VARIANTS, rules=[IntentRule("billing", "x", field="topik")],
                          default="general")
    with pytest.raises(ConfigError, match="'topik' is not an input of example e1.*text"):
        router.route(ex("anything"))


def test_no_rule_and_no_classifier_falls_back_to_default():
    router = IntentRouter(VARIANTS, default="general")
    prepared = router.prepare(Prepared(Prompt()), ex("hello"))
    assert prepared.segment == "general" and prepared.notes == ["intent: general (default)"]


def test_default_defaults_to_the_first_variant():
    assert IntentRouter(VARIANTS).default == "billing"


def test_classifier_scores_options_when_the_backend_can():
    model = FakeModel(answers={"parcel": "shipping", "charged": "billing"}, default="general")
    assert model.can_score_options
    router = IntentRouter(VARIANTS, classifier=model, labels=["billing", "shipping"],
                          default="general")
    prepared = router.prepare(Prepared(Prompt()), ex("my parcel is late"))
    assert prepared.segment == "shipping"
    assert prepared.notes == ["intent: shipping (classifier)"]
    assert model.calls == 0  # scoring, not generating


def test_classifier_generates_and_takes_the_first_label_mentioned():
    model = GenerateOnly(answers={"parcel": "Intent: SHIPPING, not billing."})
    router = IntentRouter(VARIANTS, rules=[IntentRule("billing", ["invoice"])],
                          classifier=model, default="general")
    assert router.route(ex("my parcel is late")) == ("shipping", "classifier")
    assert router.route(ex("my invoice")) == ("billing", "rule 1")  # rules come first
    assert model.calls == 1
    system = model.last_request[0]["content"]
    assert "billing, shipping, general" in system


def test_classifier_label_descriptions_go_into_its_prompt():
    model = GenerateOnly(default="billing")
    router = IntentRouter(VARIANTS, classifier=model,
                          labels={"billing": "charges, invoices", "shipping": "parcels"})
    request = router.classifier_request("hi")
    assert "- billing: charges, invoices\n- shipping: parcels" in request[0]["content"]
    assert request[1] == {"role": "user", "content": "hi"}


def test_unparseable_classifier_answer_falls_back_to_default_and_says_so():
    model = GenerateOnly(default="I am not sure")
    router = IntentRouter(VARIANTS, classifier=model, default="general")
    prepared = router.prepare(Prepared(Prompt()), ex("???"))
    assert prepared.segment == "general"
    assert prepared.notes == ["intent: general (default; classifier said 'I am not sure')"]


def test_classifications_are_cached_per_input_text():
    model = GenerateOnly(default="billing")
    router = IntentRouter(VARIANTS, classifier=model)
    for i in range(3):
        assert router.route(ex("same text", id=f"e{i}"))[0] == "billing"
    router.route(ex("other text"))
    assert model.calls == 2


def test_first_label_prefers_the_earliest_then_the_longest():
    labels = ["refund", "refund_request", "billing"]
    assert first_label("billing, maybe refund", labels) == "billing"
    assert first_label("REFUND_REQUEST", labels) == "refund_request"
    assert first_label("refunds", labels) is None


@pytest.mark.parametrize("kwargs,match", [
    ({"variants": {}}, "at least one prompt variant"),
    ({"variants": VARIANTS, "default": "sales"}, "default intent 'sales' has no variant"),
    ({"variants": VARIANTS, "rules": [IntentRule("returns", ["x"])]},
     "rule 1 routes to unknown intent 'returns'"),
    ({"variants": VARIANTS, "labels": ["billing"]}, "no classifier"),
    ({"variants": VARIANTS, "classifier": FakeModel(), "labels": ["billing", "sales"]},
     "label 'sales' has no variant"),
    ({"variants": VARIANTS, "classifier": FakeModel(), "labels": []}, "at least one label"),
    ({"variants": VARIANTS, "classifier": FakeModel(), "labels": "billing"}, "not one string"),
    ({"variants": {"a": "not a prompt"}}, "not a Prompt"),
])
def test_bad_configuration_is_refused_at_construction(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        IntentRouter(**kwargs)


def test_bad_rules_are_refused():
    with pytest.raises(ConfigError, match="bad regex"):
        IntentRule("billing", "(unclosed")
    with pytest.raises(ConfigError, match="at least one keyword"):
        IntentRule("billing", ["", "  "])


def test_routing_runs_first_in_a_chain_and_keeps_context():
    def add_context(prepared, example):
        prepared.context["note"] = "kept"
        return prepared

    class Step:
        prepare = staticmethod(add_context)

        def describe(self):
            return {}

    router = IntentRouter(VARIANTS, default="general")
    prepared = Chain(Step(), router)(Prompt(instruction="base"), ex("hi"))
    assert prepared.prompt is VARIANTS["general"] and prepared.context == {"note": "kept"}


def test_describe_is_json():
    router = IntentRouter(VARIANTS, rules=[IntentRule("billing", ["invoice"], field="text")],
                          classifier=FakeModel(name="clf"), default="general")
    described = json.loads(json.dumps(router.describe()))
    assert described["variants"] == {n: p.hash for n, p in VARIANTS.items()}
    assert described["rules"] == [{"intent": "billing", "pattern": ["invoice"], "field": "text",
                                   "ignore_case": True}]
    assert described["classifier"].startswith("fake:clf:")
    assert described["default"] == "general"


def test_scores_by_segment():
    segments = {"a": "billing", "b": "billing", "c": "shipping", "d": None, "e": "general"}
    scores = {"a": 1.0, "b": 0.0, "c": 1.0, "d": 0.5}  # e has no score (a failed call)
    result = scores_by_segment(segments, scores)
    assert list(result) == ["(none)", "billing", "shipping"]
    assert result["billing"].mean == 0.5 and result["billing"].n == 2
    assert result["billing"].low <= 0.5 <= result["billing"].high
    assert result["shipping"].n == 1 and result["(none)"].mean == 0.5
    assert IntentRouter.scores_by_segment(segments, scores) == result
    assert scores_by_segment({}, {}) == {}
    assert not math.isnan(result["shipping"].low)
