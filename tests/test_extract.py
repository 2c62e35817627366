import pytest

from promptmill.errors import ConfigError
from promptmill.extract import extract_answer, extractor
from promptmill.prompt import Prompt

REASONING = "Let me think.\nThe word is hot.\nAnswer: cold\nThat is all."


@pytest.mark.parametrize(("rule", "expected"), [
    (None, REASONING),
    ("first_line", "Let me think."),
    ("last_line", "That is all."),
    ("after:answer:", "cold"),
    ("regex:word is (\\w+)", "hot"),
    ("regex:\\bcold\\b", "cold"),
    ("label:warm|cold|hot", "hot"),
])
def test_rules(rule, expected):
    assert extract_answer(rule, REASONING) == expected


def test_json_rule_finds_the_first_object():
    assert extract_answer("json", 'Sure! {"a": [1, 2]} done') == '{"a": [1, 2]}'


def test_label_rule_prefers_the_longer_overlapping_label():
    assert extract_answer("label:spam|not spam", "This is Not Spam.") == "not spam"


def test_no_match_keeps_the_reply():
    assert extract_answer("after:Answer:", "just cold") == "just cold"
    assert extract_answer("json", "no json here") == "no json here"


def test_unknown_rule_names_the_known_ones():
    with pytest.raises(ConfigError, match="unknown answer extraction rule 'last'.*first_line"):
        extractor("last")
    with pytest.raises(ValueError, match="unknown answer extraction rule"):
        Prompt(extract="after")
