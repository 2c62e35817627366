"""Property tests: every loader of user files either loads or fails with PromptmillError.

Random bytes, hand-made hostile files and mutations of valid ones (flipped bits, truncation,
BOM, NUL, invalid UTF-8, huge cells and numbers, deep nesting, alias bombs, !!python tags) go
to the JSONL, JSON and CSV loaders and to the task and prompt YAML loaders. The run is bounded
and repeatable: a fixed number of examples per loader, derandomized, no example database.
"""

from __future__ import annotations

import re

import pytest
import yaml
from fuzz_targets_loaders import (
    FULL_TASK,
    SEEDS,
    TARGETS,
    WRONG_VALUES,
    field_paths,
    inputs,
    replaced,
    retyped_yaml,
)
from hypothesis import HealthCheck, given, settings

from promptmill.config import load_task_config
from promptmill.errors import ConfigError

EXAMPLES_PER_LOADER = 150

FUZZ = settings(max_examples=EXAMPLES_PER_LOADER, deadline=None, derandomize=True,
                database=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                      HealthCheck.too_slow,
                                                      HealthCheck.data_too_large])


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_valid_seed_files_load(name, tmp_path):
    for seed in SEEDS[name]:
        assert TARGETS[name](seed, tmp_path) == "loaded"


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_loader_loads_or_raises_promptmill_error(name, tmp_path):
    outcomes: list[str] = []

    @FUZZ
    @given(data=inputs(name))
    def check(data: bytes) -> None:
        outcomes.append(TARGETS[name](data, tmp_path))  # anything else than these two escapes

    check()
    assert len(outcomes) >= EXAMPLES_PER_LOADER
    assert {"loaded", "rejected"} <= set(outcomes), "the inputs never exercise both outcomes"


def test_the_full_task_config_is_valid(tmp_path):
    assert TARGETS["task_yaml"](retyped_yaml(FULL_TASK, ("name",), "t"), tmp_path) == "loaded"


@pytest.mark.parametrize("path", [".".join(map(str, p)) for p in field_paths(FULL_TASK)])
def test_a_wrong_value_in_any_field_is_named_with_its_line(path, tmp_path):
    keys = tuple(int(k) if k.isdigit() else k for k in path.split("."))
    config = tmp_path / "task.yaml"
    for wrong in WRONG_VALUES:
        config.write_text(yaml.safe_dump(replaced(FULL_TASK, keys, wrong), sort_keys=False))
        try:
            load_task_config(config)
        except ConfigError as exc:
            message = exc.one_line()
            if path == "prompt" and isinstance(wrong, str):  # a string names a prompt file
                assert "prompt file" in message or "prompt" in message, message
                continue
            # the field itself, or the section whose own check refused it (output_spec: one of)
            ancestors = [".".join(map(str, keys[:n])) for n in range(len(keys), 0, -1)]
            assert any(f"'{name}" in message for name in ancestors), message
            assert re.search(r"task\.yaml:\d+: ", message), message
