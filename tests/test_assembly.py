"""``promptmill.api.setup``: the one assembly path from a task config to an evaluation."""

from __future__ import annotations

import pytest
import yaml

from promptmill.api import setup
from promptmill.errors import ConfigError, PromptmillError
from promptmill.models.fake import FakeModel
from promptmill.prompt import Prompt


@pytest.fixture
def loads(monkeypatch):
    """Every model the registry loads, in order; each records whether it was closed."""
    from promptmill.models import registry

    loaded: list[FakeModel] = []
    real = registry.load_model

    def tracking(spec, **params):
        model = real(spec, **params)
        model.closed = False
        model.close = lambda: setattr(model, "closed", True)
        loaded.append(model)
        return model

    monkeypatch.setattr(registry, "load_model", tracking)
    return loaded


def test_the_configs_prompt_metric_and_params(capitals_task, store):
    with setup(capitals_task, store=store) as s:
        assert s.prompt.name == "ask" and s.prompt.instruction == "Name the capital city."
        assert s.params.max_tokens == 8 and s.params.logprobs is False
        assert "exact" in str(s.metric.describe())
        assert len(s.examples("test")) == 12 and len(s.examples("test", limit=3)) == 3
        assert s.record()["name"] == "capitals"


def test_a_prompt_file(capitals_task, store):
    path = capitals_task.parent / "short.yaml"
    path.write_text(yaml.safe_dump({"instruction": "Capital?", "template": "{{ country }}"}))
    s = setup(capitals_task, prompt=str(path), store=store)
    assert s.prompt.name == "short" and s.prompt.instruction == "Capital?"


def test_name_at_tag_from_the_store(capitals_task, store):
    prompt = Prompt(instruction="Only the city.", template="Country: {{ country }}")
    saved = store.save_prompt("cities", prompt.content(), prompt.hash)
    store.tag_prompt("cities", saved["version"], "production")
    s = setup(capitals_task, prompt="cities@production", store=store)
    assert s.prompt.name == "cities" and s.prompt.instruction == "Only the city."
    assert s.resolve(None).name == "ask"  # another prompt for the same task


def test_the_model_loads_on_first_access_only(capitals_task, store, loads):
    s = setup(capitals_task, model="fake:Paris", store=store)
    assert loads == [] and s.model_name == "fake:Paris"
    assert s.model is s.model and len(loads) == 1
    result = s.evaluator().evaluate(s.examples(limit=2), s.prompt, task="capitals",
                                    split="test")
    assert result.n == 2 and len(loads) == 1


def test_close_closes_only_a_model_it_loaded(capitals_task, store, loads):
    with setup(capitals_task, store=store) as s:
        s.load_model()
    assert loads[0].closed
    given = FakeModel(default="Paris")
    given.close = lambda: pytest.fail("closed a model the caller owns")
    with setup(capitals_task, model=given, store=store) as s:
        assert s.model is given and s.contextualizer is None
    assert len(loads) == 1  # a given model loads nothing more


def test_logprobs_are_forced_on_when_asked(capitals_task, store):
    assert setup(capitals_task, store=store, logprobs=True).params.logprobs is True


def test_a_bad_prompt_ref_gives_the_same_one_line_error(capitals_task, store):
    with pytest.raises(ConfigError) as bad_ref:
        setup(capitals_task, prompt="@production", store=store)
    assert bad_ref.value.one_line() == (
        "--prompt: bad prompt reference '@production'. Fix: use a YAML file path, NAME, "
        "NAME@VERSION or NAME@TAG")
    with pytest.raises(PromptmillError) as missing:
        setup(capitals_task, prompt="nothing@production", store=store)
    assert "no prompt 'nothing@production' in the store" in missing.value.one_line()


def test_a_template_field_the_data_lacks_names_the_prompt(capitals_task, store):
    wrong = Prompt(name="wrong", instruction="x", template="{{ city }}")
    with pytest.raises(ConfigError) as err:
        setup(capitals_task, prompt=wrong, store=store)
    assert err.value.one_line().startswith(
        "prompt 'wrong': the prompt template uses 'city', which is not an input field "
        "(inputs: country). Fix: add 'city' to data.input in ")
