"""The public API: exactly the intended names, each the real object, whatever was imported first.

In the style of HTTPX's tests/test_exported_members.py: ``__all__`` is compared against what the
package really holds, not merely checked to be non-empty.
"""

import importlib
import inspect
import json
import pkgutil
import subprocess
import sys
from types import ModuleType

import pytest

import promptmill

EXPECTED = {
    "Demo", "EvalResult", "Evaluator", "Example", "FakeModel", "FieldMap", "Generation",
    "GenerationParams", "Ledger", "Metric", "Model", "Prompt", "PromptmillError", "Score",
    "Store", "Task", "TaskConfig", "compare", "evaluate", "export", "get_metric", "load_examples",
    "load_model", "load_task", "load_task_config", "mean_ci", "paired_test", "register_metric",
    "runs", "show", "OutputSpec", "Chain", "DemoSelector", "KnowledgeBase", "KnowledgeContext",
    "IntentRouter", "Situation", "ContextBudget", "diagnose", "Diagnosis", "compare_runs",
    "HumanRating", "load_served_prompt", "export_prompt", "import_prompt", "run_injection",
    "Executor", "LocalExecutor", "RayExecutor", "TuneSettings", "TuneResult",
    "TransformersModel", "Renderer", "build_request",
    "setup", "Setup",
}


def test_public_names_are_exactly_the_intended_ones():
    assert set(promptmill.__all__) == EXPECTED
    assert len(promptmill.__all__) == len(EXPECTED)  # no name twice
    assert promptmill.__all__ == sorted(promptmill.__all__)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_public_name_is_the_object_its_module_defines(name):
    obj = getattr(promptmill, name)
    assert not isinstance(obj, ModuleType), f"promptmill.{name} is a module"
    home = promptmill._EXPORTS[name]
    assert obj is getattr(importlib.import_module(home), name)
    # defined in that module or one of its own submodules, under the same name
    assert obj.__module__ == home or obj.__module__.startswith(home + ".")
    assert obj.__name__ == name
    if name[0].isupper():
        assert inspect.isclass(obj)
    else:
        assert inspect.isfunction(obj) and callable(obj)


def test_the_package_holds_nothing_public_beyond_all():
    for name in promptmill.__all__:
        getattr(promptmill, name)  # every lazy name resolved: now vars() holds them all
    members = {name for name, value in vars(promptmill).items()
               if not name.startswith("_") and not isinstance(value, ModuleType)}
    assert members == set(promptmill.__all__)
    assert set(promptmill.__all__) <= set(dir(promptmill))


def test_no_public_name_is_also_a_submodule():
    # Importing promptmill.X sets the attribute promptmill.X to the module, which would then
    # shadow a public function of the same name (as promptmill.evaluate once did).
    submodules = {info.name for info in pkgutil.iter_modules(promptmill.__path__)}
    assert submodules & set(promptmill.__all__) == set()


def test_type_checkers_see_every_public_name():
    import ast
    from pathlib import Path

    tree = ast.parse(Path(promptmill.__file__).read_text())
    block = next(node for node in tree.body if isinstance(node, ast.If))  # if TYPE_CHECKING
    imported = {alias.asname or alias.name for node in ast.walk(block)
                if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert imported == set(promptmill.__all__)


STABLE_AFTER_IMPORTS = """
import importlib, inspect, json, pkgutil, sys, types
import promptmill
for info in pkgutil.iter_modules(promptmill.__path__):  # every submodule, before any access
    importlib.import_module(f"promptmill.{info.name}")
import promptmill.evaluation, promptmill.diagnosis, promptmill.diagnosis.compare
from typer.testing import CliRunner
from promptmill.cli.app import app
db, task = sys.argv[1:3]
for args in (["eval", task, "-q"], ["diagnose", "1", "--clusters", "none"]):
    result = CliRunner().invoke(app, ["--db", db, *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
from promptmill import diagnose, evaluate
from promptmill.store.db import Store
import promptmill as pm
result = pm.evaluate(task, store=Store(db))  # as the README does it
found = {name: getattr(promptmill, name) for name in promptmill.__all__}
print(json.dumps({
    "readme": [result.n, pm.compare(1, result.run_id, store=Store(db)).n],
    "evaluate": [getattr(evaluate, "__module__", None), inspect.isfunction(evaluate)],
    "diagnose": [getattr(diagnose, "__module__", None), inspect.isfunction(diagnose)],
    "modules": sorted(n for n, v in found.items() if isinstance(v, types.ModuleType)),
}))
"""


def test_evaluate_and_diagnose_stay_functions_after_imports_and_cli_commands(capitals_task,
                                                                             sqlite_url):
    done = subprocess.run([sys.executable, "-c", STABLE_AFTER_IMPORTS, sqlite_url,
                           str(capitals_task)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["evaluate"] == ["promptmill.api", True]
    assert found["diagnose"][0].startswith("promptmill.diagnosis") and found["diagnose"][1]
    assert found["modules"] == []
    assert found["readme"] == [12, 12]


def test_import_is_light():
    code = ("import sys, promptmill; heavy = ('llama_cpp', 'sqlalchemy', 'openai', 'scipy', "
            "'jinja2', 'pydantic'); print([m for m in sys.modules if m.split('.')[0] in heavy])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
