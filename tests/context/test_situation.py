"""Situation: strict typed context variables, written into a slot or template variables."""

from __future__ import annotations

import datetime as dt

import pytest

from promptmill.context.base import Chain, Prepared
from promptmill.context.situation import Situation, SituationContext, normalize_locale
from promptmill.errors import ConfigError, DataError
from promptmill.prompt import Prompt
from promptmill.task import Example

SLOTTED = Prompt(instruction="Answer the customer.", template="{{ text }}",
                 context_slots=("situation",), name="support")


def example(**inputs) -> Example:
    return Example(id="e1", inputs={"text": "Where is my order?", **inputs}, target="x")


def test_block_lists_only_the_fields_that_are_set():
    situation = Situation(audience="first-time buyers", locale="fr-FR", date="2026-11-24")
    assert situation.text() == "Audience: first-time buyers\nLocale: fr-FR\nDate: 2026-11-24"


def test_every_field_in_a_fixed_order_with_extras_last():
    situation = Situation(date=dt.date(2026, 11, 24), channel="email", locale="de",
                          audience="admins", persona="night-shift nurse",
                          extra={"support_plan": "gold"})
    assert situation.lines() == ["Persona: night-shift nurse", "Audience: admins",
                                 "Locale: de", "Channel: email", "Date: 2026-11-24",
                                 "Support plan: gold"]


@pytest.mark.parametrize("tag,expected", [("en-US", "en-US"), ("fr", "fr"), ("EN-us", "en-US"),
                                          ("zh-hant-tw", "zh-Hant-TW"), ("es-419", "es-419"),
                                          ("sr-Latn", "sr-Latn")])
def test_locales_are_checked_and_normalized(tag, expected):
    assert normalize_locale(tag) == expected
    assert Situation(locale=tag).locale == expected


@pytest.mark.parametrize("tag", ["english", "en_US", "e", "en-USA1", "", "en-"])
def test_malformed_locale_is_a_config_error_naming_the_field(tag):
    with pytest.raises(ConfigError) as info:
        Situation.from_dict({"locale": tag})
    assert "locale" in str(info.value) and "en-US" in str(info.value)


def test_unknown_field_and_bad_channel_are_config_errors():
    with pytest.raises(ConfigError, match="unknown situation field 'local'.*use one of"):
        Situation.from_dict({"local": "fr"})
    with pytest.raises(ConfigError, match="channel"):
        Situation.from_dict({"channel": "fax"}, where="task.yaml")


def test_context_accepts_a_plain_dict_and_validates_it():
    ctx = SituationContext({"audience": "kids"})
    assert ctx.situation == Situation(audience="kids")
    with pytest.raises(ConfigError):
        SituationContext({"locale": "klingon!"})


def test_prepare_writes_the_block_into_the_slot_and_renders():
    ctx = SituationContext(Situation(audience="kids", channel="sms"))
    prepared = ctx.prepare(Prepared(SLOTTED), example())
    assert prepared.context == {"situation": "Audience: kids\nChannel: sms"}
    user = prepared.prompt.render_messages(example().inputs, prepared.context_values())[-1]
    assert user["content"] == "Situation:\nAudience: kids\nChannel: sms\n\nWhere is my order?"


def test_custom_slot_name():
    prompt = SLOTTED.model_copy(update={"context_slots": ("user_profile",)})
    prepared = SituationContext(Situation(persona="a chef"), slot="user_profile").prepare(
        Prepared(prompt), example())
    assert prepared.context["user_profile"] == "Persona: a chef"


def test_example_inputs_override_the_configured_fields():
    ctx = SituationContext(Situation(locale="en-US", audience="adults",
                                     extra={"plan": "free"}))
    prepared = ctx.prepare(Prepared(SLOTTED),
                           example(locale="fr", date="2026-01-02", plan="gold", audience=""))
    assert prepared.context["situation"] == ("Audience: adults\nLocale: fr\nDate: 2026-01-02\n"
                                             "Plan: gold")
    # the configured situation itself is untouched for the next example
    assert ctx.situation.locale == "en-US"


def test_bad_override_in_the_data_is_a_data_error_naming_the_example():
    ctx = SituationContext(Situation())
    with pytest.raises(DataError, match="example e1.*locale"):
        ctx.prepare(Prepared(SLOTTED), example(locale="English please"))


def test_empty_situation_still_fills_the_slot():
    prepared = SituationContext(Situation()).prepare(Prepared(SLOTTED), example())
    assert prepared.context["situation"] == "(not specified)"


def test_missing_slot_is_a_config_error_that_says_to_add_it():
    plain = Prompt(template="{{ text }}", name="plain")
    with pytest.raises(ConfigError) as info:
        SituationContext(Situation(locale="fr")).prepare(Prepared(plain), example())
    message = str(info.value)
    assert "plain has no context slot 'situation'" in message
    assert "context_slots: [situation]" in message


def test_variables_make_the_situation_readable_from_the_template():
    prompt = Prompt(template="{% if situation.locale %}[{{ situation.locale }}] {% endif %}"
                             "{{ text }} ({{ situation.extra.plan }}, {{ situation.date }})")
    ctx = SituationContext(Situation(locale="fr-FR", date="2026-11-24",
                                     extra={"plan": "it's 100% {{ raw }} %}"}),
                           slot=None, variables=True)
    prepared = ctx.prepare(Prepared(prompt), example())
    text = prepared.prompt.render_messages(example().inputs, {})[-1]["content"]
    assert text == "[fr-FR] Where is my order? (it's 100% {{ raw }} %}, 2026-11-24)"
    assert prompt.template in prepared.prompt.template  # the original is kept, prefixed


def test_variables_use_the_per_example_override_and_unset_fields_are_none():
    prompt = Prompt(template="{{ situation.locale }}|{{ situation.persona is none }}",
                    context_slots=("situation",))
    ctx = SituationContext(Situation(locale="en-US"), variables=True)
    prepared = ctx.prepare(Prepared(prompt), example(locale="ja-JP"))
    text = prepared.prompt.render_messages({}, prepared.context_values())[-1]["content"]
    assert text.endswith("ja-JP|True")
    assert prepared.context["situation"] == "Locale: ja-JP"


def test_doing_nothing_is_refused():
    with pytest.raises(ConfigError, match="does nothing"):
        SituationContext(Situation(), slot=None)


def test_describe_is_json_and_works_in_a_chain():
    import json

    ctx = SituationContext(Situation(locale="fr", date="2026-11-24"))
    assert json.loads(json.dumps(ctx.describe())) == {
        "contextualizer": "situation", "slot": "situation", "variables": False,
        "situation": {"locale": "fr", "date": "2026-11-24", "extra": {}}}
    prepared = Chain(ctx)(SLOTTED, example())
    assert prepared.context["situation"] == "Locale: fr\nDate: 2026-11-24"
