"""docs/plugins.md is true: its example plugin, installed as a package, works through the
public lookups and the CLI, and a name clash resolves as its table says."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from entry_point import run_promptmill
from helpers import write_jsonl

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
GROUPS = ("models", "metrics", "optimizers", "strategies")


def _blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def _install(site: Path, name: str, module: str | None, entry_points: dict) -> None:
    """A distribution as pip leaves it in site-packages: module, METADATA, entry_points.txt."""
    info = site / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in names.items()) + "\n"
        for group, names in entry_points.items()))
    if module is not None:
        (site / f"{name}.py").write_text(module)


def _with_site(*sites: Path) -> dict[str, str]:
    """An environment whose Python finds these folders first, in this order."""
    path = os.pathsep.join(p for p in (*map(str, sites), os.environ.get("PYTHONPATH")) if p)
    return {"PYTHONPATH": path}


def _example_plugin(tmp_path: Path) -> Path:
    (module,) = [b for b in _blocks("python") if b.startswith("# acme_promptmill.py")]
    (toml,) = [b for b in _blocks("toml") if "promptmill.models" in b]
    entry_points = tomllib.loads(toml)["project"]["entry-points"]
    assert set(entry_points) == {f"promptmill.{g}" for g in GROUPS}  # one of each kind
    site = tmp_path / "site"
    _install(site, "acme_promptmill", module, entry_points)
    return site


LOOKUPS = """
import json
from promptmill import Example, GenerationParams, Prompt, get_metric, load_model, strategies
from promptmill.metrics import available_metrics
from promptmill.models.registry import available_models
from promptmill.optimize import available_optimizers, get_optimizer

model = load_model("reverse:END")
metric = get_metric("max_words", {"limit": 2})
score = metric.score("one two three", Example(id="x", inputs={}, target=""))
print(json.dumps({
    "listed": ["reverse" in available_models(), "max_words" in available_metrics(),
               "try_strategies" in available_optimizers(), "polite" in strategies.available()],
    "answer": model.generate("abc", GenerationParams()).text,
    "score": [score.value, score.feedback],
    "optimizer": type(get_optimizer("try_strategies", strategies=["polite"])).__name__,
    "polite": strategies.apply(Prompt(instruction="Answer."), ["polite"]).instruction,
}))
"""


def _python(code: str, sites: list[Path], cwd: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **_with_site(*sites)}, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_example_plugin_registers_all_four_kinds(tmp_path):
    site = _example_plugin(tmp_path)
    found = _python(LOOKUPS, [site], tmp_path)
    assert found["listed"] == [True, True, True, True]
    assert found["answer"] == "cbaEND"
    assert found["score"] == [0.0, "3 words; the limit is 2"]
    assert found["optimizer"] == "TryStrategies"
    assert found["polite"] == "Please Answer."


def test_the_example_plugin_runs_through_the_cli(tmp_path):
    site = _example_plugin(tmp_path)
    rows = [{"id": f"w{i}", "word": "ab " * (i % 3 + 1), "answer": "-"} for i in range(20)]
    write_jsonl(tmp_path / "data.jsonl", rows)
    data = {"path": "data.jsonl", "input": ["word"], "target": "answer", "id": "id"}
    config = {"name": "words", "data": data,
              "splits": {"train": 4, "validation": 8, "test": 8, "seed": 0},
              "metric": {"name": "max_words", "params": {"limit": 2}}, "model": "reverse",
              "prompt": {"name": "seed", "instruction": "Repeat.", "template": "{{ word }}"}}
    (tmp_path / "task.yaml").write_text(yaml.safe_dump(config))
    db = f"sqlite:///{tmp_path / 'store.db'}"
    env = _with_site(site)
    done = run_promptmill("--db", db, "eval", "task.yaml", "-q", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    done = run_promptmill("--db", db, "optimize", "task.yaml", "--method", "try_strategies",
                          "--option", 'strategies=["polite"]', "--budget-calls", "40", "-q",
                          cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    out = " ".join(done.stdout.split())
    assert "(try_strategies)" in out and "2 candidates" in out  # the seed and the polite one
    from promptmill.store.db import Store

    store = Store(db)
    try:
        runs = store.list_runs(limit=10)
    finally:
        store.close()
    assert len(runs) == 4 and {r["model"] for r in runs} == {"reverse:"}, runs  # its identity


CLASHES = """
import json
from promptmill import get_metric, register_metric, strategies
from promptmill.optimize import get_optimizer

before = type(get_metric("exact")).__name__
register_metric("exact", lambda: "registered")
print(json.dumps({"metric": before, "registered": get_metric("exact"),
                  "optimizer": type(get_optimizer("ape")).__name__,
                  "strategy": strategies.get_strategy("role").__module__,
                  "plugins": [type(get_metric("dup")).__name__,
                              strategies.get_strategy("dup").__name__]}))
"""


def test_a_name_clash_resolves_as_the_table_says(tmp_path):
    """The rows for metrics, optimizers and strategies (the models' row depends on sys.path)."""
    first, second = tmp_path / "first", tmp_path / "second"  # read in this order (PYTHONPATH)
    for site, name, metric, strategy in ((first, "aaa", "MaxWords", "polite"),
                                         (second, "bbb", "ReverseModel", "reverse_model")):
        _install(site, name, None, {
            "promptmill.metrics": {"exact": f"acme_promptmill:{metric}",
                                   "dup": f"acme_promptmill:{metric}"},
            "promptmill.optimizers": {"ape": "acme_promptmill:TryStrategies"},
            "promptmill.strategies": {"role": f"acme_promptmill:{strategy}",
                                      "dup": f"acme_promptmill:{strategy}"}})
    site = _example_plugin(tmp_path)
    found = _python(CLASHES, [first, second, site], tmp_path)
    assert found["metric"] == "ExactMatch" and found["registered"] == "registered"
    assert found["optimizer"] == "APE" and found["strategy"] == "promptmill.strategies"
    assert found["plugins"] == ["MaxWords", "polite"]  # of two plugins, the first read wins
