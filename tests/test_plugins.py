"""One rule for the four registries (promptmill.plugins): built-ins are entry points too, a
clash resolves the same way everywhere with a warning naming both packages, a broken plugin is
a one-line error naming its entry point, and each group is read once per process."""

from __future__ import annotations

import importlib.metadata
import logging
import tomllib
from pathlib import Path

import pytest

from promptmill import strategies
from promptmill.errors import ConfigError
from promptmill.metrics import get_metric
from promptmill.metrics import registry as metrics_registry
from promptmill.models import registry as models_registry
from promptmill.models.registry import load_model
from promptmill.optimize import get_optimizer
from promptmill.optimize import registry as optimize_registry
from promptmill.plugins import Registry

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
REGISTRIES = {"models": models_registry.REGISTRY, "metrics": metrics_registry.REGISTRY,
              "optimizers": optimize_registry.REGISTRY, "strategies": strategies.REGISTRY}
LOOKUPS = {"models": load_model, "metrics": get_metric, "optimizers": get_optimizer,
           "strategies": strategies.get_strategy}
# a built-in name of each group, which the clashing plugin below also takes
BUILT_IN = {"models": "fake", "metrics": "exact", "optimizers": "ape", "strategies": "role"}


def _install(site: Path, package: str, groups: dict[str, dict[str, str]]) -> None:
    """A distribution as pip leaves it: METADATA and entry_points.txt, no module."""
    info = site / f"{package}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("".join(
        f"[promptmill.{group}]\n" + "".join(f"{k} = {v}\n" for k, v in names.items()) + "\n"
        for group, names in groups.items()))


@pytest.fixture
def fresh():
    """Every registry reads its group again, and forgets the test's plugins afterwards."""
    for registry in REGISTRIES.values():
        registry.clear()
    yield
    for registry in REGISTRIES.values():
        registry.clear()


def test_built_ins_are_declared_as_entry_points_exactly_as_in_the_tables():
    declared = tomllib.loads(PYPROJECT.read_text())["project"]["entry-points"]
    for group, registry in REGISTRIES.items():
        assert declared[f"promptmill.{group}"] == registry.builtins, group


def test_the_installed_metadata_lists_promptmills_built_ins(fresh):
    # run `pip install -e . --no-deps` after changing the entry points, and this holds
    for group, registry in REGISTRIES.items():
        installed = {ep.name: ep.value
                     for ep in importlib.metadata.entry_points(group=f"promptmill.{group}")
                     if ep.dist is not None and ep.dist.name == "promptmill"}
        assert installed == registry.builtins, group


@pytest.mark.parametrize("group", sorted(REGISTRIES))
def test_a_broken_plugin_is_a_one_line_error_naming_its_entry_point(group, tmp_path,
                                                                    monkeypatch, fresh):
    _install(tmp_path, "acme_broken", {group: {"broken": "no_such_module_anywhere:thing"}})
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "broken" in REGISTRIES[group].names()  # listed, yet imported only when asked for
    with pytest.raises(ConfigError) as info:
        LOOKUPS[group]("broken")
    error = info.value
    assert "plugin 'broken' (no_such_module_anywhere:thing) failed to load" in error.message
    assert "ModuleNotFoundError" in error.message and "\n" not in str(error)
    assert error.where == f"entry point promptmill.{group}: broken"
    assert "'no_such_module_anywhere'" in error.fix and "acme-broken" in error.fix
    LOOKUPS[group](BUILT_IN[group])  # the others still work


def test_a_broken_strategy_plugin_leaves_the_others_listed(tmp_path, monkeypatch, fresh):
    _install(tmp_path, "acme_broken", {"strategies": {"broken": "no_such_module_anywhere:f"}})
    monkeypatch.syspath_prepend(str(tmp_path))
    found = strategies.available()
    assert "broken" not in found and found["role"] is strategies.role


@pytest.mark.parametrize("group", sorted(REGISTRIES))
def test_a_clash_keeps_the_built_in_then_the_first_plugin_found_and_warns(group, tmp_path,
                                                                          monkeypatch, fresh,
                                                                          caplog):
    first, second = tmp_path / "first", tmp_path / "second"
    _install(first, "aaa", {group: {BUILT_IN[group]: "aaa_module:thing", "dup": "aaa_module:x"}})
    _install(second, "bbb", {group: {"dup": "bbb_module:x"}})
    monkeypatch.syspath_prepend(str(second))
    monkeypatch.syspath_prepend(str(first))  # found first
    with caplog.at_level(logging.WARNING, logger="promptmill.plugins"):
        entries = REGISTRIES[group].entries()
    assert entries[BUILT_IN[group]].builtin
    assert (entries["dup"].package, entries["dup"].target) == ("aaa", "aaa_module:x")
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2 and all("\n" not in w for w in warnings)
    assert f"plugin '{BUILT_IN[group]}' of package 'aaa' is ignored: a promptmill built-in" \
           in warnings[0]
    assert "plugin 'dup' of package 'bbb' is ignored: package 'aaa' has that name" in warnings[1]


def test_each_group_is_read_once_and_each_target_imported_once(monkeypatch):
    reads = []

    def entry_points(group):
        reads.append(group)
        return []

    monkeypatch.setattr("importlib.metadata.entry_points", entry_points)
    registry = Registry("promptmill.strategies", "strategy",
                        {"role": "promptmill.strategies:role"})
    for _ in range(3):
        assert registry.load("role") is strategies.role
        assert registry.names() == ["role"]
    assert reads == ["promptmill.strategies"]


def test_strategy_lookups_do_not_reread_the_entry_points(monkeypatch, fresh):
    strategies.get_strategy("role")

    def no_more_reads(group):
        raise AssertionError(f"read {group} again")

    monkeypatch.setattr("importlib.metadata.entry_points", no_more_reads)
    assert strategies.get_strategy("answer_only") is strategies.answer_only
    assert "self_check" in strategies.available()


def test_a_built_in_whose_module_fails_names_promptmill(monkeypatch):
    monkeypatch.setattr("importlib.metadata.entry_points", lambda group: [])
    registry = Registry("promptmill.models", "model", {"gone": "promptmill.no_such_module:f"})
    with pytest.raises(ConfigError, match=r"the model built-in 'gone' .* failed to load"):
        registry.load("gone")
