"""The metric registry: built-ins, register_metric, plugins, errors, and a light import."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import EntryPoint

import pytest
from metric_helpers import ex

import promptmill.metrics
from promptmill.errors import ConfigError
from promptmill.metrics import (
    Contains,
    ExactMatch,
    Metric,
    Score,
    available_metrics,
    get_metric,
    register_metric,
    registry,
)

BUILT_INS = ["bleu", "choice", "chrf", "contains", "embedding", "exact", "f1", "json_schema",
             "json_valid", "llm_judge", "numeric", "regex", "rouge"]


class Always(Metric):
    name = "always"

    def score(self, prediction, example):
        return Score(1.0)


@pytest.fixture
def fresh_registry(monkeypatch):
    """A registry without registered metrics or plugins, restored afterwards."""
    monkeypatch.setattr(registry, "_REGISTRY", {})
    registry.REGISTRY.clear()  # plugins are read again, through the entry points a test gives
    yield
    registry.REGISTRY.clear()


def test_every_built_in_is_registered():
    assert set(BUILT_INS) <= set(available_metrics())


def test_every_built_in_names_a_metric_class_of_that_name():
    for name, target in registry._BUILTINS.items():
        module, _, attr = target.partition(":")
        factory = getattr(promptmill.metrics, attr)
        assert module == factory.__module__ and issubclass(factory, Metric)
        assert factory.name == name


def test_every_public_name_resolves():
    for name in promptmill.metrics.__all__:
        assert getattr(promptmill.metrics, name) is not None


def test_import_does_not_load_heavy_dependencies():
    code = """if True:
        import json, sys
        import promptmill.metrics
        heavy = ("sacrebleu", "rouge_score", "jsonschema", "sentence_transformers")
        def loaded():
            return sorted({m.split(".")[0] for m in sys.modules} & set(heavy))
        after_import = loaded()
        promptmill.metrics.get_metric("exact")
        after_exact = loaded()
        promptmill.metrics.get_metric("bleu")
        print(json.dumps([after_import, after_exact, loaded()]))
    """
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out) == [[], [], ["sacrebleu"]]


def test_unknown_metric_lists_the_known_ones():
    with pytest.raises(ConfigError) as err:
        get_metric("exactly")
    message = str(err.value)
    assert "unknown metric 'exactly'" in message
    assert "exact, f1" in message and "python:FILE.py:FUNCTION" in message


def test_wrong_parameter_names_are_config_errors():
    with pytest.raises(ConfigError, match="parameters of 'numeric' are: abs_tol, rel_tol"):
        get_metric("numeric", {"tolerance": 0.1})


def test_register_metric_and_base_dir_only_for_factories_that_take_it(tmp_path, fresh_registry):
    register_metric("always", Always)
    assert get_metric("always", base_dir=tmp_path).score("x", ex()).value == 1.0
    assert "always" in available_metrics()


def test_register_metric_replaces_a_built_in(fresh_registry):
    register_metric("exact", Always)
    assert isinstance(get_metric("exact"), Always)


def test_plugins_add_names_but_replace_neither_built_ins_nor_registered(monkeypatch,
                                                                      fresh_registry):
    group = "promptmill.metrics"
    plugins = [EntryPoint("exact", "promptmill.metrics.text:TokenF1", group),
               EntryPoint("mine", "promptmill.metrics.text:Contains", group),
               EntryPoint("taken", "promptmill.metrics.text:TokenF1", group)]
    monkeypatch.setattr("importlib.metadata.entry_points",
                        lambda group: plugins if group == "promptmill.metrics" else [])
    register_metric("taken", Always)
    assert isinstance(get_metric("exact"), ExactMatch)
    assert isinstance(get_metric("mine"), Contains)
    assert isinstance(get_metric("taken"), Always)
    assert {"exact", "mine", "taken"} <= set(available_metrics())


def test_a_broken_plugin_fails_only_the_metric_asked_for(monkeypatch, fresh_registry):
    group = "promptmill.metrics"
    plugins = [EntryPoint("broken", "no_such_module_anywhere:Metric", group),
               EntryPoint("mine", "promptmill.metrics.text:Contains", group)]
    monkeypatch.setattr("importlib.metadata.entry_points",
                        lambda group: plugins if group == "promptmill.metrics" else [])
    assert isinstance(get_metric("mine"), Contains)
    with pytest.raises(ConfigError, match="the metric plugin 'broken' .* failed to load "
                                          r"\(ModuleNotFoundError"):
        get_metric("broken")
